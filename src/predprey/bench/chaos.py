"""Chaos: train on Ray while a random actor is SIGKILLed every few seconds, then the same
run undisturbed; evaluate both side by side.

  predprey bench chaos --config configs/tag.yaml --kill-every 20 --seconds 300
                       [--runners 2] [--seed 0] [--out DIR] [--episodes 200] [--set k=v]...

Both runs are `predprey train --runners K --time-budget SECONDS --seed S` subprocesses
(the same config, seed, budget and runners; each starts its own private Ray instance).
During the first, every `--kill-every` seconds (jittered, 0.5x to 1.5x) one process of
that run's Ray session whose title is a predprey actor's (`ray::RunnerActor`,
`ray::BufferActor`, `ray::LearnerActor`, `ray::RolloutActor`, with or without the method
it is running) is picked at random and SIGKILLed. Only descendants of the run's own
`predprey train` process are candidates: a private Ray instance's raylet, and so its
workers, are children of the process that started it, so other Ray sessions on the
machine are never touched.

Then each run is evaluated (`predprey evaluate RUN --episodes N`: learned predators v the
evader prey, and the chaser predators v learned prey) and one JSON line is printed, plus
a small table: kills, restarts the run recorded (`dist/restarts` in metrics.jsonl),
acknowledged rows lost (the run's own `dist/lost_rows`, and an independent count: the
env steps the run reports minus the rows its final checkpoint and write-ahead log hold),
env steps, updates and both evaluations. The kill log (time, victim title, pid) goes to
OUT/chaos.json with the summary. Exit status 1 if the chaotic run failed, lost an
acknowledged row or no kill landed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

# Ray process titles of predprey's actors (predprey.distributed.actors, .onpolicy): a
# population member's actors are the same classes.
VICTIMS = ("RunnerActor", "BufferActor", "LearnerActor", "RolloutActor")
POLL_SECONDS = 0.5
PROGRESS_EVERY = 30.0  # seconds between progress lines
GRACE_SECONDS = 600.0  # bound on start-up, final checkpoint and shutdown beyond the budget


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default="configs/tag.yaml")
    p.add_argument("--kill-every", type=float, default=20.0, metavar="SECONDS",
                   help="mean seconds between kills (each gap 0.5x to 1.5x this)")  # fmt: skip
    p.add_argument("--seconds", type=float, default=300.0, help="time budget of each run")
    p.add_argument("--runners", type=int, default=2)
    p.add_argument("--seed", type=int, default=0, help="training seed; also picks the victims")
    p.add_argument("--episodes", type=int, default=200, help="evaluation episodes per match")
    p.add_argument("--out", default="runs/chaos", help="directory for both runs and chaos.json")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=V",
                   help="config override for both runs (repeatable)")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from predprey.config import ConfigError

    if args.kill_every <= 0 or args.seconds <= 0 or args.runners < 1:
        raise ConfigError("--kill-every and --seconds must be > 0 and --runners >= 1")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    runs = {}
    for name, kill_every in (("chaos", args.kill_every), ("calm", None)):
        say(f"{name}: training {args.seconds:.0f} s with {args.runners} runners"
            + (f", a kill every ~{kill_every:.0f} s" if kill_every else ", no kills"))  # fmt: skip
        runs[name] = train(args, out / name, kill_every, rng)
        r = runs[name]
        r.update(run_facts(out / name))
        r["lost_rows"] = lost_rows(r)
        say(
            f"{name}: exit {r['exit']}, {r.get('result', {}).get('env_steps', 0)} env steps, "
            f"{r['restarts_total']} restarts, {r['lost_rows']} acknowledged rows lost"
        )
    for name, r in runs.items():
        if r["exit"] == 0:
            say(f"{name}: evaluating ({args.episodes} episodes per match)")
            r["eval"] = evaluate(out / name, args.episodes, args.seed)
    chaos = runs["chaos"]
    failed = chaos["exit"] != 0 or chaos["lost_rows"] != 0 or not chaos["kills"]
    summary = {"config": args.config, "kill_every": args.kill_every, "seconds": args.seconds,
               "runners": args.runners, "seed": args.seed, "ok": not failed, **runs}  # fmt: skip
    (out / "chaos.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary))
    print(table(runs), file=sys.stderr)
    return 1 if failed else 0


def say(msg: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- one training run ----------------------------------------------------------------
def train(args, path: Path, kill_every: float | None, rng) -> dict[str, Any]:
    cmd = [
        sys.executable, "-m", "predprey.cli", "train", "--config", args.config,
        "--out", str(path), "--overwrite", "--quiet", "--runners", str(args.runners),
        "--seed", str(args.seed), "--time-budget", str(args.seconds),
        *(f"--set={o}" for o in args.overrides),
    ]  # fmt: skip
    log = open(path.with_suffix(".log"), "wb")  # noqa: SIM115 (closed below)
    # Its own session: if this command is interrupted, the run's whole tree goes with it.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, start_new_session=True)
    kills: list[dict[str, Any]] = []
    t0 = time.monotonic()
    training_since = None  # the run's first metrics line: it is training, kills begin
    next_kill = next_progress = None
    try:
        while proc.poll() is None:
            now = time.monotonic()
            if now - t0 > args.seconds + GRACE_SECONDS:
                say(f"run did not end within {args.seconds + GRACE_SECONDS:.0f} s; stopping it")
                break
            victims = ray_actors(proc.pid)
            if training_since is None and victims and (path / "metrics.jsonl").is_file():
                training_since = now
                say(f"training after {now - t0:.0f} s: {sorted({v[1] for v in victims})}")
                next_progress = now + PROGRESS_EVERY
                if kill_every:
                    next_kill = now + kill_every * rng.uniform(0.5, 1.5)
            if next_kill is not None and now >= next_kill and victims:
                pid, title = victims[rng.integers(len(victims))]
                if kill(pid):
                    kills.append({"t": round(now - training_since, 1), "title": title,
                                  "pid": pid})  # fmt: skip
                    say(f"kill {len(kills)}: {title} pid {pid} at {kills[-1]['t']} s")
                next_kill = now + kill_every * rng.uniform(0.5, 1.5)
                if next_kill - training_since > args.seconds:  # within the time budget only
                    next_kill = None
            if next_progress is not None and now >= next_progress:
                say(f"{now - training_since:.0f} s: {progress(path)}, {len(kills)} kills")
                next_progress = now + PROGRESS_EVERY
            time.sleep(POLL_SECONDS)
    finally:
        if proc.poll() is None:
            kill_session(proc.pid)
        stdout = proc.communicate()[0].decode(errors="replace")
        log.close()
    result = {"exit": proc.returncode, "kills": kills, "wall_s": round(time.monotonic() - t0, 1)}
    lines = [ln for ln in stdout.splitlines() if ln.startswith("{")]
    if proc.returncode == 0 and lines:
        result["result"] = json.loads(lines[-1])
    else:  # the one-line error (or traceback) the run printed
        tail = path.with_suffix(".log").read_text(errors="replace").strip().splitlines()
        result["error"] = tail[-1] if tail else ""
    return result


def ray_actors(root: int) -> list[tuple[int, str]]:
    """(pid, title) of the predprey actors among `root`'s descendants."""
    import psutil

    try:
        procs = psutil.Process(root).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    found = []
    for p in procs:
        try:
            title = " ".join(p.cmdline()).strip()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        if title.startswith("ray::") and title[5:].split(".")[0].split()[0] in VICTIMS:
            found.append((p.pid, title.split()[0]))
    return found


def kill_session(sid: int) -> None:
    """SIGKILL every process of session `sid` (a run started with start_new_session=True:
    Ray's workers put themselves in process groups of their own, but stay in the session,
    even once their parent is gone)."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):  # gone meanwhile
                if os.getsid(int(entry)) == sid:
                    os.kill(int(entry), signal.SIGKILL)


def kill(pid: int) -> bool:
    try:
        os.kill(pid, signal.SIGKILL)
        return True
    except ProcessLookupError:  # ended between the scan and the kill
        return False


def progress(path: Path) -> str:
    rows = read_metrics(path)
    last = next((r for r in reversed(rows) if "env_steps" in r), {})
    restarts = max((r.get("dist/restarts", 0) for r in rows), default=0)
    return (f"{last.get('env_steps', 0)} env steps, {last.get('updates', 0)} updates, "
            f"{restarts} restarts")  # fmt: skip


def read_metrics(path: Path) -> list[dict[str, Any]]:
    f = path / "metrics.jsonl"
    if not f.is_file():
        return []
    rows = []
    for line in f.read_text().splitlines():
        with contextlib.suppress(json.JSONDecodeError):  # a line being written
            rows.append(json.loads(line))
    return rows


# -- what a run left ------------------------------------------------------------------
def run_facts(path: Path) -> dict[str, Any]:
    """Counters of a finished run: its result line, restarts and lost rows from metrics,
    and the rows its final checkpoint plus write-ahead log hold."""
    rows = read_metrics(path)
    res = {}
    restarts = [r for r in rows if "dist/restarts" in r]
    res["restarts"] = {k.removeprefix("dist/restarts/"): v for k, v in restarts[-1].items()
                       if k.startswith("dist/restarts/")} if restarts else {}  # fmt: skip
    res["restarts_total"] = restarts[-1]["dist/restarts"] if restarts else 0
    res["lost_rows_reported"] = max((r.get("dist/lost_rows", 0) for r in rows), default=0)
    res["stored_rows"] = stored_rows(path)
    return res


def lost_rows(r: dict[str, Any]) -> int:
    """Acknowledged rows missing: what the run reported lost, or the rows it counted as
    acknowledged (its env steps) that its store does not hold, whichever is more."""
    acked = r.get("result", {}).get("env_steps")
    missing = 0 if acked is None or r["stored_rows"] is None else acked - r["stored_rows"]
    return max(r["lost_rows_reported"], missing, 0)


def stored_rows(path: Path) -> int | None:
    """Rows the run's store holds: the final checkpoint's buffer plus the write-ahead log
    records that continue it (what a restarted buffer actor restores)."""
    from predprey import checkpoint
    from predprey.distributed.durable import WAL_NAME
    from predprey.distributed.wal import WriteAheadLog
    from predprey.learn.packing import unpack
    from predprey.rundir import RunDir, RunDirError

    run = RunDir(path)
    try:
        total = int(checkpoint.load(run)["env_steps"])
    except (RunDirError, KeyError):
        return None
    wal = run.checkpoint_dir / WAL_NAME
    if wal.is_file():
        log = WriteAheadLog(wal)
        for rec in log.replay():
            if rec.start == total:
                total += len(unpack(rec.batch)["terminated"])
        log.close()
    return total


def evaluate(path: Path, episodes: int, seed: int) -> dict[str, Any]:
    """Touches per episode (mean, 95% CI) of learned predators v the evader and of the
    chaser v learned prey."""
    out = {}
    for name, who in (("predators_v_evader", ["--prey", "evader"]),
                      ("chaser_v_prey", ["--predators", "chaser"])):  # fmt: skip
        cmd = [sys.executable, "-m", "predprey.cli", "evaluate", str(path), *who,
               "--episodes", str(episodes), "--seed", str(seed)]  # fmt: skip
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=GRACE_SECONDS)
        if p.returncode != 0:
            out[name] = {"error": (p.stderr.strip().splitlines() or [""])[-1]}
            continue
        line = json.loads(p.stdout.strip().splitlines()[-1])
        out[name] = line["touches_per_episode"]
    return out


def table(runs: dict[str, dict[str, Any]]) -> str:
    def cell(r, key):
        e = r.get("eval", {}).get(key, {})
        return f"{e['mean']:.2f} ± {e['ci95']:.2f}" if "mean" in e else e.get("error", "-")

    head = ("run", "exit", "kills", "restarts", "lost", "env steps", "updates",
            "pred v evader", "chaser v prey")  # fmt: skip
    lines = ["  ".join(f"{h:>13}" for h in head)]
    for name, r in runs.items():
        res = r.get("result", {})
        vals = (name, r["exit"], len(r["kills"]), r["restarts_total"], r.get("lost_rows", "-"),
                res.get("env_steps", "-"), res.get("updates", "-"),
                cell(r, "predators_v_evader"), cell(r, "chaser_v_prey"))  # fmt: skip
        lines.append("  ".join(f"{v!s:>13}" for v in vals))
    lines.append("touches per episode, mean ± 95% CI (predators want many, prey few)")
    return "\n".join(lines)
