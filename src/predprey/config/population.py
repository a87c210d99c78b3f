"""The `population` config section. Absent = one learner, as without it.

Modes (seeds 001 and 002):
  independent  P learners side by side; no exchange (the baseline of both papers)
  genetic      CMU's Distributed Genetic MADDPG: at the first evaluation after every sync
               interval, per team the best member's critics (and critic targets) are
               copied to every other member; actors are never synced. The interval
               grows by (1 + sync_decay) after each sync (their decreasing sync rate).
  evolve       AgileRL's evolutionary HPO: at the first evaluation after every
               `evolve_every` env steps, per team a tournament with elitism selects the
               members whose networks the others clone, and the clones are mutated
               (no mutation, actor weights noise, or one hyperparameter).

Env steps here are the whole population's (the x axis of metrics.jsonl). Hyperparameters
are per member (they drive one update of both teams); networks are selected per team.
Ranges are [low, high]; `init_*` are the ranges members' first values are drawn from
(empty = the `algo` value for every member).

Curriculum over the number of agents (EPC, Long et al. ICLR 2020): with `curriculum`
[4, 8, 16] the run trains spread at 4 agents and landmarks for `stage_env_steps`, then at 8,
then at 16 to the end. At each stage change every member is rated at the next size
(`stage_fitness` over `stage_episodes` seeded episodes); the `stage_keep` fittest keep their
networks and the others take copies of them (the weakest the fittest's), whatever `mode`
does between changes. The actors read local observations, so their input widths stay.
"""

from __future__ import annotations

from dataclasses import dataclass

from predprey.config.base import ConfigError

MODES = ("independent", "genetic", "evolve")
STAGE_FITNESS = ("coverage", "return")
SHARE_BUFFER_ON_RAY = (
    "population.share_buffer: true needs one process: on Ray each member has its own buffer "
    "actor and write-ahead log (drop --runners, or set share_buffer: false)"
)
CURRICULUM_ON_RAY = (
    "population.curriculum runs in one process: members on Ray keep their worlds in runner "
    "and buffer actors that a stage change does not rebuild (drop --runners)"
)
# Hyperparameters a member may hold its own value of: name -> kind of draw and mutation.
# `hidden` (the width of every hidden layer; predprey.population.resize) is one only where
# `mutate` or `init_hidden` names it: the others always are.
HYPERPARAMETERS = {
    "actor_lr": "log",
    "critic_lr": "log",
    "batch_size": "int",
    "exploration_noise": "linear",
    "env_steps_per_update": "int",
    "hidden": "int",
}
OPTIONAL = ("hidden",)


@dataclass(frozen=True)
class PopulationConfig:
    """P learners trained side by side (absent: one learner)."""

    size: int = 4  # members (P)
    mode: str = "evolve"  # independent | genetic (critic sync) | evolve (tournament + mutation)
    share_buffer: bool = False  # one replay for all members (AgileRL; one process); false: one each
    sync_every: int = 500_000  # genetic: env steps between critic syncs at first
    sync_decay: float = 0.0  # genetic: each sync multiplies the interval by 1 + this
    evolve_every: int = 500_000  # evolve: env steps between selections
    tournament_size: int = 2  # evolve: members drawn per tournament
    elitism: int = 1  # evolve: the best members per team kept unchanged
    p_none: float = 0.2  # evolve: chance a non-elite clone is not mutated (p_* normalised to 1)
    p_weights: float = 0.2  # evolve: chance of noise on its actor weights
    p_hyperparameter: float = 0.6  # evolve: chance of one hyperparameter x shrink or grow
    weights_noise: float = 0.1  # std of the weights noise, relative to each tensor's std
    # hyperparameters a mutation may change (of HYPERPARAMETERS)
    mutate: tuple[str, ...] = tuple(h for h in HYPERPARAMETERS if h not in OPTIONAL)
    shrink: float = 0.8  # a mutated hyperparameter is multiplied by shrink ...
    grow: float = 1.25  # ... or by grow
    actor_lr_range: tuple[float, ...] = (1e-6, 1e-1)  # [low, high] mutations stay inside
    critic_lr_range: tuple[float, ...] = (1e-6, 1e-1)  # [low, high] mutations stay inside
    batch_size_range: tuple[int, ...] = (32, 8192)  # [low, high] mutations stay inside
    exploration_noise_range: tuple[float, ...] = (0.01, 0.5)  # [low, high] mutations stay inside
    env_steps_per_update_range: tuple[int, ...] = (4, 1000)  # [low, high] mutations stay inside
    hidden_range: tuple[int, ...] = (16, 512)  # [low, high] width of every hidden layer
    # first values, drawn per member; empty = the algo value for every member
    init_actor_lr: tuple[float, ...] = ()  # [low, high], log-uniform
    init_critic_lr: tuple[float, ...] = ()  # [low, high], log-uniform
    init_batch_size: tuple[int, ...] = ()  # the choices
    init_exploration_noise: tuple[float, ...] = ()  # [low, high], uniform
    init_env_steps_per_update: tuple[int, ...] = ()  # the choices
    init_hidden: tuple[int, ...] = ()  # widths to draw from (every hidden layer the same)
    # curriculum over N (spread): agents (= landmarks) per stage, the first env.num_agents
    curriculum: tuple[int, ...] = ()  # e.g. [4, 8, 16]; empty = one size throughout
    stage_env_steps: int = 1_000_000  # env steps of the whole population per stage but the last
    stage_episodes: int = 20  # episodes per member at the next size that rate it (seeded)
    stage_fitness: str = "coverage"  # what rates a member at the next size: coverage | return
    stage_keep: int = 2  # the fittest members kept at a stage change; the others copy them

    @property
    def hyperparameters(self) -> tuple[str, ...]:
        """The hyperparameters members hold values of."""
        used = {*self.mutate, *(h for h in OPTIONAL if getattr(self, f"init_{h}"))}
        return tuple(h for h in HYPERPARAMETERS if h not in OPTIONAL or h in used)

    def __post_init__(self):
        if self.size < 1:
            raise _bad(f"size must be >= 1, got {self.size}")
        if self.mode not in MODES:
            raise _bad(f"mode: unknown mode {self.mode!r}; choose one of {MODES}")
        for name in ("sync_every", "evolve_every"):
            if getattr(self, name) < 1:
                raise _bad(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.sync_decay < 0:
            raise _bad(f"sync_decay must be >= 0, got {self.sync_decay}")
        if self.mode == "evolve" and not 1 <= self.tournament_size <= self.size:
            raise _bad(
                f"tournament_size must be in [1, size={self.size}], got {self.tournament_size}"
            )
        if not 0 <= self.elitism < max(self.size, 2):  # size 1 keeps the default 1
            raise _bad(f"elitism must be in [0, size - 1], got {self.elitism}")
        if not self.mutate and self.p_hyperparameter > 0:
            raise _bad("mutate lists no hyperparameter: set p_hyperparameter to 0")
        probs = (self.p_none, self.p_weights, self.p_hyperparameter)
        if min(probs) < 0 or sum(probs) <= 0:
            raise _bad("p_none, p_weights, p_hyperparameter must be >= 0, not all 0")
        if self.weights_noise < 0:
            raise _bad(f"weights_noise must be >= 0, got {self.weights_noise}")
        if not 0 < self.shrink <= 1 <= self.grow:
            raise _bad("mutation factors need 0 < shrink <= 1 <= grow")
        self._check_curriculum()
        for name in self.mutate:
            if name not in HYPERPARAMETERS:
                raise _bad(
                    f"mutate: unknown hyperparameter {name!r}; choose from {tuple(HYPERPARAMETERS)}"
                )
        for name, kind in HYPERPARAMETERS.items():
            lo, hi = _pair(self, f"{name}_range")
            if not 0 < lo <= hi:
                raise _bad(f"{name}_range must be [low, high] with 0 < low <= high")
            init = getattr(self, f"init_{name}")
            if not init:
                continue
            if min(init) <= 0:
                raise _bad(f"init_{name} values must be > 0")
            if kind != "int":
                a, b = _pair(self, f"init_{name}")
                if a > b:
                    raise _bad(f"init_{name} must be [low, high] with low <= high")

    def _check_curriculum(self) -> None:
        if not self.curriculum:
            return
        sizes = list(self.curriculum)
        if min(sizes) < 1 or sizes != sorted(set(sizes)):
            raise _bad(f"curriculum must be increasing numbers of agents >= 1, got {sizes}")
        if self.stage_env_steps < 1:
            raise _bad(f"stage_env_steps must be >= 1, got {self.stage_env_steps}")
        if self.stage_episodes < 1:
            raise _bad(f"stage_episodes must be >= 1, got {self.stage_episodes}")
        if self.stage_fitness not in STAGE_FITNESS:
            raise _bad(f"stage_fitness: choose one of {STAGE_FITNESS}, got {self.stage_fitness!r}")
        if not 1 <= self.stage_keep <= self.size:
            raise _bad(f"stage_keep must be in [1, size={self.size}], got {self.stage_keep}")

    def stage_of(self, env_steps: int) -> int:
        """The curriculum stage due at `env_steps` of the whole population (0 without one)."""
        return min(env_steps // self.stage_env_steps, max(len(self.curriculum) - 1, 0))


def _bad(message: str) -> ConfigError:
    return ConfigError(f"population.{message}")


def _pair(cfg: PopulationConfig, name: str) -> tuple[float, float]:
    value = getattr(cfg, name)
    if len(value) != 2:
        raise _bad(f"{name} must be [low, high], got {list(value)}")
    return value[0], value[1]
