"""How the trainer's transitions travel as the original service's record keys.

A row of the HTTP buffer is one environment step of one environment, every agent side
by side (teams in env order, agents in team order, predators first):

  State       obs of every agent, flattened           [sum_t n_t * obs_dim_t]
  Action      actions of every agent, flattened       [sum_t n_t * act_dim_t]
  Reward      reward of every agent                   [sum_t n_t]
  Next State  pre-reset final obs, flattened          [sum_t n_t * obs_dim_t]
  Done        1.0 when terminated (truncation bootstraps, so it is 0 there)  [1]

`run-env` packs `Runner.collect` transitions with `to_record`; `train --buffer-url`
unpacks sampled rows with `from_record` into the `transition_spec` fields that
`Learner.update` reads. The policy version of a row does not travel (the original keys
have no place for it); unpacked rows carry version -1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from predprey.learn.spec import TeamSpec

UNKNOWN_VERSION = -1


class RecordLayout:
    def __init__(self, teams: Sequence[TeamSpec]):
        self.teams = tuple(teams)
        self.widths = {
            "State": sum(t.n_agents * t.obs_dim for t in self.teams),
            "Action": sum(t.n_agents * t.act_dim for t in self.teams),
            "Reward": sum(t.n_agents for t in self.teams),
            "Next State": sum(t.n_agents * t.obs_dim for t in self.teams),
            "Done": 1,
        }

    def to_record(self, transitions: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """transition_spec fields [B, ...] -> {record key: float32 [B, width]}."""
        B = len(transitions["terminated"])

        def joint(prefix: str) -> np.ndarray:
            parts = [transitions[f"{prefix}/{t.name}"].reshape(B, -1) for t in self.teams]
            return np.concatenate(parts, axis=1).astype(np.float32, copy=False)  # [B, width]

        return {
            "State": joint("obs"),
            "Action": joint("act"),
            "Reward": joint("rew"),
            "Next State": joint("next_obs"),
            "Done": transitions["terminated"].reshape(B, 1).astype(np.float32),
        }

    def from_record(self, record: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """{record key: [B, width]} -> transition_spec fields [B, ...] (views where possible)."""
        self.check({k: np.shape(v)[1] for k, v in record.items()}, "the sampled rows")
        B = len(record["State"])
        out: dict[str, np.ndarray] = {}
        obs_at = act_at = rew_at = 0
        for t in self.teams:
            n_obs, n_act = t.n_agents * t.obs_dim, t.n_agents * t.act_dim
            obs_shape, act_shape = (B, t.n_agents, t.obs_dim), (B, t.n_agents, t.act_dim)
            out[f"obs/{t.name}"] = record["State"][:, obs_at : obs_at + n_obs].reshape(obs_shape)
            out[f"act/{t.name}"] = record["Action"][:, act_at : act_at + n_act].reshape(act_shape)
            out[f"rew/{t.name}"] = record["Reward"][:, rew_at : rew_at + t.n_agents]  # [B, n]
            out[f"next_obs/{t.name}"] = record["Next State"][:, obs_at : obs_at + n_obs].reshape(
                obs_shape
            )
            obs_at, act_at, rew_at = obs_at + n_obs, act_at + n_act, rew_at + t.n_agents
        out["terminated"] = record["Done"][:, 0].astype(np.float32)  # [B]
        out["version"] = np.full(B, UNKNOWN_VERSION, np.int64)
        return out

    def check(self, widths: Mapping[str, int] | None, where: str) -> None:
        """ValueError unless `widths` (e.g. the server's /stats widths) match this layout;
        None (a buffer that has not fixed its widths yet) matches anything."""
        if widths is None:
            return
        wrong = {k: (widths.get(k), w) for k, w in self.widths.items() if widths.get(k) != w}
        if wrong:
            detail = ", ".join(f"{k}: {got} (config needs {w})" for k, (got, w) in wrong.items())
            teams = ", ".join(f"{t.n_agents} {t.name} x {t.obs_dim} obs" for t in self.teams)
            raise ValueError(
                f"row widths of {where} do not match this config ({teams}): {detail}; "
                "use the same env config everywhere, or serve-buffer --reset for a new buffer"
            )


def server_widths(stats: Any, url: str) -> dict[str, int] | None:
    """The row widths in a GET /stats answer (None: not fixed yet); ValueError when the
    answer is not a predprey buffer's."""
    if not isinstance(stats, dict) or "widths" not in stats or "total_recorded" not in stats:
        raise ValueError(f"{url} answered /stats, but not as a predprey serve-buffer does")
    return stats["widths"]
