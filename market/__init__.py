"""TickChart's Django app: models, settings resolver (``conf``), services and selectors at
the top; ``core`` (framework-free domain), ``feed`` (feed runtime), ``live`` (channel-layer
messaging), ``web`` (HTTP and WebSocket edge), ``vendors`` (one package per broker) and
``pulse`` (Market Pulse) beneath.
"""
