"""What Django's error reports (the DEBUG error page, error e-mails) may show of the settings.

Django hides settings whose name matches API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE. That
misses TickChart's FYERS["PIN"], a PULSE webhook URL (often a secret itself) and the
credentials inside DATABASE_URL / REDIS_URL and everything built from them (CACHES,
CHANNEL_LAYERS). tests/security/test_secrets.py pins it.
"""

from __future__ import annotations

import re
from typing import Any

from django.views.debug import SafeExceptionReporterFilter

_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]+@", re.I)


class SecretSafeExceptionReporterFilter(SafeExceptionReporterFilter):
    hidden_settings = re.compile(
        "API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|PIN|OTP|WEBHOOK|DATABASE_URL|REDIS_URL", flags=re.I
    )

    def cleanse_setting(self, key: Any, value: Any) -> Any:
        value = super().cleanse_setting(key, value)  # recurses into dicts and lists through us
        if isinstance(value, str):
            return _URL_CREDENTIALS.sub(r"\g<scheme>********@", value)
        return value
