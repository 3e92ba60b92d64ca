"""Fuzz the REST API from its own OpenAPI document (schemathesis), against a real uvicorn server.

Every operation gets generated requests, valid ones and invalid ones; each answer must be no 5xx, a documented
status, and a body that matches the documented schema. The budget is bounded for CI
(``LOOKALIKE_FUZZ_EXAMPLES`` examples per operation, 25 by default); ``scripts/fuzz_api.py`` runs a
longer one.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable

from lookalike.images import HttpFetcher
from lookalike.server import create_app
from tests.test_server import LiveServer, build_table, make_gallery

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
schemathesis = pytest.importorskip("schemathesis")
from schemathesis import GenerationMode  # noqa: E402 (after the skip)
from schemathesis.checks import positive_data_acceptance  # noqa: E402

EXAMPLES = int(os.environ.get("LOOKALIKE_FUZZ_EXAMPLES", "25"))
# Valid by the schema is not enough for these: the upload must be a picture and the URL must serve
# one, which no schema can say (nor that one of a multi-example search's three positive fields must
# hold something). The routes that list results take photo filters (a real date, a place on the globe)
# over a folder index's columns and search modes that need a full-text column, which the fuzzed table
# lacks: valid by the schema, they are answered 422. Every other check still applies to them.
CONTENT_CHECKED = {
    "POST /api/search/image",
    "GET /api/search/url",
    "POST /api/search/examples",
    "GET /api/search",
    "GET /api/items",
    "GET /api/items/{item_id}/similar",
}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    gallery = make_gallery(tmp_path_factory.mktemp("gallery"))
    table = build_table(tmp_path_factory.mktemp("db") / "fuzz.db", gallery)
    # Every URL resolves to a private address, so fuzzed URL searches never leave the machine.
    fetcher = HttpFetcher(allow_private=False, resolve=lambda host, port: ["10.0.0.1"], retries=0)
    with LiveServer(create_app(table, max_upload_bytes=256 * 1024, fetcher=fetcher)) as server:
        yield server
    table.client.close()


def test_every_operation_answers_within_its_schema(live: LiveServer) -> None:
    schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json")
    requests = 0
    failures: dict[str, str] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 9
    for operation, mode in itertools.product(operations, GenerationMode):

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,  # the same requests every run: a CI failure can be replayed
            phases=[Phase.explicit, Phase.generate],  # no shrinking: report the first failure as found
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def fuzz(case: schemathesis.Case) -> None:
            nonlocal requests
            requests += 1
            response = case.call(base_url=live.url, timeout=30)
            excluded = [positive_data_acceptance] if case.operation.label in CONTENT_CHECKED else None
            case.validate_response(response, excluded_checks=excluded)

        try:
            fuzz()
        except Unsatisfiable:  # no parameters to make invalid (e.g. GET /api/stats, negative)
            continue
        except BaseException as exc:  # failure groups are BaseExceptions: one report for every operation
            if isinstance(exc, KeyboardInterrupt):
                raise
            failures[f"{operation.label} ({mode.value})"] = f"{type(exc).__name__}: {str(exc)[:2000]}"
    print(f"\nfuzzed {len(operations)} operations with {requests} requests, {len(failures)} failing")
    assert requests >= 2 * len(operations) * min(EXAMPLES, 5)
    assert not failures, "\n\n".join(f"{label}\n{text}" for label, text in failures.items())


def test_fuzz_server_has_data(live: LiveServer) -> None:
    assert httpx.get(f"{live.url}/api/stats").json()["rows"] == 20
