"""Market Pulse (/pulse/): the server-side movers, stress and correlation service, its consumer and page."""
