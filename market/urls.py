from django.urls import path

from market.pulse import views as pulse_views
from market.web import alerts, drawings, exports, markers, ops, views
from market.web import calendar as market_calendar

urlpatterns = [
    path("healthz", ops.healthz, name="healthz"),
    path("readyz", ops.readyz, name="readyz"),
    path("metrics", ops.metrics, name="metrics"),
    path("", views.chart, name="home"),
    path("chart/<path:ticker>/", views.chart, name="chart"),
    path("api/candles", views.api_candles, name="api-candles"),
    path("api/candles.csv", exports.api_candles_csv, name="api-candles-csv"),
    path("api/candles.parquet", exports.api_candles_parquet, name="api-candles-parquet"),
    path("api/symbols", views.api_symbols, name="api-symbols"),
    path("api/alerts", alerts.api_alerts, name="api-alerts"),
    path("api/alerts/<int:pk>", alerts.api_alert, name="api-alert"),
    path("api/alerts/<int:pk>/events", alerts.api_alert_events, name="api-alert-events"),
    path("api/markers", markers.api_markers, name="api-markers"),
    path("api/markers/<int:pk>", markers.api_marker, name="api-marker"),
    path("api/drawings", drawings.api_drawings, name="api-drawings"),
    path("api/drawings/<int:pk>", drawings.api_drawing, name="api-drawing"),
    path("api/session", views.api_session, name="api-session"),
    path("pulse/", pulse_views.pulse, name="pulse"),
    path("api/market/status", market_calendar.api_market_status, name="api-market-status"),
]

# Notification channels of alerts (issue 13).
from market.web import notify_channels  # noqa: E402

urlpatterns += [
    path("api/channels", notify_channels.api_channels, name="api-channels"),
    path("api/channels/<int:pk>", notify_channels.api_channel, name="api-channel"),
]
