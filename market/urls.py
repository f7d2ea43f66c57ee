from django.urls import path

from market.pulse import views as pulse_views
from market.web import api, layouts, ops, views

urlpatterns = [
    path("healthz", ops.healthz, name="healthz"),
    path("readyz", ops.readyz, name="readyz"),
    path("metrics", ops.metrics, name="metrics"),
    path("", views.chart, name="home"),
    path("chart/<path:ticker>/", views.chart, name="chart"),
    path("layout/", layouts.layout_last, name="layout-last"),
    path("layout/<int:pk>/", layouts.layout_page, name="layout"),
    path("pulse/", pulse_views.pulse, name="pulse"),
    # Every /api/ operation, its OpenAPI document and docs (market.web.api).
    *api.urls(),
]
