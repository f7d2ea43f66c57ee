"""Finnhub: the pure trade-frame parser (``messages``), its settings and the live feed."""
