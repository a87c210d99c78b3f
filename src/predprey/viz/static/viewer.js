"use strict";
// predprey live viewer. Plays recorded episodes on a canvas and draws the training
// curves, polling the run's JSON endpoints (see predprey/viz/view.py). Plain canvas,
// no libraries. Everything the page shows is mirrored on window.viewer for tests:
// envIndex, source, episode, frame, agentsPx (drawn centres in canvas pixels), metrics.
(function () {
  const TRAIL = 8; // steps of trail behind each agent
  const FLASH = 3; // steps a touch ring stays visible, fading
  const RING = "#f0a500";
  const PAD = { left: 52, right: 12, top: 30, bottom: 34 }; // episode canvas margins (px)
  const METRICS_POLL_MS = 1000;
  const EPISODES_POLL_MS = 3000;

  const viewer = (window.viewer = {
    ready: false,
    run: null,
    panels: [],
    seriesColors: [],
    latest: {}, // source -> {env index: latest episode number}
    source: null,
    envIndex: null,
    episode: null,
    data: null, // the episode being played (JSON from /api/episode)
    frame: 0,
    playing: true,
    fps: 10,
    pendingEpisode: null, // newer episode of the current env, started when this one ends
    agentsPx: [], // [{x, y, team, alive}] per agent, canvas pixels of the drawn frame
    transform: null, // {x0, y0, scale, left, bottom}: px = left + (x - x0) * scale
    rows: [], // metrics rows, superseded ones (after a resume) dropped
    metrics: {}, // key -> [[env_steps, value], ...] as charted
    metricsOffset: 0,
    metricsPolls: 0,
    chartsDrawn: 0,
  });
  const $ = (id) => document.getElementById(id);
  const { circle, line, niceTicks, fmt, drawChart } = window.PredpreyCharts;
  let loadToken = 0;

  async function api(path) {
    const r = await fetch(path, { cache: "no-store" });
    const body = await r.json();
    if (!r.ok) throw new Error(body.error || r.statusText);
    return body;
  }

  function setStatus(text, isError) {
    const el = $("status");
    el.textContent = text;
    el.className = isError ? "status error" : "status";
  }

  function fillSelect(sel, values, current) {
    const want = values.map(String);
    const have = Array.from(sel.options, (o) => o.value);
    if (want.join(",") !== have.join(",")) {
      sel.innerHTML = "";
      for (const v of want) sel.add(new Option(v, v));
    }
    sel.value = String(current);
  }

  // ---- episodes --------------------------------------------------------------
  function envsOf(source) {
    return Object.keys(viewer.latest[source] || {}).map(Number).sort((a, b) => a - b);
  }

  async function refreshEpisodes() {
    const list = await api("/api/episodes");
    viewer.latest = list.latest;
    const sources = Object.keys(list.latest).sort();
    if (!sources.length) {
      $("episode-label").textContent = "no episodes recorded yet";
      return;
    }
    if (!sources.includes(viewer.source)) {
      viewer.source = sources.includes("train") ? "train" : sources[0];
    }
    fillSelect($("source-select"), sources, viewer.source);
    const envs = envsOf(viewer.source);
    if (!envs.includes(viewer.envIndex)) viewer.envIndex = envs[0];
    fillSelect($("env-select"), envs, viewer.envIndex);
    const newest = list.latest[viewer.source][viewer.envIndex];
    if (viewer.data === null) await loadEpisode(viewer.envIndex, viewer.source, "latest");
    else if (newest !== viewer.episode) viewer.pendingEpisode = newest;
  }

  async function loadEpisode(env, source, episode) {
    const token = ++loadToken;
    const d = await api(`/api/episode?env=${env}&source=${source}&episode=${episode}`);
    if (token !== loadToken) return; // a newer choice was made meanwhile
    viewer.data = d;
    viewer.envIndex = d.env_index;
    viewer.source = d.source;
    viewer.episode = d.episode;
    viewer.pendingEpisode = null;
    viewer.frame = 0;
    $("frame-slider").max = d.steps;
    const when = d.meta.env_steps !== undefined ? `, after ${d.meta.env_steps.toLocaleString()} env steps` : "";
    $("episode-label").textContent = `${d.source} episode ${d.episode}${when}`;
    fillSelect($("env-select"), envsOf(d.source), d.env_index);
    drawLegend(d);
    drawEpisode();
  }

  function drawLegend(d) {
    const parts = d.teams.map((t, k) => {
      const mark = k === 0 ? "&#9650;" : "&#9679;";
      return `<span><b style="color:${d.team_colors[k]}">${mark}</b>${t} (${d.team_sizes[k]})</span>`;
    });
    if (d.landmark_size.length) parts.push(`<span><i class="swatch" style="background:#8c8c8c"></i>${d.landmark_label}</span>`);
    parts.push(`<span><i class="swatch" style="background:none;border:3px solid ${RING}"></i>touch / capture</span>`);
    parts.push(d.walls ? "<span>&#9632; walls</span>" : "<span>- - arena (no walls)</span>");
    if (d.penalty_edge !== null) {
      parts.push('<span><i class="swatch" style="border-radius:0;background:#fdd49e"></i>prey penalty zone</span>');
    }
    $("legend").innerHTML = parts.join("");
  }

  function ringStrength(d, t, n) {
    let s = 0;
    for (let k = 0; k < FLASH && t - k >= 0; k++) {
      if (d.touched[t - k][n] || d.captured[t - k][n]) s = Math.max(s, 1 - k / FLASH);
    }
    return s;
  }

  function drawEpisode() {
    const d = viewer.data;
    if (!d) return;
    const cv = $("episode-canvas");
    const ctx = cv.getContext("2d");
    const W = cv.width, H = cv.height;
    const t = Math.max(0, Math.min(viewer.frame, d.steps));
    viewer.frame = t;
    const [x0, x1, y0, y1] = d.view;
    const scale = Math.min((W - PAD.left - PAD.right) / (x1 - x0), (H - PAD.top - PAD.bottom) / (y1 - y0));
    const bottom = H - PAD.bottom;
    const px = (x) => PAD.left + (x - x0) * scale;
    const py = (y) => bottom - (y - y0) * scale;
    viewer.transform = { x0, y0, scale, left: PAD.left, bottom };

    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, W, H);
    ctx.save();
    ctx.beginPath();
    ctx.rect(px(x0), py(y1), (x1 - x0) * scale, (y1 - y0) * scale);
    ctx.clip();
    if (d.penalty_edge !== null) {
      const e = d.penalty_edge;
      ctx.fillStyle = "rgba(253, 212, 158, 0.6)";
      ctx.fillRect(px(x0), py(y1), (x1 - x0) * scale, (y1 - y0) * scale);
      ctx.fillStyle = "#fff";
      ctx.fillRect(px(-e), py(e), 2 * e * scale, 2 * e * scale);
    }
    const [ax0, ax1, ay0, ay1] = d.arena;
    ctx.strokeStyle = d.walls ? "#000" : "#444";
    ctx.lineWidth = d.walls ? 3 : 1;
    ctx.setLineDash(d.walls ? [] : [6, 4]);
    ctx.strokeRect(px(ax0), py(ay1), (ax1 - ax0) * scale, (ay1 - ay0) * scale);
    ctx.setLineDash([]);
    ctx.fillStyle = "rgba(140, 140, 140, 0.8)";
    d.landmark_pos.forEach((p, j) => circle(ctx, px(p[0]), py(p[1]), d.landmark_size[j] * scale, true));

    const pos = d.pos, alive = d.alive, N = d.agent_size.length;
    ctx.lineWidth = 1.5;
    for (let n = 0; n < N; n++) { // trails, older = fainter
      ctx.strokeStyle = d.team_colors[d.team_index[n]];
      for (let k = Math.max(1, t - TRAIL + 1); k <= t; k++) {
        if (!alive[k][n] || !alive[k - 1][n]) continue;
        ctx.globalAlpha = 0.1 + 0.6 * (k - (t - TRAIL)) / TRAIL;
        line(ctx, px(pos[k - 1][n][0]), py(pos[k - 1][n][1]), px(pos[k][n][0]), py(pos[k][n][1]));
      }
    }
    ctx.globalAlpha = 1;
    ctx.strokeStyle = "#555";
    ctx.lineWidth = 2.5;
    for (let n = 0; n < N; n++) { // grey cross where a prey was captured
      for (let k = 1; k <= t; k++) {
        if (!d.captured[k][n]) continue;
        const cx = px(pos[k][n][0]), cy = py(pos[k][n][1]);
        line(ctx, cx - 5, cy - 5, cx + 5, cy + 5);
        line(ctx, cx - 5, cy + 5, cx + 5, cy - 5);
      }
    }
    const drawn = [];
    for (let n = 0; n < N; n++) { // bodies at true size, then a marker at the centre
      const team = d.team_index[n], color = d.team_colors[team];
      const x = px(pos[t][n][0]), y = py(pos[t][n][1]);
      drawn.push({ x, y, team, alive: !!alive[t][n] });
      if (!alive[t][n]) continue;
      ctx.globalAlpha = 0.35;
      ctx.fillStyle = color;
      circle(ctx, x, y, Math.max(d.agent_size[n] * scale, 1), true);
      ctx.globalAlpha = 1;
      ctx.strokeStyle = "#000";
      ctx.lineWidth = 1;
      ctx.beginPath();
      if (team === 0) { // predators: triangle
        ctx.moveTo(x, y - 8);
        ctx.lineTo(x + 7, y + 5);
        ctx.lineTo(x - 7, y + 5);
        ctx.closePath();
      } else {
        ctx.arc(x, y, 5.5, 0, 2 * Math.PI);
      }
      ctx.fill();
      ctx.stroke();
    }
    ctx.strokeStyle = RING;
    ctx.lineWidth = 2.5;
    for (let n = 0; n < N; n++) {
      const s = ringStrength(d, t, n);
      if (s <= 0) continue;
      ctx.globalAlpha = s;
      const r = Math.max(2.2 * d.agent_size[n] * scale, 0.025 * (x1 - x0) * scale);
      circle(ctx, px(pos[t][n][0]), py(pos[t][n][1]), r, false);
    }
    ctx.globalAlpha = 1;
    ctx.restore();
    drawEpisodeAxes(ctx, W, H, x0, x1, y0, y1, px, py);

    const total = d.touches.slice(0, t).reduce((a, b) => a + b, 0);
    const now = t > 0 ? d.touches[t - 1] : 0;
    let text = `env ${d.env_index}   step ${t}/${d.steps}   touches: ${now} now, ${total} so far`;
    const prey = d.team_index.map((k, n) => (k !== 0 ? n : -1)).filter((n) => n >= 0);
    if (alive.some((row) => row.some((a) => !a))) {
      text += `   prey left: ${prey.filter((n) => alive[t][n]).length}/${prey.length}`;
    }
    ctx.fillStyle = "#222";
    ctx.font = "13px monospace";
    ctx.textAlign = "left";
    ctx.textBaseline = "middle";
    ctx.fillText(text, PAD.left, PAD.top / 2);
    viewer.agentsPx = drawn;
    $("frame-slider").value = t;
  }

  function drawEpisodeAxes(ctx, W, H, x0, x1, y0, y1, px, py) {
    ctx.strokeStyle = "#888";
    ctx.lineWidth = 1;
    ctx.strokeRect(px(x0), py(y1), px(x1) - px(x0), py(y0) - py(y1));
    ctx.fillStyle = "#444";
    ctx.font = "11px sans-serif";
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (const v of niceTicks(x0, x1, 6)) ctx.fillText(fmt(v), px(v), py(y0) + 4);
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (const v of niceTicks(y0, y1, 6)) ctx.fillText(fmt(v), px(x0) - 4, py(v));
    ctx.textAlign = "center";
    ctx.fillText("x (world units)", (px(x0) + px(x1)) / 2, H - 8);
    ctx.save();
    ctx.translate(10, (py(y0) + py(y1)) / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.fillText("y (world units)", 0, 0);
    ctx.restore();
  }

  // ---- playback ----------------------------------------------------------------
  function tick() {
    if (viewer.playing && viewer.data) {
      if (viewer.frame >= viewer.data.steps) {
        viewer.frame = 0;
        if (viewer.pendingEpisode !== null) {
          loadEpisode(viewer.envIndex, viewer.source, viewer.pendingEpisode).catch(showError);
        }
      } else {
        viewer.frame += 1;
      }
      drawEpisode();
    }
    setTimeout(tick, 1000 / viewer.fps);
  }

  function setPlaying(on) {
    viewer.playing = on;
    $("btn-play").textContent = on ? "pause" : "play";
  }

  function stepBy(k) {
    setPlaying(false);
    if (!viewer.data) return;
    viewer.frame = Math.max(0, Math.min(viewer.data.steps, viewer.frame + k));
    drawEpisode();
  }

  // ---- metrics -----------------------------------------------------------------
  function addRows(rows) {
    for (const row of rows) {
      const x = row.env_steps;
      if (typeof x !== "number") continue;
      // a resumed run logs again from its checkpoint: drop the superseded rows
      while (viewer.rows.length && viewer.rows[viewer.rows.length - 1].env_steps > x) viewer.rows.pop();
      viewer.rows.push(row);
    }
    const m = {};
    for (const row of viewer.rows) {
      for (const [k, v] of Object.entries(row)) {
        if (typeof v !== "number" || k === "env_steps") continue;
        (m[k] = m[k] || []).push([row.env_steps, v]);
      }
    }
    viewer.metrics = m;
  }

  async function pollMetrics() {
    try {
      let more = true, changed = false;
      for (let guard = 0; more && guard < 20; guard++) {
        const r = await api(`/api/metrics?since=${viewer.metricsOffset}`);
        if (r.reset) viewer.rows = [];
        if (r.rows.length || r.reset) {
          addRows(r.rows);
          changed = true;
        }
        viewer.metricsOffset = r.offset;
        more = r.more;
      }
      viewer.metricsPolls += 1;
      if (changed) drawCharts();
      $("metrics-count").textContent = viewer.rows.length ? `${viewer.rows.length} rows` : "none logged yet";
      setStatus(`live · ${viewer.rows.length} metrics rows · updated ${new Date().toLocaleTimeString()}`);
    } catch (e) {
      showError(e);
    }
    setTimeout(pollMetrics, METRICS_POLL_MS);
  }

  function drawCharts() {
    const box = $("charts");
    viewer.panels.forEach((panel, i) => {
      const re = new RegExp(panel.pattern);
      const keys = Object.keys(viewer.metrics).filter((k) => re.test(k)).sort();
      let cv = document.getElementById("chart-" + i);
      if (!keys.length) {
        if (cv) cv.remove();
        return;
      }
      if (!cv) {
        cv = document.createElement("canvas");
        cv.id = "chart-" + i;
        cv.width = 320;
        cv.height = 250;
        cv.dataset.title = panel.title;
        // keep panels in PANELS order
        const after = Array.from(box.children).find((c) => Number(c.id.slice(6)) > i);
        box.insertBefore(cv, after || null);
      }
      drawChart(cv, panel, keys, viewer.metrics, viewer.seriesColors);
    });
    viewer.chartsDrawn += 1;
  }

  // ---- wiring ------------------------------------------------------------------
  function showError(e) {
    setStatus(String(e.message || e), true);
  }

  async function pollEpisodes() {
    try {
      await refreshEpisodes();
    } catch (e) {
      showError(e);
    }
    setTimeout(pollEpisodes, EPISODES_POLL_MS);
  }

  async function start() {
    $("env-select").addEventListener("change", (ev) => {
      loadEpisode(Number(ev.target.value), viewer.source, "latest").catch(showError);
    });
    $("source-select").addEventListener("change", (ev) => {
      const envs = envsOf(ev.target.value);
      const env = envs.includes(viewer.envIndex) ? viewer.envIndex : envs[0];
      loadEpisode(env, ev.target.value, "latest").catch(showError);
    });
    $("btn-play").addEventListener("click", () => setPlaying(!viewer.playing));
    $("btn-step").addEventListener("click", () => stepBy(1));
    $("btn-back").addEventListener("click", () => stepBy(-1));
    $("frame-slider").addEventListener("input", (ev) => {
      setPlaying(false);
      viewer.frame = Number(ev.target.value);
      drawEpisode();
    });
    $("fps-select").addEventListener("change", (ev) => (viewer.fps = Number(ev.target.value)));
    document.addEventListener("keydown", (ev) => {
      if (ev.target.tagName === "SELECT") return;
      if (ev.key === " ") setPlaying(!viewer.playing);
      else if (ev.key === "ArrowRight") stepBy(1);
      else if (ev.key === "ArrowLeft") stepBy(-1);
      else return;
      ev.preventDefault();
    });
    try {
      const info = await api("/api/info");
      viewer.run = info.run;
      viewer.panels = info.panels;
      viewer.seriesColors = info.series_colors;
      $("run-name").textContent = "· " + info.run;
      document.title = `predprey · ${info.run}`;
    } catch (e) {
      showError(e);
    }
    await pollEpisodes();
    await pollMetrics();
    viewer.ready = true;
    tick();
  }

  start();
})();
