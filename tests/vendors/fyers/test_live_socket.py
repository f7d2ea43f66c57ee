"""The live socket lifecycle with the real SDK against a loopback server speaking the
Fyers binary protocol: subscribe after auth, re-subscribe after a drop, the stall
watchdog, dynamic symbol changes, the plan limit and a rejected token."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from django.conf import settings
from django.test import override_settings

from market.conf import market
from market.models import FeedState, Symbol
from market.feed.runner import run_feed
from tests.vendors.fyers.live import TOKENS, Market, candles, db, eventually, make_symbols
from tests.vendors.fyers.loopback import custom_message, topic_for

pytestmark = pytest.mark.django_db(transaction=True)


def aim(fyers_settings, ws, **extra):
    return override_settings(FYERS={**fyers_settings, "WS_URL": ws.url, **extra})


async def stop_feed(stop: asyncio.Event, task: asyncio.Task) -> None:
    stop.set()
    await asyncio.wait_for(task, 30)


async def test_subscribes_after_auth_streams_candles_and_resubscribes_after_a_drop(http, ws, fyers_settings, token):
    http.tokens.update(TOKENS)
    await db(make_symbols, "NSE:SBIN-EQ", "NSE:TCS-EQ")
    await db(make_symbols, "NSE:INFY-EQ", active=False)
    broker = Market(ws)
    with aim(fyers_settings, ws):
        stop = asyncio.Event()
        task = asyncio.create_task(run_feed("fyers", stop, standby=True))
        await eventually(lambda: len(ws.subscribed) == 1, 40)  # standby: another test run may hold the lock
        assert ws.log[:3] == [1, 12, 4]  # auth, full mode, and only then the subscription
        assert sorted(ws.subscribed[0]) == sorted(topic_for(TOKENS[t]) for t in ("NSE:SBIN-EQ", "NSE:TCS-EQ"))
        await eventually(lambda: FeedState.objects.filter(source="fyers", state="live").exists(), 5)
        # wait for the start-up catch-up to release the held ticks (no history: no_data)
        now = int(time.time())
        t0 = now - now % 60 - 60
        broker.trade("NSE:SBIN-EQ", 101.0, 10, t0 + 1)
        broker.trade("NSE:SBIN-EQ", 102.5, 5, t0 + 2)
        broker.trade("NSE:SBIN-EQ", 100.5, 7, t0 + 7)
        # (the snapshot Fyers sends on subscribe is the last trade: a candle 10 minutes back)
        await eventually(lambda: len(candles("NSE:SBIN-EQ", "5s")) == 3, 5)
        assert (await db(candles, "NSE:SBIN-EQ", "5s"))[1:] == [(t0, 101.0, 102.5, 101.0, 102.5, 15.0),
                                                    (t0 + 5, 100.5, 100.5, 100.5, 100.5, 7.0)]

        ws.drop()  # the server goes away; the SDK (reconnect off) reports the close
        await eventually(lambda: len(ws.subscribed) == 2, 15)
        assert ws.connects == 2
        assert sorted(ws.subscribed[1]) == sorted(ws.subscribed[0])  # the SDK forgot them; we did not
        broker.trade("NSE:SBIN-EQ", 103.0, 3, t0 + 12)
        await eventually(lambda: len(candles("NSE:SBIN-EQ", "5s")) == 4, 10)
        await stop_feed(stop, task)
    assert (await db(candles, "NSE:SBIN-EQ", "5s"))[-1] == (t0 + 10, 103.0, 103.0, 103.0, 103.0, 3.0)


async def test_the_stall_watchdog_reconnects_a_silent_socket(http, ws, fyers_settings, token, caplog):
    caplog.set_level(logging.WARNING, "market")
    http.tokens.update(TOKENS)
    await db(make_symbols, "NSE:SBIN-EQ")
    Market(ws)
    with aim(fyers_settings, ws, STALL_SECONDS=1.0):
        stop = asyncio.Event()
        task = asyncio.create_task(run_feed("fyers", stop, standby=True))
        await eventually(lambda: len(ws.subscribed) == 1, 40)  # standby: another test run may hold the lock
        # the server stays connected but says nothing: the watchdog must force a new connection
        elapsed = await eventually(lambda: len(ws.subscribed) == 2, 15)
        await stop_feed(stop, task)
    assert ws.connects == 2 and elapsed < 8
    assert any("no data for" in r.getMessage() for r in caplog.records)


async def test_symbols_added_or_deactivated_in_the_admin_apply_within_5_seconds(http, ws, fyers_settings, token):
    http.tokens.update(TOKENS)
    await db(make_symbols, "NSE:SBIN-EQ")
    broker = Market(ws)
    with aim(fyers_settings, ws, REFRESH_SECONDS=1.0):
        stop = asyncio.Event()
        task = asyncio.create_task(run_feed("fyers", stop, standby=True))
        await eventually(lambda: len(ws.subscribed) == 1, 40)  # standby: another test run may hold the lock
        await db(make_symbols, "NSE:TCS-EQ")
        took = await eventually(lambda: len(ws.subscribed) == 2, 5)
        assert ws.subscribed[1] == [topic_for(TOKENS["NSE:TCS-EQ"])] and took < 5
        now = int(time.time())
        await asyncio.sleep(1.0)  # TCS's start-up catch-up (no history here) releases its ticks
        broker.trade("NSE:TCS-EQ", 3500.0, 10, now - 20)
        await eventually(lambda: len(candles("NSE:TCS-EQ", "5s")) == 2, 5)  # snapshot + trade

        await db(Symbol.objects.filter(ticker="NSE:SBIN-EQ").update, active=False)
        took = await eventually(lambda: len(ws.unsubscribed) == 1, 5)
        assert ws.unsubscribed[0] == [topic_for(TOKENS["NSE:SBIN-EQ"])] and took < 5
        before = len((await db(candles, "NSE:SBIN-EQ", "5s")))
        broker.trade("NSE:SBIN-EQ", 99.0, 1, now - 10)  # still in flight: dropped, not stored
        broker.trade("NSE:TCS-EQ", 3501.0, 1, now - 10)
        await eventually(lambda: len(candles("NSE:TCS-EQ", "5s")) == 3, 5)
        await stop_feed(stop, task)
    assert len((await db(candles, "NSE:SBIN-EQ", "5s"))) == before


async def test_plan_limit_and_the_5000_cap_name_the_symbols_left_out(http, ws, fyers_settings, token, caplog):
    caplog.set_level(logging.ERROR, "market")
    http.tokens.update(TOKENS)
    await db(make_symbols, "NSE:SBIN-EQ", "NSE:TCS-EQ", "NSE:INFY-EQ")
    broker = Market(ws)
    ws.on_subscribe = lambda topics: [custom_message(51001, "Symbol limit exceeded for your plan")] + broker.on_subscribe(topics)
    with aim(fyers_settings, ws, MAX_SYMBOLS=2):
        stop = asyncio.Event()
        task = asyncio.create_task(run_feed("fyers", stop, standby=True))
        await eventually(lambda: len(ws.subscribed) == 1, 40)  # standby: another test run may hold the lock
        await eventually(lambda: any("51001" in r.getMessage() for r in caplog.records), 5)
        await stop_feed(stop, task)
    assert len(ws.subscribed[0]) == 2  # the cap: the alphabetically last symbol is left out
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "exceed the 2-symbol limit; not streamed: NSE:TCS-EQ" in text
    assert "plan symbol limit reached (51001: Symbol limit exceeded for your plan)" in text
    assert "NSE:INFY-EQ, NSE:SBIN-EQ" in text


async def test_a_rejected_token_is_a_status_not_a_crash_loop(http, ws, fyers_settings, token, caplog, monkeypatch):
    caplog.set_level(logging.INFO, "market")
    monkeypatch.setattr("market.vendors.fyers.session.TOKEN_POLL", 0.5)  # how often the token file is re-read
    http.tokens.update(TOKENS)
    await db(make_symbols, "NSE:SBIN-EQ")
    ws.auth_ok = False
    with aim(fyers_settings, ws):
        stop = asyncio.Event()
        task = asyncio.create_task(run_feed("fyers", stop, standby=True))
        await eventually(lambda: FeedState.objects.filter(source="fyers", state="token_expired").exists(), 40)
        await asyncio.sleep(3)
        assert ws.connects == 1  # waits for a new token instead of hammering the server
        assert not task.done()
        # a new login (fyers_login writes the file) is picked up without a restart
        from market.vendors.fyers.auth import TokenStore
        from tests.vendors.fyers.loopback import fake_jwt
        ws.auth_ok = True
        TokenStore(fyers_settings["TOKEN_FILE"]).save(fake_jwt(time.time() + 3600, n=2), "XB12345-100")
        await eventually(lambda: len(ws.subscribed) == 1, 20)
        await stop_feed(stop, task)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "access token rejected" in text


async def test_no_token_at_all_says_what_to_do(http, ws, fyers_settings, caplog):
    caplog.set_level(logging.INFO, "market")
    with aim(fyers_settings, ws):
        stop = asyncio.Event()
        task = asyncio.create_task(run_feed("fyers", stop, standby=True))
        await eventually(lambda: FeedState.objects.filter(source="fyers", state="token_expired").exists(), 40)
        await stop_feed(stop, task)
    assert ws.connects == 0
    assert any("manage.py fyers_login" in r.getMessage() for r in caplog.records)


async def test_unattended_totp_login_at_start_and_no_secret_in_any_log(http, ws, fyers_settings, caplog, tmp_path):
    """No token file, TOTP configured: the feed logs in by itself, stores the token (0600) and
    streams; neither our logs nor the SDK's log files contain a secret."""
    import base64
    import pathlib

    import pyotp

    from market.vendors.fyers.auth import TokenStore
    from tests.vendors.fyers.conftest import SECRET
    from tests.vendors.fyers.loopback import fake_jwt

    caplog.set_level(logging.DEBUG)
    totp_secret, pin, user = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", "4321", "XY01234"
    jwt = fake_jwt(time.time() + 3600)
    http.routes[("POST", "/vagator/v2/send_login_otp_v2")] = lambda b, h: (200, {"s": "ok", "request_key": "r1"})
    http.routes[("POST", "/vagator/v2/verify_otp")] = lambda b, h: (
        (200, {"s": "ok", "request_key": "r2"}) if pyotp.TOTP(totp_secret).verify(b["otp"], valid_window=1)
        else (400, {"s": "error", "message": "wrong OTP"}))
    http.routes[("POST", "/vagator/v2/verify_pin_v2")] = lambda b, h: (
        (200, {"s": "ok", "data": {"access_token": "bearer-1"}})
        if b["identifier"] == base64.b64encode(pin.encode()).decode() else (400, {"s": "error"}))
    http.routes[("POST", "/api/v3/token")] = lambda b, h: (308, {"Url": "http://127.0.0.1/cb?auth_code=AC1&s=ok"})
    http.routes[("POST", "/api/v3/validate-authcode")] = lambda b, h: (
        (200, {"s": "ok", "access_token": jwt}) if b["code"] == "AC1" else (400, {"s": "error"}))
    http.tokens.update(TOKENS)
    await db(make_symbols, "NSE:SBIN-EQ")
    Market(ws)
    with aim(fyers_settings, ws, USER_ID=user, PIN=pin, TOTP_SECRET=totp_secret):
        stop = asyncio.Event()
        task = asyncio.create_task(run_feed("fyers", stop, standby=True))
        await eventually(lambda: len(ws.subscribed) == 1, 40)
        await stop_feed(stop, task)
    assert TokenStore(fyers_settings["TOKEN_FILE"]).load().access_token == jwt
    text = "\n".join(f"{r.getMessage()} {r.args}" for r in caplog.records)
    assert "logged in with TOTP" in text
    files = list(pathlib.Path(fyers_settings["LOG_DIR"]).glob("*.log"))
    assert any(p.name == "fyersDataSocket.log" for p in files)  # the SDK logged there, not into the cwd
    sdk_logs = "".join(p.read_text(errors="replace") for p in files)
    for secret in (SECRET, totp_secret, "bearer-1", jwt, jwt.split(".")[1]):
        assert secret not in text and secret not in sdk_logs


async def test_an_expiring_token_is_renewed_by_totp_and_the_feed_reconnects(http, ws, fyers_settings, monkeypatch):
    import pyotp

    from market.vendors.fyers.auth import TokenStore
    from tests.vendors.fyers.loopback import fake_jwt

    monkeypatch.setattr("market.vendors.fyers.session.TOKEN_MARGIN", 1.0)
    totp_secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
    fresh = fake_jwt(time.time() + 3600, n=2)
    http.routes[("POST", "/vagator/v2/send_login_otp_v2")] = lambda b, h: (200, {"s": "ok", "request_key": "r1"})
    http.routes[("POST", "/vagator/v2/verify_otp")] = lambda b, h: (
        (200, {"s": "ok", "request_key": "r2"}) if pyotp.TOTP(totp_secret).verify(b["otp"], valid_window=1)
        else (400, {"s": "error"}))
    http.routes[("POST", "/vagator/v2/verify_pin_v2")] = lambda b, h: (200, {"s": "ok", "data": {"access_token": "b"}})
    http.routes[("POST", "/api/v3/token")] = lambda b, h: (308, {"Url": "http://127.0.0.1/cb?auth_code=AC1"})
    http.routes[("POST", "/api/v3/validate-authcode")] = lambda b, h: (200, {"s": "ok", "access_token": fresh})
    # Good for 90 s: a start-up slowed by a loaded machine still streams on it first.
    TokenStore(fyers_settings["TOKEN_FILE"]).save(fake_jwt(time.time() + 90), "XB12345-100")
    http.tokens.update(TOKENS)
    await db(make_symbols, "NSE:SBIN-EQ")
    Market(ws)
    with aim(fyers_settings, ws, USER_ID="XY01234", PIN="4321", TOTP_SECRET=totp_secret):
        stop = asyncio.Event()
        task = asyncio.create_task(run_feed("fyers", stop, standby=True))
        await eventually(lambda: len(ws.subscribed) == 1, 40)
        assert ws.connects == 1
        # The clock reaches the renewal margin (as 88 s later would): the feed must log in by
        # TOTP, store the new token, reconnect and subscribe again.
        monkeypatch.setattr("market.vendors.fyers.session.TOKEN_MARGIN", 200.0)
        await eventually(lambda: len(ws.subscribed) == 2, 15)
        await stop_feed(stop, task)
    assert ws.connects == 2
    assert TokenStore(fyers_settings["TOKEN_FILE"]).load().access_token == fresh


async def test_a_day_volume_above_2_31_survives_the_sdks_int32_decode(http, ws, fyers_settings, token):
    """Fyers sends the day volume in 4 bytes; the SDK decodes them signed, so past 2**31 it
    arrives negative. Through the loopback socket and the real SDK, it is read unsigned."""
    http.tokens.update(TOKENS)
    await db(make_symbols, "NSE:SBIN-EQ")
    broker = Market(ws)
    now = int(time.time())
    t0 = now - now % 60 - 60
    broker.day["NSE:SBIN-EQ"] = t0 // 86400
    broker.volume["NSE:SBIN-EQ"] = 2**31 - 50  # the snapshot on subscribe: just under 2**31
    broker.snapshot_time["NSE:SBIN-EQ"] = t0 - 5
    with aim(fyers_settings, ws):
        stop = asyncio.Event()
        task = asyncio.create_task(run_feed("fyers", stop, standby=True))
        await eventually(lambda: len(ws.subscribed) == 1, 40)  # standby: another test run may hold the lock
        await eventually(lambda: FeedState.objects.filter(source="fyers", state="live").exists(), 5)
        await asyncio.sleep(0.5)  # the start-up catch-up (no history) releases the held ticks
        broker.trade("NSE:SBIN-EQ", 101.0, 30, t0 + 1)   # 2**31 - 20
        broker.trade("NSE:SBIN-EQ", 102.0, 40, t0 + 2)   # 2**31 + 20: negative out of the SDK
        broker.trade("NSE:SBIN-EQ", 104.0, 5, t0 + 11)
        await eventually(lambda: len(candles("NSE:SBIN-EQ", "5s")) >= 3, 5)
        await asyncio.sleep(0.3)
        await stop_feed(stop, task)
    bars = {c[0]: c for c in await db(candles, "NSE:SBIN-EQ", "5s")}
    assert bars[t0] == (t0, 101.0, 102.0, 101.0, 102.0, 70.0)  # both trades, the wrapped one too
    assert bars[t0 + 10] == (t0 + 10, 104.0, 104.0, 104.0, 104.0, 5.0)
