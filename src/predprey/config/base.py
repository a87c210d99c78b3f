"""Typed reading of YAML into frozen dataclasses: every mistake is one `ConfigError` line
that names the key (an unknown key with a suggestion, a value of the wrong type, a number
out of range)."""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any


class ConfigError(ValueError):
    """A user-facing configuration problem; the message names the offending key."""


def check(section: str, checks: Iterable[tuple[bool, str]]) -> None:
    """Raise a ConfigError `section.message` for the first failed (ok, message) check."""
    for ok, msg in checks:
        if not ok:
            raise ConfigError(f"{section}.{msg}")


def suggest(key: Any, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(key), list(options), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def show(value: Any) -> str:
    """A value for an error message: short, one line."""
    text = repr(value).replace("\n", " ")
    return text if len(text) <= 60 else text[:57] + "..."


def coerce(value: Any, tp: Any, where: str) -> Any:
    """Check/convert a YAML value to the annotated type, naming `where` on failure."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return coerce(value, a, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{where}: bad value {show(value)}")
    if origin is dict:  # {name: value}: keys strings, values of the annotated type
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {show(value)}")
        key_tp, value_tp = typing.get_args(tp)
        return {
            coerce(k, key_tp, where): coerce(v, value_tp, f"{where}.{k}") for k, v in value.items()
        }
    if origin is tuple:
        if isinstance(value, int | float | str):
            value = [value]
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {show(value)}")
        (elem, *_rest) = typing.get_args(tp)
        return tuple(coerce(v, elem, f"{where}[{i}]") for i, v in enumerate(value))
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true/false, got {show(value)}")
    if tp in (int, float) and isinstance(value, str):
        value = _yaml_exponent(value)
    if tp is int:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or int(value) != value
        ):
            raise ConfigError(f"{where}: expected an integer, got {show(value)}")
        return int(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {show(value)}")
        if not math.isfinite(value):  # inf / nan would poison whatever computes with it
            raise ConfigError(f"{where}: expected a finite number, got {show(value)}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {show(value)}")
        return value
    return value


def _yaml_exponent(text: str) -> Any:
    """PyYAML (YAML 1.1) reads a number with an exponent but no dot, such as `1e-4` or
    `1e6`, as a string; a user writing one means the number."""
    try:
        number = float(text)
    except ValueError:
        return text
    return number if "e" in text.lower() and math.isfinite(number) else text


def mapping(data: Any, where: str) -> Mapping[str, Any]:
    """`data` as a section mapping (None = empty); anything else is an error."""
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping of keys, got {show(data)}")
    return data


def build_dataclass(
    cls: type, data: Any, where: str, elsewhere: Mapping[str, str] | None = None
) -> Any:
    """Construct frozen dataclass `cls` from `data`; unknown keys and bad types are errors.
    `elsewhere`: key -> why it is not one here (a hint for keys of a sibling class)."""
    data = mapping(data, where)
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            hint = f": {elsewhere[key]}" if elsewhere and key in elsewhere else suggest(key, names)
            raise ConfigError(f"unknown key {show(f'{where}.{key}')}{hint}")
        kwargs[key] = coerce(value, hints[key], f"{where}.{key}")
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except ValueError as e:  # range checks of classes outside config (scenario parameters)
        raise ConfigError(f"{where}: {e}") from None
