"""``settings.FYERS`` resolved into typed values (the Django edge of the Fyers package)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings


@dataclass(frozen=True)
class FyersConf:
    client_id: str
    secret_key: str
    redirect_uri: str
    user_id: str
    pin: str
    totp_secret: str
    token_file: str
    log_dir: str
    api_base: str
    login_base: str
    public_base: str
    ws_url: str
    rate_per_second: int
    rate_per_minute: int
    stall_seconds: float
    backoff_min: float
    backoff_max: float
    refresh_seconds: float
    queue_max: int
    max_symbols: int
    backfill_days: float
    reconcile_seconds: float
    reconcile_lookback: float
    reconcile_budget: float
    record_dir: str

    @property
    def totp_configured(self) -> bool:
        return bool(self.user_id and self.pin and self.totp_secret and self.secret_key and self.client_id)

    def __repr__(self) -> str:  # never print secrets, even in a traceback's locals
        return f"FyersConf(client_id={self.client_id!r}, token_file={self.token_file!r}, ...)"


def fyers_conf(**overrides: Any) -> FyersConf:
    raw = dict(getattr(settings, "FYERS", {}))
    values = {name.lower(): value for name, value in raw.items()}
    values.update({k.lower(): v for k, v in overrides.items()})
    fields = FyersConf.__dataclass_fields__
    return FyersConf(**{k: v for k, v in values.items() if k in fields})
