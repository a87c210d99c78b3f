"""What the live viewer knows about metric keys: titles, plain-language axis labels and the
formula behind each (shown as a tooltip), for the families of keys the learners log.

The page builds its charts from the keys a run actually logged (static/panels.js):
  - `eval/` and `member/K/` prefixes are taken off first: evaluation series share their
    family's chart (dashed); a population's member curves get charts of their own, one
    line per member (`member/K/return/predator` -> "Episode return · predator (members)");
  - the first family whose `pattern` matches the rest of the key holds it;
  - a key no family knows still gets a chart: keys that differ only in their last
    segment share one (`foo/predator`, `foo/prey` -> "Foo"), so a new learner's metrics
    appear without new page code.
A metrics row with a string `event` (e.g. {"env_steps": ..., "event": "selection",
"detail": "member 2 <- member 0"}) is drawn as a marker on the member charts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from predprey.viz.episode import TEAM_COLORS


@dataclass(frozen=True)
class ChartFamily:
    title: str
    ylabel: str  # plain words, on the axis
    formula: str  # what is computed, in the chart's tooltip
    pattern: str  # regex over the key with `eval/` and `member/K/` taken off
    log: bool = False  # log y-axis; values <= 0 left out


FAMILIES = (
    ChartFamily(
        "Critic loss",
        "critic's prediction error",
        "mean over the batch of (Q(o, a) − y)², y = r + γ·(1 − done)·Q′(o′, π′(o′))",
        r"^loss/critic/",
    ),
    ChartFamily(
        "Actor loss",
        "minus the critic's score of the actions",
        "mean over the batch of −Q(o, a = π(o)) + actor_reg · (pre-tanh action)²",
        r"^loss/actor/",
    ),
    ChartFamily(
        "Policy loss",
        "clipped surrogate loss",
        "−mean min(ρ·Â, clip(ρ, 1 − ε, 1 + ε)·Â), ρ = π(a|o) / π_old(a|o)",
        r"^loss/(policy|pg|surrogate)/",
    ),
    ChartFamily(
        "Value loss",
        "value function's prediction error",
        "mean (V(o) − R̂)², R̂ = GAE advantage + old value",
        r"^loss/(value|vf)/",
    ),
    ChartFamily(
        "Episode return",
        "reward summed over an episode",
        "Σ_t r_t per agent, mean over agents and finished episodes",
        r"^return/",
    ),
    ChartFamily(
        "Q value",
        "critic's value of replayed actions",
        "mean Q(o, a) over the replayed batch",
        r"^q/",
    ),
    ChartFamily(
        "Entropy",
        "randomness of the actions (nats)",
        "mean −log π(a|o) of the Gaussian policy",
        r"^entropy(/|$)",
    ),
    ChartFamily(
        "KL divergence",
        "how far one update moved the policy",
        "mean log π_old(a|o) − log π(a|o) over the rollout",
        r"^(approx_)?kl(/|$)",
    ),
    ChartFamily(
        "Clip fraction",
        "share of samples whose ratio was clipped",
        "mean of |ρ − 1| > ε",
        r"^clip_?frac(tion)?(/|$)",
    ),
    ChartFamily(
        "Touches per episode",
        "predator–prey touches per episode",
        "pairs (predator, prey) in contact, summed over the steps of an episode",
        r"^((train/)?touches_per_episode|.*touches.*)$",
    ),
    ChartFamily(
        "Landmarks covered",
        "fraction of landmarks with an agent on them",
        "share of landmarks with an agent within 0.1 at the last step",
        r"^(spread/)?coverage",
    ),
    ChartFamily(
        "Distance to landmarks",
        "how far landmarks are from the nearest agent",
        "mean over landmarks of min over agents |landmark − agent|",
        r"^(spread/)?landmark_dist",
    ),
    ChartFamily(
        "Collisions",
        "collisions per agent per step",
        "agent pairs in contact, per agent and step",
        r"^(spread/)?collision",
    ),
    ChartFamily(
        "Fitness",
        "score used to select members",
        "per team: evaluation result of each member (higher is better)",
        r"^fitness(/|$)",
    ),
    ChartFamily(
        "Throughput",
        "per second (log scale)",
        "env steps and learner updates per wall-clock second over the logging window",
        r"^perf/",
        log=True,
    ),
)

# Counters and bookkeeping: on every row, not worth a chart.
NOT_CHARTED = ("env_steps", "updates", "time", "episodes", "buffer/size", "episode_length")

# Team colours mean teams everywhere (episode canvas, charts); other series take these.
OTHER_SERIES_COLORS = ("#4daf4a", "#984ea3", "#ff7f00", "#a65628", "#17becf", "#666666")


def families_json() -> dict[str, Any]:
    return {
        "families": [asdict(f) for f in FAMILIES],
        "not_charted": list(NOT_CHARTED),
        "team_colors": TEAM_COLORS,
        "other_colors": list(OTHER_SERIES_COLORS),
    }
