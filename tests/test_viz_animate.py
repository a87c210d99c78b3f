"""`predprey animate`: one frame per recorded state, agents drawn where they were,
captured prey gone, clear errors for what was not recorded."""

from __future__ import annotations

import imageio.v2 as iio2
import imageio.v3 as iio
import numpy as np
import pytest
from matplotlib.colors import to_rgb

from predprey.cli import main
from predprey.rundir import RunDirError
from predprey.viz.animate import EpisodeRenderer, animate, flash_strength
from predprey.viz.episode import TEAM_COLORS, read_episode, select_episode
from vizfixture import make_box_episode, make_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run = make_run(tmp_path_factory.mktemp("anim") / "tag", n_rows=3, num_envs=3)
    make_box_episode(run, env_index=5, steps=40)
    return run


def test_gif_has_one_frame_per_state(run, capsys):
    assert main(["animate", str(run.path), "--env-index", "1"]) == 0
    path = capsys.readouterr().out.strip()
    assert path == str(run.path / "plots" / "env1_ep200.gif")  # latest episode by default
    frames = iio.imread(path)
    assert frames.shape[0] == 26  # T + 1 for a 25-step episode
    assert frames.shape[1:3] == (720, 640)
    assert not np.array_equal(frames[0], frames[10])


def test_mp4_decodes_with_frame_count(run, tmp_path):
    out = tmp_path / "ep.mp4"
    res = animate(run.path, 2, episode=0, out=out, fps=20)
    assert res.frames == 26 and res.episode.episode == 0
    reader = iio2.get_reader(out)
    assert reader.count_frames() == 26
    assert reader.get_meta_data()["fps"] == 20


def test_unknown_env_index_lists_recorded(run, capsys):
    with pytest.raises(RunDirError, match=r"env index 7 was not recorded.*: 0, 1, 2$"):
        animate(run.path, 7)
    assert main(["animate", str(run.path), "--env-index", "7"]) == 2
    assert "recorded env indices: 0, 1, 2" in capsys.readouterr().err


def test_unknown_episode_lists_recorded(run):
    with pytest.raises(RunDirError, match="recorded episodes: 0, 200"):
        animate(run.path, 0, episode=100)


def test_bad_output_format(run, tmp_path, capsys):
    assert main(["animate", str(run.path), "--env-index", "0", "--out", str(tmp_path / "a.avi")])
    assert ".gif or .mp4" in capsys.readouterr().err


def pixel_at(renderer, frame, xy):
    """RGB of the rendered frame at data point xy (matplotlib display y points up)."""
    x, y = renderer.ax.transData.transform(xy)
    return frame[int(round(frame.shape[0] - y)), int(round(x))].astype(int)


def test_agents_drawn_at_recorded_positions(run):
    ep = read_episode(select_episode(run, 0))
    r = EpisodeRenderer(ep, "test")
    frame = r.frame(0)
    checked = set()
    for n in range(ep.pos.shape[1]):
        others = np.delete(ep.pos[0], n, axis=0)
        if np.linalg.norm(others - ep.pos[0, n], axis=1).min() < 0.15:
            continue  # centre might be covered by a neighbour's marker
        team = ep.teams[ep.team_index[n]]
        want = np.array(to_rgb(TEAM_COLORS[team])) * 255
        assert np.abs(pixel_at(r, frame, ep.pos[0, n]) - want).max() < 12
        checked.add(team)
    assert checked == {"predator", "prey"}
    # and nothing of a team colour where no agent is: the centre of an empty corner
    x0, x1, y0, y1 = ep.view_limits()
    empty = pixel_at(r, frame, (x0 + 0.02 * (x1 - x0), y0 + 0.02 * (y1 - y0)))
    assert all(np.abs(empty - np.array(to_rgb(c)) * 255).max() > 40 for c in TEAM_COLORS.values())


def test_touches_match_recorded_and_ring_flashes(run):
    ep = read_episode(select_episode(run, 1))
    touched = ep.touched()  # [T+1, N] from positions and sizes
    assert (touched[1:].sum(axis=1) > 0).tolist() == (ep.touches > 0).tolist()
    r = EpisodeRenderer(ep, "test")
    t = int(np.flatnonzero(ep.touches)[0]) + 1  # first frame after a touching step
    r.frame(t)
    prey = ep.team_sizes[0]
    assert r.rings[prey].get_visible() and r.rings[prey].get_alpha() == 1.0


def test_captured_prey_disappear_and_box_walls(run, tmp_path):
    ep = read_episode(select_episode(run, 5, source="simulate"))
    assert ep.walls and not ep.penalty_zone
    r = EpisodeRenderer(ep, "test")
    last = ep.steps
    r.frame(last)
    alive = ep.alive[last]
    assert not alive.all()  # the fixture's predators catch some prey
    assert [b.get_visible() for b in r.bodies] == alive.tolist()
    shown = sum(len(m.get_xdata()) for m in r.markers)
    assert shown == alive.sum()
    assert len(r.crosses.get_xdata()) == (~alive).sum()
    res = animate(run.path, 5, source="simulate", out=tmp_path / "box.gif")
    assert iio.imread(res.path).shape[0] == ep.steps + 1


def test_flash_strength_fades():
    ev = np.zeros((6, 1), bool)
    ev[1] = True
    assert flash_strength(ev)[:, 0].round(2).tolist() == [0, 1, 0.67, 0.33, 0, 0]
