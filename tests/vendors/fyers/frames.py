"""Binary data-feed frames in the layout fyers-apiv3 3.2.0 decodes (``__datafeed_resp``).

Frame: 2 bytes, resp type 6, 4-byte message number, ``!H`` scrip count, then per scrip
either a snapshot (83) or a full-mode update (85). Values are big-endian int32, with
-2147483648 meaning "no value"; prices are scaled by 10**precision * multiplier.
"""

from __future__ import annotations

import struct


NO_VALUE = -2147483648

# map.json field order (data_val / index_val); the SDK sends 21 scrip and 6 index fields.
SCRIP_FIELDS = (
    "ltp", "vol_traded_today", "last_traded_time", "exch_feed_time", "bid_size", "ask_size",
    "bid_price", "ask_price", "last_traded_qty", "tot_buy_qty", "tot_sell_qty",
    "avg_trade_price", "OI", "low_price", "high_price", "Yhigh", "Ylow", "lower_ckt",
    "upper_ckt", "open_price", "prev_close_price",
)
INDEX_FIELDS = ("ltp", "prev_close_price", "exch_feed_time", "high_price", "low_price", "open_price")


def _header(count: int, message_number: int = 1) -> bytes:
    return struct.pack("!HB", 0, 6) + struct.pack(">I", message_number) + struct.pack("!H", count)


def _values(fields, values: dict) -> bytes:
    """Each value as the 4 bytes Fyers sends: a count of 2**31 or more (a day volume) fills
    them unsigned, which the SDK's signed decode wraps negative."""
    out = b""
    for f in fields:
        v = values.get(f, NO_VALUE)
        out += struct.pack(">I" if v >= 2**31 else ">i", v)
    return out


def _strings(*items: str) -> bytes:
    out = b""
    for s in items:
        b = s.encode()
        out += struct.pack("B", len(b)) + b
    return out


def snapshot(topic_id: int, topic: str, values: dict, *, precision: int = 2, multiplier: int = 1,
             symbol: str = "") -> bytes:
    fields = SCRIP_FIELDS if topic.startswith("sf") else INDEX_FIELDS
    return (
        struct.pack("B", 83) + struct.pack("H", topic_id)
        + struct.pack("B", len(topic)) + topic.encode()
        + struct.pack("B", len(fields)) + _values(fields, values)
        + b"\x00\x00" + struct.pack(">H", multiplier) + struct.pack("B", precision)
        + _strings(topic.split("|")[1].split("_")[0].upper(), topic.split("|")[2], symbol)
    )


def update(topic_id: int, topic: str, values: dict) -> bytes:
    fields = SCRIP_FIELDS if topic.startswith("sf") else INDEX_FIELDS
    return (
        struct.pack("B", 85) + struct.pack("H", topic_id)
        + struct.pack("B", len(fields)) + _values(fields, values)
    )


def frame(*scrips: bytes, message_number: int = 1) -> bytes:
    return _header(len(scrips), message_number) + b"".join(scrips)
