"""The ``/api/`` surface as one django-ninja API, so ``/api/openapi.json`` is generated from
the code that serves it (issue 16) and ``/api/docs`` shows it (Swagger UI from the package).

Each operation declares its parameters, body, answers and access here and is served by the
existing view (``market.web.views``, ``alerts``, ...), which keeps doing the checking: the
access policy (``market.web.access``), the parameter and body checks with their messages,
and the body, written straight from the rows (no pydantic pass over 5,000 candles). So
query values reach ninja as text (``sent``) and bodies are not parsed by it (``body=``);
the document describes them as the types below. ``tests/web/test_openapi.py`` runs
schemathesis against the document, which fails when the two disagree.

Errors have one shape everywhere: ``{"error": "..."}`` (plus ``login_url`` on a 401, ``code``
on a 429), also for ninja's own refusals, unknown ``/api/`` paths and other methods.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI, Query, Schema
from ninja.errors import HttpError, ValidationError
from ninja.openapi.docs import Swagger
from pydantic import ConfigDict, Field, TypeAdapter, WithJsonSchema

from market.core.alerts import MAX_BARS, OPS, TRIGGERS
from market.core.drawings import KINDS as DRAWING_KINDS
from market.core.drawings import MAX_TEXT as DRAWING_MAX_TEXT
from market.core.drawings import MAX_WIDTH
from market.core.markers import MAX_TEXT as MARKER_MAX_TEXT
from market.core.markers import POSITIONS, SHAPES
from market.core.layouts import GRIDS as LAYOUT_GRIDS
from market.core.layouts import LINK_GROUPS, MAX_COMPARE, MAX_NAME as LAYOUT_MAX_NAME
from market.core.layouts import SCALES as LAYOUT_SCALES
from market.core.layouts import THEMES as LAYOUT_THEMES
from market.core.layouts import TYPES as LAYOUT_TYPES
from market.core.timeframes import CODES
from market.feed.notify import KINDS as CHANNEL_KINDS
from market.tokens import SCOPES
from market.web import alerts, drawings, exports, layouts, markers, notify_channels, outage, views
from market.web import calendar as market_calendar
from market.web.access import ALERT_SCOPE, READ_METHODS
from market.web.responses import json_response

REF = "#/components/schemas/{model}"
MAX_EPOCH = 10**10

# The domain's own constants, as enums of the document (mypy cannot see a Literal built at run time).
TimeframeCode = Literal[CODES]  # type: ignore[valid-type]
AlertOp = Literal[OPS]  # type: ignore[valid-type]
AlertTrigger = Literal[TRIGGERS]  # type: ignore[valid-type]
MarkerShape = Literal[SHAPES]  # type: ignore[valid-type]
MarkerPosition = Literal[POSITIONS]  # type: ignore[valid-type]
DrawingKind = Literal[DRAWING_KINDS]  # type: ignore[valid-type]
ChannelKind = Literal[CHANNEL_KINDS]  # type: ignore[valid-type]

# ---- answers ----------------------------------------------------------------------------


class Error(Schema):
    """Every refusal: ``error`` says what is wrong, naming the field when there is one."""

    model_config = ConfigDict(extra="allow")
    error: str
    login_url: str | None = Field(None, description="401 only: where a browser signs in")
    code: str | None = Field(None, description="a machine-readable reason, e.g. rate_limited on a 429")


class Candle(Schema):
    time: int = Field(description="bucket start, epoch seconds UTC (exchange time)")
    open: float
    high: float
    low: float
    close: float
    volume: float
    ticks: int


class Candles(Schema):
    symbol: str
    tf: TimeframeCode
    type: Literal["candles", "heikin_ashi"] = Field("candles", description="what `candles` holds; only with ?type=heikin_ashi")
    candles: list[Candle]
    studies: dict[str, list[dict[str, float | None]]] | None = Field(
        None, description="only with ?studies=: one row per candle ({time, value} or the study's outputs)")


class SymbolRow(Schema):
    ticker: str
    name: str
    exchange: str
    kind: str
    active: bool


class Symbols(Schema):
    symbols: list[SymbolRow]


class Session(Schema):
    authenticated: bool
    user: str | None
    via: Literal["session", "token"] | None
    public: bool
    may_read: bool
    login_url: str


class Alert(Schema):
    id: int
    symbol: str
    tf: str
    left: str
    op: str
    right: str
    trigger: str
    bars: int
    expires: float | None
    message: str
    webhook: str
    status: Literal["active", "paused", "done"]
    channels: list[int]


class Alerts(Schema):
    alerts: list[Alert]


class AlertEvent(Schema):
    id: str
    alert: int
    symbol: str
    tf: str
    time: float
    value: float
    other: float
    message: str
    fired_at: float
    delivery: str
    attempts: int
    last_error: str


class AlertEvents(Schema):
    alert: int
    events: list[AlertEvent]


class Marker(Schema):
    id: int
    symbol: str
    time: int
    price: float | None
    shape: MarkerShape
    position: MarkerPosition
    color: str
    text: str
    author: str


class Markers(Schema):
    symbol: str
    markers: list[Marker]


class Point(Schema):
    model_config = ConfigDict(extra="forbid")
    time: float = Field(ge=0, le=9_999_999_999, description="epoch seconds UTC (exchange time)")
    price: float = Field(ge=-1e15, le=1e15)


class Style(Schema):
    model_config = ConfigDict(extra="forbid")
    color: str = Field("#2962ff", pattern=r"^#[0-9a-fA-F]{6}$")
    width: int = Field(2, ge=1, le=MAX_WIDTH)
    text: str = Field("", max_length=DRAWING_MAX_TEXT)


class Drawing(Schema):
    id: int
    symbol: str
    kind: DrawingKind
    points: list[Point]
    style: Style
    created: float
    updated: float


class Drawings(Schema):
    drawings: list[Drawing]


class Channel(Schema):
    id: int
    name: str
    kind: ChannelKind
    target: str = Field(description="an apprise URL shows only its scheme (it holds a secret)")
    enabled: bool


class Channels(Schema):
    channels: list[Channel]


class Interval(Schema):
    open: int
    close: int


class MarketStatus(Schema):
    exchange: str
    open: bool
    session: Interval | None
    next_open: int | None
    reason: str | None
    holiday: str | None


# ---- what is sent -----------------------------------------------------------------------

Ticker = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$",
                              examples=["DEMO:ALPHA"])]  # the embedded demo has it
Epoch = Annotated[int, Field(ge=0, le=MAX_EPOCH)]


def sent(tp: Any, description: str) -> Any:
    """A query parameter as sent: the view reads and checks it, in the words the tests pin,
    so ninja takes any text; the document describes it as ``tp``."""
    return Annotated[str | None, WithJsonSchema(TypeAdapter(tp).json_schema()), Field(description=description)]


def _required(schema: dict[str, Any], cls: Any) -> None:
    if cls.needs:
        schema["required"] = list(cls.needs)


class Params(Schema):
    """Query parameters; ``needs`` are required in the document (the view says so when absent)."""

    model_config = ConfigDict(json_schema_extra=_required)
    needs: ClassVar[tuple[str, ...]] = ()


class CandleParams(Params):
    needs = ("symbol",)
    symbol: sent(Ticker, "the ticker, e.g. NSE:SBIN-EQ") = None
    tf: sent(TimeframeCode, "timeframe (default 1m); larger ones than stored are derived") = None
    from_: sent(Epoch, "first bucket, epoch seconds (inclusive)") = Field(None, alias="from")
    to: sent(Epoch, "last bucket, epoch seconds (inclusive)") = None
    limit: sent(Annotated[int, Field(ge=1)], "the newest N candles; at most MARKET['MAX_LIMIT'] (10,000)") = None
    studies: sent(str, "comma-separated study keys, e.g. ema:20,bb,rsi:14,macd (at most 8)") = None


class CandleListParams(CandleParams):
    type: sent(Literal["candles", "heikin_ashi"],
               "candles (default) or heikin_ashi: Heikin-Ashi candles anchored on the first stored bar of the "
               "symbol and timeframe, so a bar's values do not depend on the page asked for") = None


class SymbolParams(Params):
    q: sent(str, "search text (ticker, name or initials; its first 64 characters); empty: active symbols") = None


class MarkerParams(Params):
    needs = ("symbol",)
    symbol: sent(Ticker, "the ticker") = None
    from_: sent(Epoch, "from this time (inclusive)") = Field(None, alias="from")
    to: sent(Epoch, "to this time (inclusive)") = None


class DrawingParams(Params):
    needs = ("symbol",)
    symbol: sent(Ticker, "the ticker") = None


class StatusParams(Params):
    needs = ("exchange",)
    exchange: sent(Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,15}$", examples=["NSE"])],
                   "exchange code, e.g. NSE") = None
    at: sent(Annotated[float, Field(ge=0, lt=market_calendar.MAX_AT)], "epoch seconds (default now)") = None


class Body(Schema):
    """A JSON body: unknown fields are refused (the views say which)."""

    model_config = ConfigDict(extra="forbid")


def example(body: dict[str, Any]) -> ConfigDict:
    """A body's example: the docs show it, schemathesis sends it (the demo's symbol)."""
    return ConfigDict(extra="forbid", json_schema_extra={"examples": [body]})


class AlertIn(Body):
    model_config = example({"symbol": "DEMO:ALPHA", "tf": "1m", "left": "close", "op": "crosses_above",
                            "right": 105})
    symbol: Ticker
    tf: TimeframeCode
    left: str | float = Field(description="'price', a candle field (close, high, ...) or a study key (ema:20)")
    op: AlertOp
    right: str | float = Field(description="a number (a percentage for moves_*), a candle field or a study key")
    trigger: AlertTrigger = "once"
    bars: int = Field(1, ge=1, le=MAX_BARS)
    expires: float | None = Field(None, description="epoch seconds; null: never")
    message: str = ""
    webhook: str = Field("", description="http(s) URL the event is POSTed to, signed")
    channels: list[int] = Field([], description="ids of the user's notification channels")


class AlertChange(Body):
    model_config = example({"status": "paused"})
    status: Literal["paused", "active"] | None = None
    channels: list[int] | None = None


class MarkerIn(Body):
    model_config = example({"symbol": "DEMO:ALPHA", "time": 1_700_000_000, "price": 100.5, "shape": "arrowUp",
                            "text": "buy"})
    symbol: Ticker
    time: float = Field(ge=0, lt=MAX_EPOCH, description="epoch seconds")
    price: float | None = None
    shape: MarkerShape = "circle"
    color: str = Field("#2962ff", pattern=r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
    text: str = Field("", max_length=MARKER_MAX_TEXT)
    position: MarkerPosition | None = Field(None, description="default: from the shape")


class DrawingIn(Body):
    model_config = example({"symbol": "DEMO:ALPHA", "kind": "hline",
                            "points": [{"time": 1_700_000_000, "price": 100.5}]})
    symbol: Ticker
    kind: DrawingKind
    points: list[Point] = Field(min_length=1, max_length=2, description="1 for hline, hray, text; 2 for the rest")
    style: Style | None = None


class DrawingChange(Body):
    model_config = example({"style": {"color": "#ff0000"}})
    points: list[Point] | None = Field(None, min_length=1, max_length=2)
    style: Style | None = Field(None, description="keys merge into the drawing's style")


class LayoutChart(Schema):
    symbol: Ticker
    tf: TimeframeCode = "1m"
    type: Literal[LAYOUT_TYPES] = "candles"  # type: ignore[valid-type]
    studies: list[str] = Field(default_factory=list, description='study keys, e.g. ["ema:20", "rsi:14"]')
    drawings_visible: bool = True
    link_group: Literal[LINK_GROUPS] | None = Field(None, description="panes of one group share crosshair, "  # type: ignore[valid-type]
                                                   "range, symbol and interval")
    scale: Literal[LAYOUT_SCALES] = Field("normal", description="the price scale; left out when normal")  # type: ignore[valid-type]
    compare: list[Ticker] = Field(default_factory=list, max_length=MAX_COMPARE,
                                  description="other symbols overlaid on a percent scale from the first visible "
                                              "bar; each once, not the chart's own; left out when none")


class LayoutSpec(Schema):
    grid: Literal[LAYOUT_GRIDS]  # type: ignore[valid-type]
    charts: list[LayoutChart] = Field(description="one per grid cell")
    theme: Literal[LAYOUT_THEMES] = "dark"  # type: ignore[valid-type]


class Layout(Schema):
    id: int
    name: str
    spec: LayoutSpec
    created: float
    updated: float
    opened: float | None = Field(description="when /layout/<id>/ last opened it (null: never)")


class Layouts(Schema):
    layouts: list[Layout]


class LayoutIn(Body):
    model_config = example({"name": "morning", "spec": {"grid": 2, "charts": [
        {"symbol": "DEMO:ALPHA", "tf": "1m"}, {"symbol": "DEMO:ALPHA", "tf": "5m"}]}})
    name: str = Field(min_length=1, max_length=LAYOUT_MAX_NAME)
    spec: LayoutSpec


class LayoutChange(Body):
    model_config = example({"name": "evening"})
    name: str | None = Field(None, min_length=1, max_length=LAYOUT_MAX_NAME)
    spec: LayoutSpec | None = None


class ChannelIn(Body):
    model_config = example({"name": "me", "kind": "email", "target": "me@example.com"})
    name: str = ""
    kind: ChannelKind
    target: str = Field(min_length=1, max_length=1000, description="an apprise URL or an e-mail address")


# ---- access -----------------------------------------------------------------------------

SECURITY_SCHEMES = {
    "session": {"type": "apiKey", "in": "cookie", "name": settings.SESSION_COOKIE_NAME,
                "description": "a signed-in browser; its writes also need the CSRF token (X-CSRFToken)"},
    "token": {"type": "http", "scheme": "bearer",
              "description": f"a personal token (tc_…, made in the admin); scopes: {', '.join(SCOPES)}. "
                             "Every token reads; writes need the scope named on the operation"},
}


def security(scope: str | None = None, *, open_: bool = False) -> dict[str, Any]:
    """The operation's ``security`` as ``market.web.access`` enforces it: a session or a token
    (with ``scope`` for writes), or ``open_`` to everyone."""
    if open_:
        return {"security": [{}, {"session": []}, {"token": []}]}
    return {"security": [{"session": []}, {"token": [scope] if scope else []}]}


class TickChartAPI(NinjaAPI):
    """NinjaAPI plus what its generator leaves out: the security schemes and the request
    bodies (described from their models, parsed by the views)."""

    def get_openapi_schema(self, **kwargs: Any) -> Any:
        schema = super().get_openapi_schema(**kwargs)
        components = schema.setdefault("components", {})
        components["securitySchemes"] = SECURITY_SCHEMES
        for model in BODIES.values():
            body = model.model_json_schema(ref_template=REF)
            components["schemas"].update(body.pop("$defs", {}))
            components["schemas"][model.__name__] = body
        return schema


BODIES: dict[str, type[Schema]] = {}


def body(model: type[Schema], *, required: bool = True) -> dict[str, Any]:
    """``openapi_extra`` describing a JSON request body as ``model``."""
    BODIES[model.__name__] = model
    ref = {"$ref": REF.format(model=model.__name__)}
    return {"requestBody": {"required": required, "content": {"application/json": {"schema": ref}}}}


def answers(ok: Any, *codes: int, status: int = 200) -> dict[int, Any]:
    """``response=``: ``ok`` for ``status``, the error shape for ``codes`` (401 always)."""
    return {status: ok} | {code: Error for code in sorted({401, *codes})}


def extra(*parts: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for part in parts:
        merged |= part
    return merged


api = TickChartAPI(
    title="TickChart API", version="1", urls_namespace="api",
    description="Candles, studies, symbols, alerts, markers, drawings, layouts and notification channels of a "
                "TickChart server. Reads need a signed-in user or a token, unless the server has public "
                "access on (TICKCHART_PUBLIC_ACCESS); writes need a user, or a token with the scope the "
                "operation names. Errors are `{\"error\": \"...\"}`. The live stream is a WebSocket "
                "(`/ws/market/`), described in docs/api.md with a JSON Schema per frame.",
    # validatorUrl: Swagger UI would fetch a badge from validator.swagger.io (no third party).
    docs=Swagger(settings={"deepLinking": True, "validatorUrl": None}),
)


# ---- operations -------------------------------------------------------------------------
# Each is served by the existing view: it checks access, parameters and body, and answers.

CANDLE_HEADERS = {"responses": {200: {"headers": {"X-Exchange-Timezone": {
    "description": "the exchange's IANA time zone (e.g. Asia/Kolkata)", "schema": {"type": "string"}}}}}}


def streamed(media: str) -> dict[str, Any]:
    """``openapi_extra`` for a file answer (not JSON)."""
    return {"responses": {200: {"description": "the file, streamed", "content": {
        media: {"schema": {"type": "string", "format": "binary"}}}}}}


@api.get("/candles", url_name="api-candles", response=answers(Candles, 400, 404, 429), tags=["candles"],
         openapi_extra=extra(security(), CANDLE_HEADERS), summary="Candles and studies")
def candles(request: HttpRequest, params: Query[CandleListParams]) -> HttpResponse:
    """Ascending candles of a symbol (the newest page without `from`/`to`/`limit`), as
    Heikin-Ashi candles with `type=heikin_ashi`; with `studies`, each study's values for
    them (of the real candles), computed with the warm-up its definition needs."""
    return views.api_candles(request)


@api.get("/candles.csv", url_name="api-candles-csv", response=answers(None, 400, 404), tags=["candles"],
         openapi_extra=extra(security(), streamed(exports.MEDIA["csv"])), summary="Candles as CSV")
def candles_csv(request: HttpRequest, params: Query[CandleParams]) -> HttpResponse:
    """`/api/candles`' parameters without its page limit (`limit` caps it), streamed as it is
    read; times in the exchange's zone."""
    return exports.api_candles_csv(request)


@api.get("/candles.parquet", url_name="api-candles-parquet", response=answers(None, 400, 404),
         tags=["candles"], openapi_extra=extra(security(), streamed(exports.MEDIA["parquet"])),
         summary="Candles as Parquet")
def candles_parquet(request: HttpRequest, params: Query[CandleParams]) -> HttpResponse:
    """As `/api/candles.csv`, in Parquet row groups of 10,000 candles."""
    return exports.api_candles_parquet(request)


@api.get("/symbols", url_name="api-symbols", response=answers(Symbols, 429), tags=["symbols"],
         openapi_extra=security(), summary="Search symbols")
def symbols(request: HttpRequest, params: Query[SymbolParams]) -> HttpResponse:
    """Ranked search for the symbol box: ticker, name, initials, near misses."""
    return views.api_symbols(request)


@api.get("/session", url_name="api-session", response={200: Session, 401: Error}, tags=["session"],
         openapi_extra=security(open_=True), summary="Who is asking")
def session(request: HttpRequest) -> HttpResponse:
    """May this browser or token read, and where to sign in. Open to all, so a page whose
    socket was refused can tell signed out from server down; a bad token is still a 401."""
    return views.api_session(request)


@api.get("/market/status", url_name="api-market-status", response=answers(MarketStatus, 400),
         tags=["session"], openapi_extra=security(), summary="Is an exchange open")
def market_status(request: HttpRequest, params: Query[StatusParams]) -> HttpResponse:
    """Open or closed at `at`, why, and the next open: the chart's "market closed" badge."""
    return market_calendar.api_market_status(request)


ALERTS = security(ALERT_SCOPE)


@api.get("/alerts", url_name="api-alerts", response=answers(Alerts), tags=["alerts"], openapi_extra=ALERTS,
         summary="List alerts")
def alert_list(request: HttpRequest) -> HttpResponse:
    """The user's own alerts, every status."""
    return alerts.api_alerts(request)


@api.post("/alerts", url_name="api-alerts", response=answers(Alert, 400, 403, 409, 413, status=201),
          tags=["alerts"], openapi_extra=extra(ALERTS, body(AlertIn)), summary="Create an alert")
def alert_create(request: HttpRequest) -> HttpResponse:
    """A price, candle or study condition the writer checks on every flush; 409 past the
    per-user quota."""
    return alerts.api_alerts(request)


@api.get("/alerts/{int:pk}", url_name="api-alert", response=answers(Alert, 404), tags=["alerts"],
         openapi_extra=ALERTS, summary="One alert")
def alert_get(request: HttpRequest, pk: int) -> HttpResponse:
    """The user's own; anyone else's is a 404, as a missing one is."""
    return alerts.api_alert(request, pk=pk)


@api.patch("/alerts/{int:pk}", url_name="api-alert", response=answers(Alert, 400, 403, 404, 413),
           tags=["alerts"], openapi_extra=extra(ALERTS, body(AlertChange)), summary="Pause, resume, set channels")
def alert_change(request: HttpRequest, pk: int) -> HttpResponse:
    """`status` and/or `channels`; an alert that fired once is done and stays so."""
    return alerts.api_alert(request, pk=pk)


@api.delete("/alerts/{int:pk}", url_name="api-alert", response=answers(None, 403, 404, status=204),
            tags=["alerts"], openapi_extra=ALERTS, summary="Delete an alert")
def alert_delete(request: HttpRequest, pk: int) -> HttpResponse:
    return alerts.api_alert(request, pk=pk)


@api.get("/alerts/{int:pk}/events", url_name="api-alert-events", response=answers(AlertEvents, 404),
         tags=["alerts"], openapi_extra=ALERTS, summary="An alert's events")
def alert_events(request: HttpRequest, pk: int) -> HttpResponse:
    """Its firings, oldest first (at most 500), each with its webhook delivery's state."""
    return alerts.api_alert_events(request, pk=pk)


@api.get("/channels", url_name="api-channels", response=answers(Channels), tags=["alerts"],
         openapi_extra=ALERTS, summary="List notification channels")
def channel_list(request: HttpRequest) -> HttpResponse:
    """Where the user's alert events are also sent (apprise URLs, e-mail addresses)."""
    return notify_channels.api_channels(request)


@api.post("/channels", url_name="api-channels", response=answers(Channel, 400, 403, 409, 413, status=201),
          tags=["alerts"], openapi_extra=extra(ALERTS, body(ChannelIn)), summary="Add a notification channel")
def channel_create(request: HttpRequest) -> HttpResponse:
    """Targets on private networks are refused (the writer would post to them)."""
    return notify_channels.api_channels(request)


@api.get("/channels/{int:pk}", url_name="api-channel", response=answers(Channel, 404), tags=["alerts"],
         openapi_extra=ALERTS, summary="One notification channel")
def channel_get(request: HttpRequest, pk: int) -> HttpResponse:
    return notify_channels.api_channel(request, pk=pk)


@api.delete("/channels/{int:pk}", url_name="api-channel", response=answers(None, 403, 404, status=204),
            tags=["alerts"], openapi_extra=ALERTS, summary="Delete a notification channel")
def channel_delete(request: HttpRequest, pk: int) -> HttpResponse:
    return notify_channels.api_channel(request, pk=pk)


MARKERS = security("markers")


@api.get("/markers", url_name="api-markers", response=answers(Markers, 400), tags=["markers"],
         openapi_extra=security(), summary="A symbol's markers")
def marker_list(request: HttpRequest, params: Query[MarkerParams]) -> HttpResponse:
    """Everyone's markers on the symbol, ascending: they show on every chart of it."""
    return markers.api_markers(request)


@api.post("/markers", url_name="api-markers", response=answers(Marker, 400, 403, 409, 413, status=201),
          tags=["markers"], openapi_extra=extra(MARKERS, body(MarkerIn)), summary="Post a marker")
def marker_create(request: HttpRequest) -> HttpResponse:
    """A mark a strategy puts on a symbol's chart; its open charts show it at once."""
    return markers.api_markers(request)


@api.get("/markers/{int:pk}", url_name="api-marker", response=answers(Marker, 404), tags=["markers"],
         openapi_extra=security(), summary="One marker")
def marker_get(request: HttpRequest, pk: int) -> HttpResponse:
    return markers.api_marker(request, pk=pk)


@api.delete("/markers/{int:pk}", url_name="api-marker", response=answers(Marker, 403, 404), tags=["markers"],
            openapi_extra=MARKERS, summary="Delete a marker")
def marker_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Its author only (403 for anyone else); answers the deleted marker, as the charts hear it."""
    return markers.api_marker(request, pk=pk)


DRAWINGS = security(drawings.SCOPE)


@api.get("/drawings", url_name="api-drawings", response=answers(Drawings, 400), tags=["drawings"],
         openapi_extra=DRAWINGS, summary="The user's drawings on a symbol")
def drawing_list(request: HttpRequest, params: Query[DrawingParams]) -> HttpResponse:
    """The user's own: a visitor's drawings stay in their browser."""
    return drawings.api_drawings(request)


@api.post("/drawings", url_name="api-drawings", response=answers(Drawing, 400, 403, 413, status=201),
          tags=["drawings"], openapi_extra=extra(DRAWINGS, body(DrawingIn)), summary="Save a drawing")
def drawing_create(request: HttpRequest) -> HttpResponse:
    """Points are exchange time and price, so a drawing shows in place on every timeframe;
    the user's other tabs hear it."""
    return drawings.api_drawings(request)


@api.get("/drawings/{int:pk}", url_name="api-drawing", response=answers(Drawing, 404), tags=["drawings"],
         openapi_extra=DRAWINGS, summary="One drawing")
def drawing_get(request: HttpRequest, pk: int) -> HttpResponse:
    return drawings.api_drawing(request, pk=pk)


@api.patch("/drawings/{int:pk}", url_name="api-drawing", response=answers(Drawing, 400, 403, 404, 413),
           tags=["drawings"], openapi_extra=extra(DRAWINGS, body(DrawingChange)), summary="Move or restyle")
def drawing_change(request: HttpRequest, pk: int) -> HttpResponse:
    """`points` and/or `style`, whose keys merge into the drawing's."""
    return drawings.api_drawing(request, pk=pk)


@api.delete("/drawings/{int:pk}", url_name="api-drawing", response=answers(None, 403, 404, status=204),
            tags=["drawings"], openapi_extra=DRAWINGS, summary="Delete a drawing")
def drawing_delete(request: HttpRequest, pk: int) -> HttpResponse:
    return drawings.api_drawing(request, pk=pk)


LAYOUTS = security(drawings.SCOPE)


@api.get("/layouts", url_name="api-layouts", response=answers(Layouts), tags=["layouts"],
         openapi_extra=LAYOUTS, summary="The user's saved layouts")
def layout_list(request: HttpRequest) -> HttpResponse:
    return layouts.api_layouts(request)


@api.post("/layouts", url_name="api-layouts", response=answers(Layout, 400, 403, 409, 413, status=201),
          tags=["layouts"], openapi_extra=extra(LAYOUTS, body(LayoutIn)), summary="Save a layout")
def layout_create(request: HttpRequest) -> HttpResponse:
    """Names are unique per user; a taken name or one past the quota is a 409."""
    return layouts.api_layouts(request)


@api.get("/layouts/{int:pk}", url_name="api-layout", response=answers(Layout, 404), tags=["layouts"],
         openapi_extra=LAYOUTS, summary="One layout")
def layout_get(request: HttpRequest, pk: int) -> HttpResponse:
    return layouts.api_layout(request, pk=pk)


@api.patch("/layouts/{int:pk}", url_name="api-layout", response=answers(Layout, 400, 403, 404, 409, 413),
           tags=["layouts"], openapi_extra=extra(LAYOUTS, body(LayoutChange)), summary="Rename or change")
def layout_change(request: HttpRequest, pk: int) -> HttpResponse:
    return layouts.api_layout(request, pk=pk)


@api.delete("/layouts/{int:pk}", url_name="api-layout", response=answers(None, 403, 404, status=204),
            tags=["layouts"], openapi_extra=LAYOUTS, summary="Delete a layout")
def layout_delete(request: HttpRequest, pk: int) -> HttpResponse:
    return layouts.api_layout(request, pk=pk)


# ---- one error shape ----------------------------------------------------------------------


@api.exception_handler(ValidationError)
def _invalid(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    """Ninja's own refusal (of a value it parses itself), said as every other error is."""
    first = exc.errors[0] if exc.errors else {}
    where = ".".join(str(p) for p in first.get("loc", ())[1:]) or "request"
    return json_response({"error": f"{where}: {first.get('msg', 'invalid')}"}, 400)


@api.exception_handler(DatabaseError)
def _database_down(request: HttpRequest, exc: DatabaseError) -> HttpResponse:
    return outage.unavailable(request, exc)


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return json_response({"error": str(exc)}, exc.status_code)


@csrf_exempt  # a write to a path that does not exist is a JSON 404, not the CSRF page
def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """Any other ``/api/`` path."""
    return json_response({"error": f"no such API path: {request.path[:200]}"}, 404)


def _served(pattern: URLPattern, operations: list[Any]) -> URLPattern:
    """The path's declared methods go to ninja; any other (HEAD, a wrong one) to the path's
    first operation as is, whose view answers HEAD as GET and the rest with its JSON 405 and
    ``Allow``. The document's own URLs (no operations) answer GET and HEAD only."""
    methods = {m for op in operations for m in op.methods}
    route = pattern.callback

    def dispatch(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method in methods or (not operations and request.method in READ_METHODS):
            return route(request, *args, **kwargs)
        if operations:
            return operations[0].run(request, **kwargs)
        return json_response({"error": "use GET"}, 405, Allow=", ".join(READ_METHODS))

    dispatch.csrf_exempt = True  # type: ignore[attr-defined]  # as ninja's are; the views check writes
    return path(str(pattern.pattern), dispatch, name=pattern.name)


def urls() -> list[Any]:
    """``/api/``: ninja's URLs (each through ``_served``), then the JSON 404 for the rest."""
    operations = {view.url_name: view.operations
                  for router in api._get_bound_routers() for view in router.path_operations.values()}
    patterns, app, namespace = api.urls
    # ninja's root (its 404) answers the JSON 404; the document's paths are reversed from it.
    served = [path(str(p.pattern), not_found, name=p.name) if p.name == "api-root"
              else _served(p, operations.get(p.name, [])) for p in patterns]
    return [path("api/", include((served, app), namespace=namespace)), re_path(r"^api(?:/|$)", not_found)]
