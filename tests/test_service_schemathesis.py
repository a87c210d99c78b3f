"""Property-based requests generated from the served OpenAPI schema (schemathesis, in
process over ASGI): no 5xx, documented status codes and content types, responses that
match their schemas. The last test checks that enough requests were made."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections import Counter

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from predprey.service.app import create_app
from predprey.service.core import BufferService

DATA = tempfile.mkdtemp(prefix="predprey-schemathesis-")
atexit.register(shutil.rmtree, DATA, True)
SERVICE = BufferService(DATA, capacity=500, seed=0)
APP = create_app(SERVICE, max_body=64 * 1024, max_batch=64)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
STATUS: Counter[int] = Counter()
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@schema.parametrize()
@settings(
    max_examples=240, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck)
)
def test_generated_requests(case):
    response = case.call_and_validate(checks=CHECKS)
    STATUS[response.status_code] += 1


def test_enough_requests_and_no_server_error():
    total = sum(STATUS.values())
    print(f"schemathesis: {total} requests, status counts {dict(sorted(STATUS.items()))}")
    assert total >= 1000, STATUS
    assert not [code for code in STATUS if code >= 500], STATUS
    assert STATUS[201] > 0 and STATUS[200] > 0  # some records were accepted and served
    SERVICE.close()
