"""PPO-clip (Schulman et al. 2017) with GAE(lambda) for teams of agents, with trajectory
separation (seed 003): rewards, values and advantages per agent, per group or per team
(`predprey.learn.separation`).

Policy: agent i's action is Gaussian around mu_i(o_i) = tanh(MLP(o_i)) with a learned,
state-independent std exp(log_std) per model. mu is MADDPG's `ActorSet`, so
`predprey.policy`, evaluation and best snapshots read a PPO run unchanged and act with the
mean. Samples are not squashed: the environment clips forces to [-1, 1] (as CleanRL and
JaxMARL do) and log-probabilities are those of the unclipped sample. Discrete actions
(`TeamSpec.discrete`, every trained team alike): the actor's outputs are the logits of a
categorical policy; actions are one-hot [K], the mean action the most likely choice.

Value: V_i(o_i) with `critic: local` (IPPO), or V_i(o_1..o_N, onehot(i)) with
`critic: central` (MAPPO: every agent's observation, and which agent of its team it is, so
a shared critic can still tell its agents apart). One model per agent, or per team with
`share_params`, as the actors.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from predprey.config import PPOConfig
from predprey.learn import attention, learner_state, masks
from predprey.learn.learner_state import team_states
from predprey.learn.networks import ActorSet, BatchedMLP
from predprey.learn.optim import adam, adam_step, clip_grad_norm_per_model, drop_grads
from predprey.learn.separation import gae, membership, separate, unit_mean, unit_teams
from predprey.learn.spec import TeamSpec

PARTS = ("reward", "value", "advantage")
LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


class PPOLearner:
    def __init__(self, teams: Sequence[TeamSpec], algo: PPOConfig, seed: int = 0):
        self.teams, self.algo = tuple(teams), algo
        self.trained = learner_state.trained_teams(self.teams, algo)
        self.generator = torch.Generator().manual_seed(seed)
        self.version = 0  # gradient steps taken
        self.local = algo.critic == "local"
        joint = sum(t.n_agents * t.obs_dim for t in self.teams)
        kinds = {t.discrete for t in self.trained}
        if len(kinds) > 1:
            raise ValueError("ppo: the trained teams' actions must be all discrete or all Box")
        sizes = {t.name: t.act_dim for t in self.trained}
        if len(set(sizes.values())) > 1:  # the teams' actors run as heads of one batched MLP
            raise ValueError(
                f"ppo: the trained teams' actions must have one size, got {sizes}; train the "
                "teams of one size together (algo.teams) and leave the others to their policy"
            )
        self.discrete = kinds == {True}  # categorical policies over one-hot actions

        self.attention = algo.network == "attention"  # predprey.learn.attention
        if self.attention:
            self.actors, self.critics = attention.networks(self, actions=False)
        else:
            self.actors, self.critics = ActorSet(self.teams, algo, self.generator), nn.ModuleDict()
        self.log_std = nn.ParameterDict()
        for t in self.trained:
            models = 1 if algo.share_params else t.n_agents
            if not self.discrete:
                std = torch.full((models, t.act_dim), float(algo.log_std_init))
                self.log_std[t.name] = nn.Parameter(std)
            if not self.attention:
                d_in = t.obs_dim if self.local else joint + t.n_agents
                sizes = (d_in, *algo.hidden, 1)
                self.critics[t.name] = BatchedMLP(models, sizes, self.generator, tanh_out=False)

        sizes = [t.n_agents for t in self.trained]
        levels = algo.separation_levels()
        self.levels = dict(zip(PARTS, levels, strict=True))
        M = {p: membership(sizes, lvl, algo.group_size) for p, lvl in self.levels.items()}
        self.M_np = M  # [A, U_part] numpy, for the rollout's GAE
        self.M = {p: torch.from_numpy(m) for p, m in M.items()}
        self.K = {p: torch.from_numpy(unit_teams(sizes, m)) for p, m in M.items()}  # [U, k]

        # value normalisation: per trained team, EMAs of the return and its square and the
        # EMA of 1 (debiasing), [3, k]; the critics output returns in these units
        self.team_of = torch.cat([torch.full((t.n_agents,), j) for j, t in enumerate(self.trained)])
        self.ret_stats = torch.zeros(3, len(self.trained), dtype=torch.float64)

        self.actor_groups = [
            [*self.actors.actors[t.name].parameters()]
            + ([self.log_std[t.name]] if t.name in self.log_std else [])
            for t in self.trained
        ]
        self.critic_groups = [list(self.critics[t.name].parameters()) for t in self.trained]
        self.actor_opt = adam([p for g in self.actor_groups for p in g], algo.actor_lr)
        self.critic_opt = adam(list(self.critics.parameters()), algo.critic_lr)

    def set_lr_scale(self, scale: float) -> None:
        """Learning rates = scale x algo.actor_lr / critic_lr (`algo.anneal_lr`)."""
        a = self.algo
        for opt, lr in ((self.actor_opt, a.actor_lr), (self.critic_opt, a.critic_lr)):
            for group in opt.param_groups:
                group["lr"] = lr * scale

    # ------------------------------------------------------------------ acting
    def act(self, obs, noise_std: float = 0.0, rng=None) -> dict[str, np.ndarray]:
        """The mean actions (deterministic; evaluation)."""
        return self.actors.act(obs, noise_std, rng)

    def sample(self, obs: Mapping[str, np.ndarray], rng: np.random.Generator):
        """Training actions: mean + std * z, z ~ N(0, 1), for the trained teams (unclipped,
        float32; the mean for teams kept fixed), and their log-probabilities {team: [E, n]}
        (`_log_prob` of the sample, from z: what `prepare` would otherwise recompute)."""
        out, logp = self.actors.act(obs), {}
        for t in self.trained:
            if self.discrete:  # a categorical sample (Gumbel-max) and its log-probability
                o = np.asarray(obs[t.name], np.float32)
                logits = self.actors.actors[t.name].mlp.numpy_forward(o)  # [E, n, K]
                choice = (logits - np.log(rng.exponential(size=logits.shape))).argmax(-1)
                z = logits - logits.max(-1, keepdims=True)
                log_p = z - np.log(np.exp(z).sum(-1, keepdims=True))  # [E, n, K]
                out[t.name] = np.eye(t.act_dim, dtype=np.float32)[choice]  # [E, n, K]
                logp[t.name] = np.take_along_axis(log_p, choice[..., None], -1)[..., 0]
                continue
            log_std = self.log_std[t.name].detach().numpy()  # [models, 2]
            a = out[t.name]  # [E, n, 2]
            z = rng.standard_normal(a.shape, dtype=np.float32)
            out[t.name] = a + z * np.exp(log_std)
            logp[t.name] = _normal_log_prob(z, log_std)  # [E, n]
        return out, logp

    def actor_state(self) -> dict[str, dict[str, torch.Tensor]]:
        return self.actors.actor_state()

    def policy_state(self) -> dict[str, dict[str, np.ndarray]]:
        """What a remote runner samples with: the actors and log-stds, as NumPy arrays."""
        state = {k: {n: v.numpy() for n, v in sd.items()} for k, sd in self.actor_state().items()}
        return {"actors": state, "log_std": {k: p.detach().numpy().copy()
                                             for k, p in self.log_std.items()}}  # fmt: skip

    def load_policy_state(self, state: Mapping) -> None:
        actors = state["actors"]
        self.actors.load_actor_state(
            {k: {n: torch.tensor(v) for n, v in sd.items()} for k, sd in actors.items()}
        )
        with torch.no_grad():
            for k, v in state["log_std"].items():
                self.log_std[k].copy_(torch.as_tensor(v))

    def load_actor_state(self, state) -> None:
        self.actors.load_actor_state(state)

    # ------------------------------------------------------------------ networks
    def _forward(self, obs: Mapping[str, torch.Tensor], actor: bool = True):
        """obs {team: [B, n, d]} -> mean [B, A, 2], log_std [A, 2] (None without the actor),
        value [B, A] of the trained teams' A agents."""
        means, log_stds, values = [], [], []
        for t in self.trained:
            if actor:
                if self.attention:
                    means.append(self.actors.actors[t.name](obs[t.name]))  # [B, n, 2]
                else:
                    mlp = self.actors.actors[t.name].mlp
                    means.append(_per_agent(mlp, obs[t.name], tanh=not self.discrete))
                if not self.discrete:  # (discrete: the means are the logits)
                    log_stds.append(self.log_std[t.name].expand(t.n_agents, -1))  # [n, 2]
            if self.attention:
                values.append(self.critics[t.name](obs)[0])  # [B, n]
                continue
            x = self._critic_input(obs, t)  # [B, n, d_in]
            values.append(_per_agent(self.critics[t.name], x)[..., 0])  # [B, n]
        value = torch.cat(values, 1)
        if not actor:
            return None, None, value
        log_std = torch.cat(log_stds, 0) if log_stds else None
        return torch.cat(means, 1), log_std, value

    def _critic_input(self, obs: Mapping[str, torch.Tensor], t: TeamSpec) -> torch.Tensor:
        if self.local:
            return obs[t.name]  # [B, n, obs_dim]
        B, n = obs[t.name].shape[:2]
        joint = torch.cat([obs[s.name].reshape(B, -1) for s in self.teams], 1)  # [B, J]
        who = torch.eye(n).expand(B, n, n)  # [B, n, n]: one-hot agent index in its team
        return torch.cat([joint.unsqueeze(1).expand(B, n, -1), who], 2)  # [B, n, J + n]

    @staticmethod
    def _log_prob(act: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor | None):
        """Diagonal Gaussian log-density, summed over the action components: [B, A]; with
        log_std None, the categorical log-probability of one-hot act under logits `mean`."""
        if log_std is None:
            return (act * torch.log_softmax(mean, -1)).sum(-1)
        return _normal_log_prob((act - mean) / log_std.exp(), log_std)

    # ------------------------------------------------------------------ learning
    def learn(self, rollout: Mapping[str, np.ndarray], T: int, E: int, rng) -> list[dict]:
        """One PPO iteration on a rollout of T vector steps of E envs (fields of
        `predprey.runner` transitions plus `done`, rows [T * E] time-major): GAE, then
        `epochs` passes of `minibatches` gradient steps. Returns each step's metrics and,
        last, the iteration's explained variance."""
        a = self.algo
        data, ev = self.prepare(rollout, T, E)
        R = T * E
        metrics = []
        for _ in range(a.epochs):
            for idx in np.array_split(rng.permutation(R), a.minibatches):
                i = torch.from_numpy(idx)
                metrics.append(self.update({k: v[i] for k, v in data.items()}))
        metrics.append(ev)
        return metrics

    @torch.no_grad()
    def prepare(self, rollout: Mapping[str, np.ndarray], T: int, E: int):
        """Tensors of the rollout for `update` (rows [T * E]) and the explained variance of
        the values before the update, per team."""
        a, M = self.algo, self.M_np
        rollout = masks.zero_left(rollout, self.teams)  # agents that left: zero rows
        obs = {t.name: torch.as_tensor(rollout[f"obs/{t.name}"]) for t in self.teams}
        nxt = {t.name: torch.as_tensor(rollout[f"next_obs/{t.name}"]) for t in self.teams}
        act = torch.cat([torch.as_tensor(rollout[f"act/{t.name}"]) for t in self.trained], 1)
        rew = np.concatenate([rollout[f"rew/{t.name}"] for t in self.trained], 1)  # [R, A]
        keys = [f"logp/{t.name}" for t in self.trained]
        if all(k in rollout for k in keys):  # recorded while sampling (`sample`)
            logp = torch.cat([torch.as_tensor(rollout[k]) for k in keys], 1)  # [R, A]
            v = self._forward(obs, actor=False)[2]  # [R, A]
        else:
            mean, log_std, v = self._forward(obs)  # [R, A, 2], [A, 2], [R, A]
            logp = self._log_prob(act, mean, log_std)  # [R, A]
        v_next = self._next_values(v, nxt, rollout["done"], T, E)  # [R, A]
        v, v_next = self._unscale(v), self._unscale(v_next)  # in return units
        live = masks.alive(rollout, self.trained)  # [R, A]; None: every agent took part
        if live is not None:  # an agent that left has no value, nor one to bootstrap from
            after = masks.next_alive(live.reshape(T, E, -1), rollout["done"].reshape(T, E))
            v = v * torch.from_numpy(live)
            v_next = v_next * torch.from_numpy(after.reshape(T * E, -1))

        def tea(x):  # [R, A] -> [T, E, A]
            return np.asarray(x, np.float32).reshape(T, E, -1)

        value = separate(tea(v.numpy()), M["value"])  # [T, E, A]: each agent its unit's value
        ends = rollout["terminated" if a.bootstrap_time_limit else "done"].reshape(T, E)
        adv = gae(
            separate(tea(rew), M["reward"]), value, separate(tea(v_next.numpy()), M["value"]),
            ends, rollout["done"].reshape(T, E), a.gamma, a.gae_lambda,
        )  # fmt: skip
        ret = adv + value  # [T, E, A]: lambda-returns, the value targets
        old_value = self._scale(torch.from_numpy(value.reshape(T * E, -1)))  # critic's units
        if a.value_norm:  # then the targets in the units that include this rollout
            self._track_returns(ret.reshape(T * E, -1))
        none = np.zeros(T * E, np.float32)
        own = np.concatenate([  # [R, A]: 1 where the agent's policy acted (train.scripted_*)
            np.repeat(1.0 - rollout.get(f"scripted/{t.name}", none)[:, None], t.n_agents, 1)
            for t in self.trained
        ], 1) * (1.0 if live is None else live)  # fmt: skip
        data = {
            **{f"obs/{k}": o for k, o in obs.items()},
            "act": act, "logp": logp, "adv": torch.from_numpy(adv.reshape(T * E, -1)),
            "ret": self._scale(torch.from_numpy(ret.reshape(T * E, -1))),  # critic units
            "value": old_value,
            "own": torch.from_numpy(own.astype(np.float32)),
        }  # fmt: skip
        v_u, r_u = unit_mean(value, M["value"]), unit_mean(ret, M["value"])  # [T, E, Uv]
        K = self.K["value"].numpy()
        resid = ((r_u - v_u).reshape(-1, K.shape[0]).var(0) @ K) / K.sum(0)  # [k]
        spread = (r_u.reshape(-1, K.shape[0]).var(0) @ K) / K.sum(0)
        ev = 1.0 - resid / np.maximum(spread, 1e-8)
        names = [f"explained_variance/{t.name}" for t in self.trained]
        return data, {k: float(x) for k, x in zip(names, ev, strict=True)}

    def _moments(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Running mean and std of each agent's team's returns [A] (0, 1 without
        `value_norm` or before the first rollout)."""
        m1, m2, w = self.ret_stats
        if not self.algo.value_norm or not bool((w > 0).all()):
            return torch.zeros(len(self.team_of)), torch.ones(len(self.team_of))
        mean = m1 / w
        std = (m2 / w - mean * mean).clamp(min=1e-4).sqrt()
        return mean[self.team_of].float(), std[self.team_of].float()

    def _scale(self, ret: torch.Tensor) -> torch.Tensor:
        """Returns [R, A] -> the critics' units."""
        mean, std = self._moments()
        return (ret - mean) / std

    def _unscale(self, v: torch.Tensor) -> torch.Tensor:
        """Critic outputs [R, A] -> returns."""
        mean, std = self._moments()
        return v * std + mean

    def _track_returns(self, ret: np.ndarray, beta: float = 0.99) -> None:
        """Fold one rollout's returns [R, A] into each team's EMAs (MAPPO's ValueNorm,
        per iteration rather than per minibatch)."""
        r = torch.from_numpy(ret).double()
        k = len(self.trained)
        n = torch.bincount(self.team_of, minlength=k).double() * r.shape[0]  # [k] samples
        s1 = torch.zeros(k, dtype=torch.float64).index_add_(0, self.team_of, r.sum(0))
        s2 = torch.zeros(k, dtype=torch.float64).index_add_(0, self.team_of, (r * r).sum(0))
        batch = torch.stack([s1 / n, s2 / n, torch.ones(k, dtype=torch.float64)])  # [3, k]
        self.ret_stats.mul_(beta).add_((1 - beta) * batch)

    def _next_values(self, v, nxt, done, T: int, E: int) -> torch.Tensor:
        """V of every row's next observation [R, A]. Within an episode that is the next
        row's observation (rows are time-major: row t * E + e, then (t + 1) * E + e), whose
        value `v` [R, A] holds; only the final observations of ended episodes and the
        rollout's last step go through the critic again (a third of `prepare` saved)."""
        v_next = torch.empty_like(v)
        v_next[:-E] = v[E:]
        fresh = done.reshape(T, E).astype(bool)
        fresh[-1] = True
        rows = torch.from_numpy(np.flatnonzero(fresh))  # [F]
        v_next[rows] = self._forward({k: x[rows] for k, x in nxt.items()}, actor=False)[2]
        return v_next

    def update(self, mb: Mapping[str, torch.Tensor]) -> dict[str, float]:
        """One PPO gradient step on a minibatch of B rows.

        Shapes: A agents of the trained teams, U_r/U_v/U_a units of the reward/value/
        advantage level, k trained teams. mb: obs/{team} [B, n, d], act [B, A, 2], logp (old)
        [B, A], adv, ret, value (old) [B, A] at agent resolution (each agent holds its
        unit's number), own [B, A] (optional): 0 where a scripted opponent acted instead of
        the agent's policy (opponent mixing), rows every mean below leaves out. Per
        advantage unit u the ratio is that of the unit's joint action,
        rho_u = exp(sum_{i in u} log pi(a_i|o_i) - log pi_old(a_i|o_i)), so team level is the
        single brain with the team's log-probabilities summed.

            L_pi = -mean_B min(rho_u A_u, clip(rho_u, 1 - eps, 1 + eps) A_u)   A_u normalised
            L_V  = 1/2 mean_B (V_u - R_u)^2   [or max with the clipped V_old + clip(V - V_old)]
            L    = sum over teams of mean over its units of L_pi + c_V L_V - c_H H_u
        """
        a, M, K = self.algo, self.M, self.K
        mean, log_std, value = self._forward({t.name: mb[f"obs/{t.name}"] for t in self.teams})
        logp = self._log_prob(mb["act"], mean, log_std)  # [B, A]
        own = mb["own"] if "own" in mb else torch.ones_like(mb["adv"])  # [B, A]
        if self.discrete:  # [A]: the categorical entropy, mean over the agent's own rows
            log_p = torch.log_softmax(mean, -1)  # [B, A, K]
            entropy = _mean_rows(-(log_p.exp() * log_p).sum(-1), own)
        else:
            entropy = (0.5 + LOG_SQRT_2PI + log_std).sum(-1)  # [A]: state-independent std

        w_a, w_v = unit_mean(own, M["advantage"]), unit_mean(own, M["value"])  # [B, U]

        # --- policy: clipped surrogate per advantage unit
        log_ratio = ((logp - mb["logp"]) * own) @ M["advantage"]  # [B, U_a]: unit's sum
        ratio = log_ratio.exp()
        adv = _normalise(unit_mean(mb["adv"], M["advantage"]), K["advantage"], w_a)  # [B, U_a]
        surrogate = torch.min(ratio * adv, ratio.clamp(1 - a.clip, 1 + a.clip) * adv)
        pg = -_mean_rows(surrogate, w_a)  # [U_a]
        ent = entropy @ M["advantage"]  # [U_a]: the unit's joint entropy

        # --- value per value unit
        v, ret = unit_mean(value * own, M["value"]), unit_mean(mb["ret"], M["value"])  # [B, U_v]
        err = (v - ret).pow(2)
        if a.vf_clip > 0:
            old = unit_mean(mb["value"], M["value"])
            clipped = old + (v - old).clamp(-a.vf_clip, a.vf_clip)
            err = torch.max(err, (clipped - ret).pow(2))
        vf = 0.5 * _mean_rows(err, w_v)  # [U_v]

        per_team = {  # [k] each: means over the team's units
            "loss/policy": _team_mean(pg, K["advantage"]),
            "loss/value": _team_mean(vf, K["value"]),
            "entropy": _team_mean(ent, K["advantage"]),
        }
        loss = per_team["loss/policy"] + a.vf_coef * per_team["loss/value"]
        loss = (loss - a.ent_coef * per_team["entropy"]).sum()
        drop_grads(self.actor_opt)
        drop_grads(self.critic_opt)
        loss.backward()
        for group in (*self.actor_groups, *self.critic_groups):
            clip_grad_norm_per_model(group, a.grad_clip)
        adam_step(self.actor_opt)
        adam_step(self.critic_opt)
        self.version += 1

        with torch.no_grad():
            kl = _mean_rows((ratio - 1) - log_ratio, w_a)  # [U_a]: k3 estimate of KL(old||new)
            clipped_share = _mean_rows(((ratio - 1).abs() > a.clip).float(), w_a)
            per_team["approx_kl"] = _team_mean(kl, K["advantage"])
            per_team["clip_frac"] = _team_mean(clipped_share, K["advantage"])
            values = torch.stack([x.detach() for x in per_team.values()]).tolist()
        return {
            f"{name}/{t.name}": row[j]
            for name, row in zip(per_team, values, strict=True)
            for j, t in enumerate(self.trained)
        }

    # ------------------------------------------------------------------ checkpoints
    state_dict_keys = ("teams", "trained", "actors", "log_std", "critics", "actor_opt",
                       "critic_opt", "version", "generator")  # fmt: skip

    def state_dict(self) -> dict:
        """Everything needed to continue learning; torch.save-able with weights_only=True."""
        return learner_state.save(self, {
            "actors": team_states(self.actors.actors),
            "log_std": {k: p.detach().clone() for k, p in self.log_std.items()},
            "critics": team_states(self.critics),
            "ret_stats": self.ret_stats.clone(),
        })  # fmt: skip

    def load_state_dict(self, state: Mapping) -> None:
        """Restore a `state_dict()`; other teams, shapes or missing parts: ValueError."""
        learner_state.check(self, state, self.state_dict_keys, " (not a ppo checkpoint?)")
        learner_state.load_teams(state, "actors", self.actors.actors)
        learner_state.load_teams(state, "critics", self.critics)
        with torch.no_grad():
            for name, p in self.log_std.items():
                if tuple(state["log_std"][name].shape) != tuple(p.shape):
                    raise ValueError(f"log_std {name!r} has another shape")
                p.copy_(state["log_std"][name])
        if "ret_stats" in state:  # (absent from checkpoints written before value_norm)
            if tuple(state["ret_stats"].shape) != tuple(self.ret_stats.shape):
                raise ValueError("ret_stats has another shape")
            self.ret_stats.copy_(state["ret_stats"])
        elif self.algo.value_norm:
            raise ValueError("checkpoint has no return statistics for algo.value_norm")
        learner_state.load_rest(self, state)


def _per_agent(mlp: BatchedMLP, x: torch.Tensor, tanh: bool = False) -> torch.Tensor:
    """x [B, n, d] through one model per agent (or one shared model) -> [B, n, out].

    Row-major (h W + b): at PPO's minibatches of thousands of rows this is faster than the
    feature-major `mlp_t` that suits MADDPG's thin batches."""
    B, n, d = x.shape
    h = x.transpose(0, 1).reshape(mlp.n_models, -1, d)  # [models, rows, d]
    layers = mlp.layers()
    for k, (w, b) in enumerate(layers):
        h = torch.baddbmm(b, h, w)  # [models, rows, out]
        if k < len(layers) - 1:
            h = torch.relu_(h)  # in place: one activation fewer allocated per layer
    h = torch.tanh(h) if tanh else h
    return h.reshape(n, B, -1).transpose(0, 1)


def _team_mean(x: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Per-unit x [U] -> the mean over each team's units [k]."""
    return (x @ K) / K.sum(0)


def _normal_log_prob(z, log_std):
    """Log-density of a diagonal Gaussian at mean + exp(log_std) * z, summed over the action
    components: [..., 2] -> [...]. NumPy (sampling) or torch (the loss) alike."""
    return (-0.5 * z * z - log_std - LOG_SQRT_2PI).sum(-1)


def _mean_rows(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Per-unit mean over the rows of weight 1 (w [B, U] of 0 / 1): [U]."""
    return (x * w).sum(0) / w.sum(0).clamp(min=1.0)


def _normalise(adv: torch.Tensor, K: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Advantages [B, U] to zero mean and unit std within each team (over its rows of
    weight w = 1 and its units): teams' rewards have different scales."""
    n = (w.sum(0) @ K).clamp(min=1.0)  # [k] samples per team
    mu = ((adv * w).sum(0) @ K / n) @ K.T  # [U]
    var = (((adv - mu).pow(2) * w).sum(0) @ K / n) @ K.T  # [U]
    return (adv - mu) / (var.sqrt() + 1e-8)
