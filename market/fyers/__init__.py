"""Fyers API v3 integration: login, REST history under one rate limiter, the symbol
master, and a supervised wrapper around the SDK's data socket.

Pure logic here has no Django imports; ``market.feeds.fyers`` and the management
commands wire it to settings, the database and the channel layer.
"""
