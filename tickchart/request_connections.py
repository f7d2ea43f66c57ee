"""Close a request's database connections when daphne has sent its response.

Django's ASGI handler runs each HTTP request's sync code on a thread of its own (asgiref's
``ThreadSensitiveContext``, one per request), so a connection kept for reuse
(``CONN_MAX_AGE``) after the request is never reused: it stays open until the garbage
collector frees the finished thread's locals, and under load PostgreSQL runs out of
connections ("too many clients already"; bench/history_http.py met it). This closes them on
``request_finished``, which Django sends on that thread once the response is closed (after a
streamed export's last row, too). Requests of other handlers (the test client) and
connections inside a transaction are left alone; WebSocket consumers and runfeed keep their
persistent connections, which do get reused.
"""

from __future__ import annotations

from typing import Any

from django.core.handlers.asgi import ASGIHandler
from django.core.signals import request_finished
from django.db import connections


def close_request_connections(sender: Any, **kwargs: Any) -> None:
    if not (isinstance(sender, type) and issubclass(sender, ASGIHandler)):
        return
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close()


def install() -> None:
    request_finished.connect(close_request_connections, dispatch_uid="tickchart.request_connections")
