"use strict";
// Line charts and small canvas helpers for the predprey viewer (plain canvas, no libraries).
// Loaded before viewer.js; everything is on window.PredpreyCharts.
window.PredpreyCharts = (function () {
  function circle(ctx, x, y, r, fill) {
    ctx.beginPath();
    ctx.arc(x, y, r, 0, 2 * Math.PI);
    if (fill) ctx.fill();
    else ctx.stroke();
  }

  function line(ctx, xa, ya, xb, yb) {
    ctx.beginPath();
    ctx.moveTo(xa, ya);
    ctx.lineTo(xb, yb);
    ctx.stroke();
  }

  function niceTicks(lo, hi, n) {
    if (!(hi > lo)) return [lo];
    const raw = (hi - lo) / n, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw);
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    return out;
  }

  function fmt(v) {
    const a = Math.abs(v);
    if (a >= 1e6) return +(v / 1e6).toPrecision(3) + "M";
    if (a >= 1e4) return +(v / 1e3).toPrecision(3) + "k";
    return String(+v.toPrecision(3));
  }

  function seriesLabel(key) {
    if (key === "touches_per_episode" || key === "train/touches_per_episode") return "training episodes";
    const [head, ...rest] = key.split("/");
    let tail = rest.join("/");
    if ((head === "loss" || key.startsWith("eval/return/")) && rest.length > 1) tail = rest.slice(1).join("/");
    const label = tail.replace("_per_s", "/s").replace(/_/g, " ");
    return head === "eval" ? "eval: " + label : label;
  }

  function movingAverage(ys, w) {
    const out = [];
    let sum = 0;
    for (let i = 0; i < ys.length; i++) {
      sum += ys[i];
      if (i >= w) sum -= ys[i - w];
      out.push(sum / Math.min(i + 1, w));
    }
    return out;
  }

  // One panel: raw series faint, moving average bold; log panels drop values <= 0.
  function drawChart(cv, panel, keys, metrics, colors) {
    const ctx = cv.getContext("2d");
    const W = cv.width, H = cv.height, L = 58, R = 18, B = 36;
    ctx.font = "11px sans-serif";
    const legend = layoutLegend(ctx, keys.map(seriesLabel), L, W - R);
    const T = 22 + 14 * legend.rows + 4;
    // log panels leave out values <= 0 (e.g. 0 updates/s during warmup)
    const log = panel.log && keys.some((k) => metrics[k].some((p) => p[1] > 0));
    const series = keys.map((k) => metrics[k].filter((p) => !log || p[1] > 0));
    const xs = series.flat().map((p) => p[0]), ys = series.flat().map((p) => p[1]);
    const fy = log ? Math.log10 : (y) => y;
    let [xa, xb] = [Math.min(...xs), Math.max(...xs)];
    let [ya, yb] = [Math.min(...ys.map(fy)), Math.max(...ys.map(fy))];
    if (xb === xa) xb = xa + 1;
    const padX = (xb - xa) * 0.02;
    xa -= padX;
    xb += padX;
    if (yb === ya) [ya, yb] = [ya - 1, yb + 1];
    const padY = (yb - ya) * 0.05;
    ya -= padY;
    yb += padY;
    const px = (x) => L + ((x - xa) / (xb - xa)) * (W - L - R);
    const py = (y) => H - B - ((fy(y) - ya) / (yb - ya)) * (H - T - B);
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, W, H);
    ctx.font = "11px sans-serif";
    ctx.strokeStyle = "#eee";
    ctx.fillStyle = "#444";
    ctx.lineWidth = 1;
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (const v of niceTicks(xa, xb, 5)) {
      line(ctx, px(v), T, px(v), H - B);
      ctx.fillText(fmt(v), px(v), H - B + 3);
    }
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    const yticks = log ? niceTicks(Math.ceil(ya), Math.floor(yb), 4).filter(Number.isInteger).map((e) => 10 ** e) : niceTicks(ya, yb, 5);
    for (const v of yticks) {
      line(ctx, L, py(v), W - R, py(v));
      ctx.fillText(fmt(v), L - 4, py(v));
    }
    ctx.strokeStyle = "#888";
    ctx.strokeRect(L, T, W - L - R, H - T - B);
    ctx.textAlign = "center";
    ctx.fillStyle = "#222";
    ctx.font = "bold 13px sans-serif";
    ctx.fillText(panel.title, W / 2, 12);
    ctx.font = "11px sans-serif";
    ctx.fillText("environment steps", (L + W - R) / 2, H - 8);
    ctx.save();
    ctx.translate(12, (T + H - B) / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.fillText(panel.ylabel, 0, 0);
    ctx.restore();
    ctx.save();
    ctx.beginPath();
    ctx.rect(L, T, W - L - R, H - T - B);
    ctx.clip();
    series.forEach((pts, i) => {
      const color = colors[i % colors.length];
      const w = Math.min(50, Math.max(1, Math.floor(pts.length / 20)));
      const smooth = movingAverage(pts.map((p) => p[1]), w);
      ctx.strokeStyle = color;
      if (w > 1) {
        ctx.globalAlpha = 0.25;
        ctx.lineWidth = 1;
        polyline(ctx, pts.map((p) => [px(p[0]), py(p[1])]));
      }
      ctx.globalAlpha = 1;
      ctx.lineWidth = 2;
      polyline(ctx, pts.map((p, j) => [px(p[0]), py(smooth[j])]));
      if (pts.length === 1) circle(ctx, px(pts[0][0]), py(pts[0][1]), 2.5, false);
    });
    ctx.restore();
    ctx.textAlign = "left";
    ctx.textBaseline = "middle";
    legend.items.forEach(({ label, x, row }, i) => { // legend rows under the title
      const y = 26 + 14 * row;
      ctx.fillStyle = colors[i % colors.length];
      ctx.fillRect(x, y - 1, 14, 3);
      ctx.fillStyle = "#222";
      ctx.fillText(label, x + 18, y);
    });
  }

  function layoutLegend(ctx, labels, left, right) {
    const items = [];
    let x = left, row = 0;
    for (const label of labels) {
      const w = 18 + ctx.measureText(label).width + 12;
      if (x + w > right && x > left) {
        x = left;
        row += 1;
      }
      items.push({ label, x, row });
      x += w;
    }
    return { items, rows: row + 1 };
  }

  function polyline(ctx, pts) {
    ctx.beginPath();
    pts.forEach(([x, y], j) => (j ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
    ctx.stroke();
  }

  return { circle, line, niceTicks, fmt, seriesLabel, drawChart };
})();
