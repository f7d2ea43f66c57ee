from django.urls import path

from market.pulse import views as pulse_views
from market.web import api, ops, views

urlpatterns = [
    path("healthz", ops.healthz, name="healthz"),
    path("readyz", ops.readyz, name="readyz"),
    path("metrics", ops.metrics, name="metrics"),
    path("", views.chart, name="home"),
    path("chart/<path:ticker>/", views.chart, name="chart"),
    path("pulse/", pulse_views.pulse, name="pulse"),
    # Every /api/ operation, its OpenAPI document and docs (market.web.api).
    *api.urls(),
]
