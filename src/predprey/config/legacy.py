"""Keys that older run directories' config.yaml (and checkpoints) hold: renamed keys load
with a one-line notice; removed keys load where they held their no-effect value and are an
error otherwise; a pre-split `algo` section (every key of every learner) loads."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping
from typing import Any

from predprey.config.algo import ALGOS, AlgoConfig
from predprey.config.base import ConfigError

# (section, key, scenario or None) -> the value at which it did nothing
REMOVED = {
    ("train", "spare_fraction", None): 0.0,
    ("env", "cover_bonus", "spread"): 0.0,
    ("env", "credit", "spread"): "shared",
}


def notice(message: str) -> None:
    print(f"predprey: notice: {message}", file=sys.stderr)


def drop_removed(section: str, data: Mapping[str, Any], scenario: str | None = None) -> dict:
    """`data` without the removed keys that held their no-effect value (None too)."""
    out = dict(data)
    for (sec, key, where), inert in REMOVED.items():
        if sec != section or key not in out or where not in (None, scenario):
            continue
        if out[key] is not None and out[key] != inert:
            raise ConfigError(f"{section}.{key} was removed; delete it from the config")
        del out[key]
    return out


def landmark_target(env: Mapping[str, Any]) -> dict:
    """spread's `landmark_target: true` + `target_rule: R` is now `target_rule: R`
    (none | free | matched; landmark_target true without a rule meant free)."""
    out = dict(env)
    if "landmark_target" not in out:
        return out
    flag = out.pop("landmark_target")
    if flag is None:
        return out
    if not isinstance(flag, bool):
        raise ConfigError(f"env.landmark_target must be true or false, got {flag!r}")
    rule = out.get("target_rule")
    new = (rule if rule is not None else "free") if flag else "none"
    if not flag and rule not in (None, "none"):
        raise ConfigError("env.target_rule applies only with landmark_target: true")
    out["target_rule"] = new
    notice(f"env.landmark_target is now env.target_rule: read as target_rule: {new}")
    return out


# learner-specific algo keys added after the split: a pre-split dump lacks them
ADDED_AFTER_SPLIT = frozenset({"n_step", "team_gamma"})


def flat_algo(algo: Mapping[str, Any], name: str) -> dict:
    """A pre-split dump holds every key of every learner; the other learners' keys go where
    they hold their defaults (a changed one stays, to be reported as unknown)."""
    defaults = {f.name: f.default for cls in ALGOS.values() for f in dataclasses.fields(cls)}
    shared = {f.name for f in dataclasses.fields(AlgoConfig)}  # (keys added since may lack)
    if not set(defaults) - shared - ADDED_AFTER_SPLIT <= set(algo):
        return dict(algo)
    own = {f.name for f in dataclasses.fields(ALGOS[name])}
    return {k: v for k, v in algo.items() if k in own or _value(v) != _value(defaults[k])}


def _value(v: Any) -> Any:
    return tuple(v) if isinstance(v, list | tuple) else v
