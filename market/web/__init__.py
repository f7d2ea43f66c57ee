"""The HTTP and WebSocket edge: views, operations endpoints, the market consumer, its frames, access control, CSP and rate limits."""
