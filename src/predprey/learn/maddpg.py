"""MADDPG (Lowe et al. 2017) and MATD3 (Ackermann et al. 2019) as one learner.

MATD3 is MADDPG with three switches (as TD3 is DDPG with them):
`twin_critics=True` (clipped double-Q), `policy_delay=2` (actor and target updates every
second critic update), `target_noise=0.2` (target policy smoothing).

Every agent i has a deterministic actor mu_i(o_i) and a centralised critic
Q_i(o_1..o_N, a_1..a_N) that sees all agents of all teams; with `critic: local` its critic
is Q_i(o_i, a_i) instead (DDPG per agent: the critic's size does not depend on N). Teams listed in
`algo.teams` (empty = all) are trained; the others keep their actors fixed (e.g.
loaded from another run) and provide their target actions through those actors.

Discrete actions (teams with `TeamSpec.discrete`, as the original MADDPG on MPE): actors
output scores (logits) of the K choices; actions are one-hot [K], the executed one acted
with Gumbel-max sampling; the actor loss differentiates through a straight-through
Gumbel-softmax sample (hard one-hot forward, softmax gradient) and the target actions are
the target actors' argmax. Every team has the same kind and number K of action components.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from predprey.config import OffPolicyConfig
from predprey.learn import attention, learner_state, masks, nstep
from predprey.learn.learner_state import team_states
from predprey.learn.networks import ActorSet, Critic, StackedMLPs, linear_t, mlp_t
from predprey.learn.optim import (
    StackedAdam,
    adam,
    adam_step,
    clip_grad_norm_per_model,
    drop_grads,
)
from predprey.learn.spec import TeamSpec

__all__ = ["ActorSet", "Learner"]


class Learner:
    def __init__(self, teams: Sequence[TeamSpec], algo: OffPolicyConfig, seed: int = 0):
        self.teams = tuple(teams)
        self.algo = algo
        self.trained = learner_state.trained_teams(self.teams, algo)
        names = [t.name for t in self.teams]
        self.generator = torch.Generator().manual_seed(seed)
        self.version = 0  # completed update() calls

        # Joint critic input layout: all observations, then all actions (teams in env order).
        self.joint_dim = sum(t.n_agents * (t.obs_dim + t.act_dim) for t in self.teams)
        self.n_total = sum(t.n_agents for t in self.teams)  # N
        self.n_trained = sum(t.n_agents for t in self.trained)  # A
        self.n_twin = 2 if algo.twin_critics else 1  # T
        self.obs_pad = max(t.obs_dim for t in self.teams)  # P: actors read padded obs
        self.local = algo.critic == "local"  # critic input [a_i, o_i padded to P]: K + P
        kinds = {(t.act_dim, t.discrete) for t in self.teams}
        if len(kinds) > 1:
            raise ValueError(
                "maddpg/matd3: every team needs the same kind and size of action space, got "
                + ", ".join(f"{t.name}: {'discrete' if t.discrete else 'box'} {t.act_dim}"
                            for t in self.teams)
            )  # fmt: skip
        self.K, self.discrete = self.teams[0].act_dim, self.teams[0].discrete  # K components
        if self.discrete and algo.target_noise > 0:
            raise ValueError("algo.target_noise smooths continuous actions; discrete: set 0")
        # own[a, j, 0, 0]: joint agent slot j is trained agent a (where a's action goes).
        first = dict(zip(names, np.cumsum([0] + [t.n_agents for t in self.teams]), strict=False))
        slots = [int(first[t.name]) + i for t in self.trained for i in range(t.n_agents)]
        self.own = torch.zeros(self.n_trained, self.n_total, 1, 1, dtype=torch.bool)
        self.own[torch.arange(self.n_trained), torch.tensor(slots)] = True  # [A, N, 1, 1]
        self.trained_slots = torch.tensor(slots, dtype=torch.long)  # [A]

        if algo.network == "attention":  # entity attention: predprey.learn.attention
            self.actors, self.critics = attention.networks(self, actions=True)
        else:
            self.actors = ActorSet(self.teams, algo, self.generator)
            self.critics = nn.ModuleDict(
                {t.name: Critic(t, self.joint_dim, algo, self.generator) for t in self.trained}
            )
        # critic_of[a]: the critic head (within a twin) giving trained agent a's Q-value. A
        # shared central team critic reads the same joint input for all its agents, so the
        # critic step runs it once (M heads) and only the targets y stay per agent; local
        # critics read each agent's own input: one head per agent (M = A). All twins run in
        # the stack's order, heads [team, twin, head]: q_rows[k, a] is twin k's head of agent
        # a there, local_rows[h] the agent whose input head h reads.
        critic_of, q_rows, local_rows, first_model, first_row = [], [], [], 0, 0
        for t in self.trained:
            heads = getattr(self.critics[t.name], "heads_per_twin", 1)  # (attention: unused)
            own = [i if heads > 1 else 0 for i in range(t.n_agents)]  # agent i's head
            critic_of += [first_model + j for j in own]
            q_rows.append([[first_row + k * heads + j for j in own] for k in range(self.n_twin)])
            local_rows += [first_model + j for _ in range(self.n_twin) for j in range(heads)]
            first_model += heads
            first_row += self.n_twin * heads
        self.n_critic_models = first_model  # M
        self.critic_of = torch.tensor(critic_of)  # [A]
        self.q_rows = torch.cat([torch.tensor(r) for r in q_rows], 1)  # [T, A]
        self.local_rows = torch.tensor(local_rows)  # [T * A] (local critics: M = A)
        self.actor_targets = copy.deepcopy(self.actors)
        self.critic_targets = copy.deepcopy(self.critics)
        for p in (*self.actor_targets.parameters(), *self.critic_targets.parameters()):
            p.requires_grad_(False)
        self.stacks = {} if algo.network == "attention" else self._stack()

        # Gradient clipping is per agent network, i.e. per model: of each team's parameters
        # (attention networks), of each row of a stack (MLPs; with the same sums).
        self.actor_groups = [list(self.actors.actors[t.name].parameters()) for t in self.trained]
        self.critic_groups = [list(self.critics[t.name].parameters()) for t in self.trained]
        # The optimizers hold the team parameters' state (the checkpoint format).
        self.actor_opt = adam([p for g in self.actor_groups for p in g], algo.actor_lr)
        self.critic_opt = adam(list(self.critics.parameters()), algo.critic_lr)
        # Online/target pairs for the Polyak update (one foreach op over all of them).
        if self.stacks:
            self.actor_adam, self.critic_adam = (
                StackedAdam(opt, self.stacks[role].views)
                for opt, role in ((self.actor_opt, "actors"), (self.critic_opt, "critics"))
            )
            self.online_params, self.target_params = (
                [t for role in roles for t in self.stacks[role].tensors()]
                for roles in (("actors", "critics"), ("actor_targets", "critic_targets"))
            )
        else:
            self.online_params = [*self.actors.parameters(), *self.critics.parameters()]
            self.target_params = [
                *self.actor_targets.parameters(),
                *self.critic_targets.parameters(),
            ]

    def _stack(self) -> dict[str, StackedMLPs]:
        """Each role's parameters in one tensor per layer (the team modules hold views), and
        the rows of its heads: all agents' actors, the trained agents' actors, all critics
        (heads [team, twin, head]) and the first twin's (heads [M])."""
        stacks = {}
        for name, actors in (("actors", self.actors), ("actor_targets", self.actor_targets)):
            mlps = [actors.actors[t.name].mlp for t in self.teams]
            stacks[name] = StackedMLPs(mlps, in_dim=self.obs_pad)
        for name, critics in (("critics", self.critics), ("critic_targets", self.critic_targets)):
            mlps = [critics[t.name].mlp for t in self.trained]
            stacks[name] = StackedMLPs(mlps, self.K + self.obs_pad if self.local else None)
        for name in ("actor_targets", "critic_targets"):
            for t in stacks[name].tensors():
                t.requires_grad_(False)
        actors, critics = stacks["actors"], stacks["critics"]
        i_of = {t.name: i for i, t in enumerate(self.teams)}
        self.all_actor_heads = actors.index(
            [(i, self.actors.actors[t.name].head_models()) for i, t in enumerate(self.teams)]
        )
        self.trained_actor_heads = actors.index(
            [(i_of[t.name], self.actors.actors[t.name].head_models()) for t in self.trained]
        )
        crit = [self.critics[t.name] for t in self.trained]
        self.all_critic_heads = critics.index(
            [(i, [j for k in range(self.n_twin) for j in c.head_models(k)])
             for i, c in enumerate(crit)]
        )  # fmt: skip
        self.first_critic_heads = critics.index([(i, c.head_models(0)) for i, c in enumerate(crit)])
        return stacks

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
        """One MADDPG/MATD3 step on a batch of transitions (fields of `transition_spec`).

        Shapes: B rows, A agents of the trained teams, T twin critics, K action components.
        The networks' inputs and layouts are the helpers' below (`_inputs`, `_target_q`,
        `_q`, `_policy_q`, `_step`; attention networks: `learn.attention`); the math is here."""
        algo, trained = self.algo, self.trained
        f = {k: torch.as_tensor(batch[k]) for k in batch if k != "version"}
        f = masks.zero_left(f, self.teams)  # agents that left the episode: zero rows (learn/masks)
        live = masks.alive(f, trained)  # [B, A]; None: every agent took part
        live = None if live is None else live.T  # [A, B]: the rows each agent's means count
        not_done = 1.0 - f["terminated"]  # [B]; truncation still bootstraps
        rew = torch.cat([f[f"rew/{t.name}"] for t in trained], 1).T  # [A, B]
        x = self._inputs(f)

        # --- critic: y_i = r_i + gamma * (1 - terminated) * min_k Q'_ik(x', a'), where
        # a' = (mu'_1(o'_1), ..., mu'_N(o'_N)) [+ clipped noise]; k over twin critics
        with torch.no_grad():
            discount = self._discount(f)  # gamma; n-step rows: their own gamma^k
            y = rew + discount * not_done * self._target_q(x).min(0).values  # [A, B]
        q = self._q(x)  # [T, A, B]
        per_head = masks.mean((q - y).pow(2), live)  # [T, A]: each agent's critic MSE, per twin
        self._step("critics", per_head.sum())  # a model gets the sum of its agents' gradients
        q_mean = masks.mean(q[0].detach(), live)  # [A]
        stats = {"loss/critic": per_head.detach().mean(0), "q": q_mean}  # [A]

        # --- actor (every policy_delay updates): grad of mean_B Q_i(x | a_i = mu_i(o_i)) with
        # the updated first-twin critics held fixed; other agents' actions from the batch.
        if (self.version + 1) % algo.policy_delay == 0:
            q_mu, pre = self._policy_q(x)  # [A, B], pre-tanh actions [A, K, B]
            actor_loss = -masks.mean(q_mu, live)  # [A]: each policy loss
            if algo.actor_reg > 0:  # keeps tanh off its flat ends (openai/maddpg: 1e-3)
                sq = pre.pow(2)  # [A, K, B]
                reg = sq.mean((1, 2)) if live is None else masks.mean(sq.mean(1), live)
                actor_loss = actor_loss + algo.actor_reg * reg
            self._step("actors", actor_loss.sum())
            stats["loss/actor"] = actor_loss.detach()

            # --- targets: theta' <- tau * theta + (1 - tau) * theta'
            with torch.no_grad():
                torch._foreach_lerp_(self.target_params, self.online_params, algo.tau)

        self.version += 1
        return self._team_means(stats)

    # The networks' side of `update`. Stacked MLPs run together, feature-major
    # (`networks.mlp_t`): observations [N, P, B] give actions [N, K, B]; the joint input
    # [D, B] (D: every observation, then every action) gives Q [T * M, 1, B] (heads in the
    # stack's order [team, twin, head]; `q_rows` picks each agent's); local critics read
    # [T * A, K + P, B] (each agent's action and padded observation), M = A. N agents of all
    # teams, P the widest observation, M critic models per twin.
    def _inputs(self, f: Mapping[str, torch.Tensor]) -> dict:
        """What the networks read of a batch f (tensors, left agents zeroed)."""
        if self.algo.network == "attention":
            return attention.maddpg_inputs(self, f)
        B = f["terminated"].shape[0]
        obs_flat = torch.cat([f[f"obs/{t.name}"].reshape(B, -1) for t in self.teams], 1)
        act_all = torch.cat([f[f"act/{t.name}"] for t in self.teams], 1)  # [B, N, K]
        if self.discrete:  # executed choices as one-hot (warm-up rows hold random scores)
            act_all = F.one_hot(act_all.argmax(2), self.K).to(act_all.dtype)  # [B, N, K]
        return {"f": f, "B": B, "obs_flat": obs_flat, "act_all": act_all}  # [B, sum_obs]

    def _target_q(self, x: dict) -> torch.Tensor:
        """[T, A, B]: the target critics' Q'_ik(x', a') of each trained agent, a' the target
        actors' next actions (+ clipped noise where `target_noise`)."""
        if self.algo.network == "attention":
            return attention.maddpg_target_q(self, x)
        algo, f, B, N, K, T = self.algo, x["f"], x["B"], self.n_total, self.K, self.n_twin
        next_obs = self._agent_major(f, "next_obs", self.teams)  # [N, P, B]
        target_actors = self.stacks["actor_targets"].heads(self.all_actor_heads)
        next_act = mlp_t(target_actors, next_obs, tanh_out=not self.discrete)  # [N, K, B]
        if self.discrete:  # the target policies' choices, one-hot
            next_act = F.one_hot(next_act.argmax(1), K).permute(0, 2, 1).to(next_act.dtype)
        if algo.target_noise > 0:  # target policy smoothing
            noise = torch.randn((B, N, K), generator=self.generator).permute(1, 2, 0)
            noise = (noise * algo.target_noise).clamp(
                -algo.target_noise_clip, algo.target_noise_clip
            )
            next_act = (next_act + noise).clamp(-1.0, 1.0)  # [N, K, B]
        if self.local:  # [T * A, K + P, B]: agent a's own next action and observation
            slots = self.trained_slots
            x_next = self._local_input(next_act[slots], next_obs[slots], T)
        else:
            next_obs_flat = torch.cat(
                [f[f"next_obs/{t.name}"].reshape(B, -1) for t in self.teams], 1
            )  # [B, sum_obs]
            x_next = torch.cat([next_obs_flat.T, next_act.reshape(N * K, B)])  # [D, B]
        critic_targets = self.stacks["critic_targets"].heads(self.all_critic_heads)
        return self._q_of_agents(mlp_t(critic_targets, x_next))  # [T, A, B]

    def _q(self, x: dict) -> torch.Tensor:
        """[T, A, B]: the critics' Q_ik(x, a) of each trained agent on the batch's actions."""
        if self.algo.network == "attention":
            return attention.maddpg_q(self, x)
        if self.local:
            own_act = x["act_all"].permute(1, 2, 0)[self.trained_slots]  # [A, K, B]
            x_in = self._local_input(own_act, self._agent_major(x["f"], "obs", self.trained),
                                     self.n_twin)  # fmt: skip
        else:  # x = (o_1..o_N, a_1..a_N): the joint input, shared by every agent's critic
            x_in = torch.cat([x["obs_flat"], x["act_all"].reshape(x["B"], -1)], 1).T  # [D, B]
        return self._q_of_agents(mlp_t(self.stacks["critics"].heads(self.all_critic_heads), x_in))

    def _policy_q(self, x: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Q_i(x | a_i = mu_i(o_i)) [A, B] of each trained agent's own policy, through the
        first-twin critics held fixed (no critic gradients), and the actors' outputs before
        tanh (discrete: the scores) [A, K, B]."""
        if self.algo.network == "attention":
            return attention.maddpg_policy_q(self, x)
        A, B = self.n_trained, x["B"]
        obs = self._agent_major(x["f"], "obs", self.trained)  # [A, P, B]
        pre = mlp_t(self.stacks["actors"].heads(self.trained_actor_heads), obs)  # [A, K, B]
        mu = self._gumbel_softmax(pre) if self.discrete else torch.tanh(pre)  # [A, K, B]
        if self.local:  # Q_i(o_i, mu_i(o_i)) with the first twin's weights held fixed
            fixed = [(w.detach(), b.detach()) for w, b in self._first_twin()]
            return mlp_t(fixed, self._local_input(mu, obs, 1)).view(A, B), pre
        return self._central_q_mu(mu, x["act_all"], x["obs_flat"]), pre

    def _discount(self, f: Mapping[str, torch.Tensor]) -> torch.Tensor | float:
        """The discount of each trained agent's target: gamma, a float; n-step rows'
        gamma^k [B]; with discount factors per team (`algo.team_gamma`) [A, B]."""
        if nstep.DISCOUNT in f or not self.algo.team_gamma:
            return f.get(nstep.DISCOUNT, self.algo.gamma)
        B = f["terminated"].shape[0]
        return torch.cat([
            torch.as_tensor(f.get(f"{nstep.DISCOUNT}/{t.name}", self.algo.gamma_of(t.name)),
                            dtype=torch.float32).expand(t.n_agents, B)
            for t in self.trained
        ])  # fmt: skip

    def _step(self, role: str, loss: torch.Tensor) -> None:
        """One optimizer step of `role` ("critics" or "actors") on the gradient of `loss`,
        each agent network's gradient norm clipped to `grad_clip` first."""
        clip = self.algo.grad_clip
        if not self.stacks:  # attention networks: per-team parameters
            opt = self.critic_opt if role == "critics" else self.actor_opt
            drop_grads(opt)
            loss.backward()
            for group in self.critic_groups if role == "critics" else self.actor_groups:
                clip_grad_norm_per_model(group, clip)
            adam_step(opt)
            return
        stack = self.stacks[role]
        stack.drop_grads()
        loss.backward()
        clip_grad_norm_per_model(stack.tensors(), clip, stack.module_grads())
        (self.critic_adam if role == "critics" else self.actor_adam).step()

    def _central_q_mu(self, mu, act_all, obs_flat) -> torch.Tensor:
        """[A, B]: Q_i(x | a_i = mu_i(o_i)) for mu [A, K, B], with the first-twin central
        critics held fixed and the other agents' actions from the batch (act_all [B, N, K])."""
        A, N, B = self.n_trained, self.n_total, mu.shape[2]
        critic_of = self.critic_of
        # Agent i's joint action: the batch's, with agent i's own slot set to mu_i.
        act_t = act_all.permute(1, 2, 0)  # [N, K, B]
        acts = torch.where(self.own, mu.unsqueeze(1), act_t).reshape(A, N * self.K, B)
        with torch.no_grad():  # critic weights are constants: no critic gradients
            (w1, b1), *rest = self._first_twin()  # [M]
            d_obs = obs_flat.shape[1]
            # [A, h, B]: the obs rows' part (index_select: a row copy, where [] gathers per element)
            h_obs = linear_t(w1[:, :d_obs], b1, obs_flat.T).index_select(0, critic_of)
            w1_act = w1[:, d_obs:].index_select(0, critic_of)  # [A, K N, h]: action rows
            rest = [(w.index_select(0, critic_of), b.index_select(0, critic_of))
                    for w, b in rest]  # layers 2.., [A] heads  # fmt: skip
        h = torch.relu_(torch.baddbmm(h_obs, w1_act.transpose(1, 2), acts))  # [A, h, B]
        return mlp_t(rest, h).view(A, B)

    def _gumbel_softmax(self, logits: torch.Tensor) -> torch.Tensor:
        """Straight-through Gumbel-softmax sample of logits [A, K, B] (temperature 1): the
        one-hot choice forward, the softmax's gradient backward (Jang et al. 2017)."""
        g = -torch.empty_like(logits).exponential_(generator=self.generator).log()  # Gumbel
        soft = torch.softmax(logits + g, 1)  # [A, K, B]
        hard = F.one_hot(soft.argmax(1), self.K).permute(0, 2, 1).to(soft.dtype)
        return hard + soft - soft.detach()

    def _local_input(self, act: torch.Tensor, obs: torch.Tensor, twins: int) -> torch.Tensor:
        """Local critics' input: each agent's action act [A, K, B] and observation obs
        [A, P, B], [A, K + P, B] for one twin, for all [T * A, K + P, B] in the heads' order."""
        x = torch.cat([act, obs], 1)  # [A, K + P, B]
        return x[self.local_rows] if twins > 1 else x

    def _agent_major(self, f: Mapping[str, torch.Tensor], key: str, teams) -> torch.Tensor:
        """Observations `key/{team}` [B, n_t, obs_t] of `teams`' agents, zero-padded to P and
        stacked: [n, P, B] (a strided view, read as is by the matmuls)."""
        parts = [f[f"{key}/{t.name}"] for t in teams]  # [B, n_t, obs_t]
        parts = [o if o.shape[2] == self.obs_pad else F.pad(o, (0, self.obs_pad - o.shape[2]))
                 for o in parts]  # [B, n_t, P]  # fmt: skip
        return torch.cat(parts, 1).permute(1, 2, 0)  # [n, P, B]

    def _q_of_agents(self, q: torch.Tensor) -> torch.Tensor:
        """Each trained agent's Q-values of every twin, [T, A, B], from the critic heads' q
        [heads, 1, B] (`q_rows`); index_select, whose backward is a plain index_add."""
        rows = q.view(q.shape[0], -1).index_select(0, self.q_rows.view(-1))  # [T * A, B]
        return rows.view(*self.q_rows.shape, -1)

    def _first_twin(self):
        """The first twin's critic layers, heads [M]."""
        return self.stacks["critics"].heads(self.first_critic_heads)

    def _team_means(self, stats: Mapping[str, torch.Tensor]) -> dict[str, float]:
        """{name: [A] per-agent values} -> {name/team: mean over the team's agents}."""
        values = np.asarray(torch.stack(list(stats.values())).tolist())  # [stats, A] float64
        metrics, first = {}, 0
        for t in self.trained:  # one np.mean a team (each ~7 us), the same sums as per row
            means = values[:, first : first + t.n_agents].mean(1).tolist()
            metrics.update({f"{name}/{t.name}": m for name, m in zip(stats, means, strict=True)})
            first += t.n_agents
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

    def __deepcopy__(self, memo) -> Learner:
        """A copy through the state dict: the team modules' parameters are views of the
        stacks (`StackedMLPs`), a tie that copying tensor by tensor would cut."""
        twin = Learner(self.teams, self.algo)
        twin.load_state_dict(copy.deepcopy(self.state_dict(), memo))
        return twin

    def state_dict(self) -> dict:
        """Everything needed to continue learning; torch.save-able with weights_only=True."""
        return learner_state.save(self, {
            "actors": team_states(self.actors.actors),
            "actor_targets": team_states(self.actor_targets.actors),
            "critics": team_states(self.critics),
            "critic_targets": team_states(self.critic_targets),
        })  # fmt: skip

    def load_state_dict(self, state: Mapping) -> None:
        """Restore a `state_dict()`; other teams, network shapes or missing parts: ValueError."""
        learner_state.check(self, state, self.state_dict_keys)
        learner_state.load_teams(state, "actors", self.actors.actors)
        learner_state.load_teams(state, "actor_targets", self.actor_targets.actors)
        learner_state.load_teams(state, "critics", self.critics)
        learner_state.load_teams(state, "critic_targets", self.critic_targets)
        learner_state.load_rest(self, state)
