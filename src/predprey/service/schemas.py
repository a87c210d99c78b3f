"""Pydantic models that document the HTTP API in its OpenAPI schema.

Request bodies are parsed and validated by `wire` (numpy is faster than per-number model
validation and lets the body limit act before parsing); these models describe the same
shapes for /docs, /openapi.json and schemathesis.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from predprey.service.limits import MAX_ELEMENTS, MAX_RANK, MAX_ROW_WIDTH

Rows = list[Annotated[list[float], Field(min_length=1)]]
ROWS = {"min_length": 1}


def record_model(max_width: int = MAX_ROW_WIDTH) -> type[BaseModel]:
    """The record schema with this server's `--max-row-width` as each row's maxItems."""
    rows = list[Annotated[list[float], Field(min_length=1, max_length=max_width)]]

    class Record(BaseModel):
        """Transitions, one row per transition; every key holds the same number of rows."""

        model_config = ConfigDict(extra="forbid", populate_by_name=True)
        State: rows = Field(..., description="joint observations, [n, state_width]", **ROWS)
        Action: rows = Field(..., description="joint actions, [n, action_width]", **ROWS)
        Reward: rows = Field(..., description="rewards, [n, reward_width]", **ROWS)
        next_state: rows = Field(
            ..., alias="Next State", description="joint next observations, [n, state_width]",
            **ROWS,
        )  # fmt: skip
        Done: rows | list[float] | None = Field(
            None,
            description="episode-end flags, [n, done_width] or [n]; zeros when absent or null",
        )

    return Record


Record = record_model()


class RecordAck(BaseModel):
    recorded: int = Field(..., description="rows in this request")
    total: int = Field(..., description="rows the buffer holds now")


class Batch(BaseModel):
    """A uniform sample of distinct rows (float32 values as JSON numbers)."""

    model_config = ConfigDict(populate_by_name=True)
    State: Rows
    Action: Rows
    Reward: Rows
    next_state: Rows = Field(..., alias="Next State")
    Done: Rows


class Stats(BaseModel):
    rows: int = Field(..., description="rows held now")
    capacity: int
    total_recorded: int = Field(..., description="rows ever recorded (evicted ones included)")
    widths: dict[str, int] | None = Field(..., description="row width per key, once fixed")
    policies: dict[str, int] = Field(..., description="newest policy version per team")


class Health(BaseModel):
    status: Literal["ok"]


class Tensor(BaseModel):
    model_config = ConfigDict(extra="forbid")
    shape: list[Annotated[int, Field(ge=0, le=MAX_ELEMENTS)]] = Field(
        ...,
        max_length=MAX_RANK,
        description=f"dimensions, C order; their product (zeros left out) at most {MAX_ELEMENTS}",
    )
    dtype: Literal["float32", "float64", "int32", "int64"]
    data: str = Field(..., description="base64 of the little-endian bytes")


class Policy(BaseModel):
    """Actor weights of one team (JSON, never pickle): a state_dict as named tensors."""

    model_config = ConfigDict(extra="forbid")
    version: int = Field(..., ge=0, le=2**63 - 1, description="must grow with every PUT")
    team: str | None = Field(None, description="must equal the team in the URL if given")
    tensors: dict[str, Tensor]


class PolicyAck(BaseModel):
    team: str
    version: int


class Error(BaseModel):
    detail: str = Field(..., description="what was wrong, naming the field")
