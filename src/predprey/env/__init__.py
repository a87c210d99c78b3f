"""Vectorized predator-prey simulator.

env = predprey.env.make("tag", num_envs=1024, seed=0, preset="mpe")
obs = env.reset()                      # {"predator": [E, 3, 16], "prey": [E, 1, 14]}
res = env.step({"predator": a_pred, "prey": a_prey})   # forces in [-1, 1]^2

Scenarios: `tag` (`TagParams`: presets `mpe`, `seed`), `spread` (`SpreadParams`) and
`pettingzoo` (`PettingZooParams`: any PettingZoo ParallelEnv, stepped in worker processes by
`predprey.env.pz_vec.PettingZooVecEnv`, with VecEnv's interface).
Scripted policies: `predprey.env.scripted`; PettingZoo wrapper: `predprey.env.pettingzoo`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from predprey.env.pz_world import PettingZooParams, describe
from predprey.env.scenario import Scenario
from predprey.env.spread import Spread, SpreadParams
from predprey.env.tag import Tag, TagParams
from predprey.env.vec import StepResult, VecEnv

SCENARIOS: dict[str, tuple[type, Any]] = {
    "tag": (TagParams, Tag),
    "spread": (SpreadParams, Spread),
    "pettingzoo": (PettingZooParams, describe),
}


def params_class(name: str) -> type:
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; choose one of {sorted(SCENARIOS)}")
    return SCENARIOS[name][0]


def make_scenario(name: str, **params: Any) -> Scenario | Any:
    pcls = params_class(name)
    names = {f.name for f in dataclasses.fields(pcls)}
    unknown = sorted(set(params) - names)
    if unknown:
        raise ValueError(
            f"unknown parameter {unknown[0]!r} for scenario {name!r}; known: {sorted(names)}"
        )
    return SCENARIOS[name][1](pcls(**params))


def make(name: str = "tag", num_envs: int = 1, seed: int | None = 0, **params: Any) -> VecEnv:
    scenario = make_scenario(name, **params)
    if name == "pettingzoo":  # a foreign world: its copies run in worker processes
        from predprey.env.pz_vec import PettingZooVecEnv

        return PettingZooVecEnv(scenario, num_envs=num_envs, seed=seed)
    return VecEnv(scenario, num_envs=num_envs, seed=seed)


__all__ = ["make", "make_scenario", "params_class", "VecEnv", "StepResult", "SCENARIOS"]
