"""market.live.relay: each watched group is joined once per process, whatever the number of
sockets watching it; every socket still gets every frame; one broken member does not
starve the rest; the relay leaves the layer with its last member. Runs on whichever layer
the settings select (in-process, or Redis pub/sub in the services run)."""

from __future__ import annotations

import asyncio

import pytest
from channels.layers import get_channel_layer
from channels.sessions import InstanceSessionWrapper

from channels.db import database_sync_to_async

from market.live import relay as relay_module
from market.live.broadcast import STATUS_GROUP, event_group, group_name
from market.live.relay import PROBE, relay_for
from market.web import consumers
from market.web.consumers import INTERRUPTED, RESTORED_DETAIL
from tests import wsclient
from tests.web.test_consumers import TICKER, alpha, candle, publish, recv, store, subscribe, upd  # noqa: F401 - fixture
from tests.web.test_protocol import check
from tests.web.test_slow_client import Series, stored

pytestmark = pytest.mark.django_db(transaction=True)
GROUP = group_name(TICKER, "1m")


def layer_members(layer, group: str) -> set[str]:
    """The channels the layer itself holds for ``group`` in this process."""
    if hasattr(layer, "_get_layer"):  # channels-redis pub/sub: one loop layer per event loop
        inner = layer._get_layer()
        return set(inner.groups.get(inner._get_group_channel_name(group), set()))
    return set(layer.groups.get(group, {}))


async def test_three_sockets_on_one_stream_are_one_group_member_and_all_get_every_frame(alpha):  # noqa: F811
    layer = get_channel_layer()
    async with wsclient.ws() as a, wsclient.ws() as b, wsclient.ws() as c:
        for comm in (a, b, c):
            await subscribe(comm)
        relay = relay_for(layer, event_group)
        assert layer_members(layer, GROUP) == {relay.channel}
        assert layer_members(layer, STATUS_GROUP) == {relay.channel}
        assert len(relay.members[GROUP]) == 3
        for i in (6, 7):
            await publish(upd(candle(i)))
            for comm in (a, b, c):
                assert (await recv(comm))["candle"]["time"] == candle(i).time
        # one socket leaving keeps the group for the others
        await b.send_json_to({"type": "unsubscribe", "symbol": TICKER, "tf": "1m"})
        await b.send_json_to({"type": "ping"})
        assert (await recv(b))["type"] == "pong"
        assert len(relay.members[GROUP]) == 2 and layer_members(layer, GROUP) == {relay.channel}
        await publish(upd(candle(8)))
        for comm in (a, c):
            assert (await recv(comm))["candle"]["time"] == candle(8).time
        assert await b.receive_nothing(timeout=0.3)


async def test_the_relay_leaves_the_layer_with_its_last_member(alpha):  # noqa: F811
    layer = get_channel_layer()
    async with wsclient.ws() as comm:
        await subscribe(comm)
        relay = relay_for(layer, event_group)
        channel = relay.channel
        assert channel is not None
    await asyncio.sleep(0.05)
    assert relay.members == {} and relay.channel is None
    assert channel not in layer_members(layer, GROUP)
    # and comes back for the next socket
    async with wsclient.ws() as comm:
        await subscribe(comm)
        assert relay.channel is not None and relay.channel != channel
        await publish(upd(candle(6)))
        assert (await recv(comm))["candle"]["time"] == candle(6).time


class Broken:
    """A member whose every delivery fails (a socket in a bad state)."""

    def __init__(self) -> None:
        self.calls = 0

    async def relay(self, event) -> None:
        self.calls += 1
        raise RuntimeError("broken member")


async def test_a_failing_member_does_not_starve_the_others(alpha, caplog):  # noqa: F811
    layer = get_channel_layer()
    async with wsclient.ws() as comm:
        await subscribe(comm)
        relay = relay_for(layer, event_group)
        broken = Broken()
        await relay.join(GROUP, broken)
        try:
            for i in (6, 7):
                await publish(upd(candle(i)))
                assert (await recv(comm))["candle"]["time"] == candle(i).time
        finally:
            await relay.leave(GROUP, broken)
    assert broken.calls == 2
    assert "a member failed to take an event" in caplog.text


async def test_relayed_frames_go_past_the_session_wrapper(alpha):  # noqa: F811
    async with wsclient.ws() as comm:
        await subscribe(comm)
        (consumer,) = relay_for(get_channel_layer(), event_group).members[GROUP]
        assert isinstance(consumer.base_send.__self__, InstanceSessionWrapper), "the stack the app really has"
        assert not isinstance(getattr(consumer._wire_send, "__self__", None), InstanceSessionWrapper)
        await publish(upd(candle(6)))
        assert (await recv(comm))["candle"]["time"] == candle(6).time


async def until(predicate, seconds: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def lose_probes(monkeypatch, layer):
    """The relay's probes fail to send from now on (the layer is down); returns the real send."""
    real_send = layer.send

    async def probe_lost(channel, message):
        if message.get("type") == PROBE:
            raise ConnectionError("the layer is down")
        await real_send(channel, message)

    monkeypatch.setattr(layer, "send", probe_lost)
    return real_send


async def test_after_the_layer_lost_messages_every_stream_is_resynced_from_the_database(alpha, monkeypatch):  # noqa: F811
    """The relay's probe fails (the layer is down): the socket is told; candles stored
    meanwhile were never delivered. A live candle arrives once the layer is back, before
    the probe that shows it: the catch-up still starts before the lost ones, so the socket
    ends with exactly the stored series, stored and derived timeframes alike."""
    monkeypatch.setattr(relay_module, "PROBE_SECONDS", 0.05)
    layer = get_channel_layer()
    series, frames = Series(), []

    async def take(comm) -> None:
        while not await comm.receive_nothing(timeout=0.3, interval=0.01):
            msg = await recv(comm)
            check("market.server", msg)
            frames.append(msg)
            if msg["type"] != "status":
                series.apply(msg)

    async with wsclient.ws() as comm:
        series.apply(await subscribe(comm, "1m"))
        series.apply(await subscribe(comm, "2m"))
        relay = relay_for(layer, event_group)
        await until(lambda: relay.epoch > 2)  # probes come back

        real_send = lose_probes(monkeypatch, layer)
        await until(lambda: not relay.sound)
        await take(comm)
        assert [(f["state"], f["detail"]) for f in frames] == [("reconnecting", INTERRUPTED)]

        await database_sync_to_async(store)(alpha, *(upd(candle(i)) for i in (6, 7, 8)))  # published into the void
        await database_sync_to_async(store)(alpha, upd(candle(9)))
        # The layer delivers again, and candle 9 is relayed before any probe can come back
        # (they still fail): the order the test needs, whatever the machine's load.
        await publish(upd(candle(9)))
        await take(comm)
        assert not relay.sound
        monkeypatch.setattr(layer, "send", real_send)
        await until(lambda: relay.sound)
        await take(comm)

        kinds = [f["type"] for f in frames]
        assert kinds[1] == "candle" and frames[1]["candle"]["time"] == candle(9).time, kinds
        resyncs = [f for f in frames if f["type"] == "snapshot"]
        assert [(f["tf"], f["since"]) for f in resyncs] == [("1m", candle(5).time), ("2m", candle(4).time)]
        assert series.bars["1m"] == await database_sync_to_async(stored)("1m")
        assert series.bars["2m"] == await database_sync_to_async(stored)("2m")
        assert frames[-1] == {"type": "status", "source": "", "state": "live", "detail": RESTORED_DETAIL,
                              "heartbeat": frames[-1]["heartbeat"]}

        await publish(upd(candle(10)))  # and live again, the derived stream from its rebuilt tracker
        await database_sync_to_async(store)(alpha, upd(candle(10)))
        await take(comm)
        assert series.bars["1m"] == await database_sync_to_async(stored)("1m")
        assert series.bars["2m"] == await database_sync_to_async(stored)("2m")


async def test_a_catch_up_the_database_cannot_serve_closes_the_socket_to_resume_with_since(alpha, monkeypatch):  # noqa: F811
    monkeypatch.setattr(relay_module, "PROBE_SECONDS", 0.05)
    layer = get_channel_layer()
    async with wsclient.ws() as comm:
        await subscribe(comm)
        relay = relay_for(layer, event_group)
        real_send = lose_probes(monkeypatch, layer)
        await until(lambda: not relay.sound)

        def database_down(*args):
            raise RuntimeError("the database is down")

        monkeypatch.setattr(consumers, "_load_snapshot", database_down)
        monkeypatch.setattr(layer, "send", real_send)
        while (out := await comm.receive_output(timeout=5))["type"] != "websocket.close":
            pass
        assert out["code"] == consumers.CLOSE_TRY_AGAIN == 1011
