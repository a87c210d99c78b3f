"""`predprey plot`: panels adapt to the logged keys, several runs overlay, live runs work."""

from __future__ import annotations

import json

import imageio.v3 as iio
import numpy as np
import pytest

from predprey.cli import main
from predprey.rundir import RunDir, RunDirError
from predprey.viz.plot import (
    drop_superseded,
    load_runs,
    moving_average,
    plot_metrics,
    series_label,
    write_plot,
)
from vizfixture import make_run, metrics_row

ALL_PANELS = [
    "Critic loss",
    "Actor loss",
    "Episode return",
    "Q value",
    "Touches per episode",
    "Throughput",
]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("plot") / "tag", num_envs=1, episodes=(0,))


def visible_axes(fig):
    return [ax for ax in fig.axes if ax.get_visible()]


def legend_labels(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_panels_titles_labels_and_legends(run):
    fig = plot_metrics(load_runs([run.path]))
    axes = visible_axes(fig)
    assert [ax.get_title() for ax in axes] == ALL_PANELS
    for ax in axes:
        assert ax.get_xlabel() == "environment steps" and ax.get_ylabel()
    assert legend_labels(axes[0]) == ["predator", "prey"]
    assert legend_labels(axes[4]) == [
        "eval: pred touches v evader",
        "eval: prey touches v chaser",
        "training episodes",
    ]
    assert axes[5].get_yscale() == "log"
    # raw (faint) + smoothed line per series; the smoothed one ends at the mean of the
    # last W raw values
    raw, smooth = axes[0].get_lines()[:2]
    y = raw.get_ydata()
    w = 80 // 20
    assert raw.get_alpha() < 0.5 and smooth.get_ydata()[-1] == pytest.approx(y[-w:].mean())


def test_write_plot_default_path_png_decodes(run):
    res = write_plot([run.path])
    assert res.path == run.path / "plots" / "metrics.png"
    img = iio.imread(res.path)
    assert img.ndim == 3 and img.shape[0] > 500 and img.shape[1] > 1000
    assert img[..., :3].std() > 10  # not a blank canvas
    assert res.panels == ALL_PANELS


def test_panels_adapt_to_missing_keys(tmp_path):
    run = RunDir(tmp_path / "losses_only").create()
    run.config_path.write_text("env: {}\n")
    for i in range(5):
        row = {"env_steps": i * 100, "updates": i, "time": float(i)}
        run.append_metrics({**row, "loss/critic/predator": 1 / (i + 1), "perf/updates_per_s": 3.0})
    fig = plot_metrics(load_runs([run.path]))
    assert [ax.get_title() for ax in visible_axes(fig)] == ["Critic loss", "Throughput"]


def test_several_runs_overlay_with_run_names(run, tmp_path):
    other = RunDir(tmp_path / "matd3").create()
    other.config_path.write_text("env: {}\n")
    rng = np.random.default_rng(3)
    for i in range(30):
        other.append_metrics(metrics_row(i, rng))
    fig = plot_metrics(load_runs([run.path, other.path]))
    critic = visible_axes(fig)[0]
    assert legend_labels(critic) == [
        "tag: predator",
        "tag: prey",
        "matd3: predator",
        "matd3: prey",
    ]
    assert "tag, matd3" in fig.get_suptitle()


def test_time_axis_and_smoothing_off(run):
    fig = plot_metrics(load_runs([run.path]), x="time", smooth=1)
    ax = visible_axes(fig)[0]
    assert ax.get_xlabel().startswith("wall-clock time (")
    assert len(ax.get_lines()) == 2  # no faint raw copy when not smoothing
    assert "no smoothing" in fig.get_suptitle()


def test_live_run_with_torn_last_line(tmp_path):
    run = make_run(tmp_path / "live", n_rows=12, num_envs=1, episodes=())
    with open(run.metrics_path, "a") as f:
        f.write('{"env_steps": 999999, "loss/critic/pred')  # trainer mid-write
    fig = plot_metrics(load_runs([run.path]))
    xs = visible_axes(fig)[0].get_lines()[0].get_xdata()
    assert len(xs) == 12 and xs.max() == 120_000


def test_resumed_log_drops_superseded_rows():
    rows = [{"env_steps": s, "v": s} for s in (10, 20, 30, 40, 25, 35)]
    assert [r["env_steps"] for r in drop_superseded(rows, "env_steps")] == [10, 20, 25, 35]
    # the trainer writes an eval row at the same step as the train row: keep both
    rows = [{"env_steps": 10, "a": 1}, {"env_steps": 10, "b": 2}]
    assert drop_superseded(rows, "env_steps") == rows


def test_moving_average_matches_convolution():
    y = np.random.default_rng(0).normal(size=50)
    w = 7
    full = np.convolve(y, np.ones(w) / w, mode="valid")  # windows ending at index w-1..
    assert np.allclose(moving_average(y, w)[w - 1 :], full)
    assert moving_average(y, w)[0] == y[0]


def test_series_labels():
    assert series_label("loss/critic/predator") == "predator"
    assert series_label("perf/env_steps_per_s") == "env steps/s"
    assert series_label("eval/prey_touches_v_chaser") == "eval: prey touches v chaser"


def test_empty_metrics_is_a_clear_error(tmp_path, capsys):
    run = RunDir(tmp_path / "fresh").create()
    run.config_path.write_text("env: {}\n")
    with pytest.raises(RunDirError, match="no metrics yet"):
        write_plot([run.path])
    assert main(["plot", str(run.path)]) == 2
    assert "no metrics yet" in capsys.readouterr().err


def test_metrics_without_plottable_keys_is_a_clear_error(tmp_path):
    run = RunDir(tmp_path / "odd").create()
    run.config_path.write_text("env: {}\n")
    run.metrics_path.write_text(json.dumps({"env_steps": 1, "time": 0, "foo": 2}) + "\n")
    with pytest.raises(RunDirError, match="nothing to plot.*foo"):
        write_plot([run.path])


def test_cli_prints_the_path(run, tmp_path, capsys):
    out = tmp_path / "cmp.png"
    assert main(["plot", str(run.path), "--out", str(out), "--x", "time", "--smooth", "3"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert iio.imread(out).shape[0] > 500


def test_log_panel_leaves_out_zero_rates(tmp_path):
    run = RunDir(tmp_path / "warmup").create()
    run.config_path.write_text("env: {}\n")
    for i, ups in enumerate([0.0, 0.0, 5.0, 6.0, 5.5]):  # no updates during warmup
        row = {"env_steps": (i + 1) * 100, "updates": i, "time": float(i)}
        run.append_metrics({**row, "perf/env_steps_per_s": 2000.0, "perf/updates_per_s": ups})
    ax = visible_axes(plot_metrics(load_runs([run.path]), smooth=1))[0]
    assert ax.get_yscale() == "log"
    ys = {line.get_label(): line.get_ydata().tolist() for line in ax.get_lines()}
    assert ys == {"env steps/s": [2000.0] * 5, "updates/s": [5.0, 6.0, 5.5]}
