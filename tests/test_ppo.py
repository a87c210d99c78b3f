"""PPO's math: GAE, trajectory separation as reductions, the clipped loss against a direct
formula, and the config rules of algo.name: ppo."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from predprey.config import ConfigError, PPOConfig, config_from_dict
from predprey.learn.ppo import PPOLearner
from predprey.learn.separation import gae, membership, separate, unit_mean, unit_teams
from predprey.learn.spec import TeamSpec


# -- GAE ---------------------------------------------------------------------------------
def test_gae_matches_a_hand_computed_rollout():
    # one env, one agent, 3 steps: step 1 ends by time limit (bootstraps from the final
    # observation's value 4.0, trace cut), step 2 terminates (no bootstrap)
    rew = np.array([1.0, 2.0, 3.0]).reshape(3, 1, 1)
    value = np.array([0.5, 1.0, 1.5]).reshape(3, 1, 1)
    next_value = np.array([1.0, 4.0, 2.0]).reshape(3, 1, 1)
    terminated = np.array([0, 0, 1]).reshape(3, 1)
    done = np.array([0, 1, 1]).reshape(3, 1)
    adv = gae(rew, value, next_value, terminated, done, gamma=0.9, lam=0.5)
    # delta = [1 + .9 * 1 - .5, 2 + .9 * 4 - 1, 3 - 1.5] = [1.4, 4.6, 1.5]
    # A2 = 1.5; A1 = 4.6 (done cuts the trace); A0 = 1.4 + .9 * .5 * 4.6 = 3.47
    np.testing.assert_allclose(adv.ravel(), [3.47, 4.6, 1.5], rtol=1e-6)


def test_gae_with_lambda_one_is_the_discounted_return_minus_the_value():
    rng = np.random.default_rng(0)
    T, E, A, g = 6, 4, 3, 0.9
    rew, value = rng.normal(size=(T, E, A)), rng.normal(size=(T, E, A))
    next_value = np.concatenate([value[1:], rng.normal(size=(1, E, A))])  # no episode ends
    zeros = np.zeros((T, E))
    adv = gae(rew, value, next_value, zeros, zeros, gamma=g, lam=1.0)
    ret = next_value[-1]
    for t in range(T - 1, -1, -1):
        ret = rew[t] + g * ret
        np.testing.assert_allclose(adv[t], ret - value[t], rtol=1e-5, atol=1e-6)


# -- separation --------------------------------------------------------------------------
def test_membership_levels_for_two_teams():
    sizes = [3, 1]  # e.g. 3 predators, 1 prey
    assert (membership(sizes, "agent") == np.eye(4)).all()
    team = membership(sizes, "team")
    assert team.tolist() == [[1, 0], [1, 0], [1, 0], [0, 1]]
    group = membership(sizes, "group", group_size=2)  # {0, 1}, {2}, {3}: never across teams
    assert group.tolist() == [[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]]
    assert membership(sizes, "group").tolist() == team.tolist()  # size 0 = the team
    assert unit_teams(sizes, group).tolist() == [[1, 0], [1, 0], [0, 1]]


def test_reductions_keep_shapes_and_team_sums():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 7, 4))  # [T, E, A], teams of 3 and 1
    for level, units in (("agent", 4), ("group", 3), ("team", 2)):
        M = membership([3, 1], level, group_size=2)
        assert unit_mean(x, M).shape == (5, 7, units)
        s = separate(x, M)
        assert s.shape == x.shape
        # each team's total is kept; within a unit every agent holds the unit's mean
        np.testing.assert_allclose(s[..., :3].sum(-1), x[..., :3].sum(-1), rtol=1e-6)
        np.testing.assert_allclose(s[..., 3], x[..., 3])
    team = separate(x, membership([3, 1], "team"))
    np.testing.assert_allclose(team[..., 0], x[..., :3].mean(-1), rtol=1e-6)
    np.testing.assert_allclose(team[..., 0], team[..., 2])


# -- the loss ----------------------------------------------------------------------------
TEAM = (TeamSpec("agent", 3, 5),)


def _minibatch(learner, B=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(B, 3, 5, generator=g)
    with torch.no_grad():
        mean, log_std, value = learner._forward({"agent": obs})
    act = mean + 0.3 * torch.randn(B, 3, 2, generator=g)
    logp_old = learner._log_prob(act, mean, log_std) + 0.1 * torch.randn(B, 3, generator=g)
    return {
        "obs/agent": obs, "act": act, "logp": logp_old,
        "adv": torch.randn(B, 3, generator=g), "ret": torch.randn(B, 3, generator=g),
        "value": value + 0.2 * torch.randn(B, 3, generator=g),
    }  # fmt: skip


@pytest.mark.parametrize("level", ["agent", "team"])
@pytest.mark.parametrize("vf_clip", [0.0, 0.1])
def test_ppo_loss_matches_the_direct_formula(level, vf_clip):
    algo = PPOConfig(hidden=(8,), separation=(level,), vf_clip=vf_clip, clip=0.1)
    learner = PPOLearner(TEAM, algo, seed=3)
    mb = _minibatch(learner)
    with torch.no_grad():
        mean, log_std, value = learner._forward({"agent": mb["obs/agent"]})
    dist = torch.distributions.Normal(mean, log_std.exp())
    logp = dist.log_prob(mb["act"]).sum(-1)  # [B, 3]
    ent = dist.entropy().sum(-1)[0]  # [3]
    units = [[0], [1], [2]] if level == "agent" else [[0, 1, 2]]
    pg, vf, en = [], [], []
    for u in units:  # one unit at a time, written out
        ratio = torch.exp((logp[:, u] - mb["logp"][:, u]).sum(1))
        adv = mb["adv"][:, u].mean(1)
        pg.append((ratio, adv))
        v, r, old = value[:, u].mean(1), mb["ret"][:, u].mean(1), mb["value"][:, u].mean(1)
        err = (v - r) ** 2
        if vf_clip:
            err = torch.max(err, (old + (v - old).clamp(-vf_clip, vf_clip) - r) ** 2)
        vf.append(0.5 * err.mean())
        en.append(ent[u].sum())
    advs = torch.stack([a for _, a in pg], 1)
    advs = (advs - advs.mean()) / (advs.std(unbiased=False) + 1e-8)  # over rows and units
    pg_loss = torch.stack(
        [-torch.min(r * advs[:, k], r.clamp(0.9, 1.1) * advs[:, k]).mean()
         for k, (r, _) in enumerate(pg)]
    ).mean()  # fmt: skip
    got = learner.update(mb)
    assert got["loss/policy/agent"] == pytest.approx(float(pg_loss), rel=1e-4, abs=1e-6)
    assert got["loss/value/agent"] == pytest.approx(float(torch.stack(vf).mean()), rel=1e-4)
    assert got["entropy/agent"] == pytest.approx(float(torch.stack(en).mean()), rel=1e-5)


def test_a_step_raises_the_probability_of_actions_with_positive_advantage():
    learner = PPOLearner(TEAM, PPOConfig(hidden=(8,), actor_lr=1e-2), seed=0)
    mb = _minibatch(learner, B=64)
    with torch.no_grad():
        mean, log_std, _ = learner._forward({"agent": mb["obs/agent"]})
        mb["logp"] = learner._log_prob(mb["act"], mean, log_std)
    mb["adv"] = torch.where(torch.arange(64)[:, None] < 32, 1.0, -1.0).expand(64, 3)
    before = mb["logp"]
    for _ in range(3):
        learner.update(mb)
    with torch.no_grad():
        mean, log_std, _ = learner._forward({"agent": mb["obs/agent"]})
        after = learner._log_prob(mb["act"], mean, log_std)
    change = (after - before).mean(1)
    assert change[:32].mean() > 0 > change[32:].mean()


def test_state_dict_round_trip_and_mismatch():
    a = PPOLearner(TEAM, PPOConfig(hidden=(8,)), seed=0)
    a.update(_minibatch(a))
    b = PPOLearner(TEAM, PPOConfig(hidden=(8,)), seed=1)
    b.load_state_dict(a.state_dict())
    mb = _minibatch(a, seed=5)
    assert a.update(mb) == b.update(mb)
    with pytest.raises(ValueError, match="shape"):
        PPOLearner(TEAM, PPOConfig(hidden=(16,))).load_state_dict(a.state_dict())


# -- config ------------------------------------------------------------------------------
def _cfg(algo, **sections):
    return config_from_dict({"env": {"scenario": "spread"}, "algo": algo, **sections})


@pytest.mark.parametrize(
    "algo, sections, message",
    [
        ({"name": "ppo2"}, {}, "algo.name: unknown algorithm 'ppo2'"),
        ({"name": "ppo", "tau": 0.5}, {}, "'algo.tau': a key of algo.name maddpg | matd3"),
        ({"name": "maddpg", "epochs": 3}, {}, "'algo.epochs': a key of algo.name ppo, not"),
        ({"name": "ppo", "separation": ["agent", "crowd", "team"]}, {}, "algo.separation"),
        ({"name": "ppo", "separation": ["agent", "team"]}, {}, "one level or three"),
        ({"name": "ppo"}, {"buffer": {"capacity": 10}}, "ppo keeps no replay buffer"),
        ({"name": "ppo"}, {"train": {"scripted_fraction": 1.0}}, "on-policy"),
        ({"name": "ppo", "rollout_steps": 0}, {}, "algo.rollout_steps must be >= 1"),
        ({"name": "ppo", "gae_lambda": 1.5}, {}, "algo.gae_lambda"),
        ({"name": "ppo", "minibatches": 10**6}, {}, "algo.minibatches must be <="),
        ({"name": "ppo", "clipp": 0.1}, {}, "did you mean 'clip'"),
    ],
)
def test_config_errors_name_the_key(algo, sections, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        _cfg(algo, **sections)


def test_separation_one_level_or_three():
    assert _cfg({"name": "ppo", "separation": "team"}).algo.separation_levels() == ("team",) * 3
    cfg = _cfg({"name": "ppo", "separation": ["agent", "group", "team"], "group_size": 2})
    assert cfg.algo.separation_levels() == ("agent", "group", "team")


@pytest.mark.parametrize("bootstrap", [True, False])
def test_time_limit_bootstraps_or_ends_the_return(bootstrap):
    """T = 2 steps of E = 1 env, the episode truncated (not terminated) at the second step:
    its advantage is r + gamma V(final obs) - V(o) when bootstrapping, r - V(o) when not."""
    algo = PPOConfig(hidden=(8,), gamma=0.9, gae_lambda=1.0,
                      bootstrap_time_limit=bootstrap)  # fmt: skip
    learner = PPOLearner(TEAM, algo, seed=1)
    g = torch.Generator().manual_seed(0)
    obs, nxt = torch.randn(2, 3, 5, generator=g), torch.randn(2, 3, 5, generator=g)
    nxt[0] = obs[1]  # within the episode the next observation is the next row's
    rollout = {
        "obs/agent": obs.numpy(), "next_obs/agent": nxt.numpy(),
        "act/agent": np.zeros((2, 3, 2), np.float32),
        "rew/agent": np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], np.float32),
        "terminated": np.zeros(2, np.float32), "done": np.array([0.0, 1.0], np.float32),
    }  # fmt: skip
    data, _ = learner.prepare(rollout, 2, 1)
    with torch.no_grad():
        v = learner._forward({"agent": obs}, actor=False)[2]  # [2, 3]
        v_next = learner._forward({"agent": nxt}, actor=False)[2]  # [2, 3]
    last = torch.tensor([4.0, 5.0, 6.0]) + (0.9 * v_next[1] if bootstrap else 0.0) - v[1]
    np.testing.assert_allclose(data["adv"][1], last, rtol=1e-5, atol=1e-5)
    first = torch.tensor([1.0, 2.0, 3.0]) + 0.9 * v_next[0] - v[0] + 0.9 * last  # lambda 1
    np.testing.assert_allclose(data["adv"][0], first, rtol=1e-5, atol=1e-5)


def test_rows_of_scripted_opponents_leave_the_update_unchanged():
    """Opponent mixing: rows marked own = 0 (a scripted policy acted) are left out of every
    mean, so the step equals one on the other rows alone, whatever the masked rows hold."""
    algo = PPOConfig(hidden=(8,), vf_clip=0.1)
    masked, direct = PPOLearner(TEAM, algo, seed=5), PPOLearner(TEAM, algo, seed=5)
    mb = _minibatch(masked, B=48)
    keep = torch.arange(48) % 3 != 0  # a third of the rows: scripted
    mixed = {k: v.clone() for k, v in mb.items()}
    for k in ("adv", "ret", "logp"):  # garbage where the policy did not act
        mixed[k][~keep] = 1e3
    mixed["own"] = keep[:, None].float().expand(48, 3)
    got = masked.update(mixed)
    want = direct.update({k: v[keep] for k, v in mb.items()})
    assert got == pytest.approx(want, rel=1e-5, abs=1e-7)
    for p, q in zip(masked.critics.parameters(), direct.critics.parameters(), strict=True):
        torch.testing.assert_close(p, q)
    for p, q in zip(masked.actors.parameters(), direct.actors.parameters(), strict=True):
        torch.testing.assert_close(p, q)


def test_on_policy_rollouts_mark_the_scripted_teams_rows():
    from predprey.runner import Runner

    cfg = config_from_dict({
        "env": {"scenario": "tag", "num_envs": 8, "preset": "mpe"},
        "algo": {"name": "ppo", "hidden": [8]},
        "train": {"scripted_team": "prey", "scripted_policy": "random",
                  "scripted_fraction": 0.25},
    })  # fmt: skip
    learner = PPOLearner(team_specs_of(cfg), cfg.algo)
    from predprey.rollout import Sampler

    runner = Runner(cfg, 0, Sampler(learner), with_done=True)
    rows = runner.collect(3, 0.0, np.random.default_rng(0)).transitions
    np.testing.assert_array_equal(rows["scripted/prey"], np.tile([0.0] * 6 + [1.0] * 2, 3))
    assert "scripted/predator" not in rows  # rows [T * E], time-major
    data, _ = learner.prepare(rows, 3, 8)
    own = data["own"].reshape(3, 8, 4)  # agents: 3 predators, then the prey
    assert own[..., :3].all() and (own[:, :6, 3] == 1).all() and (own[:, 6:, 3] == 0).all()


def team_specs_of(cfg):
    from predprey.learn.spec import team_specs

    return team_specs(cfg.env.make(seed=0))


def test_next_values_from_the_next_row_equal_the_critic_on_next_obs():
    """A real rollout with episode ends inside it: the shortcut of `_next_values` (the next
    row's value within an episode) equals the critic on every row's next observation."""
    from predprey.rollout import Sampler
    from predprey.runner import Runner

    cfg = config_from_dict({
        "env": {"scenario": "tag", "num_envs": 4, "preset": "mpe", "episode_length": 3},
        "algo": {"name": "ppo", "hidden": [8], "critic": "central"},
    })  # fmt: skip
    learner = PPOLearner(team_specs_of(cfg), cfg.algo, seed=2)
    runner = Runner(cfg, 0, Sampler(learner), with_done=True)
    rows = runner.collect(7, 0.0, np.random.default_rng(0)).transitions
    assert 0 < rows["done"].sum() < len(rows["done"])
    obs = {t.name: torch.as_tensor(rows[f"obs/{t.name}"]) for t in learner.teams}
    nxt = {t.name: torch.as_tensor(rows[f"next_obs/{t.name}"]) for t in learner.teams}
    with torch.no_grad():
        v = learner._forward(obs, actor=False)[2]
        want = learner._forward(nxt, actor=False)[2]
        got = learner._next_values(v, nxt, rows["done"], 7, 4)
    torch.testing.assert_close(got, want)


def test_logp_recorded_while_sampling_is_the_policy_density_of_the_action():
    """The rollout's `logp/{team}` (from the sampling noise) equals the Gaussian density of
    the recorded action under the actor `prepare` would run, so `prepare` gives the same
    data with the field as when it recomputes it."""
    from predprey.rollout import Sampler
    from predprey.runner import Runner

    cfg = config_from_dict({
        "env": {"scenario": "tag", "num_envs": 4, "preset": "mpe", "episode_length": 3},
        "algo": {"name": "ppo", "hidden": [8], "share_params": False},
    })  # fmt: skip
    learner = PPOLearner(team_specs_of(cfg), cfg.algo, seed=3)
    with torch.no_grad():
        learner.log_std["predator"].add_(torch.tensor([[0.3, -0.2], [0.0, 0.1], [-0.4, 0.2]]))
    runner = Runner(cfg, 0, Sampler(learner), with_done=True)
    rows = runner.collect(5, 0.0, np.random.default_rng(0)).transitions
    assert rows["logp/predator"].shape == (20, 3) and rows["logp/prey"].shape == (20, 1)
    obs = {t.name: torch.as_tensor(rows[f"obs/{t.name}"]) for t in learner.teams}
    act = torch.cat([torch.as_tensor(rows[f"act/{t}"]) for t in ("predator", "prey")], 1)
    with torch.no_grad():
        mean, log_std, _ = learner._forward(obs)
        want = learner._log_prob(act, mean, log_std)  # [R, A]
    got = np.concatenate([rows["logp/predator"], rows["logp/prey"]], 1)
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-4)

    with_field, _ = learner.prepare(rows, 5, 4)
    without = {k: v for k, v in rows.items() if not k.startswith("logp/")}
    recomputed, _ = learner.prepare(without, 5, 4)
    for k, v in recomputed.items():
        torch.testing.assert_close(with_field[k], v, rtol=1e-4, atol=1e-4)


def test_value_norm_fits_each_team_in_its_own_units():
    """algo.value_norm: the critics regress each team's returns scaled by that team's
    running mean and std (predators' returns ~50, prey's ~-1 here), and GAE reads the
    critics back in return units, so the advantages are those of the unscaled values."""
    teams = (TeamSpec("predator", 2, 5), TeamSpec("prey", 1, 5))
    T, E = 4, 16
    rng = np.random.default_rng(0)
    rollout = {
        **{f"{k}/{t.name}": rng.standard_normal((T * E, t.n_agents, 5)).astype(np.float32)
           for k in ("obs", "next_obs") for t in teams},
        **{f"act/{t.name}": np.zeros((T * E, t.n_agents, 2), np.float32) for t in teams},
        "rew/predator": rng.normal(10.0, 3.0, (T * E, 2)).astype(np.float32),
        "rew/prey": rng.normal(-0.2, 0.05, (T * E, 1)).astype(np.float32),
        "terminated": np.zeros(T * E, np.float32), "done": np.zeros(T * E, np.float32),
    }  # fmt: skip
    algo = PPOConfig(hidden=(8,), value_norm=True)
    learner = PPOLearner(teams, algo, seed=2)
    plain = PPOLearner(teams, PPOConfig(hidden=(8,)), seed=2)
    first, _ = learner.prepare(rollout, T, E)
    base, _ = plain.prepare(rollout, T, E)
    # no statistics before the first rollout: the same advantages as without value_norm
    np.testing.assert_allclose(first["adv"], base["adv"], rtol=1e-5)
    for cols in ([0, 1], [2]):  # the targets of each team: mean 0, std 1
        ret = first["ret"][:, cols]
        assert float(ret.mean()) == pytest.approx(0.0, abs=1e-4)
        assert float(ret.std(unbiased=False)) == pytest.approx(1.0, abs=1e-4)
    mean, std = learner._moments()
    np.testing.assert_allclose(first["ret"] * std + mean, base["ret"], rtol=1e-4, atol=1e-3)
    # a second rollout: the critic's raw outputs are the values, in the units of the
    # statistics before it; the targets are in those that include it
    m0, s0 = learner._moments()
    second, _ = learner.prepare(rollout, T, E)
    obs = {t.name: torch.as_tensor(rollout[f"obs/{t.name}"]) for t in teams}
    with torch.no_grad():
        raw = learner._forward(obs, actor=False)[2]  # [R, 3]
    np.testing.assert_allclose(second["value"], raw, rtol=1e-4, atol=1e-4)
    mean, std = learner._moments()
    returns, values = second["ret"] * std + mean, second["value"] * s0 + m0
    np.testing.assert_allclose(second["adv"], returns - values, rtol=1e-4, atol=1e-3)
    assert float(mean[0]) > 20 and float(mean[2]) < 0  # predators' and prey's own scales
    # the statistics travel with the checkpoint; one without them cannot resume value_norm
    other = PPOLearner(teams, algo, seed=5)
    other.load_state_dict(learner.state_dict())
    torch.testing.assert_close(other.ret_stats, learner.ret_stats)
    state = plain.state_dict()
    del state["ret_stats"]
    with pytest.raises(ValueError, match="return statistics"):
        other.load_state_dict(state)
