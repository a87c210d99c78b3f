"use strict";
// Which charts to draw, from the metric keys a run logged (the rules are in
// predprey/viz/chart_families.py). Pure functions; loaded before viewer.js.
window.PredpreyPanels = (function () {
  // `eval/` and `member/K/` come off first (in either order).
  function splitKey(key) {
    let rest = key, isEval = false, member = null;
    for (let again = true; again; ) {
      again = false;
      if (rest.startsWith("eval/")) {
        rest = rest.slice(5);
        isEval = again = true;
      }
      const m = /^member\/(\d+)\/(.+)$/.exec(rest);
      if (m) {
        member = Number(m[1]);
        rest = m[2];
        again = true;
      }
    }
    return { rest, isEval, member };
  }

  function humanise(s) {
    const t = s.replace(/_per_s$/, "/s").replace(/_/g, " ").replace(/\//g, " · ");
    return t.charAt(0).toUpperCase() + t.slice(1);
  }

  function plain(s) {
    return s.replace(/_per_s$/, "/s").replace(/_/g, " ");
  }

  // -> {chartId, order, family, subject}: subject = what the series is about
  // ("predator", "env steps/s", ...), without eval/member qualifiers.
  function classify(rest, families) {
    for (let i = 0; i < families.length; i++) {
      const m = new RegExp(families[i].pattern).exec(rest);
      if (!m) continue;
      const tail = m[0].endsWith("/") ? rest.slice(m[0].length) : rest;
      const subject = tail === "touches_per_episode" || tail === "train/touches_per_episode" ? "training episodes" : plain(tail);
      return { chartId: "f" + i, order: i, family: families[i], subject };
    }
    const parts = rest.split("/"); // unknown: keys that differ in the last segment share a chart
    const fam = parts.length > 1 ? parts.slice(0, -1).join("/") : rest;
    const family = { title: humanise(fam), ylabel: plain(fam), formula: `metrics.jsonl keys ${fam}${parts.length > 1 ? "/…" : ""}`, log: false };
    return { chartId: "k:" + fam, order: families.length, family, subject: plain(parts[parts.length - 1]) };
  }

  // keys: metric keys present; info: /api/info. -> ordered charts:
  // {id, title, ylabel, formula, log, members, series: [{key, label, color, dashed}]}
  function buildCharts(keys, info) {
    const hidden = new Set(info.not_charted);
    const charts = new Map();
    for (const key of [...keys].sort()) {
      if (hidden.has(key)) continue;
      const { rest, isEval, member } = splitKey(key);
      const c = classify(rest, info.families);
      const id = member === null ? c.chartId : `${c.chartId}:members:${c.subject}`;
      if (!charts.has(id)) {
        charts.set(id, {
          id,
          title: member === null ? c.family.title : `${c.family.title} · ${c.subject} (members)`,
          ylabel: c.family.ylabel,
          formula: c.family.formula,
          log: !!c.family.log,
          members: member !== null,
          order: [c.order, member === null ? 0 : 1, c.family.title, c.subject],
          series: [],
        });
      }
      const label = member === null ? c.subject : `member ${member}`;
      charts.get(id).series.push({ key, label: isEval ? "eval: " + label : label, subject: label, member, dashed: isEval });
    }
    const out = [...charts.values()].sort((a, b) => compareOrder(a.order, b.order));
    out.forEach((chart) => colourSeries(chart, info));
    return out;
  }

  function compareOrder(a, b) {
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
    return 0;
  }

  // Team colours only for a team's own series; a series and its eval twin share a colour.
  function colourSeries(chart, info) {
    const others = [...new Set(chart.series.map((s) => s.subject).filter((s) => !(s in info.team_colors)))];
    for (const s of chart.series) {
      const team = chart.members ? undefined : info.team_colors[s.subject];
      const k = s.member !== null && chart.members ? s.member : others.indexOf(s.subject);
      s.color = team || info.other_colors[k % info.other_colors.length];
    }
  }

  return { splitKey, buildCharts };
})();
