"""Every random stream of a run, derived from `train.seed` in one place.

In one process a run draws from five independent streams (`streams`): the env seed, the
learner's initial weights, collection (warm-up actions, exploration noise, PPO's action
samples), sampling (replay batches, PPO's minibatch permutations) and the population's
selection and mutation. A runner built from one seed alone (a Ray actor, `simulate`,
`evaluate`, an HTTP env process) splits it with `seed_streams`. Actors started on Ray
draw from `session_seed(config, session, role, ...)`: a resumed run (a new session) or a
restarted actor (a new incarnation) gets a fresh stream, never a repeat of one it used.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

# Roles of the Ray streams (the words after the session).
BUFFER, LEARNER, RUNNER, PPO_SAMPLE = 1, 2, 3, 4


class Streams(NamedTuple):
    env: int
    learner: int
    collect: np.random.SeedSequence
    sample: np.random.SeedSequence
    population: np.random.SeedSequence


def streams(seed: int) -> Streams:
    env, learner, collect, sample, population = np.random.SeedSequence(seed).spawn(5)
    return Streams(_int(env), _int(learner), collect, sample, population)


def learner_seed(seed: int) -> int:
    """The first learner's weights: the same in one process, on Ray and over HTTP."""
    return streams(seed).learner


def session_seed(seed: int, session: int, *words: int) -> int:
    """A Ray actor's seed: the run's seed, the session (0, then +1 per resume) and the
    actor's role, index and incarnation."""
    return _int(np.random.SeedSequence([seed, session, *words]))


def member_seed(seed: int, k: int) -> int:
    """Population member k's `train.seed` (member 0 keeps the run's: a population of one is
    the single learner)."""
    return seed if k == 0 else _int(np.random.SeedSequence([seed, k]))


def stage_seed(seed: int, stage: int) -> int:
    """A seed for curriculum stage `stage` (predprey.population.curriculum): the new world's
    envs, the members' evaluations at the next size; `seed` itself at stage 0."""
    return seed if stage == 0 else _int(np.random.SeedSequence([seed, 0xC0, stage]))


def seed_streams(seed: int) -> tuple[int, np.random.Generator]:
    """An env seed and an independent generator for the actions (warm-up, noise, scripted
    policies) from one seed. Seeding both with `seed` itself would give them the same random
    stream: actions would replay the numbers that placed the agents."""
    env_seed, act_seed = np.random.SeedSequence(seed).spawn(2)
    return _int(env_seed), np.random.default_rng(act_seed)


def _int(seq: np.random.SeedSequence) -> int:
    return int(seq.generate_state(1)[0])
