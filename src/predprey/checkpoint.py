"""Checkpoints in `runs/NAME/checkpoints/`: `latest.pt` plus the replay buffer it names.

`latest.pt` (torch.save, loadable with `weights_only=True`) holds the learner state
(weights, optimizers), the actor weights on their own (for `predprey.policy`), RNG
states, counters and the runner's env state. The buffer goes to `buffer-<total_added>.npz`
first and `latest.pt` is replaced afterwards, both atomically, so a crash at any moment
leaves a matching pair behind; older buffer files are removed after the switch.

`best.pt` holds, per team, the actor weights that scored best in the periodic evaluations
against scripted opponents (predators: most touches; prey: fewest), with the env step and
the score. Self-play between learned teams oscillates, so the latest weights are not
always the strongest; `predprey evaluate/simulate --policy best` use these.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from predprey.learn.buffer import ReplayBuffer
from predprey.rundir import RunDir, RunDirError

FORMAT = 1
LATEST = "latest.pt"
BEST = "best.pt"


def loop_state(loop: Any) -> dict[str, Any]:
    """The training loop's keys of every checkpoint (whatever its source): teams, config,
    episode count, wall clock, the log/eval schedule and the best-policy snapshots (weights
    included) of `loop`."""
    return {
        "teams": team_list(loop.teams),
        "config": loop.config.to_dict(),
        "episodes": loop.episodes,
        # The loop's own count when this state was taken: a concurrent buffer may have
        # inserted more by the time it writes `env_steps`; metrics past this point (an
        # evaluation this state's best snapshots never saw) are redone on resume.
        "loop_env_steps": loop.env_steps,
        "time": loop.log.elapsed(),
        "next_log": loop.next_log,
        "next_eval": loop.next_eval,
        "eval_index": loop.eval_index,
        "last_eval": dict(loop.last_eval),
        "last_eval_steps": loop.last_eval_steps,
        "best": loop.best.state(),
    }


def team_list(teams) -> list[list]:
    """The teams a checkpoint was written for: [name, agents, obs_dim, act_dim] each."""
    return [[t.name, t.n_agents, t.obs_dim, t.act_dim] for t in teams]


def restore_loop_state(loop: Any, payload: dict[str, Any]) -> float:
    """Set `loop`'s episode count, log/eval schedule and best snapshots from a `loop_state`
    payload; returns the run's wall clock so far (the loop's time offset)."""
    loop.episodes, loop.eval_index = int(payload["episodes"]), int(payload["eval_index"])
    loop.next_log, loop.next_eval = int(payload["next_log"]), int(payload["next_eval"])
    loop.last_eval = dict(payload["last_eval"])
    loop.last_eval_steps = int(payload["last_eval_steps"])
    loop.best.restore(payload.get("best") or payload.get("best_scores") or {})
    return float(payload["time"])


def restore(component: Any, payload: dict[str, Any], run: RunDir) -> None:
    """`component.load_state_dict(payload)`, with any mismatch between the checkpoint and
    what the config builds as the one message every kind of run gives."""
    try:
        component.load_state_dict(payload)
    except (KeyError, RuntimeError, ValueError, TypeError, IndexError) as e:
        if isinstance(e, RunDirError):
            raise
        detail = f"missing {e}" if isinstance(e, KeyError) else str(e)
        raise RunDirError(
            f"incompatible checkpoint in {run.path}: {detail} (was it written by another "
            "config or kind of run? resume with the config it was trained with)"
        ) from None


def loop_env_steps(payload: dict[str, Any]) -> int:
    """The env steps the loop had seen when its state was checkpointed (older checkpoints:
    the buffer's count)."""
    return int(payload.get("loop_env_steps", payload["env_steps"]))


def learner_state(learner: Any) -> dict[str, Any]:
    """The learner's part of a checkpoint, the same in every training loop: its full state,
    the actor weights alone (what `predprey.policy.load` reads) and the update count."""
    return {
        "learner": learner.state_dict(),
        "actors": learner.actor_state(),
        "updates": learner.version,
    }


def latest_path(run: RunDir) -> Path:
    return run.checkpoint_dir / LATEST


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def save(
    run: RunDir,
    payload: dict[str, Any],
    buffer: ReplayBuffer | None = None,
    named_buffers: dict[str, ReplayBuffer] | None = None,
) -> Path:
    """Write `payload` (+ `buffer`) as the latest checkpoint; returns the path of latest.pt.
    `named_buffers` (a population's, one per member or one shared) go to
    `buffer-<name>-<total_added>.npz`, listed in `payload["buffer_files"]`."""
    run.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    payload = dict(payload, format=FORMAT, buffer_file=None)
    if buffer is not None:
        name = f"buffer-{buffer.total_added:012d}.npz"
        buffer.save(run.checkpoint_dir / name)
        payload["buffer_file"] = name
    if named_buffers:
        payload["buffer_files"] = {}
        for key, buf in named_buffers.items():
            name = f"buffer-{key}-{buf.total_added:012d}.npz"
            buf.save(run.checkpoint_dir / name)
            payload["buffer_files"][key] = name
    keep = {payload["buffer_file"], *payload.get("buffer_files", {}).values()}
    path = latest_path(run)
    _atomic_save(payload, path)
    for old in run.checkpoint_dir.glob("buffer-*.npz"):
        if old.name not in keep:
            old.unlink(missing_ok=True)
    return path


def load(run: RunDir) -> dict[str, Any]:
    """The latest checkpoint's payload; a clear `RunDirError` if missing or unreadable."""
    path = latest_path(run)
    if not path.is_file():
        raise RunDirError(f"no checkpoint in {run.checkpoint_dir} (expected {LATEST})")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # torn/corrupt file or a foreign pickle: one clear message
        raise RunDirError(unreadable(path, "checkpoint")) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise RunDirError(
            f"incompatible checkpoint {path}: format {found!r}, this predprey reads {FORMAT}"
        )
    return payload


def unreadable(path: Path, what: str) -> str:
    """The message for a file that torch cannot read as plain tensors and containers. Torch's
    own message advises `weights_only=False`, i.e. running whatever pickle the file holds:
    never pass that on; name the file and the ways forward instead."""
    return (
        f"{what} {path} is corrupt or not a predprey file, and was not loaded; resume from "
        "an earlier copy of the run directory, or start the run anew (--overwrite)"
    )


def load_buffer(
    run: RunDir, payload: dict[str, Any], capacity: int, key: str | None = None
) -> ReplayBuffer:
    """The replay buffer saved with `payload` (`key`: the one of its `named_buffers`)."""
    name = payload.get("buffer_file") if key is None else payload.get("buffer_files", {}).get(key)
    if not name:
        raise RunDirError(f"checkpoint in {run.checkpoint_dir} holds no replay buffer")
    path = run.checkpoint_dir / name
    if not path.is_file():
        raise RunDirError(f"checkpoint names replay buffer {path}, which is missing")
    try:
        return ReplayBuffer.load(path, capacity=capacity)
    except Exception as e:
        raise RunDirError(f"corrupt or unreadable replay buffer {path}: {e}") from None


def check_teams(payload: dict[str, Any], teams, where: str) -> None:
    """Raise unless the checkpoint was written for the same teams (names, sizes, dims)."""
    want = team_list(teams)
    got = [list(t) for t in payload.get("teams", [])]
    if got != want:
        raise RunDirError(
            f"incompatible checkpoint in {where}: it was written for teams {got} "
            f"(name, agents, obs_dim, act_dim), the config describes {want}"
        )


def save_best(run: RunDir, best: dict[str, Any]) -> None:
    """Write `{team: {"actor": state_dict, "env_steps": int, "metric": str, "score": float}}`."""
    run.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    _atomic_save({"format": FORMAT, "teams": best}, run.checkpoint_dir / BEST)


def load_best(run: RunDir) -> dict[str, Any]:
    """The per-team best actors of `save_best`; a clear `RunDirError` if there are none."""
    path = run.checkpoint_dir / BEST
    if not path.is_file():
        raise RunDirError(
            f"no best-policy snapshot in {run.checkpoint_dir} (written at evaluations of "
            "learned predators/prey against scripted opponents); use --policy latest"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        raise RunDirError(unreadable(path, "best-policy snapshot")) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise RunDirError(f"incompatible best-policy snapshot {path}")
    return payload["teams"]
