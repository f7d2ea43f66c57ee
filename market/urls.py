from django.urls import path

from market.pulse import views as pulse_views
from market.web import ops, views

urlpatterns = [
    path("healthz", ops.healthz, name="healthz"),
    path("readyz", ops.readyz, name="readyz"),
    path("metrics", ops.metrics, name="metrics"),
    path("", views.chart, name="home"),
    path("chart/<path:ticker>/", views.chart, name="chart"),
    path("api/candles", views.api_candles, name="api-candles"),
    path("api/symbols", views.api_symbols, name="api-symbols"),
    path("api/session", views.api_session, name="api-session"),
    path("pulse/", pulse_views.pulse, name="pulse"),
]
