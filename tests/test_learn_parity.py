"""Learner.update (all agents stacked, feature-major) against a straightforward per-agent
MADDPG/MATD3 written agent by agent with plain matmuls and torch's own Adam: after a few
updates every network (online and target) must agree."""

import copy

import numpy as np
import pytest
import torch

from predprey.config import OffPolicyConfig
from predprey.learn.maddpg import Learner
from predprey.learn.optim import adam_step
from predprey.learn.spec import TeamSpec

# different observation widths (actors read zero-padded inputs), 3 + 1 agents like tag
TEAMS = (TeamSpec("predator", 3, 5), TeamSpec("prey", 1, 4))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def random_batch(batch, seed):
    rng = np.random.default_rng(seed)
    out = {"terminated": (rng.random(batch) < 0.3).astype(np.float32)}
    out["version"] = np.zeros(batch, np.int64)
    for t in TEAMS:
        out[f"obs/{t.name}"] = rng.normal(size=(batch, t.n_agents, t.obs_dim)).astype(np.float32)
        out[f"act/{t.name}"] = rng.uniform(-1, 1, (batch, t.n_agents, 2)).astype(np.float32)
        out[f"rew/{t.name}"] = rng.normal(size=(batch, t.n_agents)).astype(np.float32)
        out[f"next_obs/{t.name}"] = rng.normal(size=(batch, t.n_agents, t.obs_dim)).astype(
            np.float32
        )
    return out


def net(mlp, model, x, tanh_out):
    """Model `model` of a BatchedMLP on x [B, in], one plain matmul per layer."""
    last = len(mlp.weights) - 1
    for k in range(last + 1):
        x = x @ mlp.weights[k][model] + mlp.biases[k][model, 0]
        x = torch.relu(x) if k < last else x
    return torch.tanh(x) if tanh_out else x


def clip_each_model(params, max_norm):
    """clip_grad_norm_ of every agent's network on its own (model j = index j of each param)."""
    for j in range(params[0].shape[0]):
        norm = torch.sqrt(sum((p.grad[j] ** 2).sum() for p in params))
        for p in params:
            p.grad[j] *= min(1.0, max_norm / (float(norm) + 1e-6))


class Reference:
    """MADDPG/MATD3 one agent at a time, on its own copy of a learner's networks."""

    def __init__(self, learner: Learner):
        self.r = copy.deepcopy(learner)
        r = self.r
        self.actor_opt = torch.optim.Adam(
            [p for t in r.trained for p in r.actors.actors[t.name].parameters()],
            lr=r.algo.actor_lr,
        )
        self.critic_opt = torch.optim.Adam(r.critics.parameters(), lr=r.algo.critic_lr)
        self.version = 0

    def update(self, batch):
        r, algo = self.r, self.r.algo
        b = {k: torch.as_tensor(v) for k, v in batch.items() if k != "version"}
        agents = [(t, i) for t in r.teams for i in range(t.n_agents)]  # joint order
        model = {(t.name, i): 0 if algo.share_params else i for t, i in agents}
        obs = [b[f"obs/{t.name}"][:, i] for t, i in agents]
        act = [b[f"act/{t.name}"][:, i] for t, i in agents]
        nxt = [b[f"next_obs/{t.name}"][:, i] for t, i in agents]
        n_twin, B = (2 if algo.twin_critics else 1), len(b["terminated"])
        with torch.no_grad():
            next_act = [
                net(r.actor_targets.actors[t.name].mlp, model[t.name, i], nxt[j], True)
                for j, (t, i) in enumerate(agents)
            ]
            if algo.target_noise > 0:
                noise = torch.randn((B, len(agents), 2), generator=r.generator)
                noise = (noise * algo.target_noise).clamp(
                    -algo.target_noise_clip, algo.target_noise_clip
                )
                next_act = [(a + noise[:, j]).clamp(-1, 1) for j, a in enumerate(next_act)]
            x_next = torch.cat(nxt + next_act, 1)
        x = torch.cat(obs + act, 1)

        local = algo.critic == "local"  # agent j's critic reads (a_j, o_j) only
        critic_loss = 0.0
        for t in r.trained:
            crit, crit_t = r.critics[t.name], r.critic_targets[t.name]
            for i in range(t.n_agents):
                heads = [k * crit.per_twin + model[t.name, i] for k in range(n_twin)]
                if local:
                    j = agents.index((t, i))
                    x = torch.cat([act[j], obs[j]], 1)
                    x_next = torch.cat([next_act[j], nxt[j]], 1)
                with torch.no_grad():
                    q_next = torch.stack([net(crit_t.mlp, h, x_next, False)[:, 0] for h in heads])
                    y = (
                        b[f"rew/{t.name}"][:, i]
                        + algo.gamma * (1 - b["terminated"]) * q_next.min(0).values
                    )
                for h in heads:
                    critic_loss = critic_loss + ((net(crit.mlp, h, x, False)[:, 0] - y) ** 2).mean()
        self.critic_opt.zero_grad()
        critic_loss.backward()
        for t in r.trained:
            clip_each_model(list(r.critics[t.name].parameters()), algo.grad_clip)
        self.critic_opt.step()

        self.version += 1
        if self.version % algo.policy_delay:
            return
        actor_loss = 0.0
        for t in r.trained:
            for i in range(t.n_agents):
                j = next(k for k, a in enumerate(agents) if a == (t, i))
                pre = net(r.actors.actors[t.name].mlp, model[t.name, i], obs[j], False)
                mu = torch.tanh(pre)
                acts = act[:j] + [mu] + act[j + 1 :]
                crit = r.critics[t.name].mlp  # the updated critic, first twin
                x = torch.cat([mu, obs[j]], 1) if local else torch.cat(obs + acts, 1)
                q = net(crit, model[t.name, i], x, False)
                actor_loss = actor_loss - q.mean() + algo.actor_reg * (pre**2).mean()
        self.actor_opt.zero_grad()
        actor_loss.backward()
        for t in r.trained:
            clip_each_model(list(r.actors.actors[t.name].parameters()), algo.grad_clip)
        self.actor_opt.step()
        with torch.no_grad():
            for target, online in ((r.actor_targets, r.actors), (r.critic_targets, r.critics)):
                for pt, p in zip(target.parameters(), online.parameters(), strict=True):
                    pt.lerp_(p, algo.tau)


@pytest.mark.parametrize(
    "flags",
    [
        {},
        {"twin_critics": True, "policy_delay": 2, "target_noise": 0.2},
        {"share_params": True},
        {"share_params": True, "twin_critics": True},
        {"teams": ("predator",)},
        {"teams": ("prey",), "twin_critics": True},
        {"actor_reg": 0.0},  # the paper's loss alone
        {"actor_reg": 0.5, "share_params": True},  # a penalty large enough to steer the step
        {"critic": "local"},
        {
            "critic": "local",
            "share_params": True,
            "twin_critics": True,
            "policy_delay": 2,
            "target_noise": 0.2,
        },  # fmt: skip
        {"critic": "local", "teams": ("prey",)},
    ],
)
def test_update_matches_per_agent_reference(flags):
    learner = Learner(TEAMS, OffPolicyConfig(hidden=(16, 8), grad_clip=0.5, **flags), seed=2)
    ref = Reference(learner)
    for s in range(4):
        batch = random_batch(32, seed=s)
        learner.update(batch)
        ref.update(batch)
    for name in ("actors", "critics", "actor_targets", "critic_targets"):
        got = dict(getattr(learner, name).named_parameters())
        want = dict(getattr(ref.r, name).named_parameters())
        assert got.keys() == want.keys()
        for k in got:
            torch.testing.assert_close(got[k], want[k], rtol=1e-4, atol=1e-5, msg=f"{name} {k}")
    # the networks did change, so the comparison is not vacuous
    start = Learner(TEAMS, OffPolicyConfig(hidden=(16, 8), **flags), seed=2)
    trained = learner.trained[0].name
    before = start.actors.actors[trained].mlp.weights[0]
    assert not torch.allclose(learner.actors.actors[trained].mlp.weights[0], before)


def test_adam_step_is_torch_fused_adam_step_also_after_reload():
    torch.manual_seed(0)
    ps = [torch.nn.Parameter(torch.randn(3, 4, 5)), torch.nn.Parameter(torch.randn(3, 1, 5))]
    qs = [torch.nn.Parameter(p.detach().clone()) for p in ps]
    a = torch.optim.Adam(ps, lr=1e-2, fused=True)
    b = torch.optim.Adam(qs, lr=1e-2, fused=True)
    for s in range(4):
        for p, q in zip(ps, qs, strict=True):
            p.grad = torch.randn_like(p)
            q.grad = p.grad.clone()
        adam_step(a)
        b.step()
        if s == 1:  # a checkpoint-restored state (new tensors) keeps working
            a.load_state_dict(copy.deepcopy(a.state_dict()))
    for p, q in zip(ps, qs, strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    assert float(a.state_dict()["state"][0]["step"]) == 4.0


def test_adam_step_on_strided_views_is_torch_adam_and_leaves_the_rest():
    """A narrower team's first layer is a strided view into its stack (`StackedMLPs`); the
    fused kernel would read it as dense, so adam_step steps it on a dense copy."""
    torch.manual_seed(0)
    stack = torch.randn(3, 6, 4)
    p = torch.nn.Parameter(torch.empty(0))
    p.data = stack[1:, :4]  # [2, 4, 4] inside [3, 6, 4]: not contiguous
    assert not p.is_contiguous()
    q = torch.nn.Parameter(p.detach().clone())
    rest = stack.clone()
    a = torch.optim.Adam([p], lr=1e-2, fused=True)
    b = torch.optim.Adam([q], lr=1e-2, fused=True)
    for _ in range(3):
        p.grad = torch.randn(2, 6, 4)[:, :4]  # a strided gradient too
        q.grad = p.grad.clone()
        adam_step(a)
        b.step()
    torch.testing.assert_close(p.detach(), q.detach(), rtol=0, atol=0)
    assert torch.equal(stack[0], rest[0]) and torch.equal(stack[1:, 4:], rest[1:, 4:])
