"""Fuzz every API operation from the server's own OpenAPI spec (schemathesis): no request may cause a
5xx, and every response must match the spec (status code, content type, headers, body schema).

Bounded: a fixed number of examples per operation and a per-request timeout, so the run stays
around half a minute on a busy 2-core CPU.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from _service_helpers import arrays, sphere, start_backend
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import positive_data_acceptance

pytestmark = pytest.mark.process  # starts processes (a server, the CLI, ranks)

EXAMPLES_PER_OPERATION = 12
# A schema-valid mesh upload may still be refused with 422 for what JSON Schema cannot say: bytes
# that are not a mesh, an open mesh. For those two operations only, schema-valid requests may be
# refused; every other operation must accept what its schema allows, and every check (status codes,
# content types, headers, response bodies against the spec) applies everywhere.
CONTENT_RULES_NOT_IN_THE_SCHEMA = positive_data_acceptance
MESH_CONTENT_CHECKED = {("POST", "/api/v1/meshes"), ("POST", "/api/v1/meshes/arrays")}


@pytest.fixture(scope="module")
def fuzz_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    server = start_backend(
        tmp_path_factory.mktemp("fuzz") / "data", "--max-upload-mb", "1", "--max-faces", "5000"
    )
    server.client.upload_arrays("ball", *arrays(sphere(1)))  # one real mesh, so listings are not empty
    yield server
    assert server.stop() == 0, server.last_log_text()


@pytest.fixture(scope="module")
def api_schema(fuzz_backend: Any) -> Any:
    headers = {"Authorization": f"Bearer {fuzz_backend.token}"}
    return schemathesis.openapi.from_url(f"{fuzz_backend.url}/openapi.json", headers=headers)


def test_no_server_errors(api_schema: Any, fuzz_backend: Any) -> None:
    """Each operation in turn (schemathesis' pytest plugin does not run under pytest 9, so hypothesis
    drives the cases directly); failures are collected so one run reports every operation that breaks."""
    headers = {"Authorization": f"Bearer {fuzz_backend.token}"}
    failures: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 14

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def check(case: Any) -> None:
            mesh_upload = (case.method.upper(), case.operation.path) in MESH_CONTENT_CHECKED
            excluded = [CONTENT_RULES_NOT_IN_THE_SCHEMA] if mesh_upload else []
            response = case.call(base_url=fuzz_backend.url, headers=headers, timeout=30)
            where = f"{case.method} {case.formatted_path}"
            assert response.status_code < 500, f"{where}: {response.status_code} {response.text}"
            try:  # documented status, content type, headers and body schema
                case.validate_response(response, excluded_checks=excluded)
            except (Exception, BaseExceptionGroup) as exc:  # schemathesis raises failure groups
                lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip().startswith(("-", "`", "["))]
                raise AssertionError(f"{where}: schema violation: {' | '.join(lines[:4])}") from None
            if response.status_code >= 400:
                error = response.json()["error"]
                assert error["code"] and error["message"], f"{where}: {response.text}"

        try:
            check()
        except AssertionError as exc:
            failures.append(str(exc).splitlines()[0])
    assert not failures, "\n".join(failures)


def test_fuzz_left_the_data_directory_clean(fuzz_backend: Any) -> None:
    """Whatever the fuzzer sent, nothing was written outside DATA and no temp files were left behind."""
    root = Path(fuzz_backend.data_dir)
    assert {p.name for p in root.parent.iterdir()} == {"data"}
    assert list((root / "tmp").iterdir()) == []
    assert "Traceback" not in "\n".join(fuzz_backend.last_log_lines(200))
