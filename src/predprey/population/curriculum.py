"""A curriculum over the number of agents (`population.curriculum`; EPC, Long et al. ICLR
2020) for a `Population` in one process: at each stage change every member is rated at the
next size, the fittest keep their networks and the others copy them, and the members, the
loop's evaluations and its checkpoints move to the next size. The selection itself is
`evolution.stage_parents`; the stage due at a step, `PopulationConfig.stage_of`.
"""

from __future__ import annotations

from typing import Any

from predprey import seeding
from predprey.config import Config, ConfigError
from predprey.evaluate import team_scores, training_evals
from predprey.population import evolution as evo
from predprey.population.member import ALL_PARTS


def check_first_stage(config: Config) -> None:
    """A run trains from the first stage: env.num_agents and num_landmarks are its size (a
    trained policy may still be evaluated at any N)."""
    sizes = config.population.curriculum
    n = config.env.params.get("num_agents")
    landmarks = config.env.params.get("num_landmarks") or n
    if sizes and (n != sizes[0] or landmarks != n):
        raise ConfigError(f"population.curriculum: its first stage ({sizes[0]}) must be "
                          f"env.num_agents and num_landmarks (now {n}, {landmarks})")  # fmt: skip


def stage_fitness(evals: dict[str, float], kind: str) -> float:
    """A member's fitness at the next size: spread's coverage, or its teams' summed return."""
    if kind == "coverage":
        return evals["eval/coverage"]
    return sum(score for _, score in team_scores(evals).values())


def next_stage(population: Any) -> None:
    """EPC at a stage change of `population` (a `Population`): every member rated at the
    next size on the same seeded episodes, the `stage_keep` fittest keep their networks and
    the others take copies of them (networks with their Adam moments, hyperparameters), then
    every member, the loop's evaluations and its checkpoints move to the next size; the
    event row goes to metrics.jsonl."""
    P, pop, members = population, population.pop, population.members
    env_steps, old_n = P.inserted, pop.curriculum[P.stage]
    P.stage += 1
    n, config = pop.curriculum[P.stage], P.config.at_stage(P.stage)
    seed = seeding.stage_seed(config.train.seed * 1_000_003, P.stage)  # not the loop's evals'
    evals = [training_evals(config, m.actors(), pop.stage_episodes, seed) for m in members]
    fitness = [stage_fitness(e, pop.stage_fitness) for e in evals]
    parents = evo.stage_parents(fitness, pop.stage_keep)
    teams = P.config.algo.teams or [t.name for t in P.loop.teams]
    # copies from snapshots taken before any member changes
    snaps = {(t, j): members[j].team_state(t, ALL_PARTS) for t in teams for j in set(parents)}
    old_hp = [dict(m.hp) for m in members]
    for m, j in zip(members, parents, strict=True):
        if j != m.k:
            if old_hp[j] != m.hp:
                m.set_hp(old_hp[j])  # the parent's width first: its copies fit as they are
            for t in teams:
                m.load_team_state(t, snaps[t, j])
        m.lineage.append({"env_steps": env_steps, "event": "stage", "stage": P.stage,
                          "num_agents": n, "parent": j})  # fmt: skip
    P.loop.next_stage(config)
    for m in members:
        m.change_world(config, P.stage, P.loop.teams)
    if pop.share_buffer:
        for m in members[1:]:
            m.source.buffer = members[0].source.buffer
    P.best = {t: evo.elites(fitness, 1)[0] for t in teams}
    kept = sorted(set(parents), key=lambda k: -fitness[k])
    copies = ", ".join(f"{j} -> {i}" for i, j in enumerate(parents) if i != j) or "none"
    P.loop.write_event({
        "event": "stage",
        "detail": f"stage {P.stage}: {old_n} -> {n} agents; kept {kept}; copies {copies}",
        "stage": P.stage, "num_agents": n, "parents": parents, "fitness": fitness,
        **{f"member/{k}/stage/{pop.stage_fitness}": f for k, f in enumerate(fitness)},
    })  # fmt: skip
