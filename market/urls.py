from django.urls import path

from market.pulse import views as pulse_views
from market.web import ops as ops_views, views

urlpatterns = [
    path("healthz", ops_views.healthz, name="healthz"),
    path("readyz", ops_views.readyz, name="readyz"),
    path("metrics", ops_views.metrics, name="metrics"),
    path("", views.chart, name="home"),
    path("chart/<path:ticker>/", views.chart, name="chart"),
    path("api/candles", views.api_candles, name="api-candles"),
    path("api/symbols", views.api_symbols, name="api-symbols"),
    path("api/session", views.api_session, name="api-session"),
    path("pulse/", pulse_views.pulse, name="pulse"),
]
