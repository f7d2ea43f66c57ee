"""WebSocket ``/ws/pulse/``: the Market Pulse, live.

Protocol (JSON text frames)::

    server: {"type": "hello", "events": [...]}      on connect: the recent stored stress events
            {"type": "pulse", "time", "movers": [...], "correlation": {...}, "events": [...]}
                                                    about once a second while the pulse runs
            {"type": "pong"} / {"type": "error", "message"}
    client: {"type": "ping"}

Pulse frames are serialised once by ``market.pulse.service`` and relayed as they are; the
others are built by ``market.web.protocol`` (schemas in market/web/protocol.schema.json).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from market.web.access import websocket_accept
from market.conf import pulse_settings
from market.pulse.service import PULSE_EVENT, PULSE_GROUP
from market.selectors import pulse_event_list_recent
from market.web.protocol import PONG, error_frame, hello_frame

logger = logging.getLogger(__name__)

ONLY_PING = error_frame('only {"type":"ping"} is accepted')


class PulseConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        if not await websocket_accept(self):
            return
        await self.channel_layer.group_add(PULSE_GROUP, self.channel_name)
        limit = int(pulse_settings()["RECENT_EVENTS"])
        events = await database_sync_to_async(pulse_event_list_recent)(limit=limit)
        await self.send(text_data=hello_frame(events))

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(PULSE_GROUP, self.channel_name)

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Relays need no database: skip Channels' per-message connection housekeeping.
        if message["type"] == PULSE_EVENT:
            await self.send(text_data=message["text"])
        else:
            await super().dispatch(message)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            msg = orjson.loads(text_data) if text_data and len(text_data) <= 1024 else None
        except orjson.JSONDecodeError:
            msg = None
        if isinstance(msg, dict) and msg.get("type") == "ping":
            await self.send(text_data=PONG)
        else:
            await self.send(text_data=ONLY_PING)
