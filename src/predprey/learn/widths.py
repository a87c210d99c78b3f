"""Actor networks of whatever hidden width their weights have.

Widths differ where a population evolves them (`predprey.population.resize`); anything that
loads actor weights of unknown width (runner actors, `predprey.policy.load`, a population
member's evaluation) builds the shape the weights have (`fit_actors`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import torch

from predprey.config import AlgoConfig


def widths(actor_state: Mapping[str, torch.Tensor]) -> tuple[int, ...]:
    """Hidden widths of one team's actor state_dict (`mlp.weights.i`: [models, in, out])."""
    keys = sorted((k for k in actor_state if ".weights." in k), key=lambda k: int(k.split(".")[-1]))
    return tuple(int(actor_state[k].shape[-1]) for k in keys[:-1])


def with_hidden(algo: AlgoConfig, hidden) -> AlgoConfig:
    hidden = tuple(int(h) for h in hidden)
    return algo if tuple(algo.hidden) == hidden else dataclasses.replace(algo, hidden=hidden)


def fit_actors(actors, teams, algo: AlgoConfig, state: Mapping[str, Mapping]):
    """`actors` (an ActorSet, or None) loaded with `state`, rebuilt first for the teams whose
    widths differ from `state`'s (per team: a population's best actors may come from
    members of different widths). Returns the ActorSet holding `state`."""
    from predprey.learn.attention import build_actors
    from predprey.learn.networks import Actor

    if actors is None:
        actors = build_actors(teams, algo)
    by_name = {t.name: t for t in teams}
    for name, sd in state.items():
        if name in actors.actors and widths(actors.actors[name].state_dict()) != widths(sd):
            g = torch.Generator().manual_seed(0)  # overwritten by the load below
            actors.actors[name] = Actor(by_name[name], with_hidden(algo, widths(sd)), g)
    actors.load_actor_state(state)
    return actors
