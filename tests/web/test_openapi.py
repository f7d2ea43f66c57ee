"""schemathesis against ``/api/openapi.json`` (issue 16): every operation, with inputs the
document allows and inputs it forbids, sent to the app as a token with every scope. No
answer may be a 5xx, and each must be one the document describes (status, content type,
headers, body schema); an input the document forbids must be refused (4xx).

The document is generated from ``market.web.api`` while the views check their inputs
themselves, so this is what keeps the two saying the same thing. Bounded by
``MAX_EXAMPLES`` per operation; the counts are printed at the end of the module.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from market import services
from market.core.types import Candle, CandleUpdate
from market.tokens import SCOPES, api_token_create

MAX_EXAMPLES = 3
SYMBOL = "DEMO:ALPHA"  # the one the document's examples name
SEEN: dict[str, Counter] = defaultdict(Counter)
FAILED: list[str] = []


# Loaded at import (schemathesis' lazy from_fixture does not run under pytest 9): the
# document needs no database.
schema = schemathesis.openapi.from_wsgi("/api/openapi.json", get_wsgi_application())
schema.config.generation.update(modes=list(GenerationMode), max_examples=MAX_EXAMPLES,
                                with_security_parameters=False)
# One wrong method per operation is enough here (tests/web/test_api_errors.py checks the 405s).
schema.config.phases.coverage.unexpected_methods = {"PUT"}


@pytest.fixture
def app_requests_keep_the_test_transaction():
    """As Django's test client does: a request through the WSGI app would otherwise close
    the database connection when it ends (close_old_connections), and with it, on
    PostgreSQL, the test's transaction."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def token(app_requests_keep_the_test_transaction, db, settings, make_symbol, django_user_model) -> str:
    """The ``Authorization`` header of a user whose token has every scope; DEMO:ALPHA has candles."""
    settings.TICKCHART_PUBLIC_ACCESS = False  # reads need the token too, as the document says
    settings.MARKET = {**getattr(settings, "MARKET", {}), "HTTP_RATE_PER_MINUTE": 1_000_000}
    settings.ALERTS = {**getattr(settings, "ALERTS", {}), "WEBHOOK_ALLOW_PRIVATE": False}
    symbol = make_symbol(SYMBOL, "DEMO")
    t0 = 1_700_000_000 - 1_700_000_000 % 60
    services.candle_upsert_many(updates=[
        CandleUpdate(SYMBOL, "1m", Candle(t0 + 60 * i, 100.0 + i % 7, 102.0, 98.0, 100.5, 10.0 + i, 3), True)
        for i in range(100)], symbol_ids={SYMBOL: symbol.id})
    user = django_user_model.objects.create_user("schemathesis")  # no password: no hashing per test
    _, secret = api_token_create(user=user, name="every scope", scopes=list(SCOPES))
    return f"Bearer {secret}"


@pytest.fixture(scope="module", autouse=True)
def _counts(request):
    yield
    capture = request.config.pluginmanager.getplugin("capturemanager")
    cases = sum(sum(c.values()) for c in SEEN.values())
    lines = [f"schemathesis: {len(SEEN)} operations, {cases} cases, {len(FAILED)} failing"]
    lines += [f"  {op}: " + ", ".join(f"{s}×{n}" for s, n in sorted(c.items())) for op, c in sorted(SEEN.items())]
    with capture.global_and_fixture_disabled():
        print("\n" + "\n".join(lines))


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_described(case, token):
    try:
        response = case.call_and_validate(headers={"Authorization": token}, excluded_checks=[positive_data_acceptance])
    except Exception:
        FAILED.append(case.operation.label)
        raise
    SEEN[case.operation.label][response.status_code] += 1
