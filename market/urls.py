from django.urls import path

from market.pulse import views as pulse_views
from market.web import alerts, ops, views

urlpatterns = [
    path("healthz", ops.healthz, name="healthz"),
    path("readyz", ops.readyz, name="readyz"),
    path("metrics", ops.metrics, name="metrics"),
    path("", views.chart, name="home"),
    path("chart/<path:ticker>/", views.chart, name="chart"),
    path("api/candles", views.api_candles, name="api-candles"),
    path("api/symbols", views.api_symbols, name="api-symbols"),
    path("api/alerts", alerts.api_alerts, name="api-alerts"),
    path("api/alerts/<int:pk>", alerts.api_alert, name="api-alert"),
    path("api/alerts/<int:pk>/events", alerts.api_alert_events, name="api-alert-events"),
    path("api/session", views.api_session, name="api-session"),
    path("pulse/", pulse_views.pulse, name="pulse"),
]

# Notification channels of alerts (issue 13).
from market.web import notify_channels  # noqa: E402

urlpatterns += [
    path("api/channels", notify_channels.api_channels, name="api-channels"),
    path("api/channels/<int:pk>", notify_channels.api_channel, name="api-channel"),
]
