"""Networks batched over agents: one batched matmul per layer for every agent of a team.

A `BatchedMLP` holds `n_models` independent MLPs as weights `[n_models, in, out]` and maps
`[n_models, rows, in] -> [n_models, rows, out]` with `torch.baddbmm`. Per-agent networks use
one model per agent; parameter sharing (`AlgoConfig.share_params`) uses one model per team
and folds the agents into the rows, so a shared team is a single plain matmul.

`Actor` and `Critic` arrange a team's inputs into that layout; `ActorSet` is the acting side
(actors only) used by the learner, the runners and `predprey.policy`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from predprey.config import AlgoConfig
from predprey.learn.spec import TeamSpec


class BatchedMLP(nn.Module):
    """`n_models` MLPs with ReLU hidden layers, evaluated together.

    forward(x [m, rows, sizes[start]], models=None, start=0) -> [m, rows, sizes[-1]], where
    `models` (a slice) picks which m of the `n_models` weight sets to use (default: all) and
    `start` skips the first layers (x is then the input of layer `start`)."""

    def __init__(
        self, n_models: int, sizes: Sequence[int], generator: torch.Generator, tanh_out: bool
    ):
        super().__init__()
        self.n_models = n_models
        self.tanh_out = tanh_out
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for d_in, d_out in zip(sizes[:-1], sizes[1:], strict=True):
            bound = 1.0 / math.sqrt(d_in)  # nn.Linear's default initialisation
            w = torch.empty(n_models, d_in, d_out).uniform_(-bound, bound, generator=generator)
            b = torch.empty(n_models, 1, d_out).uniform_(-bound, bound, generator=generator)
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(b))

    def forward(self, x: torch.Tensor, models: slice | None = None, start: int = 0) -> torch.Tensor:
        last = len(self.weights) - 1
        for k in range(start, last + 1):
            w, b = self.weights[k], self.biases[k]
            if models is not None:  # a view of some models' weights (slicing costs a backward op)
                w, b = w[models], b[models]
            x = torch.baddbmm(b, x, w)  # [m, rows, out_k]
            if k < last:
                x = torch.relu(x)
        return torch.tanh(x) if self.tanh_out else x


class Actor(nn.Module):
    """A team's deterministic policies: obs [B, n, obs_dim] -> actions [B, n, act_dim] in [-1,1]."""

    def __init__(self, team: TeamSpec, algo: AlgoConfig, generator: torch.Generator):
        super().__init__()
        self.team = team
        n_models = 1 if algo.share_params else team.n_agents
        sizes = (team.obs_dim, *algo.hidden, team.act_dim)
        self.mlp = BatchedMLP(n_models, sizes, generator, tanh_out=True)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        b, n, d = obs.shape
        x = obs.transpose(0, 1).reshape(self.mlp.n_models, -1, d)  # [models, rows, obs_dim]
        a = self.mlp(x).reshape(n, b, self.team.act_dim)  # [n, B, act_dim]
        return a.transpose(0, 1)  # [B, n, act_dim]


class Critic(nn.Module):
    """A team's centralised critics Q_i(o_1..o_N, a_1..a_N), one per agent (x2 if twin).

    Heads are ordered [twin, agent]; with shared parameters one model per twin serves all
    agents (it then sees the same joint input for every agent, i.e. it is a team critic)."""

    def __init__(
        self, team: TeamSpec, joint_dim: int, algo: AlgoConfig, generator: torch.Generator
    ):
        super().__init__()
        self.n_agents = team.n_agents
        self.n_twin = 2 if algo.twin_critics else 1
        self.per_twin = 1 if algo.share_params else team.n_agents  # models per twin
        sizes = (joint_dim, *algo.hidden, 1)
        self.mlp = BatchedMLP(self.n_twin * self.per_twin, sizes, generator, tanh_out=False)

    def joint(self, x: torch.Tensor) -> torch.Tensor:
        """Every head on the same joint input x [B, D] -> Q [n_twin, n, B]."""
        b, d = x.shape
        q = self.mlp(x.expand(self.mlp.n_models, b, d))  # [n_twin * per_twin, B, 1]
        return q.view(self.n_twin, self.per_twin, b).expand(self.n_twin, self.n_agents, b)

    def first(self, obs: torch.Tensor, acts: torch.Tensor) -> torch.Tensor:
        """The first twin of agent i, all agents seeing the same observations but agent i its
        own joint action: obs [B, sum_obs], acts [n, B, sum_act] -> Q [n, B].

        Layer 1 is applied as its observation rows plus its action rows, so the gradient to
        the actions (the actor step) never runs through the larger observation part."""
        n, b, d_act = acts.shape
        m, d_obs = self.per_twin, obs.shape[1]
        w1, b1 = self.mlp.weights[0][:m], self.mlp.biases[0][:m]  # first twin
        h_obs = torch.baddbmm(b1, obs.expand(m, b, d_obs), w1[:, :d_obs])  # [m, B, h]
        h_act = torch.bmm(acts.reshape(m, -1, d_act), w1[:, d_obs:])  # [m, n/m * B, h]
        h = torch.relu(h_act.view(n, b, -1) + h_obs)  # [n, B, h]; m is n or 1
        first_twin = slice(0, m) if self.n_twin > 1 else None
        q = self.mlp(h.view(m, -1, h.shape[-1]), models=first_twin, start=1)  # [m, rows, 1]
        return q.view(n, b)


class ActorSet(nn.Module):
    """The actors of every team; acts on NumPy observations without building autograd graphs."""

    def __init__(self, teams: Sequence[TeamSpec], algo: AlgoConfig, generator: torch.Generator):
        super().__init__()
        self.teams = tuple(teams)
        self.actors = nn.ModuleDict({t.name: Actor(t, algo, generator) for t in self.teams})

    @classmethod
    def build(cls, teams: Sequence[TeamSpec], algo: AlgoConfig, seed: int = 0) -> ActorSet:
        return cls(teams, algo, torch.Generator().manual_seed(seed))

    def forward(self, obs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {name: actor(obs[name]) for name, actor in self.actors.items()}

    def act(
        self,
        obs: Mapping[str, np.ndarray],
        noise_std: float = 0.0,
        rng: np.random.Generator | None = None,
    ) -> dict[str, np.ndarray]:
        """obs[team] [E, n, obs_dim] -> actions [E, n, act_dim] float32 in [-1, 1], with
        Gaussian exploration noise of std `noise_std` (drawn from `rng`) added, then clipped."""
        if noise_std > 0 and rng is None:
            raise ValueError("act(): noise_std > 0 needs an rng (numpy Generator)")
        out = {}
        with torch.inference_mode():
            for t in self.teams:
                o = np.asarray(obs[t.name], dtype=np.float32)
                if o.ndim != 3 or o.shape[1:] != (t.n_agents, t.obs_dim):
                    raise ValueError(
                        f"obs[{t.name!r}] has shape {o.shape}, expected [E, {t.n_agents}, "
                        f"{t.obs_dim}]"
                    )
                a = self.actors[t.name](torch.from_numpy(o)).numpy()  # [E, n, act_dim]
                if noise_std > 0:
                    a = a + rng.normal(0.0, noise_std, size=a.shape).astype(np.float32)
                out[t.name] = np.clip(a, -1.0, 1.0, dtype=np.float32)
        return out

    def actor_state(self) -> dict[str, dict[str, torch.Tensor]]:
        """team -> actor state_dict (detached CPU tensors, safe to send or save)."""
        return {
            name: {k: v.detach().cpu().clone() for k, v in actor.state_dict().items()}
            for name, actor in self.actors.items()
        }

    def load_actor_state(self, state: Mapping[str, Mapping[str, torch.Tensor]]) -> None:
        """Load some or all teams' actors; an unknown team or mismatched shape is a ValueError."""
        for name, sd in state.items():
            if name not in self.actors:
                raise ValueError(f"actor state for unknown team {name!r}; have {list(self.actors)}")
            load_module_state(self.actors[name], sd, f"actor {name!r}")


def load_module_state(module: nn.Module, state: Mapping[str, torch.Tensor], what: str) -> None:
    """`module.load_state_dict` with a ValueError naming `what` on missing keys or bad shapes."""
    own = module.state_dict()
    if set(own) != set(state):
        raise ValueError(f"{what}: parameter names {sorted(state)} != expected {sorted(own)}")
    for k, v in own.items():
        if tuple(state[k].shape) != tuple(v.shape):
            raise ValueError(
                f"{what}: parameter {k!r} has shape {tuple(state[k].shape)}, expected "
                f"{tuple(v.shape)} (different team sizes, hidden sizes or share_params?)"
            )
    module.load_state_dict(state)
