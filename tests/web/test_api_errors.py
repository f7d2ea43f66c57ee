"""One error shape on ``/api/`` (issue 16): ``{"error": ...}`` as JSON from the views, from
ninja's own refusals, for unknown paths and for methods a path does not take."""

from __future__ import annotations

import json

import pytest
from django.test import RequestFactory
from ninja.errors import HttpError, ValidationError

from market.web.api import api


def error_of(response) -> str:
    assert response["Content-Type"] == "application/json", response.content
    body = json.loads(response.content)
    assert isinstance(body["error"], str) and body["error"], body
    return body["error"]


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "post", "delete", "patch"])
@pytest.mark.parametrize("url", ["/api/nope", "/api/", "/api/candles/extra", "/api/alerts/abc", "/api"])
def test_an_unknown_api_path_is_a_json_404(client, url, method):
    response = getattr(client, method)(url)
    assert response.status_code == 404
    assert "no such API path" in error_of(response)


@pytest.mark.django_db
@pytest.mark.parametrize("method, url, allow", [
    ("put", "/api/candles", "GET, HEAD"),
    ("post", "/api/symbols", "GET, HEAD"),
    ("delete", "/api/candles.csv", "GET, HEAD"),
    ("post", "/api/session", "GET, HEAD"),
    ("put", "/api/alerts", "GET, HEAD, POST"),
    ("post", "/api/alerts/1", "GET, HEAD, PATCH, DELETE"),
    ("put", "/api/markers", "GET, HEAD, POST"),
    ("patch", "/api/markers/1", "GET, HEAD, DELETE"),
    ("delete", "/api/drawings", "GET, HEAD, POST"),
    ("post", "/api/channels/1", "GET, HEAD, DELETE"),
    ("post", "/api/market/status", "GET, HEAD"),
    ("post", "/api/openapi.json", "GET, HEAD"),
    ("delete", "/api/docs", "GET, HEAD"),
])
def test_a_method_a_path_does_not_take_is_a_json_405_with_allow(client, django_user_model, method, url, allow):
    client.force_login(django_user_model.objects.create_user("ada"))
    response = getattr(client, method)(url)
    if response.status_code == 404:  # the view looks the object up first: no such one here
        assert url.rsplit("/", 1)[-1].isdigit(), response.content
        error_of(response)
        return
    assert response.status_code == 405, response.content
    error_of(response)
    assert response["Allow"] == allow


@pytest.mark.django_db
def test_head_is_answered_as_get(client, make_symbol):
    make_symbol("DEMO:ALPHA", "DEMO")
    assert client.head("/api/candles?symbol=DEMO:ALPHA").status_code == 200
    assert client.head("/api/candles").status_code == 400  # the view's checks, as for GET
    assert client.head("/api/openapi.json").status_code == 200


def test_ninjas_own_refusals_take_the_same_shape(rf: RequestFactory):
    request = rf.get("/api/alerts/1")
    invalid = api.on_exception(request, ValidationError([{"loc": ("path", "pk"), "msg": "Input should be an integer"}]))
    assert invalid.status_code == 400 and error_of(invalid) == "pk: Input should be an integer"
    refused = api.on_exception(request, HttpError(403, "no"))
    assert refused.status_code == 403 and error_of(refused) == "no"


@pytest.mark.django_db
def test_the_document_describes_every_api_path(client):
    from market.urls import urlpatterns  # noqa: F401  (the URLconf is what serves the paths)

    document = client.get("/api/openapi.json").json()
    assert set(document["paths"]) == {
        "/api/candles", "/api/candles.csv", "/api/candles.parquet", "/api/symbols", "/api/session",
        "/api/market/status", "/api/alerts", "/api/alerts/{pk}", "/api/alerts/{pk}/events", "/api/channels",
        "/api/channels/{pk}", "/api/markers", "/api/markers/{pk}", "/api/drawings", "/api/drawings/{pk}",
        "/api/layouts", "/api/layouts/{pk}"}
    schemes = document["components"]["securitySchemes"]
    assert schemes["token"] == {**schemes["token"], "type": "http", "scheme": "bearer"}
    assert schemes["session"]["in"] == "cookie"
    post = document["paths"]["/api/drawings"]["post"]
    assert {"token": ["drawings"]} in post["security"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/DrawingIn"}
    assert set(post["responses"]) == {"201", "400", "401", "403", "413"}
    candles = document["paths"]["/api/candles"]["get"]
    assert [p["name"] for p in candles["parameters"]] == ["symbol", "tf", "from", "to", "limit", "studies", "type"]
    assert candles["parameters"][0]["required"] is True
    assert candles["parameters"][4]["schema"]["type"] == "integer"
