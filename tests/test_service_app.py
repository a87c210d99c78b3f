"""The HTTP replay buffer in-process (FastAPI TestClient): status codes, auth, limits,
durability across a restart of the service object, eviction, policies."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from predprey.service.app import create_app
from predprey.service.core import BufferService
from predprey.service.storage import SqliteStore
from predprey.service.wire import decode_tensors, encode_tensors

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette: "install httpx2"
    from fastapi.testclient import TestClient

TOKEN = "s3cret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def record(n: int, start: int = 0, state_width: int = 3) -> dict:
    """n rows whose Reward column holds unique ids start..start+n-1."""
    ids = np.arange(start, start + n, dtype=np.float64)
    state = np.tile(ids[:, None], (1, state_width)) / 7.0
    return {
        "State": state.tolist(),
        "Action": np.full((n, 2), 0.5).tolist(),
        "Reward": ids[:, None].tolist(),
        "Next State": (state + 1).tolist(),
    }


@pytest.fixture
def serve(tmp_path):
    """serve(**app_kwargs) -> TestClient on a fresh service in tmp_path/data."""
    services = []

    def make(capacity: int = 1000, token: str | None = None, **kwargs) -> TestClient:
        services.append(BufferService(tmp_path / "data", capacity, seed=0))
        return TestClient(create_app(services[-1], token, **kwargs))

    yield make
    for s in services:
        s.close()


def test_record_then_sample_returns_numbers(serve):
    c = serve()
    r = c.post("/record_data/", json=record(5))
    assert r.status_code == 201 and r.json() == {"recorded": 5, "total": 5}
    r = c.get("/batch_data/5")
    assert r.status_code == 200
    got = r.json()
    assert set(got) == {"State", "Action", "Reward", "Next State", "Done"}
    assert all(isinstance(x, float) for row in got["State"] for x in row)
    assert sorted(v for (v,) in got["Reward"]) == [0, 1, 2, 3, 4]  # distinct rows
    assert got["Done"] == [[0.0]] * 5  # a missing Done is zeros
    assert np.allclose(np.asarray(got["Next State"]), np.asarray(got["State"]) + 1)


def test_trailing_slash_less_path_is_accepted(serve):
    c = serve()
    assert c.post("/record_data", json=record(2)).status_code == 201
    assert c.get("/stats").json()["rows"] == 2


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda r: r.pop("Action"), "Action"),
        (lambda r: r["State"].__setitem__(1, [1.0]), "State"),  # ragged
        (lambda r: r["Reward"].__setitem__(0, ["x"]), "Reward"),  # non-numeric
        (lambda r: r["Reward"].__setitem__(0, [None]), "Reward"),  # null, no strings in body
        (lambda r: r["Action"].__setitem__(0, [{}, 1]), "Action"),
        (lambda r: r["Next State"].__setitem__(0, [1e39, 0.0, 0.0]), "Next State"),  # > f32
        (lambda r: r.__setitem__("Reward", r["Reward"][:-1]), "Reward"),  # row count
        (lambda r: r.__setitem__("Done", [[True]]), "Done"),  # row count
        (lambda r: r.__setitem__("Extra", [[1.0]]), "Extra"),
        (lambda r: r.__setitem__("State", 3), "State"),
        (lambda r: r.__setitem__("State", [1.0, 2.0, 3.0, 4.0]), "State"),  # 1-D
        (lambda r: r.__setitem__("Action", []), "Action"),
    ],
)
def test_malformed_record_is_422_naming_the_field(serve, mutate, field):
    c = serve()
    bad = record(4)
    mutate(bad)
    r = c.post("/record_data/", json=bad)
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith(f"{field}:"), r.json()
    assert c.get("/stats").json()["rows"] == 0


def test_nan_and_invalid_json_are_422(serve):
    c = serve()
    body = b'{"State": [[NaN]], "Action": [[1]], "Reward": [[1]], "Next State": [[1]]}'
    r = c.post("/record_data/", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"].startswith("body:")
    r = c.post("/record_data/", content=b"[1, 2]", headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"].startswith("body:")


def test_first_record_fixes_widths(serve):
    c = serve()
    assert c.post("/record_data/", json=record(2, state_width=3)).status_code == 201
    r = c.post("/record_data/", json=record(2, state_width=4))
    assert r.status_code == 422 and "State: rows have 4 values" in r.json()["detail"]
    stats = c.get("/stats").json()
    assert stats["widths"] == {"State": 3, "Action": 2, "Reward": 1, "Next State": 3, "Done": 1}


def test_wrong_content_type_is_415(serve):
    c = serve()
    r = c.post("/record_data/", content=b"State=1", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415


def test_body_limit_by_content_length_and_by_stream(serve):
    c = serve(max_body=2000)
    big = record(100)
    assert c.post("/record_data/", json=big).status_code == 413
    import orjson

    raw = orjson.dumps(big)

    def chunks():  # no Content-Length: the limit must act on the streamed bytes
        for i in range(0, len(raw), 500):
            yield raw[i : i + 500]

    r = c.post("/record_data/", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413, r.text
    assert c.post("/record_data/", json=record(2)).status_code == 201


def test_batch_sizes(serve):
    c = serve(max_batch=50)
    c.post("/record_data/", json=record(10))
    assert c.get("/batch_data/11").status_code == 409
    assert "holds 10" in c.get("/batch_data/11").json()["detail"]
    for size in (1, 10):
        assert len(c.get(f"/batch_data/{size}").json()["State"]) == size
    for size in ("0", "-3", "51", "abc", "1.5"):
        r = c.get(f"/batch_data/{size}")
        assert r.status_code == 422 and r.json()["detail"].startswith("size:"), (size, r.text)


def test_empty_buffer_batch_is_409(serve):
    assert serve().get("/batch_data/1").status_code == 409


def test_token_guards_writes_only_by_default(serve):
    c = serve(token=TOKEN)
    assert c.post("/record_data/", json=record(2)).status_code == 401
    r = c.post("/record_data/", json=record(2), headers={"Authorization": "Bearer nope"})
    assert r.status_code == 403
    assert c.post("/record_data/", json=record(2), headers=AUTH).status_code == 201
    assert c.get("/batch_data/1").status_code == 200
    body = {"version": 1, "tensors": encode_tensors({"w": np.ones(2)})}
    assert c.put("/policy/predator", json=body).status_code == 401
    assert c.put("/policy/predator", json=body, headers=AUTH).status_code == 200


def test_token_reads(serve):
    c = serve(token=TOKEN, token_reads=True)
    assert c.get("/batch_data/1").status_code == 401
    assert c.get("/stats", headers={"Authorization": "Bearer nope"}).status_code == 403
    assert c.get("/stats", headers=AUTH).status_code == 200
    assert c.get("/health").status_code == 200


def test_policy_roundtrip_and_versions(serve):
    c = serve()
    r = c.get("/policy/predator")
    assert r.status_code == 404 and "predator" in r.json()["detail"]
    weights = {"net.0.weight": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.zeros(3)}
    body = {"version": 3, "team": "predator", "tensors": encode_tensors(weights)}
    assert c.put("/policy/predator", json=body).json() == {"team": "predator", "version": 3}
    got = c.get("/policy/predator").json()
    assert got["version"] == 3
    tensors = decode_tensors(got["tensors"])
    assert np.array_equal(tensors["net.0.weight"], weights["net.0.weight"])
    assert tensors["b"].dtype == np.float64
    assert c.put("/policy/predator", json=body).status_code == 409  # not newer
    assert c.put("/policy/predator", json={**body, "version": 2}).status_code == 409
    assert c.get("/stats").json()["policies"] == {"predator": 3}


@pytest.mark.parametrize(
    "body, field",
    [
        ({"version": "1", "tensors": {}}, "version"),
        ({"version": -1, "tensors": {}}, "version"),
        ({"version": 1, "tensors": []}, "tensors"),
        ({"version": 1, "team": "prey", "tensors": {}}, "team"),
        (
            {"version": 1, "tensors": {"w": {"shape": [2], "dtype": "float32", "data": "AA=="}}},
            "tensors.w.data",
        ),
        (
            {"version": 1, "tensors": {"w": {"shape": [1], "dtype": "object", "data": ""}}},
            "tensors.w.dtype",
        ),
        (
            {"version": 1, "tensors": {"w": {"shape": "x", "dtype": "float32", "data": ""}}},
            "tensors.w.shape",
        ),
        (
            {"version": 1, "tensors": {"w": {"shape": [1], "dtype": "float32", "data": "!!"}}},
            "tensors.w.data",
        ),
    ],
)
def test_bad_policy_is_422_naming_the_field(serve, body, field):
    r = serve().put("/policy/predator", json=body)
    assert r.status_code == 422 and r.json()["detail"].startswith(f"{field}:"), r.text


def test_bad_team_name_is_422(serve):
    r = serve().get("/policy/" + "x" * 65)
    assert r.status_code == 422 and r.json()["detail"].startswith("team:")


def test_restart_keeps_rows_policies_and_totals(tmp_path):
    service = BufferService(tmp_path, 1000, seed=0)
    c = TestClient(create_app(service))
    c.post("/record_data/", json=record(7))
    c.put("/policy/prey", json={"version": 5, "tensors": encode_tensors({"w": np.ones(1)})})
    service.close()
    service = BufferService(tmp_path, 1000, seed=0)
    c = TestClient(create_app(service))
    stats = c.get("/stats").json()
    assert (stats["rows"], stats["total_recorded"], stats["policies"]) == (7, 7, {"prey": 5})
    ids = sorted(v for (v,) in c.get("/batch_data/7").json()["Reward"])
    assert ids == list(range(7))
    service.close()
    service = BufferService(tmp_path, 1000, reset=True)  # --reset wipes
    assert service.stats()["rows"] == 0 and service.stats()["policies"] == {}
    service.close()


def test_eviction_is_oldest_first_in_memory_and_on_disk(tmp_path):
    service = BufferService(tmp_path, capacity=10, seed=0)
    for start in range(0, 24, 4):  # 24 rows in posts of 4 into capacity 10
        service.record(record(4, start))
    in_memory = sorted(service.sample(10)["Reward"][:, 0].tolist())
    assert in_memory == list(range(14, 24))
    assert service.stats()["total_recorded"] == 24
    service.close()
    stored = SqliteStore(tmp_path, capacity=10).load()
    assert sorted(stored.rows[:, 5].tolist()) == list(range(14, 24))  # Reward column
    assert stored.total == 24
    # a restart with a lower capacity is refused, naming --reset, and drops nothing
    with pytest.raises(ValueError, match=r"--capacity 3 is smaller than the 10 rows.*--reset"):
        BufferService(tmp_path, capacity=3, seed=0)
    service = BufferService(tmp_path, capacity=50, seed=0)  # a larger one serves the same rows
    assert sorted(service.sample(10)["Reward"][:, 0].tolist()) == list(range(14, 24))
    assert service.stats()["rows"] == 10
    service.close()


def test_schema_fixes_widths_and_must_match_storage(tmp_path):
    widths = {"State": 3, "Action": 2, "Reward": 1, "Next State": 3, "Done": 1}
    service = BufferService(tmp_path, 100, widths=widths)
    c = TestClient(create_app(service))
    assert c.post("/record_data/", json=record(2, state_width=4)).status_code == 422
    assert c.post("/record_data/", json=record(2, state_width=3)).status_code == 201
    service.close()
    with pytest.raises(ValueError, match="--reset"):
        BufferService(tmp_path, 100, widths={**widths, "State": 5})


def test_openapi_documents_the_api(serve):
    c = serve(token=TOKEN)
    doc = c.get("/openapi.json").json()
    assert {"/record_data/", "/batch_data/{size}", "/stats", "/health", "/policy/{team}"} <= set(
        doc["paths"]
    )
    tensor = doc["components"]["schemas"]["Tensor"]["properties"]
    assert set(tensor) == {"shape", "dtype", "data"}
    assert "Next State" in doc["components"]["schemas"]["Record"]["properties"]
    assert doc["paths"]["/record_data/"]["post"]["security"] == [{"HTTPBearer": []}]
    assert c.get("/docs").status_code == 200
