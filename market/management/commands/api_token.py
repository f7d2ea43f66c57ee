"""``manage.py api_token create|list|revoke``: personal read-only API tokens (market.tokens)."""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from market.selectors import user_get
from market.tokens import (
    TokenError,
    api_token_create,
    api_token_find,
    api_token_list,
    api_token_revoke,
    scope_words,
)


def _when(value: dt.datetime | None, never: str = "never") -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else never


class Command(BaseCommand):
    help = "Create, list or revoke personal read-only API tokens (Authorization: Bearer …)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create a token and print its secret once")
        create.add_argument("--user", required=True, help="username of the token's owner")
        create.add_argument("--name", required=True, help="what the token is for")
        create.add_argument("--expires", type=float, metavar="DAYS", help="expire after DAYS days")
        create.add_argument("--scope", action="append", default=[], metavar="SCOPE",
                            help="what it may do besides reading: alerts, markers, drawings "
                                 "(repeat, or a comma list)")
        listing = sub.add_parser("list", help="list tokens (never their secrets)")
        listing.add_argument("--user", help="only this user's tokens")
        revoke = sub.add_parser("revoke", help="revoke a token by its id or prefix")
        revoke.add_argument("key", metavar="PREFIX_OR_ID")

    def _user(self, username: str):
        user = user_get(username=username)
        if user is None:
            raise CommandError(f"no user {username!r}")
        return user

    def handle(self, *args, action: str, **options) -> None:
        if action == "create":
            days = options["expires"]
            if days is not None and days <= 0:
                raise CommandError("--expires must be a positive number of days")
            expires_at = timezone.now() + dt.timedelta(days=days) if days else None
            try:
                scopes = scope_words(",".join(options["scope"]))
            except TokenError as exc:
                raise CommandError(str(exc)) from exc
            token, secret = api_token_create(user=self._user(options["user"]), name=options["name"],
                                             expires_at=expires_at, scopes=scopes)
            self.stderr.write(f"Created token {token.pk} ({token.prefix}…) for {token.user}, "
                              f"scope {token.scope}, expires {_when(expires_at)}. The secret is shown only this once:")
            self.stdout.write(secret)
        elif action == "list":
            user = self._user(options["user"]) if options["user"] else None
            self.stdout.write(f"{'id':>5}  {'prefix':<13} {'user':<16} {'name':<24} {'created':<20} "
                              f"{'last used':<20} {'expires':<20} state")
            now = timezone.now()
            for t in api_token_list(user=user):
                state = ("revoked" if t.revoked_at else
                         "expired" if t.expires_at and t.expires_at <= now else "active")
                self.stdout.write(f"{t.pk:>5}  {t.prefix + '…':<13} {str(t.user):<16.16} {t.name:<24.24} "
                                  f"{_when(t.created_at):<20} {_when(t.last_used_at, '—'):<20} "
                                  f"{_when(t.expires_at):<20} {state}")
        else:
            try:
                token = api_token_find(key=options["key"])
            except TokenError as exc:
                raise CommandError(exc.reason) from None
            if api_token_revoke(token=token):
                self.stdout.write(f"Revoked token {token.pk} ({token.prefix}…) of {token.user}.")
            else:
                self.stdout.write(f"Token {token.pk} ({token.prefix}…) was already revoked.")
