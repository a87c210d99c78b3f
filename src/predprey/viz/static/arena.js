"use strict";
// One frame of a recorded episode on the arena canvas: obstacles, trails, bodies at their
// true size, touch rings, capture crosses, axes. Drawn in CSS pixels (see fitCanvas).
window.PredpreyArena = (function () {
  const { fitCanvas, circle, line, niceTicks, fmt } = window.PredpreyCharts;
  const TRAIL = 8; // steps of trail behind each agent
  const FLASH = 3; // steps a touch ring stays visible, fading
  const RING = "#f0a500";
  const PAD = { left: 52, right: 12, top: 30, bottom: 34 }; // margins (CSS px)

  function ringStrength(d, t, n) {
    let s = 0;
    for (let k = 0; k < FLASH && t - k >= 0; k++) {
      if (d.touched[t - k][n] || d.captured[t - k][n]) s = Math.max(s, 1 - k / FLASH);
    }
    return s;
  }

  // Legend HTML for episode `d` (team markers and counts, obstacles, rings, walls).
  function legendHtml(d) {
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
    return parts.join("");
  }

  // Draw frame t of episode d on a size x size (CSS px) canvas.
  // Returns {agentsPx: [{x, y, team, alive}], transform: {x0, y0, scale, left, bottom}}.
  function draw(cv, size, d, t) {
    const ctx = fitCanvas(cv, size, size);
    const W = size, H = size;
    const [x0, x1, y0, y1] = d.view;
    const scale = Math.min((W - PAD.left - PAD.right) / (x1 - x0), (H - PAD.top - PAD.bottom) / (y1 - y0));
    const bottom = H - PAD.bottom;
    const px = (x) => PAD.left + (x - x0) * scale;
    const py = (y) => bottom - (y - y0) * scale;

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
    drawAxes(ctx, H, x0, x1, y0, y1, px, py);
    drawCaption(ctx, d, t);
    return { agentsPx: drawn, transform: { x0, y0, scale, left: PAD.left, bottom } };
  }

  function drawCaption(ctx, d, t) {
    const total = d.touches.slice(0, t).reduce((a, b) => a + b, 0);
    const now = t > 0 ? d.touches[t - 1] : 0;
    let text = `env ${d.env_index}   step ${t}/${d.steps}   touches: ${now} now, ${total} so far`;
    const prey = d.team_index.map((k, n) => (k !== 0 ? n : -1)).filter((n) => n >= 0);
    if (d.alive.some((row) => row.some((a) => !a))) {
      text += `   prey left: ${prey.filter((n) => d.alive[t][n]).length}/${prey.length}`;
    }
    ctx.fillStyle = "#222";
    ctx.font = "13px monospace";
    ctx.textAlign = "left";
    ctx.textBaseline = "middle";
    ctx.fillText(text, PAD.left, PAD.top / 2);
  }

  function drawAxes(ctx, H, x0, x1, y0, y1, px, py) {
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

  return { draw, legendHtml };
})();
