"""Channel-layer messaging (no ORM): candle and status broadcasts, the per-process relay, symbols-on-demand announcements."""
