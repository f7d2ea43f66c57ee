"""ASGI entry point: HTTP through Django, WebSockets through Channels (daphne serves both)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tickchart.settings")
# Django must be set up before importing anything that touches models.
django_asgi_app = get_asgi_application()

from django.conf import settings  # noqa: E402

from tickchart import eager_writes, gc_tuning, inbound_cap, quiet_autobahn, request_connections  # noqa: E402

# Before daphne listens (it imports the application first).
eager_writes.install(settings.TICKCHART_EAGER_WRITES)
inbound_cap.install()  # --websocket-max-message-size caps what clients send, not snapshots
quiet_autobahn.install()  # no colouring of debug lines nobody logs, per frame
request_connections.install()  # a request's thread is not reused: neither is its connection

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from market.web.access import SocketAuthMiddlewareStack  # noqa: E402
from market.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Origin check first (cross-site pages cannot ride the cookie), then the session
        # cookie's user in scope["user"] (not read under public access); the consumers apply
        # market.web.access before accept().
        "websocket": AllowedHostsOriginValidator(
            SocketAuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)

# Last: what is loaded by now is never garbage, and is frozen out of every collection.
gc_tuning.install(settings.TICKCHART_GC_FULL_SECONDS, settings.TICKCHART_GC_GROWTH_MIB)
