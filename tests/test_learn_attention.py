"""Entity attention networks (`algo.network: attention`, `predprey.learn.attention`): order
and padding invariance, other K at evaluation, checkpoints, MADDPG/MATD3 and PPO updates, and
a short learning check on spread."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from predprey.build import build
from predprey.config import ConfigError, dump_config, load_config
from predprey.env import make
from predprey.evaluate import make_eval_env, run_episodes
from predprey.learn.attention import AttentionActor, AttentionActorSet
from predprey.learn.maddpg import Learner
from predprey.learn.ppo import PPOLearner
from predprey.learn.spec import team_specs, transition_spec
from predprey.rundir import RunDir
from train_helpers import ROOT

SPREAD = dict(obs="local", num_agents=4, density=1.0, own_position=False)


def algo_config(**algo):
    keys = {"algo.network": "attention", "algo.share_params": "true", "algo.hidden": "[16]",
            "algo.attention_dim": "8", **{f"algo.{k}": v for k, v in algo.items()}}  # fmt: skip
    return load_config(
        ROOT / "configs" / "spread_attention.yaml", [f"{k}={v}" for k, v in keys.items()]
    )


def spread_obs(seed=0, steps=3, **params):
    """A spread world's team spec and observations [E, n, D] after a few random steps."""
    env = make("spread", num_envs=5, seed=seed, **{**SPREAD, **params})
    rng = np.random.default_rng(seed)
    obs = env.reset()
    for _ in range(steps):
        obs = env.step({"agent": rng.uniform(-1, 1, (5, env.num_agents, 2))}).obs
    return team_specs(env)[0], obs["agent"]


def actor(team, seed=0):
    return AttentionActor(team, algo_config().algo, torch.Generator().manual_seed(seed))


def act(net, obs):
    with torch.no_grad():
        return net(torch.from_numpy(obs)).numpy()


def test_layout_comes_from_the_env():
    team, _ = spread_obs(k_agents=2, k_landmarks=3, landmark_claims=True, target_rule="free")
    assert [(g.kind, g.start, g.count, g.width) for g in team.entities] == [
        ("agent", 4, 2, 5), ("landmark", 14, 3, 4), ("target", 26, 1, 3),
    ]  # fmt: skip
    assert team.obs_dim == 29
    pred, prey = team_specs(make("tag", obs="local", k_predators=[2, 1], k_prey=[1, 0]))
    assert [(g.kind, g.count) for g in pred.entities] == [("predator", 2), ("prey", 1),
                                                          ("landmark", 2)]  # fmt: skip
    assert [(g.kind, g.count) for g in prey.entities] == [("predator", 1), ("prey", 0),
                                                          ("landmark", 2)]  # fmt: skip
    assert team_specs(make("spread"))[0].entities == ()  # obs mpe: nothing to tokenise


def test_slot_order_does_not_change_the_action():
    team, obs = spread_obs(k_agents=3, k_landmarks=4)
    net = actor(team)
    shuffled = obs.copy()
    agents = obs[..., 4:19].reshape(5, 4, 3, 5)
    landmarks = obs[..., 19:31].reshape(5, 4, 4, 3)
    shuffled[..., 4:19] = agents[:, :, [2, 0, 1]].reshape(5, 4, 15)
    shuffled[..., 19:31] = landmarks[:, :, [3, 1, 0, 2]].reshape(5, 4, 12)
    assert not np.array_equal(shuffled, obs)
    np.testing.assert_allclose(act(net, shuffled), act(net, obs), atol=1e-6)
    moved = obs.copy()  # a real change of what is seen changes the action
    moved[..., 20] += 0.5
    assert np.abs(act(net, moved) - act(net, obs)).max() > 1e-4


def test_empty_slots_are_ignored_and_other_k_runs_the_same_weights():
    # 3 agents see at most 2 others: k_agents 4 adds two empty slots, k_landmarks 5 two more
    small, obs_small = spread_obs(num_agents=3, k_agents=2, k_landmarks=3)
    big, obs_big = spread_obs(num_agents=3, k_agents=4, k_landmarks=5)
    assert obs_big.shape[-1] > obs_small.shape[-1]
    net_small = actor(small)
    net_big = actor(big, seed=1)
    net_big.load_state_dict(net_small.state_dict())  # parameters do not depend on K
    np.testing.assert_allclose(act(net_big, obs_big), act(net_small, obs_small), atol=1e-6)
    # and fewer slots than there are entities: the K nearest, any N
    _, obs_crowd = spread_obs(num_agents=12, k_agents=6, k_landmarks=2)
    crowd = team_specs(make("spread", **{**SPREAD, "num_agents": 12, "k_agents": 6,
                                         "k_landmarks": 2}))[0]  # fmt: skip
    net_crowd = actor(crowd)
    net_crowd.load_state_dict(net_small.state_dict())
    out = act(net_crowd, obs_crowd)
    assert out.shape == (5, 12, 2) and np.isfinite(out).all()


def test_config_needs_shared_params_and_local_observations():
    with pytest.raises(ConfigError, match="share_params"):
        algo_config(share_params="false")
    with pytest.raises(ConfigError, match="algo.network"):
        algo_config(network="transformer")
    cfg = algo_config()
    mpe = team_specs(make("spread", num_agents=3))
    with pytest.raises(ValueError, match="obs: local"):
        Learner(mpe, cfg.algo)


def _batch(teams, rows=32, seed=0):
    spec = transition_spec(teams)
    rng = np.random.default_rng(seed)
    batch = {k: rng.uniform(-1, 1, (rows, *shape)).astype(dt) for k, (shape, dt) in spec.items()}
    batch["terminated"] = (rng.random(rows) < 0.1).astype(np.float32)
    return batch


@pytest.mark.parametrize(
    "algo",
    [
        {},
        {"critic": "local"},
        {"name": "matd3", "twin_critics": "true", "policy_delay": "2", "target_noise": "0.2"},
    ],
)
def test_maddpg_update_trains_every_attention_network(algo):
    cfg = algo_config(**algo)
    teams = team_specs(cfg.env.make(num_envs=1))
    learner = Learner(teams, cfg.algo, seed=0)
    before = {k: v.clone() for k, v in learner.state_dict()["actors"]["agent"].items()}
    critic0 = [p.clone() for p in learner.critics.parameters()]
    for _ in range(2):
        metrics = learner.update(_batch(teams))
    assert set(metrics) >= {"loss/critic/agent", "q/agent", "loss/actor/agent"}
    assert all(np.isfinite(v) for v in metrics.values())
    after = learner.state_dict()["actors"]["agent"]
    assert all(not torch.equal(before[k], after[k]) for k in before)  # every actor tensor moved
    assert all(
        not torch.equal(a, b) for a, b in zip(critic0, learner.critics.parameters(), strict=True)
    )


def test_tag_central_critic_reads_both_teams():
    cfg = load_config(
        ROOT / "configs" / "tag_local.yaml",
        ["algo.network=attention", "algo.hidden=[16]", "algo.attention_dim=8"],
    )
    teams = team_specs(cfg.env.make(num_envs=1))
    learner = Learner(teams, cfg.algo, seed=0)
    metrics = learner.update(_batch(teams))
    assert {"q/predator", "q/prey"} <= set(metrics)
    assert set(learner.critics["predator"].twins[0].encoders) == {"predator", "prey"}


@pytest.mark.parametrize("critic", ["central", "local"])
def test_q_own_is_the_critic_with_each_agents_own_action_replaced(critic):
    """The actor objective's Q_i (observations encoded once, without a graph; one key set per
    agent) is the critic's Q_i with only agent i's action set to mu_i, in value and in its
    gradient on mu."""
    cfg = load_config(
        ROOT / "configs" / "tag_local.yaml",
        ["algo.network=attention", "algo.hidden=[16]", "algo.attention_dim=8",
         f"algo.critic={critic}"],
    )  # fmt: skip
    teams = team_specs(cfg.env.make(num_envs=1))
    value = Learner(teams, cfg.algo, seed=0).critics["predator"].twins[0]
    b = {k: torch.as_tensor(v) for k, v in _batch(teams, rows=16).items()}
    obs = {t.name: b[f"obs/{t.name}"] for t in teams}
    act = {t.name: b[f"act/{t.name}"] for t in teams}
    mu = torch.rand(16, 3, 2, requires_grad=True)  # [B, n, K]: the 3 predators' mu
    q = value.q_own(obs, act, mu)  # [B, 3]
    (grad,) = torch.autograd.grad(q.sum(), mu)
    for i in range(3):
        mu_i = mu.detach().clone().requires_grad_(True)
        own = act["predator"].clone()
        own[:, i] = mu_i[:, i]
        ref = value(obs, {**act, "predator": own})[:, i]  # [B]: Q_i, only a_i replaced
        torch.testing.assert_close(q[:, i], ref, rtol=1e-5, atol=1e-6)
        (ref_grad,) = torch.autograd.grad(ref.sum(), mu_i)
        torch.testing.assert_close(grad[:, i], ref_grad[:, i], rtol=1e-4, atol=1e-6)


def test_the_actor_step_unfreezes_the_critics():
    cfg = algo_config()
    teams = team_specs(cfg.env.make(num_envs=1))
    learner = Learner(teams, cfg.algo, seed=0)
    learner.update(_batch(teams))
    # the critics were frozen for the actor step only: they train again next update
    assert all(p.requires_grad for p in learner.critics.parameters())
    assert not any(p.requires_grad for p in learner.critic_targets.parameters())


def test_checkpoint_round_trip():
    cfg = algo_config()
    teams = team_specs(cfg.env.make(num_envs=1))
    a = Learner(teams, cfg.algo, seed=0)
    a.update(_batch(teams))
    b = Learner(teams, cfg.algo, seed=1)
    b.load_state_dict(a.state_dict())
    _, obs = spread_obs(k_agents=3, k_landmarks=4)
    np.testing.assert_array_equal(a.act({"agent": obs})["agent"], b.act({"agent": obs})["agent"])
    batch = _batch(teams, seed=3)
    ma, mb = a.update(batch), b.update(batch)
    for key in ("loss/critic/agent", "q/agent"):  # the same critics and targets
        assert ma[key] == mb[key]
    pa, pb = a.state_dict()["critic_opt"]["state"], b.state_dict()["critic_opt"]["state"]
    assert all(torch.equal(pa[k]["step"], pb[k]["step"]) for k in pa)


@pytest.mark.parametrize("critic", ["central", "local"])
def test_ppo_learns_with_attention_networks(critic):
    cfg = load_config(
        ROOT / "configs" / "spread_local_ppo.yaml",
        ["algo.network=attention", "algo.hidden=[16]", "algo.attention_dim=8",
         f"algo.critic={critic}", "env.target_rule=none", "env.landmark_claims=false"],
    )  # fmt: skip
    env = cfg.env.make(num_envs=4, seed=0)
    teams = team_specs(env)
    learner = PPOLearner(teams, cfg.algo, seed=0)
    assert isinstance(learner.actors, AttentionActorSet)
    rng = np.random.default_rng(0)
    obs, T = env.reset(), 8
    rows = {k: [] for k in ("obs/agent", "next_obs/agent", "act/agent", "rew/agent",
                            "logp/agent", "terminated", "done")}  # fmt: skip
    for _ in range(T):
        a, logp = learner.sample(obs, rng)
        res = env.step(a)
        final = res.info["final_obs"]["agent"]
        for k, v in (("obs/agent", obs["agent"]), ("next_obs/agent", final),
                     ("act/agent", a["agent"]), ("rew/agent", res.reward["agent"]),
                     ("logp/agent", logp["agent"]), ("terminated", res.info["terminated"]),
                     ("done", res.done)):  # fmt: skip
            rows[k].append(np.asarray(v, np.float32))
        obs = res.obs
    rollout = {k: np.concatenate(v) for k, v in rows.items()}
    before = [p.clone() for p in learner.critics.parameters()]
    metrics = learner.learn(rollout, T, 4, rng)
    assert all(np.isfinite(v) for m in metrics for v in m.values())
    assert all(
        not torch.equal(a, b) for a, b in zip(before, learner.critics.parameters(), strict=True)
    )


def test_a_policy_trained_with_k_runs_with_other_k(tmp_path):
    cfg = load_config(
        ROOT / "configs" / "spread_attention.yaml",
        ["algo.hidden=[16]", "algo.attention_dim=8", "algo.batch_size=32", "env.num_envs=4",
         "algo.env_steps_per_update=20", "buffer.warmup=200", "train.total_env_steps=800",
         "train.eval_every=100000", "train.record_envs=[]", "train.checkpoint_every=1000"],
    )  # fmt: skip
    run = RunDir(tmp_path / "run").create()
    dump_config(cfg, run.config_path)
    build(cfg, run).run()

    from predprey.policy import load

    wide = ["num_agents=12", "num_landmarks=12", "k_agents=6", "k_landmarks=8"]
    policy = load(run.path, env=wide)
    env = policy.config.env.make(num_envs=2, seed=0)
    obs = env.reset()
    assert obs["agent"].shape == (2, 12, 4 + 5 * 6 + 3 * 8)
    forces = policy.act(obs)["agent"]
    assert forces.shape == (2, 12, 2) and np.abs(forces).max() <= 1.0
    # the same agents, seen through the trained K: other slots, the same weights
    trained = load(run.path)
    ref = load(run.path, env=["num_agents=12", "num_landmarks=12"])
    assert ref.teams["agent"].obs_dim == trained.teams["agent"].obs_dim == 31
    result = run_episodes(make_eval_env(policy.config, 4, 0), {"agent": "learned"},
                          policy.actors, 4, 0)  # fmt: skip
    assert 0.0 <= result.metrics["coverage"] <= 1.0
    with pytest.raises(ConfigError, match="kinds"):
        load(run.path, env=["landmark_claims=true"])


@pytest.mark.slow
@pytest.mark.timeout(1800)  # a bound, not a speed check: ~3 minutes on the development machine
def test_attention_maddpg_learns_to_cover_landmarks(tmp_path):
    torch.set_num_threads(1)
    cfg = load_config(ROOT / "configs" / "spread_attention.yaml", LEARN)
    run = RunDir(tmp_path / "run").create()
    dump_config(cfg, run.config_path)
    env = make_eval_env(cfg, 200, seed=7)
    fresh = AttentionActorSet.build(team_specs(env), cfg.algo, seed=0)
    before = run_episodes(env, {"agent": "learned"}, fresh, 200, seed=7).metrics
    build(cfg, run).run()

    from predprey.policy import load

    best = load(run.path, "best").actors  # the best of training's evaluations (other seeds)
    after = run_episodes(env, {"agent": "learned"}, best, 200, seed=7).metrics
    print(f"coverage {before['coverage']:.3f} -> {after['coverage']:.3f}, landmark distance "
          f"{before['landmark_dist']:.3f} -> {after['landmark_dist']:.3f}")  # fmt: skip
    assert after["coverage"] >= max(2 * before["coverage"], before["coverage"] + 0.05)
    assert after["landmark_dist"] <= 0.8 * before["landmark_dist"]


# small spread (2 agents, 25-step episodes), env-step budget: the outcome does not depend on
# the machine's speed
LEARN = [
    "env.num_agents=2", "env.num_landmarks=2", "env.k_agents=1", "env.k_landmarks=2",
    "env.episode_length=25", "env.num_envs=16", "algo.batch_size=128",
    "algo.env_steps_per_update=25", "buffer.warmup=3000", "train.total_env_steps=40000",
    "train.eval_every=8000", "train.eval_episodes=64", "train.record_envs=[]",
    "train.checkpoint_every=10000",
]  # fmt: skip
