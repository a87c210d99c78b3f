"""FastAPI shell around `BufferService`: the original paths, proper status codes.

  POST /record_data/        201 {"recorded", "total"}; 413 body, rows or buffer over a limit
                            (naming the serve-buffer flag); 415 not JSON; 422 names the bad
                            field
  GET  /batch_data/{size}   200 uniform distinct rows as numbers; 409 fewer rows held;
                            422 size <= 0 or over max_batch
  GET  /stats, GET /health
  GET  /policy/{team}       200 newest actor weights (see `wire`); 404 none yet
  PUT  /policy/{team}       200; 409 version not newer; 413 tensor over the element limit;
                            503 the store refused the write (the old policy stays)
With a token, writes (and reads with token_reads) need `Authorization: Bearer <token>`:
401 without, 403 wrong. Bad requests never reach a 500: every parse and validation error
is mapped to 4xx below. The caller owns the service and closes it after serving.
"""

import asyncio
import secrets
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, HTTPException, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic.json_schema import models_json_schema

from predprey.service import schemas
from predprey.service.core import BufferService, Conflict, NotFound, StorageFailed
from predprey.service.wire import (
    ROWS_MEDIA,
    WIDTHS_HEADER,
    RecordError,
    TooLarge,
    encode_rows,
    strings_only_in_keys,
)

TEAM = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="team, e.g. predator")]
REF = "#/components/schemas/{model}"
DESCRIPTION = """Replay buffer of the predprey trainer, compatible with the original service's
`POST /record_data/` and `GET /batch_data/{size}`. Records are JSON objects of row lists
(float32 precision, finite); the first record (or `--schema`) fixes each key's row width.
A 201 means the rows are on disk. Actor weights travel as JSON, never pickle:
`{"version": int, "team": str, "tensors": {name: {"shape": [..], "dtype": "float32",
"data": base64 of the little-endian C-order bytes}}}`.

Fast path for learners: `GET /batch_data/{size}` with `Accept: application/octet-stream`
answers the same rows packed as float32 little-endian `[size, W]`, the keys side by side
in the order State, Action, Reward, Next State, Done, their widths in the `X-Row-Widths`
header (JSON)."""


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: refuse bodies over `max_body` bytes by Content-Length and while
    streaming, before anything parses them."""

    def __init__(self, app: Any, max_body: int):
        self.app, self.max_body = app, max_body

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            status = 413 if length.isdigit() else 400
            body = orjson.dumps({"detail": f"body: over the {self.max_body}-byte limit"})
            if status == 400:
                body = orjson.dumps({"detail": "Content-Length: not a number"})
            headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
            await send({"type": "http.response.start", "status": status, "headers": headers})
            return await send({"type": "http.response.body", "body": body})
        seen = 0

        async def limited() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise BodyTooLarge()
            return message

        await self.app(scope, limited, send)


def json_response(obj: Any, status: int = 200) -> Response:
    content = orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(content, status_code=status, media_type="application/json")


def error(status: int, detail: str, headers: dict | None = None) -> Response:
    return Response(
        orjson.dumps({"detail": detail}), status, headers, media_type="application/json"
    )


async def json_body(request: Request) -> tuple[bytes, Any]:
    """The raw body and its decoded JSON; 415 unless it is declared as JSON."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise HTTPException(415, f"Content-Type: expected application/json, got '{media}'")
    body = await request.body()
    try:
        return body, orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise RecordError("body", f"not valid JSON ({e})") from None


def body_doc(model: type) -> dict:
    content = {"application/json": {"schema": {"$ref": REF.format(model=model.__name__)}}}
    return {"requestBody": {"required": True, "content": content}}


def create_app(
    service: BufferService,
    token: str | None = None,
    token_reads: bool = False,
    max_body: int = 32 * 2**20,
    max_batch: int = 16384,
) -> FastAPI:
    app = FastAPI(title="predprey replay buffer", version="1", description=DESCRIPTION)
    record_model = schemas.record_model(service.limits.max_row_width)
    app.add_middleware(BodyLimit, max_body=max_body)
    bearer = HTTPBearer(auto_error=False, description="needed when the server has a token")

    def check_token(cred: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
        if cred is None:
            raise HTTPException(
                401, "Authorization: bearer token required", {"WWW-Authenticate": "Bearer"}
            )
        if not secrets.compare_digest(cred.credentials.encode(), token.encode()):
            raise HTTPException(403, "Authorization: wrong token")

    auth_codes = {401: {"model": schemas.Error}, 403: {"model": schemas.Error}}
    write_deps = [Depends(check_token)] if token else []
    read_deps = write_deps if token_reads else []
    write_err = {**(auth_codes if token else {}), 422: {"model": schemas.Error}}
    read_err = {**(auth_codes if token and token_reads else {}), 422: {"model": schemas.Error}}
    body_err = {413: {"model": schemas.Error}, 415: {"model": schemas.Error}}

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        parts = []
        for e in exc.errors():
            where = ".".join(str(p) for p in e.get("loc", ())[1:]) or "request"
            parts.append(f"{where}: {e.get('msg', 'invalid')}")
        return error(422, "; ".join(parts))

    @app.exception_handler(RecordError)
    async def bad_record(request: Request, exc: RecordError) -> Response:
        return error(422, str(exc))

    @app.exception_handler(TooLarge)
    async def over_limit(request: Request, exc: TooLarge) -> Response:
        return error(413, str(exc))

    @app.exception_handler(BodyTooLarge)
    async def too_large(request: Request, exc: BodyTooLarge) -> Response:
        return error(413, f"body: over the {max_body}-byte limit", {"Connection": "close"})

    @app.exception_handler(Conflict)
    async def conflict(request: Request, exc: Conflict) -> Response:
        return error(409, str(exc))

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> Response:
        return error(404, str(exc))

    @app.exception_handler(StorageFailed)
    async def storage_failed(request: Request, exc: StorageFailed) -> Response:
        return error(503, str(exc))

    async def record_data(request: Request) -> Response:
        body, obj = await json_body(request)
        arrays = service.check(obj, numbers_only=strings_only_in_keys(body, obj))
        ack = await asyncio.wrap_future(service.submit(arrays))
        return json_response(ack._asdict(), 201)

    app.post(
        "/record_data/",
        status_code=201,
        response_model=schemas.RecordAck,
        responses={**write_err, **body_err, 503: {"model": schemas.Error}},
        dependencies=write_deps,
        openapi_extra=body_doc(record_model),
        summary="Record transitions (durable before the answer)",
    )(record_data)
    app.post("/record_data", status_code=201, dependencies=write_deps, include_in_schema=False)(
        record_data
    )

    packed = {"content": {ROWS_MEDIA: {"schema": {"type": "string", "format": "binary"}}}}

    @app.get(
        "/batch_data/{size}",
        response_model=schemas.Batch,
        responses={**read_err, 409: {"model": schemas.Error}, 200: packed},
        dependencies=read_deps,
        summary="A uniform sample of distinct rows",
    )
    async def batch_data(request: Request, size: Annotated[int, Path(ge=1, le=max_batch)]):
        batch = service.sample(size)
        if request.headers.get("accept", "").split(";")[0].strip() == ROWS_MEDIA:
            body, widths = encode_rows(batch)
            return Response(body, media_type=ROWS_MEDIA, headers={WIDTHS_HEADER: widths})
        return json_response(batch)

    @app.get("/stats", response_model=schemas.Stats, responses=read_err, dependencies=read_deps)
    async def stats() -> Response:
        return json_response(service.stats())

    @app.get("/health", response_model=schemas.Health)
    async def health() -> Response:
        return json_response({"status": "ok"})

    @app.get(
        "/policy/{team}",
        response_model=schemas.Policy,
        responses={**read_err, 404: {"model": schemas.Error}},
        dependencies=read_deps,
        summary="Newest actor weights of a team",
    )
    async def get_policy(team: TEAM) -> Response:
        return Response(service.get_policy(team), media_type="application/json")

    @app.put(
        "/policy/{team}",
        response_model=schemas.PolicyAck,
        responses={
            **write_err,
            **body_err,
            409: {"model": schemas.Error},
            503: {"model": schemas.Error},
        },
        dependencies=write_deps,
        openapi_extra=body_doc(schemas.Policy),
        summary="Publish actor weights (versions must increase)",
    )
    async def put_policy(request: Request, team: TEAM) -> Response:
        _, obj = await json_body(request)
        version = await asyncio.to_thread(service.put_policy, team, obj)
        return json_response({"team": team, "version": version})

    def openapi() -> dict:
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version, routes=app.routes)
            _, defs = models_json_schema(
                [(record_model, "validation"), (schemas.Policy, "validation")],
                ref_template=REF,
            )
            doc.setdefault("components", {}).setdefault("schemas", {}).update(defs["$defs"])
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi
    return app
