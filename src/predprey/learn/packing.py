"""Transitions packed for the wire: each env step's observation travels once.

A runner's call of S vector steps over E envs yields rows `[S * E]` (step-major) whose
`next_obs` is, in every row where the env did not finish, the `obs` of the same env's next
row. The packed form (`Runner.collect(..., packed=True)`) holds `obs/{team}` for S + 1 steps
(`[(S + 1) * E, ...]`, the runner's observation after the last step appended) and
`next_obs` only for the rows where it differs from that — the pre-reset final observation
of a finished episode — with their row numbers (`packed/final_rows`,
`packed/final_next_obs/{team}`). Every other field is as in `transition_spec`. `unpack`
rebuilds the `transition_spec` rows exactly. For the seed world (2.5 KB rows, 95%
observations) this halves what crosses the object store and goes to the write-ahead log.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

ROWS = "packed/final_rows"  # row numbers whose next_obs is sent on its own
FINAL = "packed/final_next_obs/"  # + team: those rows' next_obs [k, n, obs_dim]


def packed_spec(spec: Mapping[str, tuple], steps: int, num_envs: int) -> dict[str, tuple]:
    """Shapes `[steps + 1, E, ...]` for observations, `[steps, E, ...]` for the rest (the
    transition fields but next_obs), from a `transition_spec`."""
    out = {}
    for k, (shape, dt) in spec.items():
        if k.startswith("obs/"):
            out[k] = ((steps + 1, num_envs, *shape), dt)
        elif not k.startswith("next_obs/"):
            out[k] = ((steps, num_envs, *shape), dt)
    return out


def unpack(batch: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The `transition_spec` rows of a packed batch (an unpacked batch as it is)."""
    if ROWS not in batch:
        return dict(batch)
    rows, idx = len(batch["terminated"]), batch[ROWS]
    out = {k: v for k, v in batch.items() if not k.startswith(("obs/", "packed/"))}
    for k, obs in batch.items():
        if k.startswith("obs/"):
            t = k[len("obs/") :]
            nxt = obs[len(obs) - rows :].copy()  # [S * E, n, d]: each row's env, next step
            nxt[idx] = batch[FINAL + t]
            out[k], out[f"next_obs/{t}"] = obs[:rows], nxt
    return out
