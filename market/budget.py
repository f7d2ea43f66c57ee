"""Budgets a vendor app shares across every process: REST calls and symbol slots.

Fyers counts 10 requests a second, 200 a minute and 100,000 a day per app, and 5,000
symbols per API key, over runfeed, its ``--shard`` processes and ``backfill`` together.
So the counts live in one store every process reaches: Redis when ``REDIS_URL`` is set
(a Lua script per operation, atomic on the server, timed by the server's clock), else
the database (``RestBudget`` and ``SymbolClaim`` rows, updated under the app row's write
lock: market.services). ``MemoryStore`` is the one-process version (tests, fake clocks).
The rules (windows, the IST day) are market.core.budget's.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Protocol

from market.core.budget import DAY_OFFSET, DayExhausted, Limits, day_number, day_start, window_wait


class Store(Protocol):
    name: str

    def take(self, app: str, limits: Limits, ticket: str) -> float:
        """Record one call (``ticket``, unique) if it fits every window and return 0; else
        the seconds to wait (nothing recorded). Raises ``DayExhausted``."""

    def finish(self, app: str, ticket: str) -> None:
        """The call got its answer: it counts in the windows from now on. Its time in the
        windows becomes the latest moment it can have reached Fyers, so however late a
        request arrives, the next ones are spaced from its arrival, never closer."""

    def block(self, app: str, seconds: float) -> None:
        """After a 429: every process of ``app`` waits ``seconds``."""

    def used_today(self, app: str) -> int: ...

    def claim(self, app: str, owner: str, wanted: int, cap: int, ttl: float) -> int:
        """``owner`` holds ``min(wanted, room)`` symbol slots for ``ttl`` seconds (renewed by
        calling again); returns ``room``, what the other owners' live claims leave it."""

    def release(self, app: str, owner: str) -> None: ...

    def held(self, app: str) -> int:
        """Symbol slots held by every owner together."""


class MemoryStore:
    """Everything in this process (a single process's budget; tests with a fake clock)."""

    name = "memory"

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self.calls: dict[str, dict[str, float]] = {}  # app -> ticket -> time in the windows
        self._day: dict[str, tuple[int, int]] = {}
        self._blocked: dict[str, float] = {}
        self._claims: dict[str, dict[str, tuple[int, float]]] = {}

    def take(self, app: str, limits: Limits, ticket: str) -> float:
        with self._lock:
            now = self.clock()
            blocked = self._blocked.get(app, 0.0)
            if blocked > now:
                return blocked - now
            calls = {k: t for k, t in self.calls.get(app, {}).items() if t > now - limits.minute}
            self.calls[app] = calls
            wait = window_wait(sorted(calls.values()), now, limits)
            if wait > 0:
                return wait
            day = day_number(now)
            seen, used = self._day.get(app, (day, 0))
            used = used if seen == day else 0
            if used >= limits.per_day:
                raise DayExhausted(used, limits.per_day, day_start(day + 1))
            calls[ticket] = now
            self._day[app] = (day, used + 1)
            return 0.0

    def finish(self, app: str, ticket: str) -> None:
        with self._lock:
            calls = self.calls.get(app, {})
            if ticket in calls:
                calls[ticket] = max(calls[ticket], self.clock())

    def block(self, app: str, seconds: float) -> None:
        with self._lock:
            self._blocked[app] = max(self._blocked.get(app, 0.0), self.clock() + seconds)

    def used_today(self, app: str) -> int:
        day, used = self._day.get(app, (0, 0))
        return used if day == day_number(self.clock()) else 0

    def claim(self, app: str, owner: str, wanted: int, cap: int, ttl: float) -> int:
        with self._lock:
            now = self.clock()
            claims = {o: c for o, c in self._claims.get(app, {}).items() if c[1] > now}
            room = max(0, cap - sum(n for o, (n, _) in claims.items() if o != owner))
            granted = min(wanted, room)
            if granted > 0:
                claims[owner] = (granted, now + ttl)
            else:
                claims.pop(owner, None)
            self._claims[app] = claims
            return room

    def release(self, app: str, owner: str) -> None:
        with self._lock:
            self._claims.get(app, {}).pop(owner, None)

    def held(self, app: str) -> int:
        now = self.clock()
        return sum(n for n, expires in self._claims.get(app, {}).values() if expires > now)


class DatabaseStore:
    """The database (embedded mode, or PostgreSQL without Redis): market.services.

    Called from worker threads (history, the SDK's symbol look-ups) as well as the feed's
    database thread: each operation closes the thread's connection afterwards unless a
    transaction is open, so no idle connection outlives the thread that made it."""

    name = "database"

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock

    @staticmethod
    def _run(fn: Callable[..., Any], **kwargs: Any) -> Any:
        from market import services

        try:
            return fn(**kwargs)
        finally:
            services.connection_close_idle()

    def take(self, app: str, limits: Limits, ticket: str) -> float:
        from market import services

        return self._run(services.rest_budget_take, app=app, now=self.clock(), limits=limits, ticket=ticket)

    def finish(self, app: str, ticket: str) -> None:
        from market import services

        self._run(services.rest_budget_finish, app=app, ticket=ticket, now=self.clock())

    def block(self, app: str, seconds: float) -> None:
        from market import services

        self._run(services.rest_budget_block, app=app, until=self.clock() + seconds)

    def used_today(self, app: str) -> int:
        from market import selectors

        return self._run(selectors.rest_budget_used, app=app, day=day_number(self.clock()))

    def claim(self, app: str, owner: str, wanted: int, cap: int, ttl: float) -> int:
        from market import services

        return self._run(services.symbol_claim_set, app=app, owner=owner, wanted=wanted, cap=cap,
                         now=self.clock(), ttl=ttl)

    def release(self, app: str, owner: str) -> None:
        from market import services

        self._run(services.symbol_claim_release, app=app, owner=owner)

    def held(self, app: str) -> int:
        from market import selectors

        return self._run(selectors.symbol_claims_held, app=app, now=self.clock())


# KEYS: calls (sorted set: ticket -> its time in the windows), day counter prefix, block key.
# ARGV: per_second, per_minute, per_day, second, minute, the call's ticket, day offset.
# Returns {status, wait, used}: 1 granted, 0 wait, -1 the day is used up (then ``wait`` is
# the budget day's number). Floats travel as strings (Redis truncates Lua numbers to integers).
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local per_second, per_minute, per_day = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local second, minute = tonumber(ARGV[4]), tonumber(ARGV[5])
local blocked = tonumber(redis.call('GET', KEYS[3]) or '0')
if blocked > now then return {0, tostring(blocked - now), 0} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - minute)
local n = redis.call('ZCARD', KEYS[1])
local wait = 0
if n >= per_minute then
  local e = redis.call('ZRANGE', KEYS[1], n - per_minute, n - per_minute, 'WITHSCORES')
  wait = math.max(wait, tonumber(e[2]) + minute - now)
end
if redis.call('ZCOUNT', KEYS[1], '(' .. tostring(now - second), '+inf') >= per_second then
  local e = redis.call('ZRANGE', KEYS[1], n - per_second, n - per_second, 'WITHSCORES')
  wait = math.max(wait, tonumber(e[2]) + second - now)
end
if wait > 0 then return {0, tostring(wait), 0} end
local offset = tonumber(ARGV[7])
local day = math.floor((now + offset) / 86400)
local day_key = KEYS[2] .. ':' .. day
local used = tonumber(redis.call('GET', day_key) or '0')
if used >= per_day then return {-1, tostring(day), used} end
redis.call('ZADD', KEYS[1], now, ARGV[6])
redis.call('PEXPIRE', KEYS[1], math.ceil(minute * 1000) + 1000)
used = redis.call('INCR', day_key)
redis.call('EXPIRE', day_key, 3 * 86400)
return {1, '0', used}
"""

# KEYS: claims (hash owner -> count), expiries (sorted set owner -> epoch).
# ARGV: owner, wanted, cap, ttl. Returns the room left to the owner.
_CLAIM = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
for _, o in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)) do redis.call('HDEL', KEYS[1], o) end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local owner, wanted, cap, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local others = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do if all[i] ~= owner then others = others + tonumber(all[i + 1]) end end
local room = math.max(0, cap - others)
local granted = math.min(wanted, room)
if granted > 0 then
  redis.call('HSET', KEYS[1], owner, granted)
  redis.call('ZADD', KEYS[2], now + ttl, owner)
else
  redis.call('HDEL', KEYS[1], owner)
  redis.call('ZREM', KEYS[2], owner)
end
return room
"""

# KEYS: calls. ARGV: ticket. The answered call counts from now (if still in the window).
_FINISH = """
local t = redis.call('TIME')
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], 'XX', tonumber(t[1]) + tonumber(t[2]) / 1000000, ARGV[1])
end
return 1
"""

_BLOCK = """
local t = redis.call('TIME')
local until_ = tonumber(t[1]) + tonumber(t[2]) / 1000000 + tonumber(ARGV[1])
if until_ > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], tostring(until_), 'EX', math.ceil(tonumber(ARGV[1])) + 1)
end
return 1
"""

_HELD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local live = {}
for _, o in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. tostring(now), '+inf')) do live[o] = true end
local total = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do if live[all[i]] then total = total + tonumber(all[i + 1]) end end
return total
"""


class RedisStore:
    """Redis (``REDIS_URL``): one Lua script per operation, so every process sees one budget."""

    name = "redis"
    PREFIX = "tickchart:budget"

    def __init__(self, url: str, client: Any = None) -> None:
        import redis

        self.url = url
        self.redis = client or redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self._take = self.redis.register_script(_TAKE)
        self._claim = self.redis.register_script(_CLAIM)
        self._block = self.redis.register_script(_BLOCK)
        self._finish = self.redis.register_script(_FINISH)
        self._held = self.redis.register_script(_HELD)

    def _keys(self, app: str) -> tuple[str, str, str]:
        base = f"{self.PREFIX}:{{{app}}}"  # one hash slot per app (a Redis Cluster runs the scripts too)
        return f"{base}:calls", f"{base}:day", f"{base}:blocked"

    def take(self, app: str, limits: Limits, ticket: str) -> float:
        status, wait, used = self._take(keys=list(self._keys(app)), args=[
            limits.per_second, limits.per_minute, limits.per_day, repr(limits.second), repr(limits.minute),
            ticket, DAY_OFFSET])
        if int(status) == -1:
            raise DayExhausted(int(used), limits.per_day, day_start(int(float(wait)) + 1))
        return 0.0 if int(status) == 1 else float(wait)

    def finish(self, app: str, ticket: str) -> None:
        self._finish(keys=[self._keys(app)[0]], args=[ticket])

    def block(self, app: str, seconds: float) -> None:
        self._block(keys=[self._keys(app)[2]], args=[repr(float(seconds))])

    def used_today(self, app: str) -> int:
        now = float(self.redis.time()[0])
        value = self.redis.get(f"{self._keys(app)[1]}:{day_number(now)}")
        return int(value or 0)

    def _claim_keys(self, app: str) -> list[str]:
        base = f"{self.PREFIX}:{{{app}}}"
        return [f"{base}:claims", f"{base}:claims-expire"]

    def claim(self, app: str, owner: str, wanted: int, cap: int, ttl: float) -> int:
        return int(self._claim(keys=self._claim_keys(app), args=[owner, wanted, cap, repr(float(ttl))]))

    def release(self, app: str, owner: str) -> None:
        claims, expiries = self._claim_keys(app)
        pipe = self.redis.pipeline()
        pipe.hdel(claims, owner)
        pipe.zrem(expiries, owner)
        pipe.execute()

    def held(self, app: str) -> int:
        return int(self._held(keys=self._claim_keys(app)))


_stores: dict[str, Store] = {}
_stores_lock = threading.Lock()


def shared_store(url: str) -> Store:
    """The process's store for ``url``: ``redis://…`` (or ``rediss://``), ``database`` or ``memory``."""
    with _stores_lock:
        store = _stores.get(url)
        if store is None:
            if url.startswith(("redis://", "rediss://", "unix://")):
                store = RedisStore(url)
            elif url == "database":
                store = DatabaseStore()
            elif url == "memory":
                store = MemoryStore()
            else:
                raise ValueError(f"budget store must be a redis:// URL, 'database' or 'memory', not {url!r}")
            _stores[url] = store
        return store
