"""`predprey train` of a population as a user runs it, then `evaluate --member`, `plot`,
and the refusal of what a population does not do (a shared buffer on Ray);
`bench train --population`, in one process and on Ray."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

import distributed_harness  # noqa: F401 (keeps Ray on 127.0.0.1: set before ray is imported)
from predprey.rundir import RunDir
from test_population_train import TEAMS, pop_data
from train_helpers import json_line, predprey


def test_cli_population_train_evaluate_plot(tmp_path, capsys):
    from predprey.cli import main

    data = pop_data(total=1600, mode="genetic", sync_every=400, size=2)
    cfg = tmp_path / "pop.yaml"
    cfg.write_text(yaml.safe_dump(data))
    run = str(tmp_path / "r")
    out = json_line(predprey("train", "--config", str(cfg), "--out", run, "--quiet"))  # as a user
    assert out["env_steps"] >= 1600 and set(out["best_member"]) == set(TEAMS)
    rows = RunDir(run).read_metrics()
    assert any(r.get("event") == "sync" for r in rows)
    capsys.readouterr()
    assert main(["evaluate", run, "--member", "1", "--episodes", "4", "--prey", "evader"]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert ev["member"] == 1 and np.isfinite(ev["touches_per_episode"]["mean"])
    assert main(["evaluate", run, "--member", "5", "--episodes", "4"]) == 2
    assert "members 0..1" in capsys.readouterr().err
    assert main(["simulate", run, "--member", "0"]) == 0
    sim = json.loads(capsys.readouterr().out)
    assert sim["episodes"] == 1 and sim["updates"] == ev_updates(run, 0)
    assert main(["plot", run]) == 0
    assert (tmp_path / "r" / "plots" / "metrics.png").is_file()
    from predprey.viz.plot import write_plot

    titles = write_plot([run], out=tmp_path / "p.png").panels
    assert "Members: eval: pred touches v evader" in titles and "Critic loss" in titles
    assert not any("hyperparameter" in t for t in titles)  # genetic: nothing varies
    resume = ["train", "--resume", run, "--set", "train.total_env_steps=2000", "--quiet"]
    assert main(resume) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["env_steps"] >= 2000
    shared = ["--set", "population.share_buffer=true", "--runners", "2"]
    args = ["train", "--config", str(cfg), "--out", str(tmp_path / "q"), *shared]
    assert main(args) == 2  # before Ray starts or a run directory is written
    err = capsys.readouterr().err
    assert "share_buffer: true needs one process" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "q").exists()


def test_bench_train_population_sizes(tmp_path, capsys):
    from predprey.cli import main

    data = pop_data()
    del data["population"]
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(data))
    args = ["bench", "train", "--population", "1,2", "--seconds", "2", "--config", str(cfg)]
    assert main(args) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["population"] for x in lines] == [1, 2]
    assert all(x["updates"] > 0 and x["env_steps_per_s"] > 0 for x in lines)


@pytest.mark.timeout(1200)  # a bound: ~25 s on one idle core (Ray starts 2 x 3 actors)
def test_bench_train_population_on_ray(tmp_path, capsys):
    pytest.importorskip("ray")
    from predprey.cli import main

    data = pop_data()
    del data["population"]
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(data))
    args = ["bench", "train", "--population", "2", "--runners", "1", "--seconds", "4",
            "--config", str(cfg)]  # fmt: skip
    assert main(args) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert [(x["population"], x["runners"]) for x in lines] == [(2, 1)]
    assert all(x["updates"] > 0 and x["updates_per_s"] > 0 for x in lines)
    assert main([*args[:-2], "--runners", "1,2", "--config", str(cfg)]) == 2


def ev_updates(run: str, member: int) -> int:
    from predprey import checkpoint

    return checkpoint.load(RunDir(run))["population"]["members"][member]["updates"]
