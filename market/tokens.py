"""Personal API tokens (``market.models.ApiToken``): create, revoke, verify.

The services and the selector of one entity, kept in their own module so that the access
policy (``market.web.access``) has a single place to ask "whose token is this?".

A secret looks like ``tc_`` + 40 URL-safe characters. The recognisable prefix lets secret
scanners (and people) spot a leaked token; only its SHA-256 digest is stored, plus the
first ``PREFIX_LENGTH`` characters so the admin can tell tokens apart. The secret itself is
shown once, at creation, and can never be recovered.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q
from django.utils import timezone

from market.models import ApiToken

SECRET_PREFIX = "tc_"
SECRET_RANDOM_BYTES = 30  # 40 URL-safe characters, 240 bits
PREFIX_LENGTH = 12  # "tc_" + 9 random characters; ApiToken.prefix has max_length=12
TOUCH_INTERVAL = dt.timedelta(minutes=1)
_SECRET_RE = re.compile(r"^tc_[A-Za-z0-9_-]{40}$")
# What a token may do beyond reading (issue 16): every token reads; ``alerts`` also writes
# the owner's alerts. Stored as the words of ``ApiToken.scope``, "read" always first.
SCOPES = ("read", "alerts", "markers", "drawings")


def scope_words(requested: object) -> str:
    """``"read alerts"`` from ``["alerts"]``, ``"alerts,markers"`` or ``None`` (read only);
    a ``TokenError`` names an unknown scope."""
    if requested is None:
        items: list[str] = []
    elif isinstance(requested, str):
        items = [w for w in re.split(r"[\s,]+", requested) if w]
    else:
        items = [str(w) for w in requested]  # type: ignore[union-attr]
    unknown = [w for w in items if w not in SCOPES]
    if unknown:
        raise TokenError(f"unknown scope {unknown[0]!r} (scopes: {', '.join(SCOPES)})")
    return " ".join(w for w in SCOPES if w == "read" or w in items)


def token_allows(token: ApiToken, scope: str) -> bool:
    """Whether ``token`` carries ``scope``."""
    return scope in token.scope.split()


class TokenError(ValueError):
    """The presented secret is not a usable token; ``reason`` is safe to show its owner."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class TokenAuth:
    """A verified token and its (active) user."""

    token: ApiToken
    user: AbstractBaseUser


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def api_token_create(
    *, user: AbstractBaseUser, name: str, expires_at: dt.datetime | None = None,
    scopes: object = None,
) -> tuple[ApiToken, str]:
    """Create a token (read-only unless ``scopes`` add to it); returns ``(token, secret)``.
    The secret is never stored."""
    token = ApiToken(user=user, name=name, expires_at=expires_at, scope=scope_words(scopes))
    return token, api_token_save_new(token=token)


def api_token_save_new(*, token: ApiToken) -> str:
    """Give an unsaved token (the admin's add form builds one) its secret, save it, and
    return the secret: the only moment it exists outside the caller's hands."""
    secret = SECRET_PREFIX + secrets.token_urlsafe(SECRET_RANDOM_BYTES)
    token.name = token.name.strip()[:100] or "token"
    token.prefix = secret[:PREFIX_LENGTH]
    token.digest = _digest(secret)
    token.scope = scope_words(token.scope)
    token.save()
    return secret


def api_token_revoke(*, token: ApiToken, now: dt.datetime | None = None) -> bool:
    """Revoke the token (idempotent). Returns False when it was already revoked."""
    if token.revoked_at is not None:
        return False
    token.revoked_at = now or timezone.now()
    token.save(update_fields=["revoked_at"])
    return True


def api_token_find(*, key: str) -> ApiToken:
    """The token whose id or prefix is ``key`` (for the command line); TokenError otherwise."""
    key = key.strip().rstrip("…")  # as `api_token list` prints it
    match = Q(prefix=key) | Q(pk=int(key)) if key.isdigit() else Q(prefix=key)
    matches = list(ApiToken.objects.filter(match)[:2])
    if not matches:
        raise TokenError(f"no token with id or prefix {key!r}")
    if len(matches) > 1:
        raise TokenError(f"{key!r} matches more than one token; use its id")
    return matches[0]


def api_token_list(*, user: AbstractBaseUser | None = None) -> list[ApiToken]:
    qs = ApiToken.objects.select_related("user")
    if user is not None:
        qs = qs.filter(user=user)
    return list(qs)


def api_token_verify(*, secret: str, now: dt.datetime | None = None) -> TokenAuth:
    """The token and user behind ``secret``, or TokenError (invalid, revoked, expired).

    Records ``last_used_at`` at most once per TOUCH_INTERVAL, with a conditional UPDATE, so a
    script polling the API does not write a row per request.
    """
    if not _SECRET_RE.match(secret):
        raise TokenError("invalid token")
    digest = _digest(secret)
    token = ApiToken.objects.select_related("user").filter(digest=digest).first()
    # The lookup is by digest already; compare again in constant time for good measure.
    if token is None or not hmac.compare_digest(token.digest, digest):
        raise TokenError("invalid token")
    now = now or timezone.now()
    if token.revoked_at is not None:
        raise TokenError("token revoked")
    if token.expires_at is not None and token.expires_at <= now:
        raise TokenError("token expired")
    if not token_allows(token, "read") or not token.user.is_active:
        raise TokenError("invalid token")
    if token.last_used_at is None or now - token.last_used_at >= TOUCH_INTERVAL:
        stale = Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - TOUCH_INTERVAL)
        ApiToken.objects.filter(stale, pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return TokenAuth(token=token, user=token.user)
