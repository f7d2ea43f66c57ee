"""Each signed-in user's sockets hear that user's own events (market.live.broadcast.user_group),
and nobody else's: the channel drawings and alert deliveries use."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client

from market.live import broadcast
from tickchart.asgi import application

HEADERS = [(b"origin", b"http://localhost"), (b"host", b"localhost")]

pytestmark = pytest.mark.django_db(transaction=True)


def _user_and_cookie(name: str) -> tuple[int, str]:
    user = get_user_model().objects.create_user(name, password="a-long-test-password-9431")
    client = Client()
    client.force_login(user)
    return user.pk, f"sessionid={client.cookies['sessionid'].value}"


async def _socket(cookie: str | None) -> WebsocketCommunicator:
    headers = list(HEADERS) + ([(b"cookie", cookie.encode())] if cookie else [])
    comm = WebsocketCommunicator(application, "/ws/market/", headers=headers)
    connected, _ = await comm.connect(timeout=5)
    assert connected
    return comm


async def _frames(comm: WebsocketCommunicator, kind: str, quiet: float = 0.5) -> list[dict]:
    """Frames of ``kind`` that arrive until ``quiet`` seconds pass with none (status frames skipped)."""
    out = []
    while not await comm.receive_nothing(timeout=quiet):
        frame = await comm.receive_json_from(timeout=5)
        if frame["type"] == kind:
            out.append(frame)
    return out


def _notify(user_id: int, payload: dict) -> None:
    broadcast.user_notify(user_id=user_id, kind="drawing", payload=payload)


@pytest.mark.parametrize("public", [True, False])
async def test_a_users_event_reaches_all_their_tabs_and_no_one_else(settings, public):
    settings.TICKCHART_PUBLIC_ACCESS = public
    alice, alice_cookie = await sync_to_async(_user_and_cookie)("alice")
    _, bob_cookie = await sync_to_async(_user_and_cookie)("bob")
    tabs = [await _socket(alice_cookie), await _socket(alice_cookie)]
    bob = await _socket(bob_cookie)
    visitor = await _socket(None) if public else None
    others = [bob] + ([visitor] if visitor else [])
    try:
        await asyncio.sleep(0.2)  # joined (Redis subscribes asynchronously)
        await sync_to_async(_notify)(alice, {"op": "upsert", "n": 1})
        for tab in tabs:
            assert await _frames(tab, "drawing") == [{"type": "drawing", "op": "upsert", "n": 1}]
        for other in others:
            assert await _frames(other, "drawing", quiet=0.2) == []
    finally:
        for comm in [*tabs, *others]:
            await comm.disconnect()
