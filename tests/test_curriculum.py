"""A curriculum over the number of agents (population.curriculum, EPC): the selection
function, the config's one-line errors, and tiny real runs (seconds): the stage changes at
its env-step budget after rating every member at the next size, the fittest are kept and
copied over the weakest, and a run resumed in the middle of stage 2 goes on at stage 2's N
exactly as the run that was never stopped."""

from __future__ import annotations

import pytest
import torch

from predprey import checkpoint, policy
from predprey.config import ConfigError, config_from_dict
from predprey.config.population import PopulationConfig
from predprey.evaluate import training_evals
from predprey.population import evolution as evo
from predprey.population.curriculum import stage_fitness
from predprey.rundir import RunDir
from predprey.seeding import stage_seed
from predprey.viz.plot_members import events, member_subjects
from train_helpers import build_run

STAGE = 640  # env steps of the population per stage: 2 members x 8 envs -> 16 per step


def data(total: int, sizes=(4, 6, 8), **population) -> dict:
    return {
        "env": {"scenario": "spread", "num_envs": 8, "obs": "local", "num_agents": sizes[0],
                "num_landmarks": sizes[0], "k_agents": 2, "k_landmarks": 3, "density": 1.0,
                "episode_length": 20},
        "algo": {"hidden": [16, 16], "batch_size": 64, "env_steps_per_update": 8,
                 "share_params": True, "critic": "local"},
        "buffer": {"capacity": 20000, "warmup": 128},
        "train": {"seed": 0, "total_env_steps": total, "eval_every": 400, "eval_episodes": 4,
                  "log_every": 200, "checkpoint_every": 1000.0, "record_envs": [],
                  "torch_threads": 1},
        "population": {"size": 2, "mode": "independent", "mutate": [], "p_hyperparameter": 0.0,
                       "curriculum": list(sizes), "stage_env_steps": STAGE, "stage_episodes": 6,
                       "stage_keep": 1, **population},
    }  # fmt: skip


make = build_run


def actor(member) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in member.learner.actors.actors["agent"].state_dict().items()}


def same(a, b) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


def stages(trainer) -> list[dict]:
    return [r for r in trainer.run_dir.read_metrics() if r.get("event") == "stage"]


# -- the selection function -------------------------------------------------------------
def test_the_fittest_keep_their_networks_the_weakest_take_the_fittests():
    assert evo.stage_parents([0.1, 0.5, 0.3, 0.2], keep=2) == [1, 1, 2, 2]
    assert evo.stage_parents([0.1, 0.5, 0.3, 0.2], keep=1) == [1, 1, 1, 1]
    assert evo.stage_parents([0.1, 0.5, 0.3, 0.2], keep=4) == [0, 1, 2, 3]
    # 6 members, keep 0 and 3; weakest first: 5 <- 0, 4 <- 3, 1 <- 0, 2 <- 3
    assert evo.stage_parents([0.9, 0.2, 0.3, 0.8, 0.1, 0.0], keep=2) == [0, 0, 3, 3, 3, 0]
    assert evo.stage_parents([0.5, 0.5, 0.5], keep=1) == [0, 0, 0]  # ties: the lower index


def test_stage_due_at_each_budget_and_the_last_runs_to_the_end():
    pop = PopulationConfig(curriculum=(4, 8, 16), stage_env_steps=100)
    assert [pop.stage_of(s) for s in (0, 99, 100, 199, 200, 10_000)] == [0, 0, 1, 1, 2, 2]
    assert PopulationConfig().stage_of(10**9) == 0  # no curriculum: one stage


# -- config errors, one line each ---------------------------------------------------------
@pytest.mark.parametrize(
    "change, needle",
    [
        ({"algo": {"critic": "central"}}, "algo.critic: central"),
        ({"algo": {"share_params": False}}, "algo.share_params"),
        ({"env": {"obs": "mpe", "k_agents": None, "k_landmarks": None}}, "env.obs: local"),
        ({"population": {"curriculum": [4, 8, 8]}}, "increasing"),
        ({"population": {"stage_keep": 3}}, "stage_keep"),
        ({"population": {"stage_fitness": "touches"}}, "stage_fitness"),
    ],
)
def test_a_curriculum_config_that_cannot_work_is_one_line_naming_the_key(change, needle):
    cfg = data(100)
    for section, values in change.items():
        cfg[section] = {**cfg[section], **values}
    with pytest.raises(ConfigError, match=needle) as e:
        config_from_dict(cfg)
    assert "\n" not in str(e.value) and str(e.value).startswith("population.")


def test_a_run_starts_at_the_first_stage_and_a_policy_is_evaluated_at_any_size(tmp_path):
    cfg = data(100)
    cfg["env"] = {**cfg["env"], "num_agents": 6, "num_landmarks": 6}
    with pytest.raises(ConfigError, match=r"first stage \(4\) must be env.num_agents") as e:
        make(tmp_path, cfg)
    assert "\n" not in str(e.value)
    trainer = make(tmp_path, data(STAGE // 2), "run")  # no stage change: ends at N = 4
    trainer.run()
    at_80 = policy.load(trainer.run_dir.path, env=["num_agents=80", "num_landmarks=80"])
    assert at_80.config.env.params["num_agents"] == 80


def test_a_curriculum_is_spread_only_and_refused_on_ray(tmp_path):
    tag = {"env": {"scenario": "tag", "obs": "local"}, "algo": {"critic": "local"},
           "population": {"curriculum": [4, 8]}}  # fmt: skip
    with pytest.raises(ConfigError, match="env.scenario is 'tag'"):
        config_from_dict(tag)
    from predprey.build import train

    run = RunDir(tmp_path / "ray")
    run.create()
    with pytest.raises(ConfigError, match="curriculum runs in one process"):
        train(config_from_dict(data(100)), run, runners=2)  # refused before Ray starts


# -- real runs ------------------------------------------------------------------------
def test_stage_changes_at_its_budget_after_rating_members_at_the_next_size(tmp_path):
    trainer = make(tmp_path, data(total=STAGE, sizes=(4, 8)))
    pop = trainer.source
    trainer.run()  # one stage change, at the step that reaches STAGE; then the run ends
    (row,) = stages(trainer)
    assert STAGE <= row["env_steps"] < STAGE + 16 and row["stage"] == 1 and row["num_agents"] == 8
    # the fitness is each member's coverage at N = 8 on the stage's seeded episodes
    config = config_from_dict(data(STAGE, sizes=(4, 8))).at_stage(1)
    seed = stage_seed(config.train.seed * 1_000_003, 1)
    fitness = row["fitness"]
    parents = evo.stage_parents(fitness, keep=1)
    assert row["parents"] == parents and row[f"member/{parents[0]}/stage/coverage"] == max(fitness)
    kept = parents[0]
    again = training_evals(config, pop.members[kept].actors(), 6, seed)
    assert stage_fitness(again, "coverage") == fitness[kept]  # the kept networks, unchanged
    # the weakest took the fittest's networks; every member now acts among 8 agents
    for m in pop.members:
        assert same(actor(m), actor(pop.members[kept]))
        assert m.source.runner.env.team_sizes["agent"] == 8
        assert m.source.buffer.spec["obs/agent"][0] == (8, m.learner.teams[0].obs_dim)
        assert len(m.source.buffer) == 0  # emptied: rows of 4 agents do not fit
    assert trainer.config.env.params["num_agents"] == 8  # the loop evaluates at 8
    assert trainer.teams[0].n_agents == 8
    latest = checkpoint.load(trainer.run_dir)
    assert latest["curriculum_stage"] == 1 and latest["teams"][0][1] == 8
    rows = trainer.run_dir.read_metrics()  # `predprey plot`: a panel, the change as a line
    assert "stage/coverage" in member_subjects({k for r in rows for k in r}, rows)
    assert (row["env_steps"], "stage") in events(rows, "env_steps")
    reached = policy.load(trainer.run_dir.path).config  # evaluate: at the size reached
    assert reached.env.params["num_agents"] == 8


def test_resume_in_stage_2_goes_on_at_stage_2s_size_exactly(tmp_path):
    total = 3 * STAGE + STAGE // 2  # the last stage (8 agents) runs to the end
    whole = make(tmp_path, data(total), "whole")
    whole.run()
    mid = 2 * STAGE + STAGE // 4  # a quarter into stage 2
    first = make(tmp_path, data(mid), "split")
    first.run()
    assert checkpoint.load(first.run_dir)["curriculum_stage"] == 2
    resumed = make(tmp_path, data(total), "split", resume=True)
    assert resumed.config.env.params["num_agents"] == 8 and resumed.source.stage == 2
    assert all(m.source.runner.env.team_sizes["agent"] == 8 for m in resumed.source.members)
    resumed.run()
    assert [r["env_steps"] for r in stages(resumed)] == [r["env_steps"] for r in stages(whole)]
    assert len(stages(whole)) == 2  # 4 -> 6 -> 8, none after the last stage
    for a, b in zip(whole.source.members, resumed.source.members, strict=True):
        assert a.source.inserted == b.source.inserted and a.source.updates == b.source.updates
        assert same(actor(a), actor(b))
