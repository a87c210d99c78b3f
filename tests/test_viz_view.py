"""`predprey view`: JSON endpoints (bad requests are 4xx with a message) and the page in
real headless Chromium: agents drawn at the recorded positions, env index switch, live
metrics without reload, newer episodes picked up."""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.request
from urllib.parse import urlencode

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from matplotlib.colors import to_rgb

from predprey.trainlog import TrainLog
from predprey.viz.episode import TEAM_COLORS, read_episode, select_episode
from predprey.viz.view import ViewerApp, start_server
from vizfixture import learner_metrics_row, make_run, metrics_row, record_rollout


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("view") / "live", n_rows=40, num_envs=3)


@pytest.fixture(scope="module")
def server(run):
    srv = start_server(run.path)
    yield srv
    srv.close()


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


# ---- endpoints ----------------------------------------------------------------------


def test_episode_endpoint_matches_file(run, server):
    status, body = get(server.url + "api/episode?env=1")
    assert status == 200
    ep = read_episode(select_episode(run, 1))
    assert body["episode"] == 200 and body["steps"] == ep.steps
    assert np.allclose(body["pos"], ep.pos, atol=1e-5)
    assert body["teams"] == ["predator", "prey"] and body["team_sizes"] == [3, 1]
    assert body["touches"] == ep.touches.tolist()
    status, old = get(server.url + "api/episode?env=1&episode=0&source=train")
    assert status == 200 and old["episode"] == 0


def test_episodes_listing(server):
    status, body = get(server.url + "api/episodes")
    assert status == 200
    assert body["latest"] == {"train": {"0": 200, "1": 200, "2": 200}}
    assert len(body["episodes"]) == 6


@pytest.mark.parametrize(
    "query, status, message",
    [
        ("api/episode", 400, "missing query parameter 'env'"),
        ("api/episode?env=abc", 400, "'env' must be a non-negative integer"),
        ("api/episode?env=-1", 400, "'env' must be a non-negative integer"),
        ("api/episode?env=0&episode=last", 400, "'episode' must be a non-negative"),
        ("api/episode?env=0&source=../x", 400, "'source' must be a lowercase word"),
        ("api/episode?env=9", 404, "recorded env indices: 0, 1, 2"),
        ("api/episode?env=0&episode=7", 404, "recorded episodes: 0, 200"),
        ("api/episode?env=0&source=simulate", 404, "recorded sources: ['train']"),
        ("api/metrics?since=x", 400, "'since' must be a non-negative integer"),
        ("api/metrics?since=3", 400, "not the start of a metrics line"),
        ("api/nope", 404, "no such page"),
        ("static/..%2Fview.py", 404, "no such page"),
    ],
)
def test_bad_requests_are_4xx_with_a_message(server, query, status, message):
    got, body = get(server.url + query)
    assert got == status and message in body["error"]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    route=st.sampled_from(["/api/episode", "/api/metrics", "/api/episodes", "/static/x", "/"]),
    key=st.sampled_from(["env", "episode", "source", "since", "x"]),
    value=st.text(max_size=30),
)
def test_no_query_makes_a_server_error(run, route, key, value):
    r = ViewerApp(run).handle(f"{route}?{urlencode({key: value})}&env=0")
    assert r.status < 500, r.body


def test_post_is_405(server):
    req = urllib.request.Request(server.url + "api/metrics", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 405


def test_metrics_offsets_follow_the_file(tmp_path):
    run = make_run(tmp_path / "m", n_rows=3, num_envs=1, episodes=())
    app = ViewerApp(run)
    first = app.metrics({})
    assert len(first["rows"]) == 3 and first["offset"] == run.metrics_path.stat().st_size
    assert app.metrics({"since": [str(first["offset"])]})["rows"] == []
    with open(run.metrics_path, "a") as f:
        f.write('{"env_steps": 40000, "loss/critic/predator": 0.5')  # torn: not yet
    again = app.metrics({"since": [str(first["offset"])]})
    assert again["rows"] == [] and again["offset"] == first["offset"]
    with open(run.metrics_path, "a") as f:
        f.write(', "x": NaN}\n')
    done = app.metrics({"since": [str(first["offset"])]})
    assert done["rows"] == [{"env_steps": 40000, "loss/critic/predator": 0.5, "x": None}]
    run.metrics_path.write_text("")  # a new run in the same place: offset beyond the end
    assert app.metrics({"since": [str(done["offset"])]})["reset"] is True


def test_page_and_static_files_served(server):
    with urllib.request.urlopen(server.url, timeout=10) as r:
        html = r.read().decode()
    assert '<canvas id="episode-canvas"' in html and "/static/viewer.js" in html
    assert "http" not in html.replace("http-equiv", "")  # no CDN: nothing external
    with urllib.request.urlopen(server.url + "static/viewer.js", timeout=10) as r:
        assert "window.viewer" in r.read().decode()


# ---- real browser -------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver_path):
        pytest.skip("headless browser test needs Debian chromium + chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-quic", "--no-first-run", "--disable-component-update",
                "--disable-sync", "--window-size=1400,1100",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):  # fmt: skip
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_path), options=opts)
    yield driver
    driver.quit()


def wait_for(driver, js: str, timeout: float = 20.0):
    """Poll a JS expression until truthy; return its value."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = driver.execute_script("return " + js)
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for: {js}")


SNAPSHOT = """
const v = window.viewer, cv = document.getElementById('episode-canvas');
const ctx = cv.getContext('2d'), dpr = window.devicePixelRatio;
return {env: v.envIndex, episode: v.episode, frame: v.frame, tr: v.transform,
        size: cv.clientWidth, dpr: dpr,
        agents: v.agentsPx.map(a => Object.assign({rgb: Array.from(ctx.getImageData(
            Math.round(a.x * dpr), Math.round(a.y * dpr), 1, 1).data).slice(0, 3)}, a))};
"""


def show_frame(driver, frame: int) -> dict:
    """Pause and move the frame slider as a user would; return what is drawn."""
    driver.execute_script(
        "const s = document.getElementById('frame-slider'); s.value = arguments[0];"
        "s.dispatchEvent(new Event('input'));",
        frame,
    )
    assert driver.execute_script("return window.viewer.playing") is False
    return driver.execute_script(SNAPSHOT)


def check_drawn_at_recorded(run, snap: dict) -> None:
    """The agents of `snap` (a SNAPSHOT) sit at the recorded positions of its episode, in
    their team colours (read back from the canvas's backing store)."""
    ep = read_episode(select_episode(run, snap["env"], snap["episode"]))
    pos, tr = ep.pos[snap["frame"]], snap["tr"]  # [N, 2]
    want = np.c_[tr["left"] + (pos[:, 0] - tr["x0"]) * tr["scale"],
                 tr["bottom"] - (pos[:, 1] - tr["y0"]) * tr["scale"]]  # fmt: skip
    got = np.array([[a["x"], a["y"]] for a in snap["agents"]])
    assert np.allclose(got, want, atol=0.01)
    assert (got > 0).all() and (got < snap["size"]).all()  # inside the canvas
    x0, x1, y0, y1 = ep.view_limits()
    assert tr["x0"] == pytest.approx(x0) and tr["y0"] == pytest.approx(y0)
    teams_seen = set()
    for n, a in enumerate(snap["agents"]):
        if np.linalg.norm(got - got[n], axis=1)[np.arange(len(got)) != n].min() < 25:
            continue  # a neighbour's marker may cover this centre
        team = ep.teams[a["team"]]
        colour = np.array(to_rgb(TEAM_COLORS[team])) * 255
        assert np.abs(np.array(a["rgb"]) - colour).max() < 12, (team, a)
        teams_seen.add(team)
    assert teams_seen == {"predator", "prey"}


def open_page(driver, url: str, width: int = 1400, height: int = 1000, dpr: float = 1) -> None:
    """Load the page as a screen of width x height CSS px at device pixel ratio `dpr`."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": dpr, "mobile": False},
    )
    driver.get(url)
    wait_for(driver, "window.viewer && window.viewer.ready && window.viewer.data !== null")


@pytest.mark.browser
def test_page_draws_recorded_positions_and_switches_env(run, server, browser):
    open_page(browser, server.url)
    assert browser.title == "predprey · live"
    first = show_frame(browser, 0)
    assert first["env"] == 0 and first["frame"] == 0 and first["episode"] == 200
    check_drawn_at_recorded(run, first)

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element(By.ID, "env-select")).select_by_value("2")
    wait_for(browser, "window.viewer.data.env_index === 2")
    second = show_frame(browser, 0)
    assert second["env"] == 2
    check_drawn_at_recorded(run, second)
    assert [a["x"] for a in second["agents"]] != [a["x"] for a in first["agents"]]

    browser.find_element(By.ID, "btn-step").click()
    assert browser.execute_script("return window.viewer.frame") == 1
    check_drawn_at_recorded(run, browser.execute_script(SNAPSHOT))


@pytest.mark.browser
def test_episode_chosen_in_the_url_is_drawn_and_kept_on_reload(run, server, browser):
    open_page(browser, server.url + "?env=2&episode=0&source=train")
    snap = show_frame(browser, 3)
    assert (snap["env"], snap["episode"]) == (2, 0)  # not the newest (200) of env 0
    check_drawn_at_recorded(run, snap)
    assert "train episode 0" in browser.find_element("id", "episode-label").text

    from selenium.webdriver.support.ui import Select

    Select(browser.find_element("id", "episode-select")).select_by_value("200")
    wait_for(browser, "window.viewer.episode === 200")
    assert browser.execute_script("return location.search") == "?env=2&episode=200&source=train"
    browser.refresh()  # reload (or share the address): the same view
    wait_for(browser, "window.viewer && window.viewer.ready && window.viewer.data !== null")
    snap = show_frame(browser, 5)
    assert (snap["env"], snap["episode"]) == (2, 200)
    check_drawn_at_recorded(run, snap)
    assert browser.execute_script("return window.viewer.follow") is False

    open_page(browser, server.url + "?env=9&source=train")  # not recorded: say so, show one
    error = browser.find_element("id", "episode-error")
    assert error.is_displayed() and "recorded env indices: 0, 1, 2" in error.text
    assert browser.execute_script("return [viewer.envIndex, viewer.episode]") == [0, 200]


@pytest.mark.browser
def test_canvases_are_sharp_at_device_pixel_ratio_2(run, server, browser):
    sizes = (
        "return Array.from(document.querySelectorAll('canvas'),"
        " c => [c.width, c.height, c.clientWidth, c.clientHeight])"
    )
    open_page(browser, server.url, dpr=1)
    wait_for(browser, "window.viewer.chartsDrawn > 0")
    assert all(w == css_w for w, _, css_w, _ in browser.execute_script(sizes))
    browser.execute_cdp_cmd(  # the window moves to a 2x screen: every canvas follows
        "Emulation.setDeviceMetricsOverride",
        {"width": 1400, "height": 1000, "deviceScaleFactor": 2, "mobile": False},
    )
    wait_for(browser, sizes.replace("return ", "") + ".every(s => s[0] === 2 * s[2])")
    open_page(browser, server.url, dpr=2)
    wait_for(browser, "window.viewer.chartsDrawn > 0")
    got = browser.execute_script(sizes)
    assert len(got) == 7  # the arena and six charts
    for w, h, css_w, css_h in got:
        assert (w, h) == (round(2 * css_w), round(2 * css_h)) and css_w > 250
    snap = show_frame(browser, 4)  # drawn where the backing store says, colours included
    assert snap["dpr"] == 2
    check_drawn_at_recorded(run, snap)


@pytest.mark.browser
def test_charts_fill_the_width_in_columns(run, server, browser):
    for width, columns in ((1400, 2), (820, 2), (1900, 3)):
        open_page(browser, server.url, width=width)
        wait_for(browser, "window.viewer.chartsDrawn > 0")
        boxes = browser.execute_script(
            "const r = document.getElementById('charts').getBoundingClientRect();"
            "return {grid: [r.left, r.right], charts: Array.from("
            " document.getElementById('charts').children, f => {"
            " const b = f.getBoundingClientRect(); return [b.left, b.right]; })}"
        )
        lefts = {round(left) for left, _ in boxes["charts"]}
        assert len(lefts) == columns, (width, boxes)
        right = max(r for _, r in boxes["charts"])
        assert boxes["grid"][1] - right < 2, (width, boxes)  # no empty strip on the right
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 1900


@pytest.mark.browser
def test_new_metrics_line_appears_without_reload(run, server, browser):
    browser.get(server.url)
    wait_for(browser, "window.viewer && window.viewer.ready")
    browser.execute_script("window.notReloaded = true")
    n0 = browser.execute_script("return window.viewer.rows.length")
    drawn0 = browser.execute_script("return window.viewer.chartsDrawn")
    assert n0 == len(run.read_metrics())
    row = metrics_row(500, np.random.default_rng(0))
    row["loss/critic/predator"] = 0.123456
    run.append_metrics(row)
    wait_for(browser, f"window.viewer.rows.length === {n0 + 1}")
    last = browser.execute_script("const s = viewer.metrics['loss/critic/predator'];"
                                  "return s[s.length - 1]")  # fmt: skip
    assert last == [row["env_steps"], 0.123456]
    assert browser.execute_script("return window.viewer.chartsDrawn") > drawn0
    assert browser.execute_script("return window.notReloaded") is True
    titles = browser.execute_script(
        "return Array.from(document.querySelectorAll('#charts canvas'), c => c.dataset.title)"
    )
    assert titles == ["Critic loss", "Actor loss", "Episode return", "Q value",
                      "Touches per episode", "Throughput"]  # fmt: skip


@pytest.mark.browser
def test_newer_episode_is_picked_up(run, server, browser):
    browser.get(server.url)
    wait_for(browser, "window.viewer && window.viewer.ready && window.viewer.data !== null")
    assert browser.execute_script("return window.viewer.episode") == 200
    record_rollout(run, 400, num_envs=1, seed=99)  # env 0 only
    wait_for(browser, "window.viewer.episode === 400", timeout=30)  # after the current loop
    snap = browser.execute_script(SNAPSHOT)
    assert snap["env"] == 0 and snap["episode"] == 400

    open_page(browser, server.url + "?env=0&episode=400&source=train")  # a chosen episode
    record_rollout(run, 600, num_envs=1, seed=98)
    wait_for(browser, "Array.from(document.getElementById('episode-select').options,"
                      " o => o.value).includes('600')", timeout=30)  # fmt: skip
    wait_for(browser, "window.viewer.frame >= window.viewer.data.steps")
    wait_for(browser, "window.viewer.frame < 5")  # played to the end and started again
    assert browser.execute_script("return [viewer.episode, location.search]") == [
        400,
        "?env=0&episode=400&source=train",
    ]


@pytest.fixture
def own_server(tmp_path):
    """A server over a fresh run that the test may change (finish, new metrics keys)."""
    servers = []

    def start(run):
        servers.append(start_server(run.path))
        return servers[-1]

    yield start
    for srv in servers:
        srv.close()


@pytest.mark.browser
def test_status_tells_live_from_finished(tmp_path, own_server, browser):
    run = make_run(tmp_path / "status", n_rows=5, num_envs=1, episodes=(0,))
    srv = own_server(run)
    open_page(browser, srv.url)
    wait_for(browser, "window.viewer.metricsPolls > 0")
    first = status_text(browser)
    hint = browser.find_element("id", "metrics-hint").text  # 5 rows: nothing smoothed
    assert "Each logged value is drawn as it is" in hint and "faint" not in hint
    assert first.startswith("live · 5 metrics rows · last new row ")
    polls = browser.execute_script("return window.viewer.metricsPolls")
    wait_for(browser, f"window.viewer.metricsPolls > {polls + 1}")
    again = status_text(browser)
    assert again.split(" (")[0] == first.split(" (")[0]  # the row's time, not the poll's

    log = TrainLog(run)
    log.finish()  # what every trainer calls when training ends normally
    wait_for(browser, f"{STATUS}.startsWith('finished at ')")
    assert "5 metrics rows" in status_text(browser)
    log.start(0, 0)  # resumed: live again
    wait_for(browser, f"{STATUS}.startsWith('live')")


STATUS = "document.getElementById('status').textContent"


def status_text(driver) -> str:
    return driver.execute_script("return " + STATUS)


CHART_INFO = """return Array.from(document.getElementById('charts').children, f => ({
    title: f.dataset.title, formula: (f.querySelector('.formula') || {}).title,
    series: f.chart ? f.chart.series.map(s => [s.label, s.color, s.dashed]) : []}))"""


@pytest.mark.browser
def test_charts_come_from_the_metric_keys(tmp_path, own_server, browser):
    run = make_run(tmp_path / "learners", n_rows=0, num_envs=1, episodes=(0,))
    run.config_path.write_text("env:\n  scenario: tag\n  num_predators: 6\n  num_prey: 2\n")
    for i in range(30):
        for row in learner_metrics_row(i):
            run.append_metrics(row)
    srv = own_server(run)
    open_page(browser, srv.url)
    wait_for(browser, "window.viewer.chartsDrawn > 0")
    label = browser.find_element("id", "episode-label").text
    assert "4 agents (3 predator, 1 prey): watched at N = 4, trained with N = 8" in label
    charts = {c["title"]: c for c in browser.execute_script(CHART_INFO)}
    assert list(charts) == [
        "Policy loss", "Value loss", "Episode return", "Episode return · predator (members)",
        "Entropy", "KL divergence", "Clip fraction", "Landmarks covered", "Collisions",
        "Made up",
    ]  # fmt: skip
    red, blue = TEAM_COLORS["predator"], TEAM_COLORS["prey"]
    assert charts["Policy loss"]["series"] == [["predator", red, False], ["prey", blue, False]]
    members = charts["Episode return · predator (members)"]["series"]
    assert [m[0] for m in members] == ["member 0", "member 1", "member 2"]
    assert not {m[1] for m in members} & {red, blue}  # team colours only for teams
    assert [m[0] for m in charts["Made up"]["series"]] == ["alpha", "beta"]
    assert "π(a|o)" in charts["Policy loss"]["formula"]
    events = browser.execute_script("return window.viewer.events")
    assert events == [{"step": s, "text": "selection: member 2 <- member 0"}
                      for s in (50_000, 100_000, 150_000)]  # fmt: skip


@pytest.mark.browser
def test_touch_chart_colours_and_hover_read_out(run, server, browser):
    open_page(browser, server.url)
    wait_for(browser, "window.viewer.chartsDrawn > 0")
    charts = {c["title"]: c for c in browser.execute_script(CHART_INFO)}
    team = {TEAM_COLORS["predator"], TEAM_COLORS["prey"]}
    touches = charts["Touches per episode"]["series"]
    assert {s[0] for s in touches} == {"training episodes", "eval: pred touches v evader",
                                       "eval: prey touches v chaser"}  # fmt: skip
    assert not {s[1] for s in touches} & team and all(s[2] for s in touches if "eval" in s[0])
    assert "actor_reg" in charts["Actor loss"]["formula"]
    hint = browser.find_element("id", "metrics-hint").text  # says what is drawn
    assert "Bold: moving average over up to 2 logged points; faint: the raw values" in hint
    assert "actor_reg" not in browser.execute_script(
        "return document.querySelector('[data-title=\"Actor loss\"]').chart.ylabel"
    )

    # hover over the 11th logged point of the critic loss: its step and values appear
    row = run.read_metrics()[10]
    readout = browser.execute_script(
        """const f = document.querySelector('[data-title="Critic loss"]'), g = f.geom;
        const x = g.L + (arguments[0] - g.xa) / (g.xb - g.xa) * (g.W - g.L - g.R);
        f.querySelector('canvas').dispatchEvent(new MouseEvent('mousemove',
            {clientX: f.querySelector('canvas').getBoundingClientRect().left + x,
             clientY: f.querySelector('canvas').getBoundingClientRect().top + 100}));
        const r = f.querySelector('.readout'); return r.hidden ? null : r.innerText;""",
        row["env_steps"],
    )
    assert readout is not None
    assert f"step {row['env_steps']:,}" in readout
    for team in ("predator", "prey"):
        value = float(f"{row['loss/critic/' + team]:.4g}")  # 4 significant digits, as shown
        assert f"{team}: {value:g}" in readout


def test_run_state_follows_the_finished_marker(tmp_path):
    run = make_run(tmp_path / "m", n_rows=2, num_envs=1, episodes=())
    app = ViewerApp(run)
    state = app.metrics({})["run_state"]
    assert state["finished"] is False
    assert state["last_row_at"] == pytest.approx(run.metrics_path.stat().st_mtime)
    TrainLog(run).finish()
    state = app.metrics({})["run_state"]
    assert state["finished"] is True and state["finished_at"] == pytest.approx(time.time(), abs=60)
    run.mark_finished(finished_at="yesterday")  # a foreign marker: finished, time unknown
    assert app.metrics({})["run_state"] == {**state, "finished_at": None}
    run.finished_path.write_text("not json")  # a torn marker is no crash
    assert app.metrics({})["run_state"]["finished"] is False


def test_a_real_training_run_ends_finished(tmp_path):
    import torch

    from predprey.build import build
    from predprey.config import load_config
    from predprey.rundir import RunDir
    from train_helpers import tiny_config_file

    torch.set_num_threads(1)
    cfg = load_config(tiny_config_file(tmp_path, train={"total_env_steps": 400}))
    run = RunDir(tmp_path / "run").create()
    run.mark_finished(finished_at=0.0)  # left by an earlier run here: training clears it
    trainer = build(cfg, run, evals=False, checkpoints=False)
    trainer.log.start = _assert_cleared(trainer.log.start, run)
    trainer.run()
    assert ViewerApp(run).metrics({})["run_state"]["finished"] is True


def _assert_cleared(start, run):
    def wrapped(*args):
        start(*args)
        assert run.finished() is None

    return wrapped


def test_episode_reports_agent_counts(tmp_path):
    run = make_run(tmp_path / "n", n_rows=1, num_envs=1, episodes=(0,))
    body = ViewerApp(run).episode({"env": ["0"]})
    assert body["num_agents"] == 4 and body["trained_num_agents"] == 4
    run.config_path.write_text("env:\n  scenario: tag\n  num_predators: 6\n  num_prey: 2\n")
    assert ViewerApp(run).episode({"env": ["0"]})["trained_num_agents"] == 8
    run.config_path.write_text("env: [not, a, mapping]\n")
    assert ViewerApp(run).episode({"env": ["0"]})["trained_num_agents"] is None


@pytest.mark.parametrize("signum, ignored", [("SIGINT", False), ("SIGTERM", False),
                                             ("SIGINT", True)])  # fmt: skip
def test_cli_serves_until_interrupted(run, signum, ignored):
    """`ignored`: started with SIGINT ignored, as `nohup predprey view ... &` starts it."""
    import signal
    import subprocess
    import sys

    def ignore_sigint():
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    proc = subprocess.Popen(
        [sys.executable, "-m", "predprey.cli", "view", str(run.path), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=ignore_sigint if ignored else None,
    )
    try:
        line = proc.stdout.readline()  # "predprey view: serving RUN at http://127.0.0.1:PORT/ ..."
        url = line.split(" at ")[1].split()[0]
        status, info = get(url + "api/info")
        assert status == 200 and info["run"] == "live"
    finally:
        proc.send_signal(getattr(signal, signum))
        assert proc.wait(timeout=60) == 0  # generous: CI machines are busy
