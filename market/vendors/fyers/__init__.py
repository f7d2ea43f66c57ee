"""Fyers API v3: the pure message parser and recordings, login, REST history under one rate
limiter, the symbol master, the supervised SDK socket and the live feed.

``messages`` and ``recording`` are pure (no Django; a test enforces it); the rest is wired
to settings through ``market.conf`` and to the database through selectors and services.
"""
