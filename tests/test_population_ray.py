"""A population on Ray (predprey.distributed.population): every member its own runner,
buffer and learner actors and durable state under RUN/members/K; evolution, events and
checkpoints as in one process; --resume restores the whole population; members whose
learner or runner is killed with SIGKILL mid-run are restored and the population goes on."""

from __future__ import annotations

import dataclasses
import json
import os
import signal

import pytest
import torch

from distributed_harness import Killer, actor_pid, new_run, run_while_killing, tiny_config
from predprey import checkpoint, policy
from predprey.config import ConfigError, dump_config
from predprey.learn.widths import widths
from predprey.rundir import RunDir

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.timeout(1200)  # a bound: well under a minute on one idle core

from predprey.build import build  # noqa: E402
from predprey.distributed.cluster import init_ray  # noqa: E402
from predprey.distributed.population import member_run  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():
    info = init_ray("", num_cpus=6)
    yield info
    ray.shutdown()


def pop_config(total=1800, **population):
    return tiny_config(
        total,
        train={"eval_every": 600, "checkpoint_every": 1000.0},
        population={
            "size": 2, "mode": "evolve", "evolve_every": 600, "tournament_size": 2,
            "p_none": 0.0, "p_weights": 0.0, "p_hyperparameter": 1.0,
            "mutate": ["hidden"], "hidden_range": [8, 64], "init_batch_size": [32, 64],
            **population,
        },
    )  # fmt: skip


def test_ray_population_trains_evolves_and_resumes(local_ray, tmp_path, capsys):
    """`predprey train --runners 1` of a population (in this process, on the module's Ray),
    then a resume: every member's state comes back."""
    from predprey.cli import main

    config = pop_config()
    dump_config(config, tmp_path / "pop.yaml")
    run = RunDir(tmp_path / "run")
    args = ["train", "--config", str(tmp_path / "pop.yaml"), "--out", str(run.path)]
    assert main([*args, "--runners", "1", "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert out["env_steps"] >= 1800 and out["updates"] > 0
    assert out["restarts"] == {"runner": 0, "buffer": 0, "learner": 0}
    assert set(out["best_member"]) == {"predator", "prey"}
    saved = checkpoint.load(run)["population"]
    members = saved["members"]
    for k, m in enumerate(members):  # each member trained its share, its own durable state
        own = checkpoint.load(member_run(run, k))
        assert own["env_steps"] == m["env_steps"] >= 900
        assert own["updates"] == m["updates"] > 0
        buffer = checkpoint.load_buffer(member_run(run, k), own, 20000)
        assert buffer.total_added == own["env_steps"]
    rows = run.read_metrics()
    events = [r["event"] for r in rows if "event" in r]
    assert events.count("init") == 2 and "selection" in events and "mutation" in events
    assert any("member/1/dist/policy_lag" in r for r in rows)
    # one lineage entry per selection event (an elite of every kind is kept without one:
    # which member that is, and how often, depends on the race between the two members)
    selections = [r for r in rows if r.get("event") == "selection"]
    assert sum(len(m["lineage"]) for m in members) == len(selections) > 0
    for m in members:
        assert [e["event"] for e in m["lineage"]] == ["evolve"] * len(m["lineage"])
    # every selection resized the non-elite clone (learner and runner actors) on Ray
    assert len({m["hp"]["hidden"] for m in members}) == 2
    for k, m in enumerate(members):  # the member's actors as evaluated and saved
        p = policy.load(run.path, member=k)
        assert p.version == m["updates"]
        assert {widths(a.state_dict()) for a in p.actors.actors.values()} == {
            (m["hp"]["hidden"],) * 2
        }

    # --resume: hyperparameters, lineage, schedule, weights and counters of every member
    more = config.replace(train=dataclasses.replace(config.train, total_env_steps=3000))
    resumed = build(more, run, runners=1, resume=True)
    try:
        pop = resumed.source
        assert pop.evolutions == saved["evolutions"] > 0
        for m, s in zip(pop.members, members, strict=True):
            assert (m.hp, m.lineage) == (s["hp"], s["lineage"])
            assert (m.source.inserted, m.source.updates) == (s["env_steps"], s["updates"])
            now = m.actors().actor_state()  # its learner actor's own weights
            assert all(torch.equal(now[t][k], v) for t in now for k, v in s["actors"][t].items())
            opt = ray.get(m.fleet.learner.checkpoint_state.remote())["learner"]["critic_opt"]
            own = checkpoint.load(member_run(run, m.k))["learner"]["critic_opt"]
            assert opt["state"].keys() == own["state"].keys() and opt["state"]  # Adam moments
            for i, moments in own["state"].items():
                assert all(torch.equal(opt["state"][i][k], v) for k, v in moments.items())
        result = resumed.run()
    finally:
        resumed.close()
    assert result["env_steps"] >= 3000
    assert pop.evolutions > saved["evolutions"]
    assert all(m.source.updates > s["updates"] for m, s in zip(pop.members, members, strict=True))


def test_shared_buffer_on_ray_is_a_clear_error(local_ray, tmp_path):
    config = pop_config(share_buffer=True)
    with pytest.raises(ConfigError, match="share_buffer"):
        build(config, new_run(tmp_path / "run", config), runners=1)


UNBOUNDED = 10**9
AFTER_KILL = 1500  # env steps the population takes after the kill before it may end


def _member_checkpoint_updates(run, k) -> int:
    try:
        return int(checkpoint.load(member_run(run, k)).get("updates", 0))
    except Exception:  # not written yet
        return 0


def test_killed_member_actors_are_restored_and_the_population_goes_on(local_ray, tmp_path):
    """SIGKILL member 1's learner actor once member 1 has a checkpoint with updates (the run
    cannot end by itself until then), and with it the runner of the member that is behind
    (it has env steps left to take, so its runner's death is seen); the run ends AFTER_KILL
    env steps later."""
    config = pop_config(UNBOUNDED)
    config = config.replace(train=dataclasses.replace(config.train, checkpoint_every=1.0))
    run = new_run(tmp_path / "run", config)
    trainer = build(config, run, runners=1, evals=False)
    members = trainer.source.members
    victim = members[1]
    runner_pids = [actor_pid(m.fleet.slots[0].handle) for m in members]  # idle: answer at once
    at_kill = {}

    def when():
        return _member_checkpoint_updates(run, 1) > 0 and victim.source.updates >= 20

    def end_later():
        behind = min(members, key=lambda m: m.source.inserted)
        os.kill(runner_pids[behind.k], signal.SIGKILL)
        at_kill["runner_of"], at_kill["env_steps"] = behind, trainer.env_steps
        at_kill["updates"] = victim.source.updates
        trainer.total_env_steps = trainer.env_steps + AFTER_KILL

    def end_now():
        trainer.total_env_steps = 0

    killer = Killer(when, actor_pid(victim.fleet.learner), end_later, end_now)
    result = run_while_killing(trainer, killer)
    assert result["env_steps"] >= at_kill["env_steps"] + AFTER_KILL  # it went on past the kill
    assert result["restarts"] == {"runner": 1, "buffer": 0, "learner": 1}
    rows = [r for r in run.read_metrics() if "member" in r and "dist/restarts" in r]
    assert sorted(r["dist/restarts"] for r in rows) == [1, 2]  # the population's count
    runner_of = at_kill["runner_of"]
    assert any(r.get("member/1/dist/restarts/learner") == 1 for r in rows if r["member"] == 1)
    assert any(r.get(f"member/{runner_of.k}/dist/restarts/runner") == 1 for r in rows)
    restored = victim.fleet.learner_version  # the new learner's version when it started
    assert 0 < restored <= at_kill["updates"]  # from the member's checkpoint, not from scratch
    assert victim.source.updates > restored  # and it trained on
    slot = runner_of.fleet.slots[0]
    assert slot.incarnation == 1 and slot.version > 0  # a new runner with learned weights
    assert result["lost_rows"] == 0  # every acknowledged row of every member is kept
    for m in trainer.source.members:
        own = checkpoint.load(member_run(run, m.k))
        buffer = checkpoint.load_buffer(member_run(run, m.k), own, 20000)
        assert buffer.total_added == m.source.acked_rows == m.source.inserted


@pytest.mark.slow  # two Ray starts of 2 members in subprocesses: ~2 minutes on one core
@pytest.mark.timeout(2400)
def test_killed_driver_population_resumes(tmp_path):
    """SIGKILL `predprey train --runners 1` of a population (driver and every actor) once a
    population checkpoint exists; `--resume` continues every member from its own checkpoint
    and write-ahead log, with its hyperparameters and lineage."""
    import subprocess

    from test_distributed_cli import checkpoint_steps, predprey, wait_for

    config = pop_config(UNBOUNDED)
    config = config.replace(train=dataclasses.replace(config.train, checkpoint_every=0.5))
    dump_config(config, tmp_path / "pop.yaml")
    run = RunDir(tmp_path / "run")
    cmd = predprey("--config", str(tmp_path / "pop.yaml"), "--out", str(run.path), "--runners", "1")
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        wait_for(lambda: checkpoint_steps(run) >= 1200, 900, proc)  # a bound, not a pace
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and the Ray processes it started
        proc.communicate()
    saved = checkpoint.load(run)
    at_kill = [m["env_steps"] for m in saved["population"]["members"]]
    total = saved["env_steps"] + AFTER_KILL
    done = subprocess.run(
        predprey("--resume", str(run.path), "--set", f"train.total_env_steps={total}"),
        capture_output=True, text=True, timeout=1200, start_new_session=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["env_steps"] >= total
    final = checkpoint.load(run)["population"]["members"]
    for k, (before, after) in enumerate(zip(saved["population"]["members"], final, strict=True)):
        assert after["lineage"][: len(before["lineage"])] == before["lineage"]
        assert after["env_steps"] > at_kill[k] and after["updates"] > before["updates"]
        own = checkpoint.load(member_run(run, k))
        buffer = checkpoint.load_buffer(member_run(run, k), own, 20000)
        assert buffer.total_added == own["env_steps"] == after["env_steps"]
    steps = [r["env_steps"] for r in run.read_metrics() if "perf/env_steps_per_s" in r]
    assert steps == sorted(steps) and steps[-1] >= total  # one history, no rewound rows
