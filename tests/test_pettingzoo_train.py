"""Round trips through the pettingzoo scenario: `predprey train` (MADDPG, MATD3, PPO; Box and
Discrete actions) on tests/pz_tiny_world.py and on mpe2, then `predprey.policy.load` + act,
`evaluate`, `simulate` and `animate` on the run; the discrete learners' math."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from predprey import policy
from predprey.cli import main
from predprey.config import OffPolicyConfig, PPOConfig
from predprey.learn.maddpg import ActorSet, Learner
from predprey.learn.ppo import PPOLearner
from predprey.learn.spec import TeamSpec
from predprey.rundir import RunDir
from predprey.viz.animate import animate
from predprey.viz.episode import RunDirError
from train_helpers import ROOT

TRAIN = {"seed": 0, "eval_every": 200, "eval_episodes": 4, "log_every": 100,
         "checkpoint_every": 1000.0, "record_every": 1, "record_envs": [0],
         "torch_threads": 1, "scripted_fraction": 0.0}  # fmt: skip
OFF = {"name": "maddpg", "hidden": [16, 16], "batch_size": 32, "env_steps_per_update": 4}
PPO = {"name": "ppo", "hidden": [16, 16], "rollout_steps": 8, "minibatches": 2, "epochs": 2}


def train(tmp_path, capsys, env, algo, steps=400, buffer=None, name="run"):
    data = {"env": {"scenario": "pettingzoo", "num_envs": 4, "workers": 2, **env},
            "algo": algo, "train": {**TRAIN, "total_env_steps": steps}}  # fmt: skip
    if buffer:
        data["buffer"] = buffer
    cfg = tmp_path / f"{name}.yaml"
    cfg.write_text(yaml.safe_dump(data))
    out = tmp_path / name
    assert main(["train", "--config", str(cfg), "--out", str(out), "--quiet"]) == 0
    return out, json.loads(capsys.readouterr().out)


TINY_CASES = {
    "maddpg-box": ({}, OFF),
    "matd3-discrete": (
        {"discrete": True},
        {**OFF, "name": "matd3", "twin_critics": True, "policy_delay": 2},
    ),  # fmt: skip
    "ppo-discrete": ({"discrete": True}, PPO),
    "ppo-box": ({}, PPO),
}


@pytest.mark.parametrize("case", TINY_CASES)
def test_train_on_a_tiny_world_then_load_and_act(tmp_path, capsys, case):
    kwargs, algo = TINY_CASES[case]
    env = {"make": "pz_tiny_world:parallel_env", "kwargs": kwargs}
    buffer = None if algo is PPO else {"warmup": 64, "capacity": 10000}
    out, line = train(tmp_path, capsys, env, algo, buffer=buffer)
    assert line["env_steps"] >= 400 and line["updates"] > 0
    assert {"eval/return/hunter", "eval/return/runner"} <= set(line["eval"])
    pol = policy.load(out)
    obs = {"hunter": np.zeros((3, 2, 6), np.float32), "runner": np.ones((3, 1, 6), np.float32)}
    act = pol.act(obs)
    assert act["hunter"].shape == (3, 2, 5 if kwargs else 2)
    if kwargs:  # discrete: one-hot choices
        assert (act["hunter"].sum(-1) == 1).all() and set(np.unique(act["hunter"])) <= {0, 1}
    else:
        assert np.abs(act["hunter"]).max() <= 1.0
    assert main(["evaluate", str(out), "--episodes", "4"]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert ev["episodes"] == 4 and ev["episode_length"] == 8.0
    assert main(["simulate", str(out), "--episodes", "1"]) == 0
    sim = json.loads(capsys.readouterr().out)
    assert len(sim["paths"]) == 1
    gif = animate(out, 0, source="simulate", out=tmp_path / "a.gif")
    assert gif.path.is_file() and gif.frames == 9  # 8 steps + the start


def test_a_world_without_positions_says_so_and_plot_still_works(tmp_path, capsys):
    env = {"make": "pz_tiny_world:blind_env", "kwargs": {}}
    out, _ = train(tmp_path, capsys, env, PPO, steps=64)
    assert RunDir(out).episodes("train")
    with pytest.raises(RunDirError, match="exposes no positions to draw"):
        animate(out, 0)
    assert main(["plot", str(out)]) == 0


def test_mpe2_tag_trains_with_maddpg_and_acts_on_mpe2_observations(tmp_path, capsys):
    from mpe2 import simple_tag_v3

    cfg = yaml.safe_load((ROOT / "configs/mpe2_tag.yaml").read_text())["env"]
    env = {k: cfg[k] for k in ("make", "kwargs", "teams")}
    out, line = train(tmp_path, capsys, env, OFF, steps=300, buffer={"warmup": 100})
    # the periodic evaluation plays the scripted evader and chasers in mpe2 itself
    assert line["updates"] > 0 and "eval/return/predator" not in line["eval"]
    assert {"eval/pred_touches_v_evader", "eval/prey_touches_v_chaser"} <= set(line["eval"])
    touches = {}
    for preds, prey in (("learned", "evader"), ("learned", "random"), ("chaser", "learned")):
        args = ["--predators", preds, "--prey", prey, "--episodes", "6", "--seed", "7"]
        assert main(["evaluate", str(out), *args]) == 0
        got = json.loads(capsys.readouterr().out)
        assert (got["predator"], got["prey"], got["episodes"]) == (preds, prey, 6)
        assert got["episode_length"] == 25 and got["touches_per_prey_step"] >= 0
        # touches are mpe2's collisions: the adversaries are paid +10 for each
        assert got["returns"]["predator"] == pytest.approx(10 * got["touches_per_episode"]["mean"])
        touches[preds, prey] = got["touches_per_episode"]["mean"]
    assert touches["chaser", "learned"] > touches["learned", "evader"]  # 300 steps: no hunter
    world = simple_tag_v3.parallel_env(continuous_actions=True)
    obs, _ = world.reset(seed=1)
    act = policy.load(out).act({
        "predator": np.stack([obs[f"adversary_{i}"] for i in range(3)])[None],
        "prey": obs["agent_0"][None, None],
    })  # fmt: skip
    assert act["predator"].shape == (1, 3, 5) and act["prey"].shape == (1, 1, 5)


def test_mpe2_spread_discrete_trains_with_ppo(tmp_path, capsys):
    cfg = yaml.safe_load((ROOT / "configs/mpe2_spread_discrete.yaml").read_text())
    env = {k: cfg["env"][k] for k in ("make", "kwargs")}
    out, line = train(tmp_path, capsys, env, PPO, steps=256)
    assert line["updates"] > 0 and "eval/return/agent" in line["eval"]
    act = policy.load(out).act({"agent": np.zeros((2, 3, 18), np.float32)})
    assert act["agent"].shape == (2, 3, 5) and (act["agent"].sum(-1) == 1).all()


# --- the discrete learners' math ---------------------------------------------------------
TEAMS = (TeamSpec("a", 2, 4, 3, discrete=True), TeamSpec("b", 1, 3, 3, discrete=True))


def test_discrete_actors_act_one_hot_and_explore_by_sampling():
    actors = ActorSet.build(TEAMS, OffPolicyConfig(hidden=(8,)))
    obs = {"a": np.ones((500, 2, 4), np.float32), "b": np.ones((500, 1, 3), np.float32)}
    greedy = actors.act(obs)["a"]  # [500, 2, 3]
    assert (greedy.sum(-1) == 1).all() and (greedy == greedy[0]).all()  # same obs, same choice
    sampled = actors.act(obs, 0.1, np.random.default_rng(0))["a"]
    logits = actors.actors["a"].mlp.numpy_forward(obs["a"][:1])[0]  # [2, 3]
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    assert np.allclose(sampled.mean(0), p, atol=0.07)  # Gumbel-max samples softmax(logits)


def test_ppo_categorical_log_probs_match_torch_and_the_sampler():
    ppo = PPOLearner(TEAMS, PPOConfig(hidden=(8,)), seed=0)
    assert ppo.discrete and len(ppo.log_std) == 0
    obs = {"a": np.random.default_rng(1).normal(size=(6, 2, 4)).astype(np.float32),
           "b": np.random.default_rng(2).normal(size=(6, 1, 3)).astype(np.float32)}  # fmt: skip
    act, logp = ppo.sample(obs, np.random.default_rng(3))
    t_obs = {k: torch.from_numpy(v) for k, v in obs.items()}
    logits, log_std, _ = ppo._forward(t_obs)  # [6, 3, 3]
    joint = torch.from_numpy(np.concatenate([act["a"], act["b"]], 1))  # [6, 3, 3] one-hot
    mine = ppo._log_prob(joint, logits, log_std)
    ref = torch.distributions.Categorical(logits=logits).log_prob(joint.argmax(-1))
    assert log_std is None and torch.allclose(mine, ref, atol=1e-6)
    sampled = np.concatenate([logp["a"], logp["b"]], 1)
    assert np.allclose(sampled, ref.detach().numpy(), atol=1e-5)


def test_maddpg_discrete_update_trains_the_actors_and_refuses_mixed_kinds():
    learner = Learner(TEAMS, OffPolicyConfig(hidden=(8,), batch_size=16), seed=0)
    rng = np.random.default_rng(0)
    B = 16
    batch = {"terminated": np.zeros(B, np.float32), "version": np.zeros(B, np.int64)}
    for t in TEAMS:
        batch[f"obs/{t.name}"] = rng.normal(size=(B, t.n_agents, t.obs_dim)).astype(np.float32)
        batch[f"next_obs/{t.name}"] = batch[f"obs/{t.name}"] + 0.1
        batch[f"act/{t.name}"] = rng.uniform(-1, 1, (B, t.n_agents, 3)).astype(np.float32)
        batch[f"rew/{t.name}"] = rng.normal(size=(B, t.n_agents)).astype(np.float32)
    before = [p.detach().clone() for p in learner.actors.parameters()]
    stats = learner.update(batch)
    assert all(np.isfinite(v) for v in stats.values())
    assert any(
        not torch.equal(a, b) for a, b in zip(before, learner.actors.parameters(), strict=True)
    )
    mixed = (TEAMS[0], TeamSpec("b", 1, 3, 2))
    with pytest.raises(ValueError, match="same kind and size"):
        Learner(mixed, OffPolicyConfig(hidden=(8,)))


def test_ppo_refuses_teams_with_actions_of_different_sizes_in_one_line():
    """simple_speaker_listener's Discrete(3) and Discrete(5) teams: one message naming the
    sizes, not a shape error at the first rollout."""
    teams = (TeamSpec("speaker", 1, 3, 3, True), TeamSpec("listener", 1, 11, 5, True))
    with pytest.raises(ValueError, match=r"one size, got \{'speaker': 3, 'listener': 5\}"):
        PPOLearner(teams, PPOConfig(hidden=(8,)), seed=0)
    PPOLearner(teams, PPOConfig(hidden=(8,), teams=("listener",)), seed=0)  # one team: fine
