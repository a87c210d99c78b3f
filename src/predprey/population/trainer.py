"""`Population`: the training loop's (predprey.loop) algorithm and source at once for P
members: each `step` gives every member one turn of its own off-policy step (collect, the
updates its own pace owes), and the loop's counters are the members' sums. Members live in
this process (`Member`) or on Ray (predprey.distributed.population.RayMember).

Fitness comes from the loop's scheduled evaluations: every member is evaluated with the
same seeds; per team (`evaluate.team_scores`: predators' touches v the scripted evader,
prey's touches conceded to the scripted chasers negated, spread's return) the fitter member
is the better one. After an evaluation the population syncs critics (genetic) or selects
and mutates (evolve) when that is due, and writes each event as a metrics row.

metrics.jsonl: the usual keys are the whole population's (training windows pool every
member; `eval/...` are per team the best member's, which also feed best.pt); each member's
own curves are `member/K/...` (`member/K/hp/NAME`: its hyperparameters); events are rows
with `event` (init | sync | selection | mutation | stage), a readable `detail` and the
structured fields (member, team, parents, old and new values, the hyperparameters after).

With `population.curriculum` (EPC, spread only, one process) the population also moves
through the numbers of agents: when the whole population's env steps reach the next stage,
every member is rated at the next size (`member/K/stage/<stage_fitness>` on the `stage` event
row), the fittest keep their networks and the others copy them, and from then on members,
the loop's evaluations and checkpoints are at the new size (`curriculum_stage` in the
checkpoint: a resumed run starts at its stage).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from predprey import checkpoint, seeding
from predprey.config import Config
from predprey.evaluate import team_scores
from predprey.loop import SourceBase, TrainLoop
from predprey.population import curriculum
from predprey.population import evolution as evo
from predprey.population.member import ALL_PARTS, CRITIC_PARTS, Member, member_budget


class TeamPick:
    """Acts (and hands out actor weights) per team with a chosen member's actors (a learner,
    or a copy of a learner actor's)."""

    def __init__(self, learners: dict[str, Any], default: Any):
        self.learners, self.default = learners, default

    def act(self, obs, noise_std: float = 0.0, rng=None) -> dict[str, np.ndarray]:
        out = self.default.act(obs, noise_std, rng)
        for learner in {id(x): x for x in self.learners.values()}.values():
            if learner is not self.default:
                acts = learner.act(obs, noise_std, rng)
                out.update({t: acts[t] for t, x in self.learners.items() if x is learner})
        return out

    def actor_state(self) -> dict[str, dict[str, Any]]:
        state = self.default.actor_state()
        state.update({t: x.actor_state()[t] for t, x in self.learners.items()})
        return state


class Population(SourceBase):
    """The members, as the loop's algorithm (`step`, `work_left`: every member one turn) and
    as its source (counters, timers and buffers summed; the fittest members' actors), with
    the fitness of the latest evaluation and the sync/evolve schedule.

    `make_member(k, config, hp, loop)` builds a member (`Member` in this process); `wait`,
    if given, is called after every member's turn with the members (members on Ray: block
    until any of their calls completes, as one source's `wait` does)."""

    def __init__(self, config: Config, loop: TrainLoop, make_member=Member, wait=None):
        pop = config.population
        if pop is None:
            raise ValueError("a population needs a `population` config section")
        self.config, self.pop, self.loop, self.wait = config, pop, loop, wait
        self.rng = np.random.default_rng(seeding.streams(config.train.seed).population)
        hps = evo.initial_hyperparameters(config.algo, pop, self.rng)
        curriculum.check_first_stage(config)
        # a resumed curriculum starts in its stage's world (the loop's teams are its already)
        self.stage = int(loop.payload.get("curriculum_stage", 0)) if loop.payload else 0
        staged = config.at_stage(self.stage)
        self.members = [make_member(k, staged, hps[k], loop) for k in range(pop.size)]
        self.remote = self.members[0].remote
        self.concurrent = self.remote
        if pop.share_buffer:  # AgileRL: every member adds to and samples from one replay
            for m in self.members[1:]:
                m.source.buffer = self.members[0].source.buffer
        self.fitness: dict[str, list[float]] = {}  # team -> [P], the latest evaluation's
        self.best: dict[str, int] = {}  # team -> the fittest member at that evaluation
        self.syncs = self.evolutions = 0
        self.next_sync, self.next_evolve = pop.sync_every, pop.evolve_every

    def start(self, resumed: bool) -> None:
        """Once attached to the loop: member windows start with the loop's, and a new run
        writes each member's first draws (where each lineage starts) as `init` events."""
        for m in self.members:
            m.log.reset_window(m.source.inserted, m.source.updates)
            if not resumed:
                hp = ", ".join(f"{k}={v:.4g}" for k, v in m.hp.items())
                self.loop.write_event({"event": "init", "detail": f"member {m.k}: {hp}",
                                       "member": m.k, "hp": dict(m.hp)})  # fmt: skip

    # -- the algorithm: members take turns -------------------------------------------
    def step(self, src: Any, total: int) -> None:
        P = len(self.members)
        for k, m in enumerate(self.members):
            budget = member_budget(total, P, k)
            if m.algorithm.work_left(m.source, budget):
                m.algorithm.step(m.source, budget)
            else:  # done, but calls may be in flight (Ray): take their results
                m.source.wait()
        if self.wait is not None:
            self.wait(self.members)
        if self.pop.stage_of(self.inserted) > self.stage:
            curriculum.next_stage(self)

    def work_left(self, src: Any, total: int) -> bool:
        P = len(self.members)
        return any(
            m.algorithm.work_left(m.source, member_budget(total, P, k))
            for k, m in enumerate(self.members)
        )

    # -- the source: sums over the members --------------------------------------------
    @property
    def inserted(self) -> int:
        return sum(m.source.inserted for m in self.members)

    @property
    def updates(self) -> int:
        return sum(m.source.updates for m in self.members)

    def timers(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for m in self.members:
            for k, v in m.source.timers().items():
                out[k] = out.get(k, 0.0) + v
        return out

    def actors(self) -> TeamPick:
        """Per team the actors of the member fittest at the latest evaluation (member 0's
        before the first)."""
        acting = {k: self.members[k].actors() for k in {0, *self.best.values()}}
        return TeamPick({t: acting[k] for t, k in self.best.items()}, acting[0])

    def replay_buffers(self) -> dict[str, Any]:
        """Replay buffers that go into the population's checkpoint (members on Ray keep
        theirs in their own)."""
        if self.remote:
            return {}
        if self.pop.share_buffer:
            return {"shared": self.members[0].source.buffer}
        return {f"m{m.k}": m.source.buffer for m in self.members}

    def buffer_size(self) -> int:
        if self.remote:
            return sum(m.source.buffer_size() for m in self.members)
        return sum(len(b) for b in self.replay_buffers().values())

    def log_keys(self, seconds: float) -> dict[str, Any]:
        row = {}
        for m in self.members:  # its window and its source's own keys (Ray: dist/*)
            row.update(m.window_keys())
            row.update({f"member/{m.k}/{k}": v for k, v in m.source.log_keys(seconds).items()})
        row.update(self.restart_keys())
        return row

    def restart_keys(self) -> dict[str, int]:
        """`dist/restarts`: actor restarts of every member (members on Ray)."""
        return {"dist/restarts": sum(m.restarts() for m in self.members)} if self.remote else {}

    def finish(self) -> None:
        for m in self.members:
            m.source.finish()

    def flush_recorded(self) -> list:
        return self.members[0].source.flush_recorded()

    def close(self) -> None:
        for m in self.members:
            m.source.close()

    def result(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.remote:  # summed over members, as one RaySource's
            results = [m.source.result() for m in self.members]
            restarts: dict[str, int] = {}
            for r in results:
                for role, n in r["restarts"].items():
                    restarts[role] = restarts.get(role, 0) + n
            out = {
                "restarts": restarts,
                "acked_rows": sum(r["acked_rows"] for r in results),
                "lost_rows": sum(r["lost_rows"] for r in results),
            }
        return {
            **out,
            "members": [
                {"hp": m.hp, "fitness": {t: f[m.k] for t, f in self.fitness.items()}}
                for m in self.members
            ],
            "best_member": dict(self.best),
        }

    # -- fitness and events ------------------------------------------------------------
    def policies(self) -> list[Any]:
        return [m.actors() for m in self.members]

    def judge(self, evals: list[dict[str, float]]) -> tuple[dict, dict, Any]:
        """Fitness from every member's evaluation; the run's eval metrics are per team the
        fittest member's, which also feed best.pt."""
        last_eval = self.set_fitness(evals)
        extra = {f"best_member/{t}": k for t, k in self.best.items()}
        for k, e in enumerate(evals):
            extra.update({f"member/{k}/{key}": v for key, v in e.items()})
        return last_eval, extra, self.actors()

    def set_fitness(self, evals: list[dict[str, float]]) -> dict[str, float]:
        """Take each member's evaluation metrics; returns per team the fittest member's."""
        scores = [team_scores(e) for e in evals]
        self.fitness = {t: [s[t][1] for s in scores] for t in scores[0]}
        self.best = {t: evo.elites(f, 1)[0] for t, f in self.fitness.items()}
        return {scores[0][t][0]: evals[k][scores[0][t][0]] for t, k in self.best.items()}

    def events_due(self, env_steps: int) -> list[dict[str, Any]]:
        """Sync or evolve if due at this evaluation; the event rows."""
        mode = self.pop.mode
        # The schedules count from when an event was due, not from the evaluation that ran
        # it, so evaluations a little past the due step do not push later events back.
        due = (mode == "genetic" and env_steps >= self.next_sync) or (
            mode == "evolve" and env_steps >= self.next_evolve
        )
        if not due:
            return []
        for m in self.members:  # members on Ray: no call in flight while networks move
            m.settle()
        if mode == "genetic":
            self.syncs += 1
            interval = evo.sync_interval(self.syncs, self.pop.sync_every, self.pop.sync_decay)
            self.next_sync = max(self.next_sync + interval, env_steps + 1)
            return self.sync(env_steps)
        self.evolutions += 1
        self.next_evolve = max(self.next_evolve + self.pop.evolve_every, env_steps + 1)
        return self.evolve(env_steps)

    def sync(self, env_steps: int) -> list[dict[str, Any]]:
        """CMU: per team, the fittest member's critics and critic targets go to all others;
        actors stay as they are."""
        rows = []
        for team, k in self.best.items():
            snap = self.members[k].team_state(team, CRITIC_PARTS)
            for m in self.members:
                if m.k != k:
                    m.load_team_state(team, snap)
                    m.lineage.append({"env_steps": env_steps, "event": "sync", "team": team,
                                      "parent": k})  # fmt: skip
            rows.append({
                "event": "sync", "detail": f"{team} critics: member {k} -> all",
                "team": team, "parent": k, "fitness": list(self.fitness[team]),
            })  # fmt: skip
        return rows

    def evolve(self, env_steps: int) -> list[dict[str, Any]]:
        """Per team tournament selection with elitism; mutation of the non-elite clones."""
        pop, members = self.pop, self.members
        contestants = evo.draw_contestants(len(members), pop.tournament_size, self.rng)
        joint = evo.rank_sum(self.fitness)
        hp_parents = evo.tournament_parents(joint, contestants, pop.elitism)
        hp_elites = set(evo.elites(joint, pop.elitism))
        parents = {
            t: evo.tournament_parents(f, contestants, pop.elitism) for t, f in self.fitness.items()
        }
        # Copy from snapshots taken before any member changes: a parent may be replaced too.
        snaps = {
            (t, j): members[j].team_state(t, ALL_PARTS)
            for t, ps in parents.items()
            for j in set(ps)
        }
        old_hp = [dict(m.hp) for m in members]
        rows = []
        for m in members:
            i = m.k
            changed = {t: ps[i] for t, ps in parents.items() if ps[i] != i}
            hp = dict(old_hp[hp_parents[i]])
            if hp.get("hidden") != m.hp.get("hidden"):  # the parent's architecture first
                m.set_hp({**m.hp, "hidden": hp["hidden"]})
            for t, j in changed.items():  # (a team's parent of another width: fitted in)
                m.load_team_state(t, snaps[t, j])
            if i in hp_elites and not changed:
                continue  # an elite of every kind: kept as it is
            kind = evo.choose_mutation(pop, self.rng) if i not in hp_elites else "none"
            mutation: dict[str, Any] = {"kind": kind}
            if kind == "weights":  # the actors of the teams this member is no elite of
                seed = int(self.rng.integers(2**62))
                teams = [t for t in parents if i not in evo.elites(self.fitness[t], pop.elitism)]
                for t in teams:
                    m.add_weight_noise(t, pop.weights_noise, seed)
                mutation["teams"] = teams
            elif kind == "hyperparameter":
                name, old, new = evo.mutate_hyperparameter(hp, pop, self.rng)
                hp[name] = new
                mutation.update(name=name, old=old, new=new)
            if hp != m.hp:
                m.set_hp(hp)
            who = ", ".join(f"{t} <- {j}" for t, j in changed.items()) or "networks kept"
            rows.append({
                "event": "selection",
                "detail": f"member {i}: {who}; hyperparameters <- {hp_parents[i]}",
                "member": i, "parents": {t: ps[i] for t, ps in parents.items()},
                "hp_parent": hp_parents[i], "fitness": {t: f[i] for t, f in self.fitness.items()},
            })  # fmt: skip
            if kind != "none":
                what = (
                    f"{name} {old:.4g} -> {new:.4g}"
                    if kind == "hyperparameter"
                    else f"actor weights noise ({', '.join(mutation['teams'])})"
                )
                rows.append({"event": "mutation", "detail": f"member {i}: {what}", "member": i,
                             **mutation, "hp": dict(hp)})  # fmt: skip
            m.lineage.append({
                "env_steps": env_steps, "event": "evolve", "parents": changed,
                "hp_parent": hp_parents[i], "mutation": mutation, "hp": dict(hp),
            })  # fmt: skip
        return rows

    # -- checkpoints -------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "actors": self.actors().actor_state(),  # what predprey.policy.load reads
            "updates": self.updates,
            "env_steps": self.inserted,
            "curriculum_stage": self.stage,  # the loop and members start in its world
            "population": {
                "members": [m.state() for m in self.members],
                "fitness": {t: list(f) for t, f in self.fitness.items()},
                "best": dict(self.best),
                "rng": self.rng.bit_generator.state,
                "syncs": self.syncs, "evolutions": self.evolutions,
                "next_sync": self.next_sync, "next_evolve": self.next_evolve,
            },
        }  # fmt: skip

    def write_checkpoint(self, payload: dict[str, Any]) -> None:
        """Members on Ray first write their own checkpoints (learner, replay), then the
        population's: loop state, every member's actors, hyperparameters and lineage."""
        for m in self.members:
            m.save_own_checkpoint()
        super().write_checkpoint(payload)

    def load_state_dict(self, payload: dict[str, Any]) -> None:
        state = payload.get("population")
        if state is None or len(state["members"]) != len(self.members):
            have = "no population" if state is None else f"{len(state['members'])} members"
            raise ValueError(f"it holds {have}, the config asks for {len(self.members)}")
        capacity = self.config.buffer.capacity
        buffers = {
            k: checkpoint.load_buffer(self.run_dir, payload, capacity, key=k)
            for k in self.replay_buffers()
        }
        for m in self.members:
            buffer = buffers.get("shared") or buffers.get(f"m{m.k}")
            m.restore(state["members"][m.k], buffer)
        self.fitness = {t: list(f) for t, f in state["fitness"].items()}
        self.best = {t: int(k) for t, k in state["best"].items()}
        self.rng.bit_generator.state = state["rng"]
        self.syncs, self.evolutions = int(state["syncs"]), int(state["evolutions"])
        self.next_sync, self.next_evolve = int(state["next_sync"]), int(state["next_evolve"])
