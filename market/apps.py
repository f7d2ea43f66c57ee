from django.apps import AppConfig


class MarketConfig(AppConfig):
    name = "market"
    verbose_name = "Market data"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from market import conf

        conf.market()  # fail at start-up, not on first request, on bad MARKET settings
