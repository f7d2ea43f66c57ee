"""autobahn formats the arguments of its debug log lines even when nothing logs them.

Per frame sent, ``sendData`` calls ``hltype()`` and ``hlval()`` (``click.style`` four times)
for a ``log.debug`` line; per connection, ``_connectionMade`` pretty-prints its settings
with ``pformat`` for another. In a profile of daphne under ``bench/browsers.py`` (500
sockets, 24,000 updates/s) that was about a tenth of its CPU. Unless autobahn logs at
debug level, ``install()`` swaps those three helpers in autobahn's protocol module for
plain ``str``/``repr`` (the debug lines lose colour and indentation, nothing else).
"""

from __future__ import annotations

from typing import Any

import txaio
from autobahn.websocket import protocol

ORIGINAL = {name: getattr(protocol, name) for name in ("hltype", "hlval", "pformat")}


def _type(obj: Any) -> str:
    return "<%s>" % getattr(obj, "__qualname__", "?")


def _value(value: Any, color: str = "", bold: bool = True) -> str:
    return str(value)


def _format(obj: Any, *args: Any, **kwargs: Any) -> str:
    return repr(obj)


def install() -> bool:
    """True when the cheap helpers are in place (False: autobahn logs at debug level)."""
    try:
        level = txaio.get_global_log_level()
    except RuntimeError:  # no framework chosen yet: nothing has asked for debug logging
        level = "info"
    if level in ("debug", "trace"):
        return False
    protocol.hltype, protocol.hlval, protocol.pformat = _type, _value, _format
    return True
