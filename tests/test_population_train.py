"""Population training runs (tiny, seconds): critic sync and selection copy what they
should, events and member curves reach metrics.jsonl, resume continues exactly, the best
member is what `predprey.policy.load` and `--member` give, and the CLI end to end."""

from __future__ import annotations

import pytest
import torch
import yaml

from predprey import checkpoint, policy
from predprey.build import build
from predprey.config import ConfigError, config_from_dict
from predprey.population.member import ALL_PARTS, CRITIC_PARTS, _modules
from predprey.rundir import RunDir
from train_helpers import TINY, build_run

TEAMS = ("predator", "prey")


def pop_data(total=1200, **population):
    data = {k: dict(v) for k, v in TINY.items()}
    data["train"]["total_env_steps"] = total
    data["population"] = {"size": 3, "mode": "evolve", "evolve_every": 800, **population}
    return data


make = build_run


def weights(learner, team, part):
    return {k: v.clone() for k, v in _modules(learner, team)[part].state_dict().items()}


def same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


def evals(pred, prey_conceded):
    """Evaluation metrics of one member (fitness: predators' touches, prey's negated)."""
    return {"eval/pred_touches_v_evader": pred, "eval/prey_touches_v_chaser": prey_conceded}


def test_genetic_sync_copies_the_best_critics_and_targets_never_actors(tmp_path):
    trainer = make(tmp_path, pop_data(mode="genetic"))
    pop = trainer.source
    # predators: member 2 fittest; prey: member 0 concedes fewest touches
    pop.set_fitness([evals(0.1, 0.5), evals(0.2, 2.0), evals(0.9, 1.0)])
    assert pop.best == {"predator": 2, "prey": 0}
    before = {(m.k, t, p): weights(m.learner, t, p) for m in pop.members for t in TEAMS
              for p in ALL_PARTS}  # fmt: skip
    assert not same(before[0, "predator", "critics"], before[2, "predator", "critics"])
    rows = pop.events_due(pop.pop.sync_every)
    assert {(r["event"], r["team"], r["parent"]) for r in rows} == {
        ("sync", "predator", 2), ("sync", "prey", 0)}  # fmt: skip
    for m in pop.members:
        for t, best in pop.best.items():
            for part in CRITIC_PARTS:
                assert same(weights(m.learner, t, part), before[best, t, part]), (m.k, t, part)
            for part in ("actors", "actor_targets"):  # actors are never synced
                assert same(weights(m.learner, t, part), before[m.k, t, part]), (m.k, t, part)
    # the sync rate: not again before the next interval, which counts from the due step
    every = pop.pop.sync_every
    assert pop.events_due(2 * every - 1) == [] and pop.events_due(2 * every) != []


def test_selection_clones_per_team_and_keeps_the_elite(tmp_path):
    data = pop_data(p_none=1.0, p_weights=0.0, p_hyperparameter=0.0, tournament_size=3)
    pop = make(tmp_path, data).source
    pop.set_fitness([evals(0.1, 0.5), evals(0.2, 2.0), evals(0.9, 1.0)])
    before = {(m.k, t, p): weights(m.learner, t, p) for m in pop.members for t in TEAMS
              for p in ALL_PARTS}  # fmt: skip
    rows = pop.evolve(800)
    # a tournament of all 3: every slot takes the team's fittest member
    for m in pop.members:
        for t, best in pop.best.items():
            for part in ALL_PARTS:
                assert same(weights(m.learner, t, part), before[best, t, part]), (m.k, t, part)
    sel = {r["member"]: r for r in rows if r["event"] == "selection"}
    assert sel[1]["parents"] == {"predator": 2, "prey": 0}
    assert 0 not in sel or sel[0]["parents"]["prey"] == 0  # prey elite kept its own


def test_mutation_changes_the_clone_and_is_logged(tmp_path):
    data = pop_data(p_none=0.0, p_weights=0.0, p_hyperparameter=1.0, mutate=["actor_lr"],
                    size=2, elitism=1)  # fmt: skip
    pop = make(tmp_path, data).source
    pop.set_fitness([evals(0.9, 0.5), evals(0.1, 2.0)])  # member 0 best for both teams
    rows = pop.evolve(800)
    mut = [r for r in rows if r["event"] == "mutation"]
    assert len(mut) == 1 and mut[0]["member"] == 1 and mut[0]["name"] == "actor_lr"
    child = pop.members[1]
    assert mut[0]["old"] == pop.members[0].hp["actor_lr"]  # inherited from the elite
    assert child.hp["actor_lr"] == mut[0]["new"] != mut[0]["old"]
    assert child.learner.actor_opt.param_groups[0]["lr"] == mut[0]["new"]
    assert pop.members[0].hp["actor_lr"] == mut[0]["old"]  # the elite is not mutated


def test_weights_mutation_noises_only_the_clones_actors(tmp_path):
    data = pop_data(p_none=0.0, p_weights=1.0, p_hyperparameter=0.0, size=2, elitism=1)
    pop = make(tmp_path, data).source
    pop.set_fitness([evals(0.9, 0.5), evals(0.1, 2.0)])  # member 0 best for both teams
    parent = {(t, p): weights(pop.members[0].learner, t, p) for t in TEAMS for p in ALL_PARTS}
    rows = pop.evolve(800)
    mut = [r for r in rows if r["event"] == "mutation"]
    assert [(r["member"], r["kind"], r["teams"]) for r in mut] == [(1, "weights", list(TEAMS))]
    for t in TEAMS:
        child = pop.members[1].learner
        assert not same(weights(child, t, "actors"), parent[t, "actors"])
        for part in ("actor_targets", *CRITIC_PARTS):  # cloned, not noised
            assert same(weights(child, t, part), parent[t, part])
        for part in ALL_PARTS:  # the elite is untouched
            assert same(weights(pop.members[0].learner, t, part), parent[t, part])


def test_set_hp_reaches_optimizers_batch_and_pace(tmp_path):
    pop = make(tmp_path, pop_data()).source
    m = pop.members[1]
    hp = dict(m.hp, critic_lr=0.02, batch_size=96, exploration_noise=0.3)
    m.set_hp(hp)
    assert m.learner.critic_opt.param_groups[0]["lr"] == 0.02
    assert m.source.config.algo.batch_size == 96 and m.algorithm.config.algo.batch_size == 96
    assert m.algorithm.config.algo.exploration_noise == 0.3
    assert m.algorithm.pace.credit.batch_size == 96


@pytest.fixture(scope="module")
def evolved(tmp_path_factory):
    """A tiny evolve run of 3 members with bad initial draws (about 10 s)."""
    tmp = tmp_path_factory.mktemp("evolved")
    data = pop_data(total=2400, init_actor_lr=[1e-5, 1e-2], init_batch_size=[32, 64, 128])
    trainer = make(tmp, data)
    return trainer, trainer.run()


def test_events_and_member_curves_in_metrics(evolved):
    trainer, result = evolved
    rows = trainer.run_dir.read_metrics()
    kinds = [r["event"] for r in rows if "event" in r]
    assert "selection" in kinds and kinds[:3] == ["init"] * 3
    draws = [r["hp"] for r in rows if r.get("event") == "init"]
    assert len({h["actor_lr"] for h in draws}) == 3  # drawn from init_actor_lr
    for r in rows:
        if r.get("event") == "selection":
            assert set(r["parents"]) == set(TEAMS) and isinstance(r["detail"], str)
        if r.get("event") == "mutation":
            assert r["kind"] in ("weights", "hyperparameter")
            if r["kind"] == "hyperparameter":
                assert r["hp"][r["name"]] == r["new"]
    keys = {k for r in rows for k in r}
    for k in range(3):
        assert f"member/{k}/return/predator" in keys
        assert f"member/{k}/eval/pred_touches_v_evader" in keys
        assert f"member/{k}/loss/critic/prey" in keys
        assert f"member/{k}/hp/batch_size" in keys
    assert "best_member/prey" in keys
    assert [m["hp"] for m in result["members"]] == [m.hp for m in trainer.source.members]
    # every member gets its turns: equal shares of the env steps
    steps = [m.source.inserted for m in trainer.source.members]
    assert max(steps) - min(steps) <= TINY["env"]["num_envs"]


def test_policy_load_best_and_member(evolved):
    trainer, _ = evolved
    pop, run = trainer.source, trainer.run_dir
    payload = checkpoint.load(run)
    for team, k in pop.best.items():
        want = pop.members[k].learner.actor_state()[team]
        assert same(policy.load(run.path, member="best").actors.actor_state()[team], want)
        assert same(policy.load(run.path).actors.actor_state()[team], want)
    other = next(m for m in pop.members if m.k != pop.best["predator"])
    got = policy.load(run.path, member=other.k)
    assert same(got.actors.actor_state()["predator"], other.learner.actor_state()["predator"])
    assert (
        got.version == other.source.updates == payload["population"]["members"][other.k]["updates"]
    )
    # best.pt holds, per team, actors of the member that was fittest when it was written
    best = checkpoint.load_best(run)
    assert set(best) == set(TEAMS)
    with pytest.raises(ConfigError, match="members 0..2"):
        policy.load(run.path, member=3)
    with pytest.raises(ConfigError, match="drop --policy best"):
        policy.load(run.path, "best", member=1)


def test_best_snapshot_and_latest_actors_come_from_the_fittest_member(tmp_path, monkeypatch):
    trainer = make(tmp_path, pop_data(mode="independent"))
    pop = trainer.source
    scores = {id(m.learner): evals(*v) for m, v in
              zip(pop.members, [(0.1, 0.5), (0.2, 2.0), (0.9, 1.0)], strict=True)}  # fmt: skip
    monkeypatch.setattr("predprey.loop.training_evals",
                        lambda config, actors, episodes, seed: scores[id(actors)])  # fmt: skip
    trainer.evaluate()
    trainer.save_checkpoint()
    # per team the fittest: predators of member 2, prey of member 0
    assert trainer.last_eval == evals(0.9, 0.5)
    row = [r for r in trainer.run_dir.read_metrics() if "eval/pred_touches_v_evader" in r][-1]
    assert row["best_member/predator"] == 2 and row["member/1/eval/prey_touches_v_chaser"] == 2.0
    for which in ("best", "latest"):
        state = policy.load(trainer.run_dir.path, which).actors.actor_state()
        assert same(state["predator"], pop.members[2].learner.actor_state()["predator"])
        assert same(state["prey"], pop.members[0].learner.actor_state()["prey"])
        assert not same(state["prey"], pop.members[2].learner.actor_state()["prey"])


def test_member_on_a_single_learner_run_is_a_clear_error(tmp_path):
    data = {k: dict(v) for k, v in TINY.items()}
    data["train"]["total_env_steps"] = 240
    run = RunDir(tmp_path / "single")
    run.path.mkdir()
    run.config_path.write_text(yaml.safe_dump(data))
    run.create()
    build(config_from_dict(data), run, evals=False).run()
    with pytest.raises(ConfigError, match="not a population run"):
        policy.load(run.path, member=0)


def _state(trainer):
    out = []
    for m in trainer.source.members:
        s = m.learner.state_dict()
        out.append((m.hp, m.source.inserted, m.source.updates, s["actors"], s["critic_targets"]))
    return out


def test_resume_continues_the_population_exactly(tmp_path):
    data = pop_data(total=2400, init_actor_lr=[1e-4, 1e-2], share_buffer=True)
    whole = make(tmp_path, data, "whole")
    whole.run()
    first = make(tmp_path, {**data, "train": {**data["train"], "total_env_steps": 1200}}, "split")
    first.run()
    saved = checkpoint.load(first.run_dir)
    assert len(saved["buffer_files"]) == 1  # one shared replay
    resumed = make(tmp_path, data, "split", resume=True)
    # restored: hyperparameters, lineage, counters, one shared buffer
    assert [m.hp for m in resumed.source.members] == [m.hp for m in first.source.members]
    assert [m.lineage for m in resumed.source.members] == [
        m.lineage for m in first.source.members]  # fmt: skip
    buffers = {id(m.source.buffer) for m in resumed.source.members}
    assert len(buffers) == 1
    resumed.run()
    for a, b in zip(_state(whole), _state(resumed), strict=True):
        assert a[:3] == b[:3]
        for team in a[3]:
            assert same(a[3][team], b[3][team]) and same(a[4][team], b[4][team])
    events = lambda t: [  # noqa: E731
        (r["env_steps"], r["event"], r.get("member"))
        for r in t.run_dir.read_metrics()
        if "event" in r
    ]
    assert events(whole) == events(resumed) and events(whole)


def test_population_of_one_is_the_single_learner(tmp_path):
    data = pop_data(total=800, size=1, mode="independent")
    pop = make(tmp_path, data, "pop")
    pop.run()
    single_data = {k: v for k, v in data.items() if k != "population"}
    run = RunDir(tmp_path / "single")
    run.create()
    single = build(config_from_dict(single_data), run)
    single.run()
    a, b = pop.source.members[0].learner.state_dict(), single.source.learner.state_dict()
    assert a["version"] == b["version"] > 0
    for team in a["critics"]:
        assert same(a["critics"][team], b["critics"][team])
