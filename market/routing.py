from django.urls import path

from market.web.consumers import MarketConsumer
from market.pulse.consumers import PulseConsumer

websocket_urlpatterns = [path("ws/market/", MarketConsumer.as_asgi()), path("ws/pulse/", PulseConsumer.as_asgi())]
