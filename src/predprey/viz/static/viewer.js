"use strict";
// predprey live viewer: plays recorded episodes and draws the training curves, polling
// the run's JSON endpoints (predprey/viz/view.py). Plain canvas, no libraries.
// The chosen episode lives in the address bar (?env=2&episode=200&source=train; no
// `episode`: follow the newest). Everything shown is mirrored on window.viewer for
// tests: envIndex, source, episode, follow, frame, agentsPx (drawn centres, CSS px),
// metrics, charts, runState, status.
(function () {
  const METRICS_POLL_MS = 1000;
  const EPISODES_POLL_MS = 3000;
  const ARENA_MAX = 560; // CSS px

  const viewer = (window.viewer = {
    ready: false,
    run: null,
    info: null, // /api/info: chart families and colours
    recorded: {}, // source -> {env index: [episode numbers, ascending]}
    latest: {}, // source -> {env index: newest episode number}
    source: null,
    envIndex: null,
    episode: null,
    follow: true, // true: the newest episode of this env replaces the played one
    data: null, // the episode being played (JSON from /api/episode)
    frame: 0,
    playing: true,
    fps: 10,
    pendingEpisode: null, // newer episode of the current env, started when this one ends
    agentsPx: [], // [{x, y, team, alive}] per agent, CSS pixels of the drawn frame
    transform: null, // {x0, y0, scale, left, bottom}: px = left + (x - x0) * scale
    rows: [], // metrics rows, superseded ones (after a resume) dropped
    metrics: {}, // key -> [[env_steps, value], ...] as charted
    events: [], // [{step, text}] from rows with a string `event`
    xRange: null, // [first, last] env_steps logged: one x range for every chart
    charts: [], // what PredpreyPanels.buildCharts made of the keys
    metricsOffset: 0,
    metricsPolls: 0,
    chartsDrawn: 0,
    runState: null, // {finished, finished_at, last_row_at} from /api/metrics
    status: "",
  });
  const $ = (id) => document.getElementById(id);
  let loadToken = 0;

  async function api(path) {
    const r = await fetch(path, { cache: "no-store" });
    const body = await r.json();
    if (!r.ok) throw new Error(body.error || r.statusText);
    return body;
  }

  function setStatus(text, kind) {
    viewer.status = text;
    $("status").textContent = text;
    $("status").className = "status " + kind;
  }

  function showError(e) {
    setStatus(String(e.message || e), "error");
  }

  function fillSelect(sel, options, current) {
    const have = Array.from(sel.options, (o) => o.value + "=" + o.text).join(",");
    if (options.map(([v, t]) => v + "=" + t).join(",") !== have) {
      sel.innerHTML = "";
      for (const [v, t] of options) sel.add(new Option(t, v));
    }
    sel.value = String(current);
  }

  // ---- the chosen episode and the address bar --------------------------------------
  function readUrl() {
    const q = new URLSearchParams(location.search);
    const get = (k) => (q.has(k) ? q.get(k) : null);
    return { env: get("env"), episode: get("episode"), source: get("source") };
  }

  function writeUrl() {
    const q = new URLSearchParams({ env: viewer.envIndex });
    if (!viewer.follow) q.set("episode", viewer.episode);
    q.set("source", viewer.source);
    const url = "?" + q.toString();
    if (url !== location.search) history.replaceState(null, "", url);
  }

  function envsOf(source) {
    return Object.keys(viewer.recorded[source] || {}).map(Number).sort((a, b) => a - b);
  }

  function fillChoosers() {
    const sources = Object.keys(viewer.recorded).sort();
    fillSelect($("source-select"), sources.map((s) => [s, s]), viewer.source);
    fillSelect($("env-select"), envsOf(viewer.source).map((e) => [e, e]), viewer.envIndex);
    const eps = ((viewer.recorded[viewer.source] || {})[viewer.envIndex] || []).slice().reverse();
    const options = [["latest", "newest (follow)"], ...eps.map((e) => [e, `episode ${e}`])];
    fillSelect($("episode-select"), options, viewer.follow ? "latest" : viewer.episode);
  }

  async function refreshEpisodes() {
    const list = await api("/api/episodes");
    viewer.recorded = list.recorded;
    viewer.latest = list.latest;
    const sources = Object.keys(list.latest).sort();
    if (!sources.length) {
      $("episode-label").textContent = "no episodes recorded yet";
      return;
    }
    if (viewer.data === null) {
      await loadFirstEpisode(sources);
      return;
    }
    const newest = (list.latest[viewer.source] || {})[viewer.envIndex];
    if (viewer.follow && newest !== undefined && newest !== viewer.episode) viewer.pendingEpisode = newest;
    fillChoosers();
  }

  // The episode the address bar asks for; if it was not recorded, say so and show the newest.
  async function loadFirstEpisode(sources) {
    const want = readUrl();
    const source = want.source ?? (sources.includes("train") ? "train" : sources[0]);
    const env = want.env ?? envsOf(source)[0] ?? 0;
    try {
      await loadEpisode(env, source, want.episode ?? "latest");
    } catch (e) {
      $("episode-error").textContent = `${e.message}. Showing the newest episode instead.`;
      $("episode-error").hidden = false;
      const fallback = sources.includes("train") ? "train" : sources[0];
      await loadEpisode(envsOf(fallback)[0], fallback, "latest");
    }
  }

  async function loadEpisode(env, source, episode) {
    const token = ++loadToken;
    const q = new URLSearchParams({ env, source, episode });
    const d = await api(`/api/episode?${q}`);
    if (token !== loadToken) return; // a newer choice was made meanwhile
    viewer.data = d;
    viewer.envIndex = d.env_index;
    viewer.source = d.source;
    viewer.episode = d.episode;
    viewer.follow = String(episode) === "latest";
    viewer.pendingEpisode = null;
    viewer.frame = 0;
    $("frame-slider").max = d.steps;
    $("episode-label").textContent = describeEpisode(d);
    $("legend").innerHTML = window.PredpreyArena.legendHtml(d);
    fillChoosers();
    writeUrl();
    drawEpisode();
  }

  function describeEpisode(d) {
    const parts = [`${d.source} episode ${d.episode}`];
    if (d.meta.env_steps !== undefined && d.meta.env_steps !== null) parts.push(`after ${d.meta.env_steps.toLocaleString()} env steps`);
    const teams = d.teams.map((t, k) => `${d.team_sizes[k]} ${t}`).join(", ");
    let agents = `${d.num_agents} agents (${teams})`;
    if (d.trained_num_agents !== null && d.trained_num_agents !== d.num_agents) {
      agents += `: watched at N = ${d.num_agents}, trained with N = ${d.trained_num_agents}`;
    }
    parts.push(agents);
    if (viewer.follow) parts.push("following the newest");
    return parts.join(" · ");
  }

  function arenaSize() {
    const panel = $("episode-panel");
    const inner = panel.clientWidth - 2 * parseFloat(getComputedStyle(panel).paddingLeft) - 2;
    return Math.max(200, Math.min(ARENA_MAX, Math.floor(inner)));
  }

  function drawEpisode() {
    const d = viewer.data;
    if (!d) return;
    viewer.frame = Math.max(0, Math.min(viewer.frame, d.steps));
    const out = window.PredpreyArena.draw($("episode-canvas"), arenaSize(), d, viewer.frame);
    viewer.agentsPx = out.agentsPx;
    viewer.transform = out.transform;
    $("frame-slider").value = viewer.frame;
  }

  function chooseEpisode(env, source, episode) {
    $("episode-error").hidden = true;
    loadEpisode(env, source, episode).catch(showError);
  }

  // ---- playback ----------------------------------------------------------------------
  let drawnAtRatio = window.devicePixelRatio;
  function tick() {
    if (window.devicePixelRatio !== drawnAtRatio) { // the window moved to a screen of other density
      drawnAtRatio = window.devicePixelRatio;
      redrawAll();
    }
    if (viewer.playing && viewer.data) {
      if (viewer.frame >= viewer.data.steps) {
        viewer.frame = 0;
        if (viewer.follow && viewer.pendingEpisode !== null) {
          loadEpisode(viewer.envIndex, viewer.source, "latest").catch(showError);
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

  // ---- metrics and run status ----------------------------------------------------------
  function addRows(rows) {
    for (const row of rows) {
      const x = row.env_steps;
      if (typeof x !== "number") continue;
      // a resumed run logs again from its checkpoint: drop the superseded rows
      while (viewer.rows.length && viewer.rows[viewer.rows.length - 1].env_steps > x) viewer.rows.pop();
      viewer.rows.push(row);
    }
    const m = {}, events = [];
    for (const row of viewer.rows) {
      if (typeof row.event === "string") {
        events.push({ step: row.env_steps, text: row.event + (typeof row.detail === "string" ? ": " + row.detail : "") });
      }
      for (const [k, v] of Object.entries(row)) {
        if (typeof v !== "number" || k === "env_steps") continue;
        (m[k] = m[k] || []).push([row.env_steps, v]);
      }
    }
    viewer.metrics = m;
    viewer.events = events;
    const kept = viewer.rows; // ascending env_steps (superseded rows dropped above)
    viewer.xRange = kept.length ? [kept[0].env_steps, kept[kept.length - 1].env_steps] : null;
  }

  function clock(unixSeconds) {
    return new Date(unixSeconds * 1000).toLocaleTimeString();
  }

  function ago(unixSeconds) {
    const s = Math.max(0, Date.now() / 1000 - unixSeconds);
    if (s < 10) return "just now";
    if (s < 120) return `${Math.round(s)} s ago`;
    if (s < 7200) return `${Math.round(s / 60)} min ago`;
    return `${Math.round(s / 3600)} h ago`;
  }

  // "finished" once the trainer has left RUN/finished.json; else live, with the time the
  // newest metrics line arrived (not the time of the poll).
  function showRunState(state) {
    viewer.runState = state;
    const n = viewer.rows.length, rows = `${n} metrics row${n === 1 ? "" : "s"}`;
    if (state.finished) {
      const at = state.finished_at ? ` at ${clock(state.finished_at)}` : "";
      setStatus(`finished${at} · ${rows}`, "finished");
    } else if (state.last_row_at === null) {
      setStatus("live · waiting for the first metrics row", "live");
    } else {
      setStatus(`live · ${rows} · last new row ${clock(state.last_row_at)} (${ago(state.last_row_at)})`, "live");
    }
  }

  async function pollMetrics() {
    try {
      let more = true, changed = false, state = null;
      for (let guard = 0; more && guard < 20; guard++) {
        const r = await api(`/api/metrics?since=${viewer.metricsOffset}`);
        if (r.reset) viewer.rows = [];
        if (r.rows.length || r.reset) {
          addRows(r.rows);
          changed = true;
        }
        viewer.metricsOffset = r.offset;
        more = r.more;
        state = r.run_state;
      }
      viewer.metricsPolls += 1;
      if (changed) drawCharts();
      $("metrics-count").textContent = viewer.rows.length ? `${viewer.rows.length} rows` : "none logged yet";
      showRunState(state);
    } catch (e) {
      showError(e);
    }
    setTimeout(pollMetrics, METRICS_POLL_MS);
  }

  // ---- charts --------------------------------------------------------------------------
  function drawCharts() {
    if (!viewer.info) return;
    viewer.charts = window.PredpreyChartGrid.update($("charts"), viewer);
    $("metrics-hint").textContent = window.PredpreyChartGrid.hint($("charts"), viewer);
    viewer.chartsDrawn += 1;
  }

  function redrawAll() {
    window.PredpreyChartGrid.redraw($("charts"), viewer);
    drawEpisode();
  }

  // ---- wiring --------------------------------------------------------------------------
  async function pollEpisodes() {
    try {
      await refreshEpisodes();
    } catch (e) {
      showError(e);
    }
    setTimeout(pollEpisodes, EPISODES_POLL_MS);
  }

  function wireControls() {
    $("source-select").addEventListener("change", (ev) => {
      const envs = envsOf(ev.target.value);
      chooseEpisode(envs.includes(viewer.envIndex) ? viewer.envIndex : envs[0], ev.target.value, "latest");
    });
    $("env-select").addEventListener("change", (ev) => {
      const env = Number(ev.target.value);
      const has = ((viewer.recorded[viewer.source] || {})[env] || []).includes(viewer.episode);
      chooseEpisode(env, viewer.source, !viewer.follow && has ? viewer.episode : "latest");
    });
    $("episode-select").addEventListener("change", (ev) => chooseEpisode(viewer.envIndex, viewer.source, ev.target.value));
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
    let pending = false; // one redraw per frame however many resize notices arrive
    new ResizeObserver(() => {
      if (pending) return;
      pending = true;
      requestAnimationFrame(() => {
        pending = false;
        redrawAll();
      });
    }).observe(document.querySelector("main"));
  }

  async function start() {
    wireControls();
    try {
      const info = await api("/api/info");
      viewer.run = info.run;
      viewer.info = info;
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
