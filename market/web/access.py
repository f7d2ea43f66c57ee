"""Who may see the market: the one access policy for the pages, ``/api/*``, the sockets and
``/metrics`` (docs/security.md).

- Reading (chart and pulse pages, ``/api/*``, ``/ws/market/``, ``/ws/pulse/``) needs a signed-in,
  active user, unless ``TICKCHART_PUBLIC_ACCESS`` is on (its default is ``DEBUG``, so the
  embedded one-command default needs no account). Everything readable is read-only anyway.
- ``/api/*`` also takes a personal token, ``Authorization: Bearer tc_…`` (``market.tokens``);
  only GET and HEAD are served there. A bad, revoked or expired token is a 401 even when
  public access is on: explicit credentials that do not work are an error, not anonymity.
- The sockets use the session cookie (channels' ``AuthMiddlewareStack`` in tickchart/asgi.py)
  and are refused before ``accept()``. Daphne turns a close before accept into an HTTP 403 on
  the handshake (the browser sees only code 1006), so the pages ask ``/api/session`` after a
  failed handshake and show a sign-in link; the application close codes 4401/4403 reach
  ASGI servers and test clients that pass them through.
- ``/metrics``: a staff session, ``Authorization: Bearer $TICKCHART_METRICS_TOKEN``, or open
  when ``TICKCHART_METRICS_PUBLIC`` is on (its default is ``DEBUG``).

This is a framework edge: it imports Django and is imported by views and consumers only.
"""

from __future__ import annotations

import functools
import hmac
from typing import Any, Callable

from channels import auth as channels_auth
from channels.auth import AuthMiddleware
from channels.db import database_sync_to_async
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import resolve_url
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt

from market.conf import access_conf
from market.live.snapshots import Lookups, pooled
from market.tokens import TokenError, api_token_verify, token_allows
from market.web.responses import json_response

READ_METHODS = ("GET", "HEAD")
# Application close codes (4000-4999), named after the HTTP statuses they stand for.
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
REALM = "tickchart"

View = Callable[..., HttpResponse]


def public_access() -> bool:
    """Read-only public access on? (market.conf drops its cache when a setting changes.)"""
    return access_conf().public


def user_is_reader(user: Any) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active)


def user_may_read(user: Any) -> bool:
    return public_access() or user_is_reader(user)


def request_may_read(request: HttpRequest) -> bool:
    return user_may_read(getattr(request, "user", None))


def login_url() -> str:
    return resolve_url(access_conf().login_url)


def _bearer_secret(header: str) -> str | None:
    """The secret of an ``Authorization: Bearer …`` header value, else None (other schemes too)."""
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return credentials.strip()


def _bearer(request: HttpRequest) -> str | None:
    return _bearer_secret(request.headers.get("Authorization", ""))


def _socket_bearer(scope: dict[str, Any]) -> str | None:
    """A script's token on a socket handshake: the ``Authorization`` header only (browsers
    cannot set it; a query string or subprotocol would put the secret in logs)."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            return _bearer_secret(value.decode("latin1"))
    return None


def _unauthorized(message: str, *, invalid_token: bool = False) -> HttpResponse:
    challenge = f'Bearer realm="{REALM}"'
    if invalid_token:
        challenge += f', error="invalid_token", error_description="{message}"'
    return json_response({"error": message, "login_url": login_url()}, 401, WWW_Authenticate=challenge)


def bearer_sign_in(request: HttpRequest) -> TokenError | None:
    """Sign the request in with its bearer token, verified once per request; the error if
    the token is bad (None when it is good or absent).

    The rate limit calls it before the view, so token callers count per user; ``api_view``
    calls it again and refuses the error, without a second lookup.
    """
    if hasattr(request, "_bearer_error"):
        return request._bearer_error  # type: ignore[attr-defined]
    request._bearer_error = None  # type: ignore[attr-defined]
    secret = _bearer(request)
    if secret is None:
        return None
    try:
        auth = api_token_verify(secret=secret)
    except TokenError as exc:
        request._bearer_error = exc  # type: ignore[attr-defined]
        return exc
    request.user = auth.user
    request.api_token = auth.token  # type: ignore[attr-defined]
    return None


def _authenticate_bearer(request: HttpRequest) -> HttpResponse | None:
    """Sign the request in with its bearer token, if it has one; a 401 response if it is bad."""
    error = bearer_sign_in(request)
    return None if error is None else _unauthorized(error.reason, invalid_token=True)


def api_view(*, require_read: bool = True) -> Callable[[View], View]:
    """Decorate a JSON API view: read-only methods, bearer tokens, and (by default) the policy.

    CSRF exemption is safe here because every method that could change state is refused
    before the view runs; it lets a script holding a token get a JSON 405, not an HTML 403.
    """

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in READ_METHODS:
                return json_response({"error": "the API is read-only: use GET"}, 405, Allow=", ".join(READ_METHODS))
            refused = _authenticate_bearer(request)
            if refused is not None:
                return refused
            if require_read and not request_may_read(request):
                return _unauthorized("sign in, or send Authorization: Bearer <token>")
            return view(request, *args, **kwargs)

        return csrf_exempt(wrapper)

    return decorate


ALERT_SCOPE = "alerts"


def scoped_view(scope: str, *, public_reads: bool = False) -> Callable[[View], View]:
    """Decorate a JSON API view that may write: ``/api/alerts`` (``alerts``), ``/api/markers``.

    Writes need a signed-in, active user or a bearer token; a token also needs ``scope``
    (the read-only tokens stay read-only), and a browser's session writes are CSRF-checked
    as any form post is. Reads need the same user, or with ``public_reads`` only what
    ``api_view`` asks (markers are shown on everyone's chart; alerts are their owner's).
    """

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            refused = _authenticate_bearer(request)
            if refused is not None:
                return refused
            user = getattr(request, "user", None)
            reading = request.method in READ_METHODS
            if reading and public_reads:
                if not request_may_read(request):
                    return _unauthorized("sign in, or send Authorization: Bearer <token>")
                return view(request, *args, **kwargs)
            if not user_is_reader(user):
                return _unauthorized("sign in, or send Authorization: Bearer <token>")
            if not reading:
                token = getattr(request, "api_token", None)
                if token is not None and not token_allows(token, scope):
                    return json_response({"error": f"this token may not write {scope}: that needs the "
                                                   f"{scope!r} scope"}, 403)
                if token is None:
                    rejected = CsrfViewMiddleware(lambda r: HttpResponse()).process_view(request, view, args, kwargs)
                    if rejected is not None:
                        return json_response({"error": "CSRF check failed"}, 403)
            return view(request, *args, **kwargs)

        return csrf_exempt(wrapper)

    return decorate


alerts_view = scoped_view(ALERT_SCOPE)


def page_view(view: View) -> View:
    """Decorate an HTML page: anyone who may not read is sent to the login page."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request_may_read(request):
            return redirect_to_login(request.get_full_path(), login_url())
        return view(request, *args, **kwargs)

    return wrapper


def session_info(request: HttpRequest) -> dict[str, Any]:
    """What ``/api/session`` says: may this browser (or token) read, and where to sign in."""
    user = getattr(request, "user", None)
    signed_in = user_is_reader(user)
    return {
        "authenticated": signed_in,
        "user": user.get_username() if signed_in else None,
        "via": ("token" if hasattr(request, "api_token") else "session") if signed_in else None,
        "public": public_access(),
        "may_read": user_may_read(user),
        "login_url": login_url(),
    }


def metrics_allowed(request: HttpRequest) -> bool:
    conf = access_conf()
    if conf.metrics_public:
        return True
    user = getattr(request, "user", None)
    if user is not None and user.is_active and user.is_staff:
        return True
    expected = conf.metrics_token
    secret = _bearer(request)
    return bool(expected and secret and hmac.compare_digest(secret.encode(), expected.encode()))


def metrics_view(view: View) -> View:
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not metrics_allowed(request):
            response = HttpResponse("metrics need a staff session or the metrics token\n", status=401,
                                    content_type="text/plain")
            response["WWW-Authenticate"] = f'Bearer realm="{REALM}"'
            return response
        return view(request, *args, **kwargs)

    return wrapper


async def websocket_refusal(scope: dict[str, Any]) -> int | None:
    """None if this socket may read, else the close code to refuse it with before accept().

    ``scope["user"]`` is resolved by channels' AuthMiddleware before the consumer runs, so
    this reads no database, unless a script sent a token (``Authorization: Bearer``).
    Without that middleware (a bare consumer) there is no user.
    """
    if public_access():
        return None
    user = scope.get("user")
    if user_is_reader(user):
        return None
    secret = _socket_bearer(scope)
    if secret is not None:  # a script (the Python client's stream): one lookup per handshake
        try:
            auth = await database_sync_to_async(api_token_verify)(secret=secret)
        except TokenError:
            return CLOSE_UNAUTHENTICATED
        scope["token"] = auth.token
        return None
    return CLOSE_FORBIDDEN if user is not None and user.is_authenticated else CLOSE_UNAUTHENTICATED


async def websocket_accept(consumer: Any) -> bool:
    """Accept the consumer's socket if it may read, else refuse it: closed before accept(),
    which daphne answers the handshake with 403. True once accepted."""
    refusal = await websocket_refusal(consumer.scope)
    if refusal is not None:
        await consumer.close(code=refusal)
        return False
    await consumer.accept()
    return True


class SocketAuthMiddleware(AuthMiddleware):
    """channels' AuthMiddleware, minus the session read when no decision needs the user.

    With public access on, a socket's user decides no access, and skipping the lookup for
    visitors without a session cookie saves their connects a thread hop: thousands of
    browsers reconnecting at once after a deploy otherwise queue behind it past daphne's
    5 s handshake timeout. A signed-in user's socket is still resolved: it hears that
    user's own events (drawings, alerts; ``market.live.broadcast.user_group``).
    """

    async def resolve_scope(self, scope: dict[str, Any]) -> None:
        key = scope.get("cookies", {}).get(settings.SESSION_COOKIE_NAME)
        if public_access() and key is None:
            scope["user"]._wrapped = AnonymousUser()  # a visitor who never signed in
            return
        scope["user"]._wrapped = await _socket_user(scope, key)  # a signed-in user's socket also hears their own events


#: The session cookie's user, per session key, for TICKCHART_LOOKUP_CACHE_SECONDS: a tab's
#: reconnects and a layout's sockets read it once (a sign-out takes that long to reach sockets).
_socket_users = Lookups()


async def _socket_user(scope: dict[str, Any], key: str | None) -> Any:
    """channels' ``get_user``, on a pool thread rather than the one thread-sensitive thread
    every connect of a storm would queue on (issue 17); its connection closed afterwards."""
    read = channels_auth.get_user
    func = getattr(read, "func", None)  # the sync function inside channels' database_sync_to_async
    if func is None:  # replaced by a plain coroutine function (tests do): as it is
        return await read(scope)
    if key is None:
        return await pooled(func, scope)
    hit, user = _socket_users.peek(key)
    if hit:
        return user
    return await pooled(_socket_users.get, key, lambda: func(scope))


def SocketAuthMiddlewareStack(inner: Any) -> Any:  # noqa: N802 - named like channels' AuthMiddlewareStack
    return CookieMiddleware(SessionMiddleware(SocketAuthMiddleware(inner)))

