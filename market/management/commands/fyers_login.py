"""``manage.py fyers_login``: get a Fyers access token and store it where runfeed finds it.

Auth-code flow: prints the login URL; you log in in a browser, Fyers redirects to your
redirect URI with ``auth_code=…``; paste that URL (or just the code). ``--totp`` does
the unattended login instead (FYERS_USER_ID, FYERS_PIN, FYERS_TOTP_SECRET).
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from market.vendors.fyers.auth import (
    LoginError, TokenStore, auth_code_from, exchange_auth_code, login_url, totp_login,
)
from market.conf import fyers_conf


class Command(BaseCommand):
    help = "Log in to Fyers (auth-code flow or TOTP) and store the access token for runfeed."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--code", help="the redirected URL or the bare auth code (else asked for)")
        parser.add_argument("--totp", action="store_true", help="unattended login with TOTP")
        parser.add_argument("--status", action="store_true", help="only say whether a stored token is valid")

    def handle(self, *args, **opts) -> None:
        conf = fyers_conf()
        store = TokenStore(conf.token_file)
        if opts["status"]:
            stored = store.load()
            if stored is None:
                raise CommandError(f"no token in {store.path}")
            state = "valid" if stored.valid(time.time()) else "EXPIRED"
            self.stdout.write(f"token in {store.path}: {state} until {_when(stored.expires)}")
            return
        required = (("FYERS_CLIENT_ID", conf.client_id), ("FYERS_SECRET_KEY", conf.secret_key),
                    ("FYERS_REDIRECT_URI", conf.redirect_uri))
        missing = [name for name, value in required if not value]
        if missing:
            raise CommandError(f"set {', '.join(missing)} in the environment (see docs/fyers.md)")
        try:
            if opts["totp"]:
                if not conf.totp_configured:
                    raise CommandError("--totp needs FYERS_USER_ID, FYERS_PIN and FYERS_TOTP_SECRET")
                token = totp_login(client_id=conf.client_id, secret_key=conf.secret_key,
                                   redirect_uri=conf.redirect_uri, user_id=conf.user_id, pin=conf.pin,
                                   totp_secret=conf.totp_secret, api_base=conf.api_base,
                                   login_base=conf.login_base)
            else:
                code_or_url = opts["code"]
                if not code_or_url:
                    self.stdout.write("1. Open this URL, log in to Fyers and approve the app:\n\n   "
                                      + login_url(client_id=conf.client_id, redirect_uri=conf.redirect_uri,
                                                  api_base=conf.api_base) + "\n")
                    self.stdout.write("2. Your browser is sent to your redirect URI (the page may not load).")
                    code_or_url = input("   Paste the whole redirected URL (or the auth code): ")
                token = exchange_auth_code(client_id=conf.client_id, secret_key=conf.secret_key,
                                           auth_code=auth_code_from(code_or_url), api_base=conf.api_base)
        except LoginError as exc:
            raise CommandError(str(exc)) from None
        saved = store.save(token, conf.client_id)
        self.stdout.write(self.style.SUCCESS(
            f"Access token saved to {store.path} (mode 0600), valid until {_when(saved.expires)}. "
            "A running `runfeed --source fyers` picks it up by itself."))


def _when(t: float | None) -> str:
    return "unknown" if t is None else time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(t))
