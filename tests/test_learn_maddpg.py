"""MADDPG/MATD3 learner: the critic target against a per-agent reference, the MATD3 switches,
checkpoints, determinism and a small learning check."""

import io

import numpy as np
import pytest
import torch

from predprey.config import OffPolicyConfig
from predprey.env import make
from predprey.learn.maddpg import ActorSet, Learner
from predprey.learn.optim import clip_grad_norm_per_model
from predprey.learn.spec import TeamSpec, team_specs, transition_spec

TINY = (TeamSpec("predator", 2, 3), TeamSpec("prey", 1, 4))
MATD3 = dict(twin_critics=True, policy_delay=2, target_noise=0.2)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def random_batch(teams, batch, seed=0, terminated_frac=0.3):
    rng = np.random.default_rng(seed)
    out = {}
    for k, (shape, dtype) in transition_spec(teams).items():
        if k == "terminated":
            out[k] = (rng.random(batch) < terminated_frac).astype(dtype)
        elif k == "version":
            out[k] = np.zeros(batch, dtype)
        elif k.startswith("act/"):
            out[k] = rng.uniform(-1, 1, (batch, *shape)).astype(dtype)
        else:
            out[k] = rng.normal(size=(batch, *shape)).astype(dtype)
    return out


def params_of(module):
    return [p.detach().clone() for p in module.parameters()]


def same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


# ---------------------------------------------------------------- per-agent reference
def mlp_ref(mlp, model, x, tanh_out):
    """Model `model` of a BatchedMLP applied to x [B, in] with plain per-agent matmuls."""
    n_layers = len(mlp.weights)
    for k in range(n_layers):
        x = x @ mlp.weights[k][model] + mlp.biases[k][model, 0]
        if k < n_layers - 1:
            x = torch.relu(x)
    return torch.tanh(x) if tanh_out else x


def reference_critic_loss(learner, batch, use_mask=True, use_min=True):
    """Mean over each team's critics of MSE(Q_i(x), y_i), written agent by agent."""
    teams, algo = learner.teams, learner.algo
    b = {k: torch.as_tensor(v) for k, v in batch.items()}
    n_twin = 2 if algo.twin_critics else 1
    with torch.no_grad():
        next_acts, obs_parts, next_obs_parts, act_parts = [], [], [], []
        for t in teams:
            target = learner.actor_targets.actors[t.name].mlp
            for i in range(t.n_agents):
                model = 0 if algo.share_params else i
                o2 = b[f"next_obs/{t.name}"][:, i]
                next_acts.append(mlp_ref(target, model, o2, tanh_out=True))
                next_obs_parts.append(o2)
                obs_parts.append(b[f"obs/{t.name}"][:, i])
                act_parts.append(b[f"act/{t.name}"][:, i])
        x = torch.cat(obs_parts + act_parts, 1)
        x_next = torch.cat(next_obs_parts + next_acts, 1)
        losses = {}
        for t in learner.trained:
            crit, crit_t = learner.critics[t.name].mlp, learner.critic_targets[t.name].mlp
            per_twin = 1 if algo.share_params else t.n_agents
            errs = []
            for i in range(t.n_agents):
                heads = [k * per_twin + (0 if algo.share_params else i) for k in range(n_twin)]
                q_next = [mlp_ref(crit_t, h, x_next, False)[:, 0] for h in heads]
                q_next = torch.minimum(*q_next) if (use_min and n_twin == 2) else q_next[0]
                mask = (1 - b["terminated"]) if use_mask else 1.0
                y = b[f"rew/{t.name}"][:, i] + algo.gamma_of(t.name) * mask * q_next
                for h in heads:
                    errs.append(((mlp_ref(crit, h, x, False)[:, 0] - y) ** 2).mean())
            losses[t.name] = torch.stack(errs).mean().item()
    return losses


@pytest.mark.parametrize(
    "flags",
    [{}, {"twin_critics": True}, {"share_params": True}, {"team_gamma": {"prey": 0.5}}],
)
def test_critic_target_matches_per_agent_reference(flags):
    algo = OffPolicyConfig(hidden=(8, 6), gamma=0.9, **flags)
    batch = random_batch(TINY, 7, seed=1, terminated_frac=0.5)
    assert 0 < batch["terminated"].sum() < 7  # both terminal and bootstrapped rows
    learner = Learner(TINY, algo, seed=3)
    ref = reference_critic_loss(learner, batch)
    unmasked = reference_critic_loss(learner, batch, use_mask=False)
    metrics = learner.update(batch)
    for t in TINY:
        got = metrics[f"loss/critic/{t.name}"]
        assert got == pytest.approx(ref[t.name], rel=1e-5)
        assert got != pytest.approx(unmasked[t.name], rel=1e-3)  # terminated masks bootstrap


def test_team_gamma_discounts_that_team_only():
    """A team's own discount factor changes its critic's targets and no other team's."""
    batch = random_batch(TINY, 16)
    losses = [
        Learner(TINY, OffPolicyConfig(hidden=(8,), gamma=0.9, **flags), seed=0).update(batch)
        for flags in ({}, {"team_gamma": {"prey": 0.5}}, {"team_gamma": {"prey": 0.9}})
    ]
    assert losses[1]["loss/critic/prey"] != pytest.approx(losses[0]["loss/critic/prey"], rel=1e-3)
    assert losses[1]["loss/critic/predator"] == losses[0]["loss/critic/predator"]
    assert losses[2] == losses[0]  # naming gamma itself changes nothing


def test_twin_critics_use_the_min():
    learner = Learner(TINY, OffPolicyConfig(hidden=(8,), twin_critics=True), seed=0)
    batch = random_batch(TINY, 16)
    with_min = reference_critic_loss(learner, batch)
    first_only = reference_critic_loss(learner, batch, use_min=False)
    metrics = learner.update(batch)
    for t in TINY:
        assert metrics[f"loss/critic/{t.name}"] == pytest.approx(with_min[t.name], rel=1e-5)
        assert metrics[f"loss/critic/{t.name}"] != pytest.approx(first_only[t.name], rel=1e-3)


def test_truncated_rows_bootstrap():
    """terminated=0 (what a time-limit end stores) bootstraps; terminated=1 does not."""
    batch = random_batch(TINY, 8)
    losses = []
    for term in (0.0, 1.0):
        batch["terminated"][:] = term
        learner = Learner(TINY, OffPolicyConfig(hidden=(8,), gamma=0.9), seed=0)
        ref_masked = reference_critic_loss(learner, batch)
        ref_bootstrap = reference_critic_loss(learner, batch, use_mask=False)
        losses.append(learner.update(batch)["loss/critic/prey"])
        assert losses[-1] == pytest.approx(ref_masked["prey"], rel=1e-5)
        if term == 0.0:
            assert losses[-1] == pytest.approx(ref_bootstrap["prey"], rel=1e-5)
    assert losses[0] != pytest.approx(losses[1], rel=1e-3)


# ---------------------------------------------------------------- shapes and API
def test_act_and_update_shapes_on_a_real_rollout():
    env = make("tag", num_envs=8, seed=0, preset="mpe")
    teams = team_specs(env)
    learner = Learner(teams, OffPolicyConfig(batch_size=16), seed=0)
    rng = np.random.default_rng(0)
    obs = env.reset()
    rows = []
    for _ in range(3):
        acts = learner.act(obs, noise_std=0.5, rng=rng)
        for t in teams:
            a = acts[t.name]
            assert a.shape == (8, t.n_agents, 2) and a.dtype == np.float32
            assert np.abs(a).max() <= 1.0
        res = env.step(acts)
        row = {"terminated": res.info["terminated"].astype(np.float32)}
        row["version"] = np.zeros(8, np.int64)
        for t in teams:
            row[f"obs/{t.name}"], row[f"act/{t.name}"] = obs[t.name], acts[t.name]
            row[f"rew/{t.name}"] = res.reward[t.name]
            row[f"next_obs/{t.name}"] = res.info["final_obs"][t.name]
        rows.append(row)
        obs = res.obs
    batch = {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}
    metrics = learner.update(batch)
    assert set(metrics) == {
        f"{k}/{t.name}" for k in ("loss/critic", "loss/actor", "q") for t in teams
    }
    assert all(np.isfinite(v) for v in metrics.values())
    assert learner.version == 1


def test_act_noise_needs_rng_and_deterministic_without_noise():
    learner = Learner(TINY, OffPolicyConfig(hidden=(8,)), seed=0)
    obs = {t.name: np.ones((5, t.n_agents, t.obs_dim), np.float32) for t in TINY}
    with pytest.raises(ValueError, match="rng"):
        learner.act(obs, noise_std=0.1)
    a, b = learner.act(obs), learner.act(obs)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    noisy = learner.act(obs, noise_std=0.3, rng=np.random.default_rng(0))
    assert not np.array_equal(noisy["prey"], a["prey"])
    with pytest.raises(ValueError, match="prey"):
        learner.act({"predator": obs["predator"], "prey": np.ones((5, 1, 3), np.float32)})


def test_policy_delay_updates_actor_and_targets_every_second_step():
    learner = Learner(TINY, OffPolicyConfig(hidden=(8,), **MATD3), seed=0)
    batch = random_batch(TINY, 32)
    actors, targets = params_of(learner.actors), params_of(learner.critic_targets)
    critics = params_of(learner.critics)
    m1 = learner.update(batch)
    assert "loss/actor/predator" not in m1 and "loss/critic/predator" in m1
    assert same(actors, params_of(learner.actors))  # off-step: actor untouched
    assert same(targets, params_of(learner.critic_targets))  # ... and targets too
    assert not same(critics, params_of(learner.critics))  # critics learn every step
    m2 = learner.update(batch)
    assert "loss/actor/predator" in m2 and "loss/actor/prey" in m2
    assert not same(actors, params_of(learner.actors))
    assert not same(targets, params_of(learner.critic_targets))


def test_target_noise_changes_the_target():
    batch = random_batch(TINY, 32)
    plain = Learner(TINY, OffPolicyConfig(hidden=(8,)), seed=0).update(batch)
    noisy = Learner(TINY, OffPolicyConfig(hidden=(8,), target_noise=0.2), seed=0).update(batch)
    assert plain["loss/critic/prey"] != pytest.approx(noisy["loss/critic/prey"], rel=1e-4)


def test_actor_step_leaves_critic_without_gradients():
    learner = Learner(TINY, OffPolicyConfig(hidden=(8,)), seed=0)
    learner.update(random_batch(TINY, 16))
    # critic grads (the stacks') are from the critic step (clipped), not accumulated by the
    # actor loss
    stack = learner.stacks["critics"].tensors()
    assert all(t.grad is not None for t in stack)
    grads = [t.grad.clone() for t in stack]
    learner2 = Learner(TINY, OffPolicyConfig(hidden=(8,), policy_delay=2), seed=0)
    learner2.update(random_batch(TINY, 16))  # same critic step, no actor step
    assert same(grads, [t.grad for t in learner2.stacks["critics"].tensors()])


def test_train_only_some_teams():
    learner = Learner(TINY, OffPolicyConfig(hidden=(8,), teams=("predator",)), seed=0)
    prey = params_of(learner.actors.actors["prey"])
    metrics = learner.update(random_batch(TINY, 16))
    assert {k.split("/")[-1] for k in metrics} == {"predator"}
    assert same(prey, params_of(learner.actors.actors["prey"]))
    with pytest.raises(ValueError, match="wolf"):
        Learner(TINY, OffPolicyConfig(teams=("wolf",)))


# ---------------------------------------------------------------- checkpoints, determinism
@pytest.mark.parametrize("flags", [{}, MATD3, {"share_params": True}])
def test_state_dict_round_trip_gives_identical_act_and_update(flags):
    algo = OffPolicyConfig(hidden=(16, 16), **flags)
    a = Learner(TINY, algo, seed=1)
    for s in range(3):
        a.update(random_batch(TINY, 32, seed=s))
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    buf.seek(0)
    b = Learner(TINY, algo, seed=99)
    b.load_state_dict(torch.load(buf, weights_only=True))
    assert b.version == a.version == 3
    obs = {t.name: np.random.default_rng(5).normal(size=(4, t.n_agents, t.obs_dim)) for t in TINY}
    assert all(np.array_equal(a.act(obs)[k], b.act(obs)[k]) for k in obs)
    batch = random_batch(TINY, 32, seed=7)
    assert a.update(batch) == b.update(batch)  # includes target noise from the RNG state
    assert same(params_of(a.critics), params_of(b.critics))
    assert same(params_of(a.actor_targets), params_of(b.actor_targets))


def test_load_state_dict_rejects_other_shapes():
    state = Learner(TINY, OffPolicyConfig(hidden=(8,))).state_dict()
    with pytest.raises(ValueError, match="shape"):
        Learner(TINY, OffPolicyConfig(hidden=(16,))).load_state_dict(state)
    with pytest.raises(ValueError, match="shape"):
        Learner(TINY, OffPolicyConfig(hidden=(8,), twin_critics=True)).load_state_dict(state)
    other = (TeamSpec("predator", 3, 3), TeamSpec("prey", 1, 4))
    with pytest.raises(ValueError, match="teams"):
        Learner(other, OffPolicyConfig(hidden=(8,))).load_state_dict(state)


def test_load_state_dict_rejects_incomplete_checkpoint():
    state = Learner(TINY, OffPolicyConfig(hidden=(8,))).state_dict()
    del state["critic_opt"]
    with pytest.raises(ValueError, match="critic_opt"):
        Learner(TINY, OffPolicyConfig(hidden=(8,))).load_state_dict(state)


def test_grad_clip_is_per_model_like_separate_clip_grad_norm():
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.zeros(3, 4, 5)), torch.nn.Parameter(torch.zeros(3, 1, 5))]
    for p, scale in zip(params, (1.0, 3.0), strict=True):
        p.grad = torch.randn(p.shape) * scale
    for p in params:
        p.grad[2] *= 1e-3  # model 2 is under the limit: untouched
    expected = []
    for j in range(3):
        sep = [torch.nn.Parameter(p[j].detach().clone()) for p in params]
        for q, p in zip(sep, params, strict=True):
            q.grad = p.grad[j].clone()
        torch.nn.utils.clip_grad_norm_(sep, 0.5)
        expected.append([q.grad for q in sep])
    clip_grad_norm_per_model(params, 0.5)
    for j in range(3):
        for k in range(2):
            torch.testing.assert_close(params[k].grad[j], expected[j][k], rtol=1e-5, atol=1e-6)


def test_same_seed_same_learning_different_seed_differs():
    algo = OffPolicyConfig(hidden=(16,), **MATD3)
    runs = []
    for seed in (4, 4, 5):
        learner = Learner(TINY, algo, seed=seed)
        ms = [learner.update(random_batch(TINY, 32, seed=s)) for s in range(4)]
        runs.append((ms, params_of(learner.actors) + params_of(learner.critics)))
    assert runs[0][0] == runs[1][0] and same(runs[0][1], runs[1][1])
    assert runs[0][0] != runs[2][0]


def test_actor_set_loads_learner_actors():
    algo = OffPolicyConfig(hidden=(8,))
    learner = Learner(TINY, algo, seed=0)
    learner.update(random_batch(TINY, 16))
    actors = ActorSet.build(TINY, algo, seed=123)
    obs = {t.name: np.random.default_rng(1).normal(size=(3, t.n_agents, t.obs_dim)) for t in TINY}
    assert not np.array_equal(actors.act(obs)["predator"], learner.act(obs)["predator"])
    actors.load_actor_state(learner.actor_state())
    assert all(np.array_equal(actors.act(obs)[k], learner.act(obs)[k]) for k in obs)
    with pytest.raises(ValueError, match="unknown team"):
        actors.load_actor_state({"wolf": {}})


# ---------------------------------------------------------------- it learns
def test_critic_loss_decreases_on_a_fixed_batch():
    learner = Learner(TINY, OffPolicyConfig(hidden=(32, 32), policy_delay=1000), seed=0)
    batch = random_batch(TINY, 64)
    first = learner.update(batch)["loss/critic/predator"]
    for _ in range(100):
        last = learner.update(batch)["loss/critic/predator"]
    assert last < 0.3 * first


def test_one_agent_bandit_actor_learns_the_rewarded_action():
    """One step, reward -|a - goal|^2, random (off-policy) actions in the batch: the actor must
    learn to output the goal action whatever it observes."""
    team = (TeamSpec("solo", 1, 2),)
    goal = np.array([0.5, -0.3], np.float32)
    algo = OffPolicyConfig(hidden=(32, 32), actor_lr=1e-3, critic_lr=3e-3)
    learner = Learner(team, algo, seed=0)
    rng = np.random.default_rng(0)
    obs = {"solo": rng.uniform(-1, 1, (64, 1, 2)).astype(np.float32)}
    start = np.abs(learner.act(obs)["solo"] - goal).mean()
    for _ in range(400):
        act = rng.uniform(-1, 1, (64, 1, 2)).astype(np.float32)
        batch = {
            "obs/solo": obs["solo"],
            "act/solo": act,
            "rew/solo": -((act - goal) ** 2).sum(-1),
            "next_obs/solo": obs["solo"],
            "terminated": np.ones(64, np.float32),
            "version": np.zeros(64, np.int64),
        }
        learner.update(batch)
    err = np.abs(learner.act(obs)["solo"] - goal)
    assert start > 0.3 and err.mean() < 0.08 and err.max() < 0.25, (start, err.mean(), err.max())


@pytest.mark.parametrize("share", [False, True])
def test_a_shared_team_critic_runs_once_per_update(share, monkeypatch):
    """With shared parameters every agent of a team gives the team critic the same joint
    input, so the critic step evaluates one head per team (agents keep their own targets);
    per-agent critics evaluate one head per agent."""
    import predprey.learn.maddpg as m

    learner = Learner(TINY, OffPolicyConfig(hidden=(8,), share_params=share), seed=0)
    heads = []
    real = m.mlp_t

    def counting(layers, h, *a, **kw):
        heads.append((layers[0][0].shape[0], h.dim()))
        return real(layers, h, *a, **kw)

    monkeypatch.setattr(m, "mlp_t", counting)
    learner.update(random_batch(TINY, 16))
    joint_input_heads = [n for n, dim in heads if dim == 2]  # critic calls on [D, B]
    assert joint_input_heads == ([2, 2] if share else [3, 3])  # target critic, critic
    assert learner.critic_of.tolist() == ([0, 0, 1] if share else [0, 1, 2])


@pytest.mark.parametrize("share", [False, True])
def test_a_deep_copy_updates_like_the_original_and_apart_from_it(share):
    """Team parameters are views of the learner's stacks; a deep copy must keep that tie
    (copying tensor by tensor cut it: the copy's update diverged at the first step)."""
    import copy

    teams = (TeamSpec("predator", 2, 6), TeamSpec("prey", 1, 5))
    rng = np.random.default_rng(0)
    batch = {k: rng.normal(size=(32, *shape)).astype(dt) for k, (shape, dt) in
             transition_spec(teams).items()}  # fmt: skip
    batch["terminated"] = np.zeros(32, np.float32)
    a = Learner(teams, OffPolicyConfig(hidden=(16,), batch_size=32, share_params=share), seed=0)
    a.update(batch)
    b = copy.deepcopy(a)

    def same(x, y):
        return all(torch.equal(p, q) for p, q in zip(list(x), list(y), strict=True))

    before = [p.detach().clone() for p in a.actors.parameters()]
    assert b.update(batch) == a.update(batch)
    assert same(a.actors.parameters(), b.actors.parameters())
    b.update(batch)  # the copy moves on alone
    assert not same(before, a.actors.parameters())
    assert not same(a.actors.parameters(), b.actors.parameters())
