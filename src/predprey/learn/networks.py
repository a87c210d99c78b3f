"""Networks batched over agents: one batched matmul per layer for every agent.

A `BatchedMLP` holds `n_models` independent MLPs as weights `[n_models, in, out]`. Per-agent
networks use one model per agent; parameter sharing (`algo.share_params`) uses one
model per team. `Actor` and `Critic` own a team's parameters (the checkpoint layout).

For learning, `StackedMLPs` stores the models of several teams side by side (allocated
once; the teams' parameters are views into it), a learner picks "heads" from it, one per
agent (a shared model repeated for each of its agents), and `mlp_t` runs all heads at
once in feature-major layout `[heads, features, rows]`: every layer is `h' = W^T h + b`, so
the thin layers (1 Q-value, 2 action components) are wide matmuls that MKL runs several
times faster than tall, thin ones, and predators and prey share each matmul (4 heads split
evenly over 2 threads, where 3 + 1 would not).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from predprey.config import AlgoConfig, OffPolicyConfig
from predprey.learn.spec import TeamSpec

Layers = list[tuple[torch.Tensor, torch.Tensor]]  # per layer (W [H, in, out], b [H, 1, out])


class BatchedMLP(nn.Module):
    """`n_models` MLPs with ReLU hidden layers: forward(x [m, rows, in]) -> [m, rows, out]."""

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
        # The same parameters as a plain list: ParameterList indexing costs ~5 us per access.
        self._layers: Layers = list(zip(self.weights, self.biases, strict=True))

    def layers(self) -> Layers:
        return self._layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = mlp_t(self.layers(), x.transpose(1, 2), tanh_out=self.tanh_out)  # [m, out, rows]
        return y.transpose(1, 2)  # [m, rows, out]

    def numpy_forward(self, x: np.ndarray) -> np.ndarray:
        """Inference in NumPy: x [E, n, in] (agent j uses model j, or model 0 for all when
        there is one) -> [E, n, out], on views of the current parameters (no copies)."""
        E, n, d = x.shape
        h = x.transpose(1, 0, 2) if self.n_models > 1 else x.reshape(1, E * n, d)  # [m, rows, in]
        last = len(self._layers) - 1
        for k, (w, b) in enumerate(self._layers):
            h = np.matmul(h, w.detach().numpy())  # [m, rows, out]
            h += b.detach().numpy()
            if k < last:
                np.maximum(h, 0.0, out=h)
        if self.tanh_out:
            np.tanh(h, out=h)
        if self.n_models > 1:
            return h.transpose(1, 0, 2)  # [E, n, out]
        return h.reshape(E, n, -1)


class StackedMLPs:
    """The parameters of several `BatchedMLP`s (one role of every team: the actors, say) in
    one tensor per layer, W [models, in, out] and b [models, 1, out], the modules' models in
    the order given, allocated once. Each module's parameters become views into them (its
    state_dict, acting and loading read and write the stack), so a learner runs every head of
    every team in one batched matmul per layer with no per-update cat, and the gradients land
    in one tensor per layer (`views` says where each module parameter lies in them).

    `in_dim` zero-pads the first layer's input rows: teams with narrower observations read
    zero-padded inputs, and the padding rows stay zero (their gradients are zero)."""

    def __init__(self, mlps: Sequence[BatchedMLP], in_dim: int | None = None):
        self.first = [0, *np.cumsum([m.n_models for m in mlps]).tolist()]  # each module's first
        n = self.first[-1]
        self.layers: Layers = []  # leaf tensors, requires_grad
        self.views: list[tuple[nn.Parameter, torch.Tensor, tuple[slice, ...]]] = []
        padded = []  # per module: its first layer reads zero-padded input rows
        for k in range(len(mlps[0].layers())):
            d_in = max(m.layers()[k][0].shape[1] for m in mlps)
            d_in = max(d_in, in_dim or 0) if k == 0 else d_in
            d_out = mlps[0].layers()[k][0].shape[2]
            w_all, b_all = torch.zeros(n, d_in, d_out), torch.zeros(n, 1, d_out)
            for m, s in zip(mlps, self.first, strict=False):
                w, b = m.layers()[k]
                rows = slice(s, s + m.n_models)
                parts = ((w, w_all, (rows, slice(0, w.shape[1]))), (b, b_all, (rows,)))
                for p, stack, where in parts:
                    view = stack[where]
                    view.copy_(p.detach())
                    p.data = view  # the module's parameter is now this view of the stack
                    self.views.append((p, stack, where))
                if k == 0:
                    padded.append(w.shape[1] < d_in)
            self.layers.append((w_all.requires_grad_(), b_all.requires_grad_()))
        # Each module's rows and, if padded, where its parameters lie in parameters() order
        # (weights, then biases): `module_grads`.
        self._modules: list[tuple[slice, list | None]] = []
        for i, pad in enumerate(padded):
            rows = slice(self.first[i], self.first[i + 1])
            own = [(t, where) for _, t, where in self.views if where[0] == rows]
            weights, biases = ([v for v in own if len(v[1]) == d] for d in (2, 1))
            self._modules.append((rows, weights + biases if pad else None))

    def index(self, heads: Sequence[tuple[int, Sequence[int]]]) -> torch.Tensor | None:
        """Rows of the stack for heads (module i, its models): [H], None if all rows in order."""
        rows = [self.first[i] + j for i, models in heads for j in models]
        return None if rows == list(range(self.first[-1])) else torch.tensor(rows)

    def heads(self, index: torch.Tensor | None) -> Layers:
        """The layers of heads `index` (`index(...)`): one index_select per tensor, or the
        stack itself; differentiable (a model repeated for several heads sums their grads)."""
        if index is None:
            return self.layers
        return [(w.index_select(0, index), b.index_select(0, index)) for w, b in self.layers]

    def tensors(self) -> list[torch.Tensor]:
        """Weights, then biases: a module's `parameters()` order (clipping sums in it)."""
        return [w for w, _ in self.layers] + [b for _, b in self.layers]

    def drop_grads(self) -> None:
        for t in self.tensors():
            t.grad = None

    def module_grads(self) -> list[tuple[slice, list[torch.Tensor] | None]]:
        """Each module's rows and, where its first layer's rows are zero-padded, its parameters'
        gradients (after backward): `optim.clip_grad_norm_per_model`'s `modules`."""
        return [
            (rows, None if views is None else [t.grad[where] for t, where in views])
            for rows, views in self._modules
        ]


def linear_t(w: torch.Tensor, b: torch.Tensor, h: torch.Tensor, relu: bool = False) -> torch.Tensor:
    """One layer of every head, feature-major: h [H, in, rows] -> W^T h + b [H, out, rows]
    (`relu`: then max(0, .), in place: one activation fewer allocated per layer).

    h [in, rows] (one input shared by every head, e.g. a critic's joint input) is a single
    [H * out, in] x [in, rows] matmul."""
    n_heads, d_in, d_out = w.shape
    if h.dim() == 2:
        w_all = w.transpose(1, 2).reshape(n_heads * d_out, d_in)  # [H * out, in]
        out = torch.addmm(b.reshape(n_heads * d_out, 1), w_all, h)  # [H * out, rows]
        if relu:  # on the product itself: in place on its view would cost autograd copies
            out = torch.relu_(out)
        return out.view(n_heads, d_out, -1)
    out = torch.baddbmm(b.transpose(1, 2), w.transpose(1, 2), h)  # [H, out, rows]
    return torch.relu_(out) if relu else out


def mlp_t(layers: Layers, h: torch.Tensor, tanh_out: bool = False) -> torch.Tensor:
    """Every head's layers: h [H, in, rows] (or [in, rows]) -> [H, out, rows]."""
    last = len(layers) - 1
    for k in range(last + 1):
        h = linear_t(*layers[k], h, relu=k < last)
    return torch.tanh(h) if tanh_out else h


class Actor(nn.Module):
    """A team's deterministic policies: obs [B, n, obs_dim] -> actions [B, n, act_dim] in [-1,1]
    (a discrete team's: scores of its act_dim choices, unsquashed)."""

    def __init__(self, team: TeamSpec, algo: AlgoConfig, generator: torch.Generator):
        super().__init__()
        self.team = team
        n_models = 1 if algo.share_params else team.n_agents
        sizes = (team.obs_dim, *algo.hidden, team.act_dim)
        self.mlp = BatchedMLP(n_models, sizes, generator, tanh_out=not team.discrete)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        b, n, d = obs.shape
        x = obs.transpose(0, 1).reshape(self.mlp.n_models, -1, d)  # [models, rows, obs_dim]
        a = self.mlp(x).reshape(n, b, self.team.act_dim)  # [n, B, act_dim]
        return a.transpose(0, 1)  # [B, n, act_dim]

    def head_models(self) -> list[int]:
        """The model of each agent's head (a shared model serves every agent)."""
        n = self.team.n_agents
        return list(range(n)) if self.mlp.n_models > 1 else [0] * n


class Critic(nn.Module):
    """A team's critics, one per agent (x2 if twin): centralised Q_i(o_1..o_N, a_1..a_N), or
    with `algo.critic: local` Q_i(a_i, o_i) (input [action, own observation]).

    Models are ordered [twin, agent]; with shared parameters one model per twin serves all
    agents (a central one sees the same joint input for every agent: a team critic, with each
    agent's own reward in its target)."""

    def __init__(
        self, team: TeamSpec, joint_dim: int, algo: OffPolicyConfig, generator: torch.Generator
    ):
        super().__init__()
        self.n_agents = team.n_agents
        self.n_twin = 2 if algo.twin_critics else 1
        self.per_twin = 1 if algo.share_params else team.n_agents  # models per twin
        local = algo.critic == "local"
        # heads per twin: a local critic reads each agent's own input, so runs once per agent
        self.heads_per_twin = team.n_agents if local else self.per_twin
        sizes = (team.act_dim + team.obs_dim if local else joint_dim, *algo.hidden, 1)
        self.mlp = BatchedMLP(self.n_twin * self.per_twin, sizes, generator, tanh_out=False)

    def head_models(self, twin: int) -> list[int]:
        """Twin `twin`'s models as `heads_per_twin` heads: a shared central team critic reads the
        same joint input for every agent of the team, so it runs once (the learner maps agents
        to heads); a shared local one is repeated for each agent."""
        first = twin * self.per_twin
        return [first + (j if self.per_twin > 1 else 0) for j in range(self.heads_per_twin)]


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
        """obs[team] [E, n, obs_dim] -> actions [E, n, act_dim] float32 in [-1, 1] (n: the
        team's size, or any number for a shared network), with
        Gaussian exploration noise of std `noise_std` (drawn from `rng`) added, then clipped.
        Discrete teams: one-hot [E, n, K] of the highest score, or with `noise_std` > 0 of a
        choice sampled from softmax(scores) (Gumbel-max: MADDPG's exploration there).

        Runs in NumPy on views of the live parameters: acting batches are small (tens of
        rows), where torch's per-op overhead dominates (a Ray runner's CPU per env step fell
        from 22 to 15 us with this)."""
        if noise_std > 0 and rng is None:
            raise ValueError("act(): noise_std > 0 needs an rng (numpy Generator)")
        out = {}
        for t in self.teams:
            o = np.asarray(obs[t.name], dtype=np.float32)
            mlp = self.actors[t.name].mlp
            n = o.shape[1] if mlp.n_models == 1 and o.ndim == 3 else t.n_agents  # shared: any n
            if o.ndim != 3 or o.shape[1:] != (n, t.obs_dim):
                raise ValueError(
                    f"obs[{t.name!r}] has shape {o.shape}, expected [E, {t.n_agents}, {t.obs_dim}]"
                )
            a = mlp.numpy_forward(o)  # [E, n, act_dim]
            if t.discrete:
                if noise_std > 0:  # Gumbel-max: a sample of softmax(a)
                    a = a - np.log(rng.exponential(size=a.shape)).astype(np.float32)
                out[t.name] = np.eye(t.act_dim, dtype=np.float32)[a.argmax(-1)]  # [E, n, K]
                continue
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
