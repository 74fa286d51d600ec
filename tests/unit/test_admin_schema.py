"""Schemathesis over the admin API's own OpenAPI document, in memory: requests generated from the
document (valid ones and not) never make the app fail (no 5xx), every answer matches what the document
says about its status, media type and body, and every operation that declares the bearer token refuses
a request without it (schemathesis' own check). Left out: /stream, which never ends by design; /reload,
which answers 503 here (no supervisor; test_admin_routes tests it); the check that every schema-valid
request is accepted, since a ban target or a 0 s duration can be wrong in ways JSON Schema cannot say;
and the check that every schema-violating request is refused, since unknown query parameters are
ignored by design (as most HTTP APIs do; unknown JSON fields are refused, which test_admin_routes tests).

The schema is loaded when the module is collected (schemathesis parametrizes at collection; its
fixture-based loader does not work with this pytest), so the app's state directory is made here and
removed when the module's tests are done. Skipped where schemathesis is not installed (it is optional)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from admin_rig import AdminRig
from hypothesis import HealthCheck, settings

_DIRECTORY = Path(tempfile.mkdtemp(prefix="shieldwall-admin-schema-"))
RIG = AdminRig(_DIRECTORY, {"bans": {"allowlist": ["10.0.0.0/8"]}})
RIG.second()
schema = (
    schemathesis.openapi.from_asgi("/openapi.json", RIG.app)
    .exclude(path="/api/v1/stream")
    .exclude(path="/api/v1/reload")
)


@pytest.fixture(scope="module", autouse=True)
def _remove_the_state_directory() -> Iterator[None]:
    yield
    RIG.close()
    shutil.rmtree(_DIRECTORY, ignore_errors=True)


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_keeps_to_its_openapi_document(case: Any) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {RIG.token}"},
        excluded_checks=[
            schemathesis.checks.positive_data_acceptance,
            schemathesis.checks.negative_data_rejection,
        ],
    )
