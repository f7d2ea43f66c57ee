from django.urls import path

from market.consumers import MarketConsumer
from market.pulse_consumer import PulseConsumer

websocket_urlpatterns = [path("ws/market/", MarketConsumer.as_asgi()), path("ws/pulse/", PulseConsumer.as_asgi())]
