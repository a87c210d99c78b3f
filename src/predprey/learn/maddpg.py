"""MADDPG (Lowe et al. 2017) and MATD3 (Ackermann et al. 2019) as one learner.

MATD3 is MADDPG with three switches (as TD3 is DDPG with them):
`twin_critics=True` (clipped double-Q), `policy_delay=2` (actor and target updates every
second critic update), `target_noise=0.2` (target policy smoothing).

Every agent i has a deterministic actor mu_i(o_i) and a centralised critic
Q_i(o_1..o_N, a_1..a_N) that sees all agents of all teams. Teams listed in
`AlgoConfig.teams` (empty = all) are trained; the others keep their actors fixed (e.g.
loaded from another run) and provide their target actions through those actors.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from predprey.config import AlgoConfig
from predprey.learn.networks import ActorSet, Critic, load_module_state
from predprey.learn.spec import TeamSpec

__all__ = ["ActorSet", "Learner"]


class Learner:
    def __init__(self, teams: Sequence[TeamSpec], algo: AlgoConfig, seed: int = 0):
        self.teams = tuple(teams)
        self.algo = algo
        names = [t.name for t in self.teams]
        unknown = [t for t in algo.teams if t not in names]
        if unknown:
            raise ValueError(f"algo.teams names unknown team {unknown[0]!r}; teams are {names}")
        self.trained = tuple(t for t in self.teams if not algo.teams or t.name in algo.teams)
        self.generator = torch.Generator().manual_seed(seed)
        self.version = 0  # completed update() calls

        # Joint critic input layout: all observations, then all actions (teams in env order).
        self.joint_dim = sum(t.n_agents * (t.obs_dim + t.act_dim) for t in self.teams)
        self.n_total = sum(t.n_agents for t in self.teams)
        # own[team][i, 0, j, 0]: joint agent slot j is team agent i (where its action goes).
        first = np.cumsum([0] + [t.n_agents for t in self.teams])
        self.own = {}
        for t, f in zip(self.teams, first, strict=False):
            own = torch.zeros(t.n_agents, 1, self.n_total, 1, dtype=torch.bool)
            own[torch.arange(t.n_agents), 0, int(f) + torch.arange(t.n_agents), 0] = True
            self.own[t.name] = own  # [n_t, 1, N, 1]

        self.actors = ActorSet(self.teams, algo, self.generator)
        self.critics = nn.ModuleDict(
            {t.name: Critic(t, self.joint_dim, algo, self.generator) for t in self.trained}
        )
        self.actor_targets = copy.deepcopy(self.actors)
        self.critic_targets = copy.deepcopy(self.critics)
        for p in (*self.actor_targets.parameters(), *self.critic_targets.parameters()):
            p.requires_grad_(False)

        self.trained_actor_params = [
            p for t in self.trained for p in self.actors.actors[t.name].parameters()
        ]
        self.actor_opt = _adam(self.trained_actor_params, algo.actor_lr)
        self.critic_opt = _adam(list(self.critics.parameters()), algo.critic_lr)
        # Online/target pairs for the Polyak update (one foreach op over all of them).
        self.online_params = [*self.actors.parameters(), *self.critics.parameters()]
        self.target_params = [*self.actor_targets.parameters(), *self.critic_targets.parameters()]

    # ------------------------------------------------------------------ acting
    def act(
        self,
        obs: Mapping[str, np.ndarray],
        noise_std: float = 0.0,
        rng: np.random.Generator | None = None,
    ) -> dict[str, np.ndarray]:
        return self.actors.act(obs, noise_std, rng)

    def actor_state(self) -> dict[str, dict[str, torch.Tensor]]:
        return self.actors.actor_state()

    def load_actor_state(self, state: Mapping[str, Mapping[str, torch.Tensor]]) -> None:
        self.actors.load_actor_state(state)

    # ------------------------------------------------------------------ learning
    def update(self, batch: Mapping[str, np.ndarray]) -> dict[str, float]:
        """One MADDPG/MATD3 step on a batch of transitions (fields of `transition_spec`)."""
        algo, teams = self.algo, self.teams
        f = {k: torch.as_tensor(batch[k]) for k in batch if k != "version"}
        B = f["terminated"].shape[0]
        obs = {t.name: f[f"obs/{t.name}"] for t in teams}  # [B, n_t, obs_t]
        act = {t.name: f[f"act/{t.name}"] for t in teams}  # [B, n_t, 2]
        next_obs = {t.name: f[f"next_obs/{t.name}"] for t in teams}  # [B, n_t, obs_t]
        not_done = (1.0 - f["terminated"]).view(1, B)  # [1, B]; truncation still bootstraps

        # x = (o_1..o_N, a_1..a_N): the joint critic input, shared by every agent's critic.
        obs_flat = torch.cat([obs[t.name].reshape(B, -1) for t in teams], 1)  # [B, sum_obs]
        act_all = torch.cat([act[t.name] for t in teams], 1)  # [B, N, 2]
        x = torch.cat([obs_flat, act_all.reshape(B, -1)], 1)  # [B, sum_obs + sum_act]

        # --- critic: y_i = r_i + gamma * (1 - terminated) * min_k Q'_ik(x', a'), where
        # a' = (mu'_1(o'_1), ..., mu'_N(o'_N)) [+ clipped noise]; k over twin critics
        with torch.no_grad():
            next_act = self.actor_targets(next_obs)  # {team: [B, n_t, 2]}
            next_act_all = torch.cat([next_act[t.name] for t in teams], 1)  # [B, N, 2]
            if algo.target_noise > 0:  # target policy smoothing
                noise = torch.randn(next_act_all.shape, generator=self.generator)
                noise = (noise * algo.target_noise).clamp(
                    -algo.target_noise_clip, algo.target_noise_clip
                )
                next_act_all = (next_act_all + noise).clamp(-1.0, 1.0)
            next_obs_flat = torch.cat([next_obs[t.name].reshape(B, -1) for t in teams], 1)
            x_next = torch.cat([next_obs_flat, next_act_all.reshape(B, -1)], 1)  # [B, D]
            y = {}
            for t in self.trained:
                q_next = self.critic_targets[t.name].joint(x_next).min(0).values  # [n_t, B]
                r = f[f"rew/{t.name}"].T  # [n_t, B]
                y[t.name] = r + algo.gamma * not_done * q_next  # [n_t, B]
                assert y[t.name].shape == (t.n_agents, B)

        metrics: dict[str, float] = {}
        critic_loss = 0.0
        for t in self.trained:
            q = self.critics[t.name].joint(x)  # [n_twin, n_t, B]
            assert q.shape[1:] == (t.n_agents, B)
            per_head = (q - y[t.name]).pow(2).mean(2)  # [n_twin, n_t]: each critic's MSE
            critic_loss = critic_loss + per_head.sum()  # sum: each head gets its own gradient
            metrics[f"loss/critic/{t.name}"] = per_head.mean().item()
            metrics[f"q/{t.name}"] = q[0].mean().item()
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        for t in self.trained:
            clip_grad_norm_per_model(list(self.critics[t.name].parameters()), algo.grad_clip)
        self.critic_opt.step()

        # --- actor (every policy_delay updates): grad of mean_B Q_i(x | a_i = mu_i(o_i)),
        # other agents' actions from the batch; critic weights get no gradient.
        if (self.version + 1) % algo.policy_delay == 0:
            actor_loss = 0.0
            for t in self.trained:
                n = t.n_agents
                mu = self.actors.actors[t.name](obs[t.name])  # [B, n, 2]
                # Agent i's input: the batch's joint action with agent i's own slot set to mu_i.
                acts_i = torch.where(
                    self.own[t.name], mu.transpose(0, 1).unsqueeze(2), act_all
                )  # [n, B, N, 2]
                q_i = self.critics[t.name].first(obs_flat, acts_i.reshape(n, B, -1))  # [n, B]
                loss_t = -q_i.mean(1)  # [n]: each agent's policy loss
                actor_loss = actor_loss + loss_t.sum()
                metrics[f"loss/actor/{t.name}"] = loss_t.mean().item()
            self.actor_opt.zero_grad(set_to_none=True)
            actor_loss.backward(inputs=self.trained_actor_params)  # no critic weight grads
            for t in self.trained:
                clip_grad_norm_per_model(
                    list(self.actors.actors[t.name].parameters()), algo.grad_clip
                )
            self.actor_opt.step()

            # --- targets: theta' <- tau * theta + (1 - tau) * theta'
            with torch.no_grad():
                torch._foreach_lerp_(self.target_params, self.online_params, algo.tau)

        self.version += 1
        return metrics

    # ------------------------------------------------------------------ checkpoints
    state_dict_keys = (
        "teams",
        "trained",
        "actors",
        "actor_targets",
        "critics",
        "critic_targets",
        "actor_opt",
        "critic_opt",
        "version",
        "generator",
    )

    def state_dict(self) -> dict:
        """Everything needed to continue learning; torch.save-able with weights_only=True."""

        def team_states(modules: nn.ModuleDict) -> dict:
            return {k: _cpu(m.state_dict()) for k, m in modules.items()}

        return {
            "teams": [[t.name, t.n_agents, t.obs_dim, t.act_dim] for t in self.teams],
            "trained": [t.name for t in self.trained],
            "actors": team_states(self.actors.actors),
            "actor_targets": team_states(self.actor_targets.actors),
            "critics": team_states(self.critics),
            "critic_targets": team_states(self.critic_targets),
            "actor_opt": self.actor_opt.state_dict(),
            "critic_opt": self.critic_opt.state_dict(),
            "version": int(self.version),
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: Mapping) -> None:
        """Restore a `state_dict()`; other teams, network shapes or missing parts: ValueError."""
        missing = [k for k in self.state_dict_keys if k not in state]
        if missing:
            raise ValueError(f"learner checkpoint lacks {missing}")
        want = [[t.name, t.n_agents, t.obs_dim, t.act_dim] for t in self.teams]
        have = [list(t) for t in state.get("teams", [])]
        if have != want:
            raise ValueError(f"checkpoint teams {have} do not match this learner's teams {want}")
        trained = [t.name for t in self.trained]
        if list(state.get("trained", [])) != trained:
            raise ValueError(
                f"checkpoint trains teams {state.get('trained')}, this learner trains {trained}"
            )
        for key, modules in (
            ("actors", self.actors.actors),
            ("actor_targets", self.actor_targets.actors),
            ("critics", self.critics),
            ("critic_targets", self.critic_targets),
        ):
            for name, module in modules.items():
                if name not in state[key]:
                    raise ValueError(f"learner checkpoint has no {key} for team {name!r}")
                load_module_state(module, state[key][name], f"{key} {name!r}")
        try:
            self.actor_opt.load_state_dict(state["actor_opt"])
            self.critic_opt.load_state_dict(state["critic_opt"])
        except (ValueError, KeyError) as e:
            raise ValueError(f"checkpoint optimizer state does not fit: {e}") from None
        self.version = int(state["version"])
        self.generator.set_state(state["generator"])


def _adam(params: list[nn.Parameter], lr: float) -> torch.optim.Adam:
    return torch.optim.Adam(params, lr=lr, fused=True)  # one kernel per tensor on CPU


def _cpu(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in sd.items()}


def clip_grad_norm_per_model(params: Sequence[torch.Tensor], max_norm: float) -> None:
    """Clip the gradient norm of each model separately (params have a leading model dim),
    as if every agent's network had its own `clip_grad_norm_`."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads or max_norm <= 0:
        return
    norms = torch.stack([torch.linalg.vector_norm(g.flatten(1), dim=1) for g in grads])  # [P, m]
    scale = (max_norm / (torch.linalg.vector_norm(norms, dim=0) + 1e-6)).clamp(max=1.0)  # [m]
    torch._foreach_mul_(grads, [scale.view(-1, *([1] * (g.dim() - 1))) for g in grads])
