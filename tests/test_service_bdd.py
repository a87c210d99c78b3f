"""BDD scenarios of the replay-buffer service (tests/features/buffer_service.feature):
the original service's scenarios plus auth, body limit and restart."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from pytest_bdd import given, parsers, scenarios, then, when

from predprey.service.app import create_app
from predprey.service.core import BufferService

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette: "install httpx2"
    from fastapi.testclient import TestClient

scenarios("features/buffer_service.feature")


def transitions(n: int, start: int = 0) -> dict:
    ids = np.arange(start, start + n, dtype=np.float64)[:, None]  # [n, 1] unique ids
    return {
        "State": np.tile(ids, (1, 3)).tolist(),
        "Action": np.zeros((n, 2)).tolist(),
        "Reward": ids.tolist(),
        "Next State": np.tile(ids + 1, (1, 3)).tolist(),
    }


class World:
    """One service under test; `configure` restarts it with new options."""

    def __init__(self, data_dir):
        self.data_dir, self.options, self.service = data_dir, {}, None
        self.response = None
        self.recorded = 0
        self.start()

    def start(self) -> None:
        if self.service is not None:
            self.service.close()
        self.service = BufferService(self.data_dir, capacity=1000, seed=0)
        self.client = TestClient(create_app(self.service, **self.options))

    def configure(self, **options) -> None:
        self.options.update(options)
        self.start()

    def post(self, body: dict, token: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.response = self.client.post("/record_data/", json=body, headers=headers)


@pytest.fixture
def world(tmp_path):
    w = World(tmp_path / "data")
    yield w
    w.service.close()


@given("an empty replay buffer service")
def empty_service(world):
    assert world.client.get("/stats").json()["rows"] == 0


@given(parsers.parse('the service requires the token "{token}"'))
def requires_token(world, token):
    world.configure(token=token)


@given(parsers.parse("the service limits bodies to {limit:d} bytes"))
def limits_body(world, limit):
    world.configure(max_body=limit)


@given(parsers.parse("the buffer holds {n:d} recorded transitions"))
def holds_recorded(world, n):
    world.post(transitions(n))
    assert world.response.status_code == 201
    world.recorded = n


@when(parsers.parse("a client records {n:d} valid transitions"))
def record_valid(world, n):
    world.post(transitions(n))


@when(parsers.parse("a client records {n:d} valid transitions without a token"))
def record_without_token(world, n):
    world.post(transitions(n))


@when(parsers.parse('a client records {n:d} valid transitions with the token "{token}"'))
def record_with_token(world, n, token):
    world.post(transitions(n), token=token)


@when(parsers.parse('a client records transitions whose "{key}" rows are ragged'))
def record_ragged(world, key):
    body = transitions(3)
    body[key][1] = body[key][1][:-1]
    world.post(body)


@when(parsers.parse('a client records transitions without "{key}"'))
def record_missing(world, key):
    body = transitions(3)
    del body[key]
    world.post(body)


@when(parsers.parse("a client asks for a batch of {m:d}"))
def ask_batch(world, m):
    world.response = world.client.get(f"/batch_data/{m}")


@when("the service restarts on the same data directory")
def restart(world):
    world.start()


@then(parsers.parse("the answer is {status:d}"))
def answer_is(world, status):
    assert world.response.status_code == status, world.response.text


@then(parsers.parse('the message names "{key}"'))
def message_names(world, key):
    assert world.response.json()["detail"].startswith(f"{key}:"), world.response.text


@then(parsers.parse("the buffer holds {n:d} rows"))
def buffer_holds(world, n):
    assert world.client.get("/stats").json()["rows"] == n


@then(parsers.parse("the batch has {m:d} distinct rows of numbers under every key"))
def batch_has_rows(world, m):
    batch = world.response.json()
    assert set(batch) == {"State", "Action", "Reward", "Next State", "Done"}
    for key, rows in batch.items():
        assert len(rows) == m, key
        assert all(isinstance(x, float) for row in rows for x in row), key
    assert len({row[0] for row in batch["Reward"]}) == m


@then(parsers.parse("a batch of {m:d} holds every recorded id"))
def batch_holds_all(world, m):
    batch = world.client.get(f"/batch_data/{m}").json()
    assert sorted(row[0] for row in batch["Reward"]) == list(range(world.recorded))
