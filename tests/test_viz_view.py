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

from predprey.viz.episode import TEAM_COLORS, read_episode, select_episode
from predprey.viz.view import ViewerApp, start_server
from vizfixture import make_run, metrics_row, record_rollout


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
const v = window.viewer, ctx = document.getElementById('episode-canvas').getContext('2d');
return {env: v.envIndex, episode: v.episode, frame: v.frame, tr: v.transform,
        agents: v.agentsPx.map(a => Object.assign({rgb: Array.from(
            ctx.getImageData(Math.round(a.x), Math.round(a.y), 1, 1).data).slice(0, 3)}, a))};
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
    ep = read_episode(select_episode(run, snap["env"]))
    assert snap["episode"] == ep.ref.episode
    pos, tr = ep.pos[snap["frame"]], snap["tr"]  # [N, 2]
    want = np.c_[tr["left"] + (pos[:, 0] - tr["x0"]) * tr["scale"],
                 tr["bottom"] - (pos[:, 1] - tr["y0"]) * tr["scale"]]  # fmt: skip
    got = np.array([[a["x"], a["y"]] for a in snap["agents"]])
    assert np.allclose(got, want, atol=0.01)
    assert (got > 0).all() and (got < 560).all()  # inside the 560 x 560 canvas
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


@pytest.mark.browser
def test_page_draws_recorded_positions_and_switches_env(run, server, browser):
    browser.get(server.url)
    wait_for(browser, "window.viewer && window.viewer.ready && window.viewer.data !== null")
    assert browser.title == "predprey · live"
    first = show_frame(browser, 0)
    assert first["env"] == 0 and first["frame"] == 0
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


def test_cli_serves_until_interrupted(run):
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "predprey.cli", "view", str(run.path), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()  # "predprey view: serving RUN at http://127.0.0.1:PORT/ ..."
        url = line.split(" at ")[1].split()[0]
        status, info = get(url + "api/info")
        assert status == 200 and info["run"] == "live"
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0  # generous: CI machines are busy
