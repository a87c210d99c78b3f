"use strict";
// The chart grid: one <figure> per chart that PredpreyPanels makes of the metric keys,
// kept in order as keys appear, each with a caption (formula in its tooltip), a canvas
// as wide as its grid column and a hover read-out. Loaded before viewer.js.
window.PredpreyChartGrid = (function () {
  const { drawChart, stepAt } = window.PredpreyCharts;
  const CHART_HEIGHT = 230; // CSS px; the width follows the grid column

  // state: {info, metrics, events, xRange} (window.viewer). Returns the charts drawn.
  function update(box, state) {
    const charts = window.PredpreyPanels.buildCharts(Object.keys(state.metrics), state.info);
    const keep = new Set(charts.map((c) => c.id));
    for (const fig of Array.from(box.children)) if (!keep.has(fig.dataset.chartId)) fig.remove();
    const anyMembers = charts.some((c) => c.members);
    charts.forEach((chart, i) => {
      let fig = Array.from(box.children).find((f) => f.dataset.chartId === chart.id);
      if (!fig) fig = makeFigure(chart, state);
      if (box.children[i] !== fig) box.insertBefore(fig, box.children[i] || null);
      fig.chart = chart;
      fig.events = chart.members || !anyMembers ? state.events : []; // population events
      drawFigure(fig, state);
    });
    return charts;
  }

  function redraw(box, state) {
    for (const fig of box.children) if (fig.chart) drawFigure(fig, state);
  }

  function makeFigure(chart, state) {
    const fig = document.createElement("figure");
    fig.className = "chart";
    fig.dataset.chartId = chart.id;
    fig.dataset.title = chart.title;
    fig.innerHTML = '<figcaption></figcaption><canvas></canvas><div class="readout" hidden></div>';
    const cap = fig.querySelector("figcaption");
    cap.textContent = chart.title;
    const f = document.createElement("span");
    f.className = "formula";
    f.textContent = "i";
    f.title = chart.formula;
    cap.append(f);
    const cv = fig.querySelector("canvas");
    cv.dataset.title = chart.title;
    cv.addEventListener("mousemove", (ev) => hover(fig, ev.offsetX, state));
    cv.addEventListener("mouseleave", () => hover(fig, null, state));
    return fig;
  }

  function drawFigure(fig, state) {
    const cv = fig.querySelector("canvas");
    const hovered = fig.hoverStep === null || fig.hoverStep === undefined ? null : { step: fig.hoverStep };
    fig.geom = drawChart(cv, fig.clientWidth, CHART_HEIGHT, fig.chart, state.metrics, fig.events, hovered, state.xRange);
  }

  // Hover read-out: the logged step nearest the pointer and each series' value there.
  function hover(fig, x, state) {
    const step = x === null ? null : stepAt(fig.geom, x);
    fig.hoverStep = step;
    drawFigure(fig, state);
    const box = fig.querySelector(".readout");
    if (step === null || !fig.geom) {
      box.hidden = true;
      return;
    }
    const lines = [`<b>step ${step.toLocaleString()}</b>`];
    fig.chart.series.forEach((s, i) => {
      const p = fig.geom.at[i];
      if (!p) return;
      const where = p[0] !== step ? ` (step ${p[0].toLocaleString()})` : "";
      lines.push(`<i style="background:${s.color}"></i>${escapeHtml(s.label)}: ${+p[1].toPrecision(4)}${where}`);
    });
    const near = (fig.geom.xb - fig.geom.xa) * 0.01;
    for (const e of fig.events) if (Math.abs(e.step - step) <= near) lines.push(`event: ${escapeHtml(e.text)}`);
    box.innerHTML = lines.join("<br>");
    box.hidden = false;
    const right = x > fig.clientWidth / 2;
    box.style.left = right ? "" : `${x + 14}px`;
    box.style.right = right ? `${fig.clientWidth - x + 14}px` : "";
    box.style.top = `${fig.querySelector("canvas").offsetTop + fig.geom.T + 4}px`;
  }

  function escapeHtml(s) {
    return s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
  }

  // The note above the charts says what is drawn (smoothing only where it was applied).
  function hint(box, state) {
    const smoothing = Math.max(1, ...Array.from(box.children, (f) => (f.geom ? f.geom.smoothing : 1)));
    const lines = smoothing > 1
      ? `Bold: moving average over up to ${smoothing} logged points; faint: the raw values.`
      : "Each logged value is drawn as it is (series get a moving average from 40 points on).";
    const events = state.events.length ? " Dotted lines: population events." : "";
    return `Live from metrics.jsonl. ${lines} Dashed: evaluation.${events} Hover a chart for its values, (i) for the formula.`;
  }

  return { update, redraw, hint };
})();
