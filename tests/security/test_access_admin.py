"""The admin: staff only, and with TICKCHART_ADMIN_OTP=1 a one-time password as well
(django-otp). The OTP run is a subprocess because the setting changes INSTALLED_APPS."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tests.security.test_deploy import ROOT

PASSWORD = "a-long-test-password-9431"


@pytest.mark.django_db
def test_the_admin_is_for_staff_only():
    user = get_user_model().objects.create_user("plain", password=PASSWORD)
    client = Client()
    client.force_login(user)
    assert client.get("/admin/")["Location"].startswith("/admin/login/")
    user.is_staff = True
    user.save()
    assert client.get("/admin/").status_code == 200


SCRIPT = textwrap.dedent(f"""
    import django
    django.setup()
    from django.core.management import call_command
    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.test.utils import setup_test_environment
    from django_otp.plugins.otp_static.models import StaticDevice
    setup_test_environment()
    boss = get_user_model().objects.create_superuser("boss", password="{PASSWORD}")
    device = StaticDevice.objects.create(user=boss, name="backup")
    device.token_set.create(token="31415926")
    login = {{"username": "boss", "password": "{PASSWORD}", "otp_device": device.persistent_id}}

    c = Client()
    c.post("/admin/login/?next=/admin/", login)
    print("password only:", c.get("/admin/").status_code)
    c.post("/accounts/login/", login)  # signed in for the charts, but not verified
    print("site login only:", c.get("/admin/").status_code)
    c.post("/admin/login/?next=/admin/", {{**login, "otp_token": "00000000"}})
    print("wrong otp:", c.get("/admin/").status_code)
    # django-otp throttles a device after a failure (good); reset it for the next try.
    StaticDevice.objects.update(throttling_failure_count=0, throttling_failure_timestamp=None)
    c.post("/admin/login/?next=/admin/", {{**login, "otp_token": "31415926"}})
    print("with otp:", c.get("/admin/").status_code)
""")


def test_with_admin_otp_the_admin_also_wants_a_one_time_password(tmp_path):
    pytest.importorskip("django_otp")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL") and not k.startswith("PYTEST")}
    env.update(DJANGO_SETTINGS_MODULE="tickchart.settings", DJANGO_DEBUG="1", TICKCHART_ADMIN_OTP="1",
               TICKCHART_DB_PATH=str(tmp_path / "otp.sqlite3"))
    run = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [
        "password only: 302", "site login only: 302", "wrong otp: 302", "with otp: 200",
    ], run.stdout + run.stderr
