"""The arithmetic of a population, as pure functions of arrays and a NumPy generator.

Selection follows AgileRL's tournament with elitism: the `elitism` best members keep what
they have; every other member takes a clone of the winner of a tournament among
`tournament_size` members drawn without replacement (the winner: the contestant with the
highest fitness, ties to the lower index). The contestants are drawn once per evolution
and used for every team's fitness, so where the fitness orders agree (one team) the
winners agree too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from predprey.config.population import HYPERPARAMETERS, PopulationConfig

MUTATIONS = ("none", "weights", "hyperparameter")


def sync_interval(syncs_done: int, every: int, decay: float) -> int:
    """Env steps from sync n to sync n + 1: `every` * (1 + decay)^n (CMU's sync rate that
    decreases as training goes on; decay 0 = a fixed rate)."""
    return max(1, int(round(every * (1.0 + decay) ** syncs_done)))


def initial_hyperparameters(
    algo: Any, pop: PopulationConfig, rng: np.random.Generator
) -> list[dict[str, float | int]]:
    """Each member's first hyperparameters: drawn from `pop.init_*` where given (learning
    rates log-uniform, noise uniform, integers from the listed choices), else `algo`'s
    (`hidden`: its layers' width)."""
    out = []
    for _ in range(pop.size):
        hp: dict[str, float | int] = {}
        for name in pop.hyperparameters:
            kind, init = HYPERPARAMETERS[name], getattr(pop, f"init_{name}")
            if not init:
                hp[name] = algo.hidden[0] if name == "hidden" else getattr(algo, name)
            elif kind == "int":
                hp[name] = int(rng.choice(np.asarray(init)))
            elif kind == "log":
                hp[name] = float(math.exp(rng.uniform(math.log(init[0]), math.log(init[1]))))
            else:
                hp[name] = float(rng.uniform(init[0], init[1]))
        out.append(hp)
    return out


def elites(fitness: Sequence[float], n: int) -> list[int]:
    """The indices of the `n` fittest members, best first (ties: lower index first)."""
    order = sorted(range(len(fitness)), key=lambda i: (-fitness[i], i))
    return order[:n]


def stage_parents(fitness: Sequence[float], keep: int) -> list[int]:
    """EPC's selection at a curriculum stage change: parents[i] is the member whose networks
    slot i holds at the next size. The `keep` fittest keep their own; the others take the
    kept ones' in turn, the weakest the fittest's (ties: lower index fitter)."""
    order = elites(fitness, len(fitness))  # best first
    kept, parents = order[:keep], list(range(len(fitness)))
    for j, i in enumerate(reversed(order[keep:])):  # weakest first
        parents[i] = kept[j % keep]
    return parents


def draw_contestants(size: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """[size, k]: for every member slot, `k` distinct members that compete for it."""
    return np.stack([rng.choice(size, k, replace=False) for _ in range(size)])


def tournament_parents(
    fitness: Sequence[float], contestants: np.ndarray, elitism: int
) -> list[int]:
    """parents[i]: the member whose networks slot i holds after selection; an elite keeps
    its own, every other slot takes its tournament's winner."""
    keep = set(elites(fitness, elitism))
    parents = []
    for i, row in enumerate(contestants):
        if i in keep:
            parents.append(i)
        else:
            parents.append(int(min(row, key=lambda j: (-fitness[j], j))))
    return parents


def rank_sum(fitness_by_team: Mapping[str, Sequence[float]]) -> list[float]:
    """A member's fitness over all teams: the sum of its ranks (0 = worst) in each team's
    fitness, so no team's scale outweighs another's."""
    total = None
    for f in fitness_by_team.values():
        order = sorted(range(len(f)), key=lambda i: (f[i], -i))  # worst first
        ranks = np.empty(len(f))
        ranks[order] = np.arange(len(f))
        total = ranks if total is None else total + ranks
    return [float(x) for x in total]


def choose_mutation(pop: PopulationConfig, rng: np.random.Generator) -> str:
    p = np.array([pop.p_none, pop.p_weights, pop.p_hyperparameter], float)
    return MUTATIONS[int(rng.choice(len(MUTATIONS), p=p / p.sum()))]


def mutate_hyperparameter(
    hp: Mapping[str, float | int], pop: PopulationConfig, rng: np.random.Generator
) -> tuple[str, float | int, float | int]:
    """One hyperparameter of `pop.mutate`, multiplied by `shrink` or `grow` and kept inside
    its range: (name, old value, new value)."""
    name = str(rng.choice(list(pop.mutate)))
    old = hp[name]
    lo, hi = getattr(pop, f"{name}_range")
    new = min(max(old * float(rng.choice([pop.shrink, pop.grow])), lo), hi)
    if HYPERPARAMETERS[name] == "int":
        new = int(round(new))
    return name, old, new
