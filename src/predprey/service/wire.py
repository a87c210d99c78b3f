"""What travels over HTTP, as plain numpy: transition records and actor weights.

Records (`POST /record_data/`, `GET /batch_data/{size}`) are JSON objects whose keys are
the original service's ("State", "Action", "Reward", "Next State", plus optional "Done"),
each a list of rows of finite numbers. `parse_record` turns a decoded JSON object into
float32 matrices `{key: [n, width]}` or raises `RecordError` naming the bad key.

Actor weights (`GET/PUT /policy/{team}`) are JSON, never pickle:

    {"version": 3, "team": "predator",
     "tensors": {"net.0.weight": {"shape": [64, 16], "dtype": "float32",
                                  "data": "<base64 of the little-endian bytes, C order>"}}}
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from predprey.service.limits import MAX_ELEMENTS, MAX_RANK, MAX_ROW_WIDTH

FIELDS = ("State", "Action", "Reward", "Next State", "Done")
REQUIRED = FIELDS[:4]
OPTIONAL_WIDTH = {"Done": 1}  # width of an optional field the first record left out
TENSOR_DTYPES = ("float32", "float64", "int32", "int64")
ROWS_MEDIA = "application/octet-stream"  # GET /batch_data with this Accept: packed rows
WIDTHS_HEADER = "X-Row-Widths"


class RecordError(ValueError):
    """A request body that cannot be accepted; `field` names the offending key."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


class TooLarge(RecordError):
    """Well formed, but over a limit of this server (HTTP 413); the message names the
    `serve-buffer` flag that raises it."""


def width_limit(key: str, width: int, max_width: int) -> None:
    if width > max_width:
        raise TooLarge(
            key,
            f"rows have {width} values, over this server's limit of {max_width} per row "
            "(serve-buffer --max-row-width raises it)",
        )


def parse_widths(spec: Mapping[str, Any]) -> dict[str, int]:
    """Validate a `--schema` mapping {key: row width}; "Done" defaults to 1."""
    unknown = [k for k in spec if k not in FIELDS]
    if unknown:
        raise ValueError(f"schema: unknown key(s) {unknown}; expected some of {list(FIELDS)}")
    missing = [k for k in REQUIRED if k not in spec]
    if missing:
        raise ValueError(f"schema: missing width for {missing}")
    widths = {**OPTIONAL_WIDTH, **spec}
    for k, w in widths.items():
        if isinstance(w, bool) or not isinstance(w, int) or w < 1:
            raise ValueError(f"schema: width of '{k}' must be a positive integer, got {w!r}")
    return {k: int(widths[k]) for k in FIELDS}


def _matrix(key: str, value: Any, numbers_only: bool, max_width: int) -> np.ndarray:
    """A list of rows of finite numbers -> float32 [n, width].

    `numbers_only`: the caller knows the JSON held no strings, so numpy may convert
    straight to float64 (faster; null becomes NaN and is refused below)."""
    if not isinstance(value, list):
        raise RecordError(key, "expected a list of rows (lists of numbers)")
    if not value:
        raise RecordError(key, "no rows")
    try:
        arr = np.array(value, dtype=np.float64) if numbers_only else np.asarray(value)
    except (ValueError, TypeError, OverflowError):
        raise RecordError(key, "rows are ragged (different lengths) or not numbers") from None
    if key == "Done" and arr.ndim == 1:  # a flat list of flags is one column
        arr = arr[:, None]
    if arr.dtype.kind not in "biuf":
        raise RecordError(key, "every value must be a number")
    if arr.ndim != 2:
        raise RecordError(key, f"expected a list of rows of numbers (2-D), got {arr.ndim}-D")
    if arr.shape[1] == 0:
        raise RecordError(key, "rows are empty")
    width_limit(key, arr.shape[1], max_width)
    with np.errstate(over="ignore", invalid="ignore"):
        out = arr.astype(np.float32)
    finite = np.isfinite(out)
    if not finite.all():
        row = int(np.argwhere(~finite)[0][0])
        raise RecordError(key, f"row {row} holds a value that is not a finite float32")
    return out


def check_widths(arrays: Mapping[str, np.ndarray], widths: Mapping[str, int]) -> None:
    for k, arr in arrays.items():
        if arr.shape[1] != widths[k]:
            raise RecordError(
                k, f"rows have {arr.shape[1]} values, this buffer expects {widths[k]}"
            )


def parse_record(
    obj: Any,
    widths: Mapping[str, int] | None,
    numbers_only: bool = False,
    max_width: int = MAX_ROW_WIDTH,
) -> dict[str, np.ndarray]:
    """Decoded JSON -> {key: float32 [n, width]} for every key in FIELDS.

    `widths` fixes each key's row width (None before the first record). A missing
    or null "Done" becomes zeros. `numbers_only`: the JSON text held no string but the
    keys (see `strings_only_in_keys`), which allows a faster conversion. A row wider than
    `max_width` values is `TooLarge`."""
    if not isinstance(obj, dict):
        raise RecordError("body", f"expected a JSON object with keys {list(REQUIRED)}")
    unknown = [k for k in obj if k not in FIELDS]
    if unknown:
        raise RecordError(str(unknown[0]), f"unknown key; expected keys {list(FIELDS)}")
    for k in REQUIRED:
        if k not in obj:
            raise RecordError(k, "missing")
    out: dict[str, np.ndarray] = {}
    for k in FIELDS:
        if obj.get(k) is None and k not in REQUIRED:  # "Done" absent or null
            continue
        arr = _matrix(k, obj[k], numbers_only, max_width)
        if out and arr.shape[0] != len(out["State"]):
            raise RecordError(k, f"{arr.shape[0]} rows, but State has {len(out['State'])}")
        if widths is not None:
            check_widths({k: arr}, widths)
        out[k] = arr
    if "Done" not in out:
        width = widths["Done"] if widths is not None else OPTIONAL_WIDTH["Done"]
        out["Done"] = np.zeros((len(out["State"]), width), np.float32)
    return out


def strings_only_in_keys(body: bytes, obj: Any) -> bool:
    """True when the JSON text `body` (decoded: `obj`) holds no string but obj's keys:
    each key accounts for exactly two quote characters."""
    return isinstance(obj, dict) and body.count(b'"') == 2 * len(obj)


def encode_rows(arrays: Mapping[str, np.ndarray]) -> tuple[bytes, str]:
    """{key: [n, width]} -> (packed float32 little-endian rows [n, W] with the keys side by
    side in FIELDS order, the widths as the JSON of the X-Row-Widths header): the binary
    answer of GET /batch_data, exact and ~50x cheaper to decode than JSON numbers."""
    rows = np.concatenate([arrays[k] for k in FIELDS], axis=1).astype("<f4", copy=False)
    widths = {k: int(arrays[k].shape[1]) for k in FIELDS}
    return rows.tobytes(), json.dumps(widths, separators=(",", ":"))


def decode_rows(body: bytes, widths_header: str) -> dict[str, np.ndarray]:
    """The inverse of `encode_rows`: {key: float32 [n, width]} (views of one writable array)."""
    widths = json.loads(widths_header)
    W = sum(widths[k] for k in FIELDS)
    rows = np.frombuffer(body, dtype="<f4").astype(np.float32).reshape(-1, W)  # [n, W], writable
    edges = np.cumsum([widths[k] for k in FIELDS])[:-1]
    return dict(zip(FIELDS, np.split(rows, edges, axis=1), strict=True))


def encode_tensors(weights: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """{name: array-like (numpy or torch)} -> the JSON "tensors" object."""
    out = {}
    for name, value in weights.items():
        if hasattr(value, "detach"):  # a torch tensor; numpy reads it through __array__
            value = value.detach().cpu()
        arr = np.asarray(value)
        if arr.dtype.name not in TENSOR_DTYPES:
            arr = arr.astype(np.float32)
        raw = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes()
        out[str(name)] = {
            "shape": list(arr.shape),
            "dtype": arr.dtype.name,
            "data": base64.b64encode(raw).decode("ascii"),
        }
    return out


def check_shape(where: str, shape: Any) -> list[int]:
    """A tensor shape numpy can build: at most MAX_RANK non-negative dimensions whose
    product, zero dimensions left out, is at most MAX_ELEMENTS (so `[0, 10**12]` is
    refused too: numpy cannot reshape to it)."""
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise RecordError(where, "must be a list of non-negative integers")
    if len(shape) > MAX_RANK:
        raise RecordError(where, f"has {len(shape)} dimensions, at most {MAX_RANK} allowed")
    if math.prod(max(d, 1) for d in shape) > MAX_ELEMENTS:
        raise TooLarge(where, f"{shape} is over the limit of {MAX_ELEMENTS} elements")
    return shape


def decode_tensors(tensors: Mapping[str, Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """The JSON "tensors" object -> {name: numpy array}; RecordError on bad entries."""
    out = {}
    for name, t in tensors.items():
        where = f"tensors.{name}"
        dtype = t.get("dtype")
        if dtype not in TENSOR_DTYPES:
            raise RecordError(f"{where}.dtype", f"must be one of {list(TENSOR_DTYPES)}")
        shape = check_shape(f"{where}.shape", t.get("shape"))
        try:
            raw = base64.b64decode(str(t.get("data", "")), validate=True)
        except (binascii.Error, ValueError):
            raise RecordError(f"{where}.data", "is not valid base64") from None
        dt = np.dtype(dtype).newbyteorder("<")
        if len(raw) != math.prod(shape) * dt.itemsize:
            raise RecordError(
                f"{where}.data",
                f"holds {len(raw)} bytes, shape {shape} of {dtype} needs "
                f"{math.prod(shape) * dt.itemsize}",
            )
        out[name] = np.frombuffer(raw, dtype=dt).astype(dtype).reshape(shape)
    return out
