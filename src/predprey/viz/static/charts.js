"use strict";
// Line charts and canvas helpers for the predprey viewer (plain canvas, no libraries).
// Canvases are drawn in CSS pixels on a backing store of devicePixelRatio x that size,
// so lines and text stay sharp on high-density screens. Everything is on
// window.PredpreyCharts; loaded before viewer.js.
window.PredpreyCharts = (function () {
  const MARGIN = { left: 56, right: 14, bottom: 34 };
  const EVENT_COLOR = "#777";

  // Size a canvas to cssW x cssH CSS pixels with a DPR-scaled backing store; returns its
  // context, already scaled so that drawing code uses CSS pixels.
  function fitCanvas(cv, cssW, cssH) {
    const dpr = window.devicePixelRatio || 1;
    const w = Math.round(cssW * dpr), h = Math.round(cssH * dpr);
    if (cv.width !== w) cv.width = w;
    if (cv.height !== h) cv.height = h;
    cv.style.width = cssW + "px";
    cv.style.height = cssH + "px";
    const ctx = cv.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    return ctx;
  }

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

  function polyline(ctx, pts) {
    ctx.beginPath();
    pts.forEach(([x, y], j) => (j ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
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

  // Trailing mean over w points (fewer at the start), as `predprey plot` draws it.
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

  function smoothingWindow(n) {
    return Math.min(50, Math.max(1, Math.floor(n / 20)));
  }

  function layoutLegend(ctx, labels, left, right) {
    const items = [];
    let x = left, row = 0;
    for (const label of labels) {
      const w = 22 + ctx.measureText(label).width + 12;
      if (x + w > right && x > left) {
        x = left;
        row += 1;
      }
      items.push({ label, x, row });
      x += w;
    }
    return { items, rows: row + 1 };
  }

  // Draw one chart into `cv` (W x H CSS px). metrics: key -> [[step, value], ...] sorted by
  // step; events: [{step, text}] marked as dotted lines; hover: {step} or null; xRange:
  // [first, last] step shared by all charts (compared by eye, as `predprey plot` does).
  // Returns the geometry the hover read-out needs and the smoothing window used.
  function drawChart(cv, W, H, chart, metrics, events, hover, xRange) {
    const ctx = fitCanvas(cv, W, H);
    const { left: L, right: R, bottom: B } = MARGIN;
    ctx.font = "11px sans-serif";
    const legend = layoutLegend(ctx, chart.series.map((s) => s.label), L, W - R);
    const T = 8 + 14 * legend.rows + 6;
    const log = chart.log && chart.series.some((s) => (metrics[s.key] || []).some((p) => p[1] > 0));
    const series = chart.series.map((s) => (metrics[s.key] || []).filter((p) => !log || p[1] > 0));
    const all = series.flat();
    if (!all.length) return null;
    const fy = log ? Math.log10 : (y) => y;
    let [xa, xb] = xRange || [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
    let ya = Math.min(...all.map((p) => fy(p[1]))), yb = Math.max(...all.map((p) => fy(p[1])));
    if (xb === xa) [xa, xb] = [xa - 1, xb + 1];
    const padX = (xb - xa) * 0.02;
    [xa, xb] = [xa - padX, xb + padX];
    if (yb === ya) [ya, yb] = [ya - 1, yb + 1];
    const padY = (yb - ya) * 0.05;
    [ya, yb] = [ya - padY, yb + padY];
    const px = (x) => L + ((x - xa) / (xb - xa)) * (W - L - R);
    const py = (y) => H - B - ((fy(y) - ya) / (yb - ya)) * (H - T - B);

    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, W, H);
    ctx.strokeStyle = "#eee";
    ctx.fillStyle = "#444";
    ctx.lineWidth = 1;
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (const v of niceTicks(xa, xb, Math.max(2, Math.floor((W - L - R) / 70)))) {
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
    ctx.fillStyle = "#333";
    ctx.fillText("environment steps", (L + W - R) / 2, H - 9);
    ctx.save();
    ctx.translate(12, (T + H - B) / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.fillText(chart.ylabel, 0, 0);
    ctx.restore();

    ctx.save();
    ctx.beginPath();
    ctx.rect(L, T, W - L - R, H - T - B);
    ctx.clip();
    ctx.strokeStyle = EVENT_COLOR;
    ctx.setLineDash([2, 3]);
    for (const e of events) line(ctx, px(e.step), T, px(e.step), H - B);
    let smoothing = 1;
    series.forEach((pts, i) => {
      const s = chart.series[i];
      const w = smoothingWindow(pts.length);
      smoothing = Math.max(smoothing, w);
      const smooth = movingAverage(pts.map((p) => p[1]), w);
      ctx.strokeStyle = ctx.fillStyle = s.color;
      ctx.setLineDash(s.dashed ? [6, 4] : []);
      if (w > 1) { // raw values, faint, under their moving average
        ctx.globalAlpha = 0.25;
        ctx.lineWidth = 1;
        polyline(ctx, pts.map((p) => [px(p[0]), py(p[1])]));
      }
      ctx.globalAlpha = 1;
      ctx.lineWidth = 2;
      polyline(ctx, pts.map((p, j) => [px(p[0]), py(smooth[j])]));
      if (pts.length < 4) pts.forEach((p) => circle(ctx, px(p[0]), py(p[1]), 2.5, true)); // a lone point draws no line
    });
    ctx.setLineDash([]);
    const geom = { L, R, T, B, W, H, xa, xb, series, step: null, at: [] };
    if (hover) markHover(ctx, geom, hover.step, px, py);
    ctx.restore();

    ctx.textAlign = "left";
    ctx.textBaseline = "middle";
    legend.items.forEach(({ label, x, row }, i) => {
      const y = 9 + 14 * row, s = chart.series[i];
      ctx.strokeStyle = s.color;
      ctx.lineWidth = 2.5;
      ctx.setLineDash(s.dashed ? [5, 3] : []);
      line(ctx, x, y, x + 18, y);
      ctx.setLineDash([]);
      ctx.fillStyle = "#222";
      ctx.fillText(label, x + 22, y);
    });
    geom.smoothing = smoothing;
    return geom;
  }

  // Guide line at `step` and a dot on each series' point nearest to it.
  function markHover(ctx, geom, step, px, py) {
    geom.step = step;
    geom.at = geom.series.map((pts) => nearest(pts, step));
    ctx.strokeStyle = "#333";
    ctx.lineWidth = 1;
    line(ctx, px(step), geom.T, px(step), geom.H - geom.B);
    geom.at.forEach((p) => {
      if (!p) return;
      ctx.fillStyle = "#fff";
      circle(ctx, px(p[0]), py(p[1]), 3.5, true);
      ctx.strokeStyle = "#333";
      circle(ctx, px(p[0]), py(p[1]), 3.5, false);
    });
  }

  // The point of `pts` (sorted by step) whose step is nearest to `step`.
  function nearest(pts, step) {
    if (!pts.length) return null;
    let lo = 0, hi = pts.length - 1;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (pts[mid][0] <= step) lo = mid;
      else hi = mid;
    }
    return Math.abs(pts[lo][0] - step) <= Math.abs(pts[hi][0] - step) ? pts[lo] : pts[hi];
  }

  // The logged step nearest to canvas x (CSS px) among all series, or null off the plot.
  function stepAt(geom, x) {
    if (!geom || x < geom.L || x > geom.W - geom.R) return null;
    const want = geom.xa + ((x - geom.L) / (geom.W - geom.L - geom.R)) * (geom.xb - geom.xa);
    let best = null;
    for (const pts of geom.series) {
      const p = nearest(pts, want);
      if (p && (best === null || Math.abs(p[0] - want) < Math.abs(best - want))) best = p[0];
    }
    return best;
  }

  return { fitCanvas, circle, line, niceTicks, fmt, drawChart, stepAt, nearest };
})();
