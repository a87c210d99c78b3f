"""Entity attention actors and critics (`algo.network: attention`, issue 40).

A `local` observation is the agent's own features (velocity, position) and slots of the
entities it sees: nearest agents of each team, nearest landmarks, optional target
(`TeamSpec.entities`, from the env: `predprey.env.observe.local_layout`). Each occupied slot
becomes a token (its features but `present`, projected per kind, plus a learned embedding of
the kind); the agent's own features are the query of multi-head attention over its tokens
and itself; empty slots (`present` 0) are masked out. The output depends neither on the
order of the slots nor on how many there are, so a network trained with K slots in view runs
with any K (built from the evaluation env's `TeamSpec`: parameters do not depend on K).

Critics are built the same way: an agent's summary is its encoded observation; MADDPG's
central critic makes every agent of every team a token (summary and action, plus its team's
embedding) and agent i's Q-value is attention from its token to all of them, so it grows
with N without a joint input; PPO's central value uses the same tokens without actions.
`critic: local` reads only the agent's own summary (and action).

Every parameter has a leading dimension of 1 (one model), so the learners' per-model
gradient clipping clips each network as a whole. Attention networks share one network per
team (`share_params`) and act on Box actions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from predprey.config import AlgoConfig
from predprey.env.observe import OWN_DIM
from predprey.learn.networks import ActorSet
from predprey.learn.spec import TeamSpec


class Dense(nn.Module):
    """x [..., in] -> x W + b [..., out] (W [1, in, out]: one model)."""

    def __init__(self, d_in: int, d_out: int, g: torch.Generator):
        super().__init__()
        bound = 1.0 / math.sqrt(d_in)  # nn.Linear's default initialisation
        self.w = nn.Parameter(torch.empty(1, d_in, d_out).uniform_(-bound, bound, generator=g))
        self.b = nn.Parameter(torch.empty(1, d_out).uniform_(-bound, bound, generator=g))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # one [rows, in] x [in, out] product: matmul of a strided [R, k, in] slice would
        # broadcast W into a batched product of R small ones
        y = torch.addmm(self.b[0], x.reshape(-1, x.shape[-1]), self.w[0])
        return y.view(*x.shape[:-1], y.shape[-1])


class MLP(nn.Module):
    """ReLU layers of `sizes`: x [..., sizes[0]] -> [..., sizes[-1]]."""

    def __init__(self, sizes: Sequence[int], g: torch.Generator):
        super().__init__()
        self.layers = nn.ModuleList(
            Dense(a, b, g) for a, b in zip(sizes[:-1], sizes[1:], strict=True)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for k, layer in enumerate(self.layers):
            x = layer(x)
            if k < len(self.layers) - 1:
                x = torch.relu(x)
        return x


class Attention(nn.Module):
    """Multi-head attention of Q queries per row over the row's S keys: q [R, Q, d], keys
    [R, S, d], mask [R, S] (True: takes part; every row needs one) -> [R, Q, d].

    The keys serve as keys and values themselves: each head's query has the full width d
    (W_q^T W_k folded into one map, of higher rank than a head's d / h), and the output
    projection of the heads' weighted keys [h d] folds in the value projection. So nothing
    runs per key but two products, not four d x d projections of R S rows: the critics and
    actors run over every entity of every agent of a replay batch."""

    def __init__(self, d: int, heads: int, g: torch.Generator):
        super().__init__()
        self.heads = heads
        self.q = Dense(d, heads * d, g)
        self.o = Dense(heads * d, d, g)

    def forward(self, q: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor | None):
        R, Q, d = q.shape
        qh = self.q(q).view(R, Q * self.heads, d)  # [R, Q h, d]
        # batched products: per row one [Q h, d] x [d, S] and one [Q h, S] x [S, d]
        logits = torch.bmm(qh, keys.transpose(1, 2)) * d**-0.5  # [R, Q h, S]
        if mask is not None:
            logits = logits.masked_fill(~mask[:, None, :], float("-inf"))
        out = torch.bmm(softmax(logits), keys)  # [R, Q h, d]
        return self.o(out.view(R, Q, self.heads * d))  # [R, Q, d]


def softmax(x: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dim; torch.softmax over a few keys runs ~4x slower on CPU."""
    e = torch.exp(x - x.amax(-1, keepdim=True))
    return e / e.sum(-1, keepdim=True)


class EntityEncoder(nn.Module):
    """One agent's local observation [R, D] -> its summary [R, 2d]: its own embedding and
    the attention of it over its entities' tokens and itself."""

    def __init__(self, team: TeamSpec, d: int, heads: int, g: torch.Generator):
        super().__init__()
        if not team.entities:
            raise ValueError(
                f"algo.network attention reads entity slots of obs local; team {team.name!r} "
                "has none (set env.obs: local)"
            )
        self.layout = team.entities
        self.own = Dense(OWN_DIM, d, g)
        widths = {grp.kind: grp.width for grp in self.layout}
        self.embed = nn.ModuleDict({k: Dense(w - 1, d, g) for k, w in widths.items()})
        self.kind = nn.ParameterDict(  # learned type embeddings
            {k: nn.Parameter(0.1 * torch.randn(1, d, generator=g)) for k in widths}
        )
        self.attend = Attention(d, heads, g)

    def keys(self, obs: torch.Tensor, me: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """obs [R, D], own embedding me [R, d] -> keys [R, 1 + S, d] (itself, then a token
        per slot of every kind, in layout order) and mask [R, 1 + S] (itself and the
        occupied slots)."""
        R = obs.shape[0]
        toks, present = [me[:, None]], [obs.new_ones(R, 1, dtype=torch.bool)]
        for grp in self.layout:
            if grp.count == 0:
                continue
            slots = obs[:, grp.start : grp.start + grp.count * grp.width]
            slots = slots.reshape(R, grp.count, grp.width)  # [R, k, width]
            toks.append(torch.relu(self.embed[grp.kind](slots[..., 1:]) + self.kind[grp.kind]))
            present.append(slots[..., 0] > 0.5)
        return torch.cat(toks, 1), torch.cat(present, 1)  # one copy of the keys

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        me = torch.relu(self.own(obs[:, :OWN_DIM]))  # [R, d]
        keys, mask = self.keys(obs, me)  # [R, 1 + S, d], [R, 1 + S]
        return torch.cat([me, self.attend(me[:, None], keys, mask)[:, 0]], 1)  # [R, 2d]


class AttentionActor(nn.Module):
    """A team's shared policy: obs [B, n, D] -> actions [B, n, act_dim] in [-1, 1]."""

    def __init__(self, team: TeamSpec, algo: AlgoConfig, g: torch.Generator):
        super().__init__()
        if team.discrete:
            raise ValueError("algo.network attention acts on Box actions, not discrete ones")
        self.team = team
        d = algo.attention_dim
        self.encoder = EntityEncoder(team, d, algo.attention_heads, g)
        self.head = MLP((2 * d, *algo.hidden, team.act_dim), g)

    def pre_tanh(self, obs: torch.Tensor) -> torch.Tensor:
        """obs [B, n, D] -> the actions before tanh [B, n, act_dim]."""
        B, n, D = obs.shape
        return self.head(self.encoder(obs.reshape(B * n, D))).view(B, n, -1)  # via [B n, 2d]

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.pre_tanh(obs))


class AttentionActorSet(ActorSet):
    """`ActorSet` of attention actors; acts in torch (no NumPy twin)."""

    def __init__(self, teams: Sequence[TeamSpec], algo: AlgoConfig, generator: torch.Generator):
        nn.Module.__init__(self)
        self.teams = tuple(teams)
        self.actors = nn.ModuleDict({t.name: AttentionActor(t, algo, generator) for t in teams})

    def act(self, obs, noise_std: float = 0.0, rng: np.random.Generator | None = None):
        """As `ActorSet.act`: obs[team] [E, n, obs_dim] (any n) -> actions [E, n, act_dim]."""
        if noise_std > 0 and rng is None:
            raise ValueError("act(): noise_std > 0 needs an rng (numpy Generator)")
        out = {}
        with torch.no_grad():
            for t in self.teams:
                o = np.asarray(obs[t.name], dtype=np.float32)
                if o.ndim != 3 or o.shape[2] != t.obs_dim:
                    raise ValueError(
                        f"obs[{t.name!r}] has shape {o.shape}, expected [E, n, {t.obs_dim}]"
                    )
                a = self.actors[t.name](torch.from_numpy(o)).numpy()  # [E, n, act_dim]
                if noise_std > 0:
                    a = a + rng.normal(0.0, noise_std, size=a.shape).astype(np.float32)
                out[t.name] = np.clip(a, -1.0, 1.0, dtype=np.float32)
        return out


def build_actors(teams: Sequence[TeamSpec], algo: AlgoConfig, seed: int = 0) -> ActorSet:
    """The actors `algo.network` asks for (`ActorSet.build`'s stand-in wherever a config
    decides): an `ActorSet` of MLPs, or an `AttentionActorSet`."""
    cls = AttentionActorSet if algo.network == "attention" else ActorSet
    return cls(teams, algo, torch.Generator().manual_seed(seed))


class _Value(nn.Module):
    """One critic of a team: Q_i (with actions) or V_i of its n agents, [B, n]."""

    def __init__(self, team, teams, algo, g, actions: bool):
        super().__init__()
        d, heads, K = algo.attention_dim, algo.attention_heads, team.act_dim
        self.team, self.local, self.actions = team.name, algo.critic == "local", actions
        seen = [team] if self.local else list(teams)
        sizes = [t.n_agents for t in teams]
        self.first = sum(sizes[: [t.name for t in teams].index(team.name)])  # own first token
        self.n = team.n_agents
        self.encoders = nn.ModuleDict({t.name: EntityEncoder(t, d, heads, g) for t in seen})
        a = K if actions else 0
        if self.local:
            self.head = MLP((2 * d + a, *algo.hidden, 1), g)
            return
        self.token = nn.ModuleDict({t.name: Dense(2 * d + a, d, g) for t in seen})
        self.kind = nn.ParameterDict(  # learned team embeddings
            {t.name: nn.Parameter(0.1 * torch.randn(1, d, generator=g)) for t in seen}
        )
        self.attend = Attention(d, heads, g)
        self.head = MLP((2 * d, *algo.hidden, 1), g)

    def encode(self, name: str, obs: torch.Tensor) -> torch.Tensor:
        """obs [B, n, D] of team `name` -> its agents' encoded observations [B, n, 2d]."""
        B, n, D = obs.shape
        return self.encoders[name](obs.reshape(B * n, D)).view(B, n, -1)

    def summary(self, enc: torch.Tensor, act: torch.Tensor | None) -> torch.Tensor:
        """Encoded observations [B, n, 2d] (and actions [B, n, K]) -> [B, n, 2d (+ K)]."""
        return torch.cat([enc, act], 2) if self.actions else enc

    def token_of(self, name: str, summary: torch.Tensor) -> torch.Tensor:
        """Team `name`'s agent tokens [B, n, d] from their summaries [B, n, 2d (+ K)]."""
        return torch.relu(self.token[name](summary) + self.kind[name])

    def everyone(self, enc, act) -> torch.Tensor:
        """Every seen team's agent tokens [B, N, d] (env order); enc {team: [B, n_t, 2d]},
        act {team: [B, n_t, K]} or None."""
        return torch.cat(
            [self.token_of(k, self.summary(e, act[k] if act else None)) for k, e in enc.items()],
            1,
        )

    def value(self, query: torch.Tensor, attn: torch.Tensor) -> torch.Tensor:
        """The head on each agent's token [B, n, d] and its attention [B, n, d] -> [B, n]."""
        return self.head(torch.cat([query, attn], 2))[..., 0]

    def forward(self, obs: Mapping[str, torch.Tensor], act=None) -> torch.Tensor:
        """obs {team: [B, n_t, D_t]} (act {team: [B, n_t, K]}) -> [B, n] of this team."""
        enc = {k: self.encode(k, obs[k]) for k in self.encoders}  # {team: [B, n_t, 2d]}
        if self.local:
            own_act = act[self.team] if act is not None else None
            return self.head(self.summary(enc[self.team], own_act))[..., 0]
        everyone = self.everyone(enc, act)  # [B, N, d]
        own = everyone[:, self.first : self.first + self.n]  # [B, n, d]
        return self.value(own, self.attend(own, everyone, None))  # n queries, the same keys

    def q_own(self, obs, act, mu: torch.Tensor) -> torch.Tensor:
        """[B, n]: Q_i with agent i's own action set to mu [B, n, K] and the other agents'
        actions from `act` (MADDPG's actor objective). Only mu carries a gradient (the
        critic takes no step from this loss), so the observations are encoded once and,
        with the other agents' tokens, without a graph."""
        with torch.no_grad():
            enc = {k: self.encode(k, obs[k]) for k in self.encoders}  # {team: [B, n_t, 2d]}
            everyone = None if self.local else self.everyone(enc, act)  # [B, N, d]
        if self.local:
            return self.head(self.summary(enc[self.team], mu))[..., 0]
        mine = self.token_of(self.team, self.summary(enc[self.team], mu))  # [B, n, d]
        B, N, d = everyone.shape
        n = mine.shape[1]
        eye = torch.zeros(n, N, 1, dtype=torch.bool)
        eye[torch.arange(n), self.first + torch.arange(n)] = True  # [n, N, 1]: i's own slot
        keys = torch.where(eye, mine[:, :, None], everyone[:, None])  # [B, n, N, d]
        attn = self.attend(mine.reshape(B * n, 1, d), keys.reshape(B * n, N, d), None)
        return self.value(mine, attn.view(B, n, d))  # each agent its own keys


class AttentionCritic(nn.Module):
    """A team's critics (x2 twin): forward -> [T, B, n] Q-values (or values)."""

    def __init__(self, team: TeamSpec, teams: Sequence[TeamSpec], algo, g, actions: bool):
        super().__init__()
        twins = 2 if getattr(algo, "twin_critics", False) else 1
        self.twins = nn.ModuleList(_Value(team, teams, algo, g, actions) for _ in range(twins))

    def forward(self, obs, act=None) -> torch.Tensor:
        return torch.stack([v(obs, act) for v in self.twins])


def networks(learner, actions: bool) -> tuple[AttentionActorSet, nn.ModuleDict]:
    """Attention actors and critics of each trained team: Q_i(o, a) for
    `predprey.learn.maddpg.Learner` (`actions`), V_i(o) for `PPOLearner` (one twin)."""
    algo, g = learner.algo, learner.generator
    actors = AttentionActorSet(learner.teams, algo, g)
    critics = nn.ModuleDict(
        {t.name: AttentionCritic(t, learner.teams, algo, g, actions) for t in learner.trained}
    )
    return actors, critics


@contextmanager
def frozen(module: nn.Module):
    """`module`'s parameters out of autograd for a while (requires_grad off, then back on)."""
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


# MADDPG's networks side (`predprey.learn.maddpg.Learner.update` holds the math): rows
# first, per team; B rows, team t's n_t agents of D_t observation features, K = 2 action
# components, T twin critics; A agents of the trained teams in env order.
def maddpg_inputs(learner, f: Mapping[str, torch.Tensor]) -> dict:
    """The batch by team: {"obs" | "next_obs" | "act": {team: [B, n_t, D_t | K]}}."""
    names = [t.name for t in learner.teams]
    return {k: {n: f[f"{k}/{n}"] for n in names} for k in ("obs", "next_obs", "act")}


def maddpg_target_q(learner, x: dict) -> torch.Tensor:
    """[T, A, B]: Q'_ik(o', a'), a' = mu'(o') [+ clipped noise]."""
    L, algo = learner, learner.algo
    next_act = L.actor_targets(x["next_obs"])  # {t: [B, n_t, K]}
    if algo.target_noise > 0:  # target policy smoothing
        for k, a in next_act.items():
            noise = torch.randn(a.shape, generator=L.generator) * algo.target_noise
            noise = noise.clamp(-algo.target_noise_clip, algo.target_noise_clip)
            next_act[k] = (a + noise).clamp(-1.0, 1.0)
    return torch.cat(
        [L.critic_targets[t.name](x["next_obs"], next_act).transpose(1, 2) for t in L.trained],
        1,
    )  # [T, B, n_t] each


def maddpg_q(learner, x: dict) -> torch.Tensor:
    """[T, A, B]: Q_ik(o, a) on the batch's actions."""
    return torch.cat(
        [learner.critics[t.name](x["obs"], x["act"]).transpose(1, 2) for t in learner.trained],
        1,
    )  # [T, B, n_t] each


def maddpg_policy_q(learner, x: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Q_i(o, a | a_i = mu_i(o_i)) [A, B] through the first twins, whose weights take no
    gradient, and the actions before tanh [A, K, B]."""
    L, q_mu, pre = learner, [], []
    with frozen(L.critics):  # the actor loss's backward needs no critic weight gradients
        for t in L.trained:
            p = L.actors.actors[t.name].pre_tanh(x["obs"][t.name])  # [B, n, K]
            q = L.critics[t.name].twins[0].q_own(x["obs"], x["act"], torch.tanh(p))  # [B, n]
            q_mu.append(q.T)
            pre.append(p.permute(1, 2, 0))  # [n, K, B]
    return torch.cat(q_mu), torch.cat(pre)


__all__ = [
    "AttentionActor",
    "AttentionActorSet",
    "AttentionCritic",
    "EntityEncoder",
    "build_actors",
    "networks",
    "maddpg_inputs",
    "maddpg_policy_q",
    "maddpg_q",
    "maddpg_target_q",
]
