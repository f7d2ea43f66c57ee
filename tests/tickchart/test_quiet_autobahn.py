"""tickchart.quiet_autobahn: autobahn's per-frame debug helpers are plain unless it logs at debug."""

from __future__ import annotations

import txaio
from autobahn.websocket import protocol

from tickchart import quiet_autobahn


def test_install_swaps_the_helpers_and_they_still_say_the_same(monkeypatch):
    for name, original in quiet_autobahn.ORIGINAL.items():
        monkeypatch.setattr(protocol, name, original)
    monkeypatch.setattr(txaio, "get_global_log_level", lambda: "info")
    assert quiet_autobahn.install() is True
    assert protocol.hlval(1234) == "1234" and "\x1b" not in protocol.hlval("peer")
    assert protocol.hltype(protocol.WebSocketProtocol.sendData) == "<WebSocketProtocol.sendData>"
    assert protocol.pformat({"a": 1}) == "{'a': 1}"


def test_debug_logging_keeps_autobahns_own(monkeypatch):
    for name, original in quiet_autobahn.ORIGINAL.items():
        monkeypatch.setattr(protocol, name, original)
    monkeypatch.setattr(txaio, "get_global_log_level", lambda: "debug")
    assert quiet_autobahn.install() is False
    assert protocol.hltype is quiet_autobahn.ORIGINAL["hltype"]
