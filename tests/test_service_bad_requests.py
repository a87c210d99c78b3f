"""Bad requests to the HTTP buffer are 4xx naming the problem and cost nothing: every row
acknowledged before a barrage of them is still served after, a rejected first record fixes
no widths, a writer that hits an error fails that request and goes on serving, and a
restart with a smaller --capacity than the rows stored is refused."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from predprey.cli import main
from predprey.service.app import create_app
from predprey.service.core import BufferService, Limits
from predprey.service.wire import encode_tensors

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette: "install httpx2"
    from fastapi.testclient import TestClient

MAX_WIDTH = 64
MAX_MEMORY = 2**19  # 512 KiB: capacity 1000 x 4 bytes x 131 values per row


def record(ids, state_width: int = 3, action_width: int = 2) -> dict:
    """Rows whose Reward column holds the given unique ids."""
    ids = np.asarray(ids, dtype=np.float64)
    state = np.tile(ids[:, None], (1, state_width)) / 7.0
    return {
        "State": state.tolist(),
        "Action": np.full((len(ids), action_width), 0.5).tolist(),
        "Reward": ids[:, None].tolist(),
        "Next State": (state + 1).tolist(),
    }


def tensor(shape, data: str = "", dtype: str = "float32") -> dict:
    return {"version": 9, "tensors": {"w": {"shape": shape, "dtype": dtype, "data": data}}}


def raw(body: bytes) -> dict:
    return {"content": body, "headers": {"Content-Type": "application/json"}}


# (name, method, path, request kwargs, status, start of the detail); the service holds
# rows of widths State 3, Action 2 once the first good record is in.
BARRAGE = [
    # rows wider than --max-row-width, on any key, before or after the widths are fixed
    ("wide State", "post", "/record_data/", {"json": record([0], MAX_WIDTH + 1)}, 413, "State:"),
    ("wide Action", "post", "/record_data/", {"json": record([0, 1], 3, 5000)}, 413, "Action:"),
    (
        "wide Done",
        "post",
        "/record_data/",
        {"json": {**record([0]), "Done": [[0.0] * (MAX_WIDTH * 3)]}},
        413,
        "Done:",
    ),
    # within the width limit, but the ring would not fit --max-memory (before any record)
    ("ring over memory", "post", "/record_data/", {"json": record([0], 60, 60)}, 413, "body:"),
    # widths that differ from the stored ones / row counts that differ between keys
    ("narrower State", "post", "/record_data/", {"json": record([0], 2)}, 422, "State:"),
    ("wider Action", "post", "/record_data/", {"json": record([0], 3, 4)}, 422, "Action:"),
    (
        "row counts differ",
        "post",
        "/record_data/",
        {"json": {**record([0, 1]), "Reward": [[1.0]]}},
        422,
        "Reward:",
    ),
    (
        "ragged rows",
        "post",
        "/record_data/",
        {"json": {**record([0, 1]), "State": [[1.0, 2.0, 3.0], [1.0]]}},
        422,
        "State:",
    ),
    (
        "3-D rows",
        "post",
        "/record_data/",
        {"json": {**record([0]), "State": [[[1.0]]]}},
        422,
        "State:",
    ),
    (
        "empty rows",
        "post",
        "/record_data/",
        {"json": {**record([0]), "State": [[]]}},
        422,
        "State:",
    ),
    (
        "infinite value",
        "post",
        "/record_data/",
        {
            **raw(
                b'{"State": [[1e39, 0, 0]], '
                b'"Action": [[0, 0]], "Reward": [[0]], "Next State": [[0, 0, 0]]}'
            )
        },
        422,
        "State:",
    ),
    # bad JSON and wrong bodies
    ("truncated JSON", "post", "/record_data/", raw(b'{"State": [[1, 2'), 422, "body:"),
    ("NaN literal", "post", "/record_data/", raw(b'{"State": [[NaN]]}'), 422, "body:"),
    ("empty body", "post", "/record_data/", raw(b""), 422, "body:"),
    ("JSON list", "post", "/record_data/", raw(b"[1, 2, 3]"), 422, "body:"),
    ("not UTF-8", "post", "/record_data/", raw(b'{"State": "\xff\xfe"}'), 422, "body:"),
    (
        "integer over 64 bits",
        "post",
        "/record_data/",
        raw(
            b'{"State": [[' + b"9" * 40 + b', 0, 0]], "Action": [[0, 0]], "Reward": [[0]], '
            b'"Next State": [[0, 0, 0]]}'
        ),
        422,
        "State:",  # orjson reads it as the float 1e40: not a float32
    ),
    (
        "text/plain",
        "post",
        "/record_data/",
        {"content": b"{}", "headers": {"Content-Type": "text/plain"}},
        415,
        "Content-Type:",
    ),
    ("body over --max-body", "post", "/record_data/", {"json": record(range(4000))}, 413, "body:"),
    (
        "Content-Length not a number",
        "post",
        "/record_data/",
        {"content": b"{}", "headers": {"Content-Type": "application/json", "Content-Length": "x"}},
        400,
        "Content-Length:",
    ),
    # batch sizes
    ("batch 0", "get", "/batch_data/0", {}, 422, "size:"),
    ("batch -5", "get", "/batch_data/-5", {}, 422, "size:"),
    ("batch over --max-batch", "get", "/batch_data/65", {}, 422, "size:"),
    ("batch 2**63", "get", f"/batch_data/{2**63}", {}, 422, "size:"),
    ("batch 10**40", "get", f"/batch_data/{10**40}", {}, 422, "size:"),
    ("batch 1.5", "get", "/batch_data/1.5", {}, 422, "size:"),
    ("batch over the rows held", "get", "/batch_data/64", {}, 409, "asked for 64"),
    # tensor shapes numpy cannot build, or that do not match their data
    (
        "zero beside huge",
        "put",
        "/policy/predator",
        {"json": tensor([0, 2**40])},
        413,
        "tensors.w.shape:",
    ),
    (
        "zero beside two large",
        "put",
        "/policy/predator",
        {"json": tensor([0, 2**20, 2**20])},
        413,
        "tensors.w.shape:",
    ),
    (
        "rank 9",
        "put",
        "/policy/predator",
        {"json": tensor([1] * 9, "AAAAAA==")},
        422,
        "tensors.w.shape:",
    ),
    (
        "rank 100 of zeros",
        "put",
        "/policy/predator",
        {"json": tensor([0] * 100)},
        422,
        "tensors.w.shape:",
    ),
    ("negative dim", "put", "/policy/predator", {"json": tensor([-1])}, 422, "tensors.w.shape:"),
    ("float dim", "put", "/policy/predator", {"json": tensor([1.5])}, 422, "tensors.w.shape:"),
    ("bool dim", "put", "/policy/predator", {"json": tensor([True])}, 422, "tensors.w.shape:"),
    (
        "data shorter than shape",
        "put",
        "/policy/predator",
        {"json": tensor([2, 3], "AAAAAA==")},
        422,
        "tensors.w.data:",
    ),
    (
        "data for a zero-sized shape",
        "put",
        "/policy/predator",
        {"json": tensor([0, 5], "AAAAAA==")},
        422,
        "tensors.w.data:",
    ),
    (
        "dim over 64 bits",
        "put",
        "/policy/predator",
        raw(
            b'{"version": 9, "tensors": {"w": {"shape": [' + b"9" * 30 + b'], "dtype": "float32",'
            b' "data": ""}}}'
        ),
        422,
        "tensors.w.shape:",  # orjson reads an integer over 64 bits as a float
    ),
    (
        "old version",
        "put",
        "/policy/predator",
        {"json": {"version": 1, "tensors": encode_tensors({"w": np.ones(2)})}},
        409,
        "version",
    ),
]
FIRST = {"ring over memory"}  # only a fresh store can be asked to allocate a ring


@pytest.fixture
def client(tmp_path):
    service = BufferService(tmp_path / "data", 1000, seed=0, limits=Limits(MAX_WIDTH, MAX_MEMORY))
    app = create_app(service, max_body=64 * 1024, max_batch=64)
    yield service, TestClient(app, raise_server_exceptions=False)
    service.close()


def fire(c: TestClient, method: str, path: str, kwargs: dict):
    return getattr(c, method)(path, **kwargs) if method != "get" else c.get(path, **kwargs)


@pytest.mark.parametrize("phase", ["fresh store", "after rows"])
def test_barrage_of_bad_requests_costs_nothing(client, phase):
    service, c = client
    acked: list[int] = []
    if phase == "after rows":
        for start in range(0, 40, 10):
            assert c.post("/record_data/", json=record(range(start, start + 10))).status_code == 201
            acked += range(start, start + 10)
        body = {"version": 5, "tensors": encode_tensors({"w": np.arange(3.0)})}
        assert c.put("/policy/predator", json=body).status_code == 200
    before = c.get("/stats").json()
    seen = []
    for name, method, path, kwargs, status, detail in BARRAGE:
        if phase == "after rows" and name in FIRST:
            continue
        if phase == "fresh store" and name in ("narrower State", "wider Action"):
            continue  # no widths fixed yet: these are good first records, not bad ones
        r = fire(c, method, path, kwargs)
        want = status
        if phase == "fresh store" and name == "batch over the rows held":
            detail = "asked for 64 rows, the buffer holds 0"
        if phase == "fresh store" and name == "old version":
            want, detail = 200, ""  # the first policy: accepted (it is a good request)
        assert r.status_code == want, (name, r.status_code, r.text)
        assert r.json().get("detail", "").startswith(detail) or detail in r.json()["detail"], (
            name,
            r.text,
        )
        seen.append(name)
        if phase == "fresh store" and name == "old version":
            continue
        assert c.get("/stats").json() == before, name  # nothing changed
    assert len(seen) >= 35
    # every acknowledged row is served, and good requests are accepted
    if acked:
        got = c.get(f"/batch_data/{len(acked)}").json()
        assert sorted(int(v) for (v,) in got["Reward"]) == acked
    r = c.post("/record_data/", json=record([100, 101]))
    assert r.status_code == 201 and r.json()["total"] == len(acked) + 2
    assert c.get("/stats").json()["widths"]["State"] == 3
    tensors = encode_tensors({"w": np.zeros((2, 2))})
    assert c.put("/policy/predator", json={"version": 50, "tensors": tensors}).status_code == 200


def test_413_names_the_limit_and_the_flag(client):
    _, c = client
    r = c.post("/record_data/", json=record([0], MAX_WIDTH + 1))
    assert r.json()["detail"] == (
        f"State: rows have {MAX_WIDTH + 1} values, over this server's limit of {MAX_WIDTH} per "
        "row (serve-buffer --max-row-width raises it)"
    )
    detail = c.post("/record_data/", json=record([0], 60, 60)).json()["detail"]
    assert "--capacity 1000" in detail and "--max-memory" in detail and "710.9 KiB" in detail


@pytest.mark.parametrize("width", [MAX_WIDTH + 1, 20_000, 2_000_000])
def test_oversized_first_record_fixes_nothing(tmp_path, width):
    """The bug of issue 37: a first record too wide for the ring was a 500, and every
    record after it was refused (widths fixed, ring missing) or hung the writer."""
    service = BufferService(tmp_path, 1_000_000, seed=0, limits=Limits(MAX_WIDTH))
    c = TestClient(create_app(service, max_body=64 * 2**20), raise_server_exceptions=False)
    r = c.post("/record_data/", json=record([0], width))
    assert r.status_code == 413, r.text
    r = c.post("/record_data/", json=record([0], width))  # the same again: no hang, no 500
    assert r.status_code == 413, r.text
    assert c.get("/stats").json()["widths"] is None
    assert c.post("/record_data/", json=record([1, 2])).status_code == 201
    assert c.get("/stats").json()["rows"] == 2
    service.close()


def test_memory_limit_is_checked_at_start_too(tmp_path):
    widths = {"State": 60, "Action": 60, "Reward": 1, "Next State": 60, "Done": 1}
    with pytest.raises(ValueError, match="--max-memory"):
        BufferService(tmp_path, 1000, widths, limits=Limits(MAX_WIDTH, MAX_MEMORY))
    BufferService(tmp_path, 100, widths, limits=Limits(MAX_WIDTH, MAX_MEMORY)).close()


def test_a_failing_write_fails_that_request_and_the_writer_goes_on(client, monkeypatch):
    service, c = client
    real = service.store.append
    calls = []

    def flaky(blocks, widths):
        calls.append(len(calls))
        if len(calls) == 1:
            raise OSError(28, "No space left on device")
        return real(blocks, widths)

    monkeypatch.setattr(service.store, "append", flaky)
    r = c.post("/record_data/", json=record([0], state_width=5))
    assert r.status_code == 503 and "No space left" in r.json()["detail"]
    assert c.get("/stats").json()["widths"] is None  # the failed first record fixed nothing
    assert c.post("/record_data/", json=record([1, 2])).status_code == 201

    def broken_add(arrays):  # a bug after the write, not a bad request
        raise RuntimeError("boom")

    monkeypatch.setattr(service.buffer, "add", broken_add)
    r = c.post("/record_data/", json=record([3]))
    assert r.status_code == 503 and "boom" in r.json()["detail"]
    monkeypatch.undo()
    assert service.writer.is_alive()
    assert c.post("/record_data/", json=record([4])).status_code == 201


def test_a_failing_policy_write_is_503_and_keeps_the_old_policy(client, monkeypatch):
    service, c = client
    body = {"version": 1, "tensors": encode_tensors({"w": np.ones(2)})}
    assert c.put("/policy/prey", json=body).status_code == 200

    def full(*a):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(service.store, "put_policy", full)
    r = c.put("/policy/prey", json={**body, "version": 2})
    assert r.status_code == 503 and "No space left" in r.json()["detail"]
    monkeypatch.undo()
    assert c.get("/policy/prey").json()["version"] == 1
    assert c.put("/policy/prey", json={**body, "version": 2}).status_code == 200


def test_two_first_records_of_different_widths_one_wins(client):
    service, _ = client
    a = service.check(record([0], state_width=3))
    b = service.check(record([1], state_width=4))  # both pass: no widths fixed yet
    fa, fb = service.submit(a), service.submit(b)
    assert fa.result(timeout=30).total == 1
    with pytest.raises(ValueError, match="State: rows have 4 values, this buffer expects 3"):
        fb.result(timeout=30)


def test_smaller_capacity_is_refused_naming_reset(tmp_path, capsys):
    data = tmp_path / "data"
    service = BufferService(data, 100, seed=0)
    service.record(record(range(30)))
    service.close()
    code = main(["serve-buffer", "--data", str(data), "--capacity", "20", "--port", "1"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "--capacity 20 is smaller than the 30 rows stored" in err and "--reset" in err
    service = BufferService(data, 30, seed=0)  # nothing was dropped
    assert sorted(service.sample(30)["Reward"][:, 0].astype(int).tolist()) == list(range(30))
    service.close()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--max-memory", "lots"], "not a size like 8G"),
        (["--max-memory=-1G"], "expected a positive size"),
        (["--max-row-width", "0"], "--max-row-width must be >= 1"),
    ],
)
def test_limit_flags_are_checked(tmp_path, capsys, args, message):
    try:
        code = main(["serve-buffer", "--data", str(tmp_path), "--port", "1", *args])
    except SystemExit as e:  # argparse refuses a bad size itself
        code = e.code
    assert code == 2 and message in capsys.readouterr().err


def test_limits_are_in_the_openapi_schema(client):
    _, c = client
    doc = c.get("/openapi.json").json()["components"]["schemas"]
    state = doc["Record"]["properties"]["State"]
    assert state["items"]["maxItems"] == MAX_WIDTH
    shape = doc["Tensor"]["properties"]["shape"]
    assert shape["maxItems"] == 8 and shape["items"]["maximum"] == 2**28
    assert shape["items"]["minimum"] == 0


def test_random_shapes_and_widths_never_reach_a_500(tmp_path):
    """Sizes and shapes beyond the listed classes, drawn with a fixed seed: tensor shapes
    of rank 0-11 mixing zero, small, huge and over-64-bit dimensions with empty or matching
    data, and first records of random widths; every answer is a 2xx/4xx and the rows
    acknowledged before are all served after."""
    rng = np.random.default_rng(0)
    service = BufferService(tmp_path, 1000, seed=0, limits=Limits(MAX_WIDTH, MAX_MEMORY))
    c = TestClient(create_app(service, max_body=256 * 1024), raise_server_exceptions=False)
    dims = [0, 1, 3, 7, 2**16, 2**28, 2**31, 2**40, 2**62, 2**63 + 5]
    codes: dict[int, int] = {}
    for version in range(1, 301):
        shape = [int(d) for d in rng.choice(dims, size=rng.integers(0, 12))]
        n = int(np.prod(shape, dtype=object)) if shape else 1
        data = encode_tensors({"w": np.zeros(n, np.float32)})["w"]["data"] if n < 64 else ""
        body = {"version": version, "tensors": {"w": {"shape": shape, "dtype": "float32",
                                                      "data": data}}}  # fmt: skip
        r = c.put("/policy/predator", json=body)
        codes[r.status_code] = codes.get(r.status_code, 0) + 1
        assert r.status_code in (200, 413, 422), (shape, r.text)
    assert codes.get(200) and codes.get(413) and codes.get(422), codes
    acked: list[int] = []
    for i in range(60):
        state, action = (int(w) for w in rng.integers(1, 3 * MAX_WIDTH, size=2))
        r = c.post("/record_data/", json=record([i], state, action))
        assert r.status_code in (201, 413, 422), r.text
        if r.status_code == 201:
            acked.append(i)
    assert acked, "no width fitted: the draw tests nothing"
    widths = c.get("/stats").json()["widths"]
    assert widths["State"] <= MAX_WIDTH and 1000 * 4 * sum(widths.values()) <= MAX_MEMORY
    got = c.get(f"/batch_data/{len(acked)}").json()
    assert sorted(int(v) for (v,) in got["Reward"]) == acked
    print(f"policy PUT status counts {dict(sorted(codes.items()))}; {len(acked)}/60 records fit")
    service.close()
