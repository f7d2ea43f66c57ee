"""``/api/docs`` as production serves it (issue 16): DJANGO_DEBUG=0, Swagger UI's files from
django-ninja's package through ``collectstatic`` (no CDN), under the real Content-Security-
Policy. The page must list the API's operations with no console error and no CSP refusal.

Shares tests/e2e/test_production_static.py's server (``manage.py runfeed --serve``).
"""

from __future__ import annotations

import pytest

from tests.e2e.test_chart_browser import CHROMIUM, CHROMIUM_ARGS
from tests.e2e.test_production_static import production  # noqa: F401  (the module's server)

pytestmark = pytest.mark.e2e

# Registered before the page's own scripts (by the browser, not as page script): CSP refusals.
WATCH = "window.__refused = []; document.addEventListener('securitypolicyviolation', " \
        "e => window.__refused.push(e.violatedDirective + ' ' + e.blockedURI));"


def test_docs_list_the_operations_under_the_real_csp(production):  # noqa: F811
    from playwright.sync_api import sync_playwright

    base, _, static_root = production
    assert (static_root / "ninja" / "swagger-ui-bundle.js").exists()  # collected from the package
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(20_000)
            problems: list[str] = []
            page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
            outside: list[str] = []
            page.on("request", lambda r: outside.append(r.url) if not r.url.startswith((base, "data:")) else None)
            page.add_init_script(WATCH)
            response = page.goto(base + "/api/docs")
            assert response.status == 200
            assert "script-src 'self'" in response.headers["content-security-policy"]
            page.wait_for_selector(".opblock-summary-path")
            page.wait_for_load_state("networkidle")
            paths = set(page.locator(".opblock-summary-path").all_inner_texts())
            methods = page.locator(".opblock-summary-method").all_inner_texts()
            assert {"/api/candles", "/api/alerts/{pk}", "/api/drawings", "/api/markers/{pk}",
                    "/api/channels", "/api/session", "/api/layouts/{pk}"} <= {p.replace("\u200b", "") for p in paths}, paths
            document = page.request.get(base + "/api/openapi.json").json()
            operations = sum(len(ops) for ops in document["paths"].values())  # one block per operation
            assert operations >= 30 and len(methods) == operations, (operations, methods)
            assert {"GET", "POST", "PATCH", "DELETE"} <= set(methods), methods
            page.locator(".opblock-summary-path", has_text="/api/session").first.click()
            page.wait_for_selector(".opblock.is-open .responses-table")
            assert page.evaluate("() => window.__refused") == []
            assert problems == [], "\n".join(problems)
            assert outside == [], outside
        finally:
            browser.close()
