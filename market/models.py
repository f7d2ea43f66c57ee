"""What TickChart stores: instruments (``Symbol``), their candles (``Candle``), feed state,
writers' checkpoints, pulse events and personal API tokens (``ApiToken``)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Symbol(models.Model):
    class Kind(models.TextChoices):
        EQUITY = "equity"
        INDEX = "index"
        FUTURE = "future"
        OPTION = "option"
        CURRENCY = "currency"
        CRYPTO = "crypto"
        OTHER = "other"

    ticker = models.CharField(max_length=64, unique=True, help_text="Broker ticker, e.g. NSE:SBIN-EQ")
    name = models.CharField(max_length=200, blank=True)
    exchange = models.CharField(max_length=16, db_index=True, help_text="Selects the trading session")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.EQUITY)
    tick_size = models.DecimalField(max_digits=12, decimal_places=6, default="0.05")
    lot_size = models.PositiveIntegerField(default=1)
    active = models.BooleanField(default=True, db_index=True, help_text="Streamed by runfeed")
    always_record = models.BooleanField(
        default=False,
        help_text="Feeds that stream on demand keep this symbol subscribed even when nobody watches it",
    )
    source = models.CharField(max_length=16, default="simulated", help_text="Feed that supplies it")
    # Broker reference data (Fyers symbol master; import_symbols fills them).
    isin = models.CharField(max_length=12, blank=True)
    fytoken = models.CharField(max_length=24, blank=True, help_text="Fyers token of the instrument")
    trading_session = models.CharField(max_length=64, blank=True,
                                       help_text="Exchange session as the broker lists it, e.g. 0915-1530")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["ticker"]

    def __str__(self) -> str:
        return self.ticker


class Candle(models.Model):
    """One OHLCV bucket; ``time`` is the bucket start in epoch seconds UTC.

    On PostgreSQL the table is partitioned by timeframe and time (migration 0012,
    market/core/partitions.py): write candles through ``services``, which make the
    partition a row needs; the database key is (id, timeframe, time), ``id`` stays the pk here.
    """

    id = models.BigAutoField(primary_key=True)
    symbol = models.ForeignKey(Symbol, on_delete=models.CASCADE, related_name="candles")
    timeframe = models.CharField(max_length=4)
    time = models.BigIntegerField()
    open = models.FloatField()
    high = models.FloatField()
    low = models.FloatField()
    close = models.FloatField()
    volume = models.FloatField(default=0)
    ticks = models.IntegerField(default=0)

    class Meta:
        constraints = [
            # Also the index of newest-first range reads (scanned backwards).
            models.UniqueConstraint(fields=["symbol", "timeframe", "time"], name="candle_symbol_tf_time"),
        ]

    def __str__(self) -> str:
        return f"{self.symbol_id} {self.timeframe} {self.time}"


class FeedState(models.Model):
    """The last word of each feed process: its state and a heartbeat, for browsers and /readyz."""

    class State(models.TextChoices):
        STARTING = "starting"
        LIVE = "live"
        STALE = "stale"
        RECONNECTING = "reconnecting"
        MARKET_CLOSED = "market_closed"
        TOKEN_EXPIRED = "token_expired"
        STOPPED = "stopped"

    source = models.CharField(max_length=32, primary_key=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.STARTING)
    detail = models.CharField(max_length=200, blank=True)
    heartbeat = models.FloatField(help_text="epoch seconds of the feed's last heartbeat")

    def __str__(self) -> str:
        return f"{self.source}: {self.state}"


class WriterCheckpoint(models.Model):
    """What one runfeed writer (a source, or ``source.shard``) has stored, written in the
    same transaction as its candles: the input position they include, and the fencing
    epoch of the writer that holds the lock (a writer whose epoch is stale may not write)."""

    name = models.CharField(max_length=64, primary_key=True)
    epoch = models.BigIntegerField(default=0)
    position = models.JSONField(null=True, blank=True, help_text="where the input resumes, e.g. a replay line")
    updated = models.FloatField(default=0, help_text="epoch seconds of the last checkpoint")

    def __str__(self) -> str:
        return f"{self.name} epoch {self.epoch}"


class SymbolCheckpoint(models.Model):
    """The engine's exact state of one symbol (``CandleEngine.collect(states)``), stored with
    its candles so a restart continues the open candles instead of closing them."""

    symbol = models.OneToOneField(Symbol, on_delete=models.CASCADE, primary_key=True, related_name="checkpoint")
    state = models.JSONField()

    def __str__(self) -> str:
        return f"checkpoint of {self.symbol_id}"


class PulseEvent(models.Model):
    """A Market Pulse stress event (sharp move, volatility spike), kept so a refresh shows it."""

    class Kind(models.TextChoices):
        MOVE_1M = "move_1m"
        MOVE_5M = "move_5m"
        VOL_SPIKE = "vol_spike"

    id = models.BigAutoField(primary_key=True)
    symbol = models.CharField(max_length=64, help_text="Ticker (kept as text: events outlive symbols)")
    asset_class = models.CharField(max_length=16)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    time = models.FloatField(db_index=True, help_text="epoch seconds when it was detected")
    value = models.FloatField(help_text="the return, or the volatility ratio of a spike")
    threshold = models.FloatField()
    message = models.CharField(max_length=200)

    class Meta:
        ordering = ["-time"]

    def __str__(self) -> str:
        return self.message


class ApiToken(models.Model):
    """A personal read-only token for scripts (``Authorization: Bearer …``).

    Only a SHA-256 digest of the secret is stored; ``prefix`` (the first characters of the
    secret) lets a user tell tokens apart in the admin without revealing them.
    """

    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="What the token is for, e.g. 'research notebook'")
    prefix = models.CharField(max_length=12, db_index=True, editable=False)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    scope = models.CharField(max_length=64, default="read", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: never expires")
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class Alert(models.Model):
    """A user's alert (issue 13): ``left op right`` on a symbol and timeframe, as
    ``market.core.alerts.parse_condition`` validates it. ``state`` is the evaluator's."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        PAUSED = "paused"
        DONE = "done"
        DISABLED = "disabled"  # its drawing was deleted: ``reason`` says so

    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alerts")
    symbol = models.CharField(max_length=64, db_index=True)
    tf = models.CharField(max_length=4)
    left = models.CharField(max_length=64)
    op = models.CharField(max_length=16)
    right = models.CharField(max_length=64)
    trigger = models.CharField(max_length=24, default="once")
    bars = models.PositiveIntegerField(default=1)
    expires = models.FloatField(null=True, blank=True, help_text="epoch seconds; empty: never")
    message = models.CharField(max_length=200, blank=True)
    webhook = models.URLField(max_length=500, blank=True)
    secret = models.CharField(max_length=64, editable=False, help_text="signs webhook bodies")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    state = models.JSONField(default=dict, blank=True)
    reason = models.CharField(max_length=200, blank=True, help_text="why it was disabled")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.symbol} {self.tf} {self.left} {self.op} {self.right}"


class AlertEvent(models.Model):
    """One firing; ``id`` is ``<alert id>@<exchange time>``, so re-evaluation cannot double it."""

    id = models.CharField(max_length=64, primary_key=True)
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="events")
    symbol = models.CharField(max_length=64)
    tf = models.CharField(max_length=4)
    time = models.FloatField(help_text="exchange time of the tick or bar that fired it")
    value = models.FloatField()
    other = models.FloatField(help_text="what the value was compared with")
    message = models.CharField(max_length=200, blank=True)
    fired_at = models.FloatField(help_text="epoch seconds when it was recorded")
    delivery = models.CharField(max_length=16, default="pending", blank=True,
                                help_text="webhook: pending, delivered, failed, or none")
    attempts = models.PositiveIntegerField(default=0)
    next_attempt = models.FloatField(default=0, db_index=True, help_text="epoch seconds of the next try")
    last_error = models.CharField(max_length=200, blank=True)
    caught_up = models.BooleanField(default=False, help_text="fired by a restart's catch-up from stored candles")

    class Meta:
        ordering = ["time"]

    def __str__(self) -> str:
        return self.id


class Marker(models.Model):
    """A mark a strategy posted on a symbol's chart (issue 16), shown on every open chart of it."""

    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="markers")
    symbol = models.ForeignKey(Symbol, on_delete=models.CASCADE, related_name="markers")
    time = models.BigIntegerField(help_text="exchange time it marks (epoch seconds)")
    price = models.FloatField(null=True, blank=True)
    shape = models.CharField(max_length=12)
    position = models.CharField(max_length=16)
    color = models.CharField(max_length=7)
    text = models.CharField(max_length=80, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["time", "id"]
        indexes = [models.Index(fields=["symbol", "time"], name="market_marker_symbol_time")]

    def __str__(self) -> str:
        return f"{self.symbol_id} {self.time} {self.shape} {self.text}"


class CalendarOverride(models.Model):
    """An exchange announcement the holiday library cannot know: an extra closure, or a
    special session (Muhurat trading on Diwali evening, a budget-day Saturday session).
    ``exchange`` is a session code (NSE, BSE, NSE_CD, MCX, US) or a holiday market (XNSE:
    every segment that follows it); times are exchange-local (market.core.calendar)."""

    class Kind(models.TextChoices):
        CLOSED = "closed", "closed all day"
        SPECIAL = "special", "special session"

    exchange = models.CharField(max_length=16, help_text="session code (NSE, MCX, US) or holiday market (XNSE)")
    date = models.DateField(help_text="exchange-local date")
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.CLOSED)
    open = models.TimeField(null=True, blank=True, help_text="special session: exchange-local open")
    close = models.TimeField(null=True, blank=True, help_text="special session: exchange-local close")
    note = models.CharField(max_length=200, blank=True, help_text="e.g. Muhurat trading; shown as the holiday name")

    class Meta:
        ordering = ["date", "exchange"]
        indexes = [models.Index(fields=["date"])]

    def __str__(self) -> str:
        hours = f" {self.open:%H:%M}-{self.close:%H:%M}" if self.open and self.close else ""
        return f"{self.exchange} {self.date} {self.kind}{hours} {self.note}".strip()

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        self.exchange = (self.exchange or "").strip().upper()
        if self.kind == self.Kind.SPECIAL and (self.open is None or self.close is None or self.close <= self.open):
            raise ValidationError("A special session needs an open time before its close time.")


class Drawing(models.Model):
    """A user's drawing on a symbol's chart (issue 12): a kind, its anchor points (exchange
    time and price, so every timeframe shows it in place) and a style, as
    ``market.core.drawings`` validates them."""

    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="drawings")
    symbol = models.CharField(max_length=64)
    kind = models.CharField(max_length=8)
    points = models.JSONField(default=list)
    style = models.JSONField(default=dict)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["user", "symbol"], name="drawing_user_symbol")]

    def __str__(self) -> str:
        return f"{self.kind} on {self.symbol}"


class NotifyChannel(models.Model):
    """Where a user's alerts are also sent (issue 13): an apprise URL (``ntfy://…``,
    ``tgram://…``, ``json://…``; it usually carries a token, so it is a secret the API and
    the logs never show in full) or an e-mail address (Django's mail backend). An alert
    names its channels (``alerts``)."""

    class Kind(models.TextChoices):
        APPRISE = "apprise"
        EMAIL = "email"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notify_channels")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    target = models.CharField(max_length=1000, help_text="apprise URL (secret) or e-mail address")
    enabled = models.BooleanField(default=True)
    alerts = models.ManyToManyField(Alert, related_name="channels", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


class NotifyDelivery(models.Model):
    """One event to one channel, retried with the webhook's backoff until delivered or failed."""

    event = models.ForeignKey(AlertEvent, on_delete=models.CASCADE, related_name="notifications")
    channel = models.ForeignKey(NotifyChannel, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=16, default="pending", help_text="pending, delivered or failed")
    attempts = models.PositiveIntegerField(default=0)
    next_attempt = models.FloatField(default=0, db_index=True, help_text="epoch seconds of the next try")
    last_error = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["event", "channel"], name="notify_delivery_once")]

    def __str__(self) -> str:
        return f"{self.event_id} → {self.channel_id}"


class RestBudget(models.Model):
    """One vendor app's REST budget, shared by every process when there is no Redis
    (market.budget): the last minute's calls (each at its answer's time once answered) and
    today's count. Every taker updates the row first, which serialises them (SQLite's write
    lock, PostgreSQL's row lock). It is also the lock symbol claims of the same app take."""

    app = models.CharField(max_length=64, unique=True, help_text="the vendor's app id, e.g. XB12345-100")
    calls = models.JSONField(default=dict, help_text="call ticket -> epoch time in the windows (last minute)")
    day = models.IntegerField(default=0, help_text="budget day (days since 1970-01-01, IST)")
    day_count = models.PositiveIntegerField(default=0, help_text="requests made on that day")
    blocked_until = models.FloatField(default=0, help_text="after a 429 every process waits until then")
    seq = models.BigIntegerField(default=0, help_text="bumped by every taker (the write that takes the lock)")
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["app"]

    def __str__(self) -> str:
        return f"{self.app}: {self.day_count} today"


class SymbolClaim(models.Model):
    """Symbol slots one process (a runfeed or a shard) holds of an API key's cap, until
    ``expires``: a killed process's slots come back by themselves."""

    app = models.CharField(max_length=64)
    owner = models.CharField(max_length=200, help_text="host:pid:shard of the process")
    count = models.PositiveIntegerField(default=0)
    expires = models.FloatField(help_text="epoch seconds; renewed every REFRESH_SECONDS")

    class Meta:
        ordering = ["app", "owner"]
        constraints = [models.UniqueConstraint(fields=["app", "owner"], name="symbol_claim_once")]

    def __str__(self) -> str:
        return f"{self.app} {self.owner}: {self.count}"


class Layout(models.Model):
    """A user's named grid of charts (issue 12): ``spec`` is ``{grid, charts, theme}`` as
    ``market.core.layouts`` validates it. ``opened`` is when its page was last opened, so
    ``/layout/`` reopens the latest one."""

    id = models.BigAutoField(primary_key=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="layouts")
    name = models.CharField(max_length=80)
    spec = models.JSONField(default=dict)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)
    opened = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="layout_owner_name")]

    def __str__(self) -> str:
        return self.name
