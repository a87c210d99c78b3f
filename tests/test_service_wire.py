"""Pure parsing of the replay-buffer wire formats: records and actor weights."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from predprey.service.wire import (
    RecordError,
    decode_tensors,
    encode_tensors,
    parse_record,
    parse_widths,
    strings_only_in_keys,
)

finite32 = st.floats(allow_nan=False, allow_infinity=False, width=32)


@settings(max_examples=50, deadline=None)
@given(
    n=st.integers(1, 6),
    widths=st.lists(st.integers(1, 5), min_size=5, max_size=5),
    data=st.data(),
)
def test_valid_records_parse_to_the_same_float32_values(n, widths, data):
    keys = ("State", "Action", "Reward", "Next State", "Done")
    mats = {
        k: data.draw(arrays(np.float32, (n, w), elements=finite32))
        for k, w in zip(keys, widths, strict=True)
    }
    obj = {k: v.tolist() for k, v in mats.items()}
    for numbers_only in (False, True):
        got = parse_record(obj, None, numbers_only)
        for k in keys:
            assert got[k].dtype == np.float32 and np.array_equal(got[k], mats[k])


def test_done_may_be_flat_booleans_or_absent():
    base = {"State": [[1.0], [2.0]], "Action": [[0]], "Reward": [[1]], "Next State": [[1], [2]]}
    base["Action"] = [[0], [1]]
    base["Reward"] = [[1], [2]]
    assert parse_record({**base, "Done": [True, False]}, None)["Done"].tolist() == [[1.0], [0.0]]
    assert parse_record(base, None)["Done"].shape == (2, 1)
    widths = {"State": 1, "Action": 1, "Reward": 1, "Next State": 1, "Done": 3}
    assert parse_record({**base, "Done": None}, widths)["Done"].shape == (2, 3)


@pytest.mark.parametrize(
    "value, message",
    [
        ([[1, "2"]], "every value must be a number"),
        ([[1, None]], "every value must be a number"),
        ([[1], [2, 3]], "ragged"),
        ([[[1]]], "2-D"),
        ([[1e39]], "not a finite float32"),
        ([[{}]], "every value must be a number"),
        ({"a": 1}, "list of rows"),
    ],
)
def test_bad_values_name_the_key(value, message):
    rec = {"State": value, "Action": [[0]], "Reward": [[0]], "Next State": [[0]]}
    with pytest.raises(RecordError, match=message) as e:
        parse_record(rec, None)
    assert e.value.field == "State"
    body = orjson.dumps(rec)
    if strings_only_in_keys(body, rec):  # the fast path refuses it too, naming the key
        with pytest.raises(RecordError) as e:
            parse_record(rec, None, numbers_only=True)
        assert e.value.field == "State"


def test_strings_only_in_keys():
    rec = {"State": [[1]], "Action": [[0]], "Reward": [[0]], "Next State": [[0]]}
    assert strings_only_in_keys(orjson.dumps(rec), rec)
    rec["Reward"] = [["0"]]
    assert not strings_only_in_keys(orjson.dumps(rec), rec)
    assert not strings_only_in_keys(b'["a"]', ["a"])


def test_widths_schema():
    assert parse_widths({"State": 4, "Action": 2, "Reward": 1, "Next State": 4})["Done"] == 1
    with pytest.raises(ValueError, match="unknown"):
        parse_widths({"State": 4, "Action": 2, "Reward": 1, "Next State": 4, "Obs": 1})
    with pytest.raises(ValueError, match="positive integer"):
        parse_widths({"State": 0, "Action": 2, "Reward": 1, "Next State": 4})


def test_tensor_roundtrip_is_exact_and_json_safe():
    import json

    import torch

    state = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2))
    weights = {**state.state_dict(), "steps": np.arange(3, dtype=np.int64)}
    wire = json.loads(json.dumps(encode_tensors(weights)))
    back = decode_tensors(wire)
    assert set(back) == set(weights)
    for k, v in state.state_dict().items():
        assert back[k].dtype == np.float32 and np.array_equal(back[k], v.numpy())
    assert back["steps"].dtype == np.int64 and back["steps"].tolist() == [0, 1, 2]
    big_endian = np.arange(4, dtype=">f4")
    assert decode_tensors(encode_tensors({"x": big_endian}))["x"].tolist() == [0, 1, 2, 3]
