"""Framework-free core of TickChart: domain types, sessions, the candle engine, feed parsing.

Nothing under ``market.core`` may import Django, Channels or any I/O library; a test
enforces it. The Django app wires these pieces to the database and the channel layer.
"""
