from django.urls import path

from market import views

urlpatterns = [
    path("", views.chart, name="home"),
    path("chart/<path:ticker>/", views.chart, name="chart"),
    path("api/candles", views.api_candles, name="api-candles"),
    path("api/symbols", views.api_symbols, name="api-symbols"),
]
