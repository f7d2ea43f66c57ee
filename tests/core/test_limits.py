"""market.core.limits: token bucket, strikes, message gate, sliding window, client address.

All with a fake clock: no sleeping, no timing.
"""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings, strategies as st

from market.core.limits import (
    MessageGate,
    Strikes,
    TokenBucket,
    Verdict,
    client_address,
    parse_networks,
    sliding_window_decide,
    window_index,
)


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# -- TokenBucket -------------------------------------------------------------------------------
def test_bucket_starts_full_and_allows_exactly_the_burst_at_once():
    bucket = TokenBucket(rate=2, burst=5, clock=FakeClock())
    assert [bucket.take() for _ in range(7)] == [True] * 5 + [False] * 2


def test_bucket_refills_at_rate_and_never_above_burst():
    clock = FakeClock()
    bucket = TokenBucket(rate=2, burst=5, clock=clock)
    for _ in range(5):
        bucket.take()
    clock.advance(0.5)  # one token back
    assert bucket.take() is True
    assert bucket.take() is False
    clock.advance(3600)
    assert bucket.tokens == 5


def test_bucket_retry_after_is_the_time_to_the_next_token():
    clock = FakeClock()
    bucket = TokenBucket(rate=4, burst=1, clock=clock)
    assert bucket.retry_after() == 0
    bucket.take()
    assert bucket.retry_after() == pytest.approx(0.25)
    clock.advance(0.1)
    assert bucket.retry_after() == pytest.approx(0.15)


def test_bucket_clock_stepping_back_grants_nothing():
    clock = FakeClock()
    bucket = TokenBucket(rate=10, burst=1, clock=clock)
    bucket.take()
    clock.advance(-100)
    assert bucket.take() is False
    clock.advance(0.1)  # measured from the stepped-back reading
    assert bucket.take() is True


@pytest.mark.parametrize("rate, burst", [(0, 5), (-1, 5), (1, 0), (1, 0.5)])
def test_bucket_rejects_nonsense_parameters(rate, burst):
    with pytest.raises(ValueError):
        TokenBucket(rate=rate, burst=burst, clock=FakeClock())


@settings(max_examples=100, deadline=None, derandomize=True)
@given(rate=st.floats(0.1, 100), burst=st.integers(1, 100),
       steps=st.lists(st.floats(0, 5), min_size=1, max_size=40))
def test_bucket_never_allows_more_than_burst_plus_rate_times_elapsed(rate, burst, steps):
    clock = FakeClock()
    bucket = TokenBucket(rate=rate, burst=burst, clock=clock)
    start, allowed = clock.now, 0
    for step in steps:
        clock.advance(step)
        allowed += sum(bucket.take() for _ in range(3))
    assert allowed <= burst + rate * (clock.now - start) + 1e-6


# -- Strikes -------------------------------------------------------------------------------
def test_strikes_trip_at_the_limit_within_the_window():
    clock = FakeClock()
    strikes = Strikes(limit=3, window=10, clock=clock)
    assert strikes.strike() is False
    clock.advance(4)
    assert strikes.strike() is False
    clock.advance(4)
    assert strikes.strike() is True  # three within 8 s


def test_strikes_spread_wider_than_the_window_never_trip():
    clock = FakeClock()
    strikes = Strikes(limit=3, window=10, clock=clock)
    results = []
    for _ in range(20):
        results.append(strikes.strike())
        clock.advance(5.01)  # any three span more than 10 s
    assert not any(results)
    assert len(strikes) == 1  # 5.01 s ago; the one before, 10.02 s ago, has left the window


# -- MessageGate -----------------------------------------------------------------------------
def gate(clock: FakeClock, **kw) -> MessageGate:
    params = {"rate": 1, "burst": 3, "strikes_to_close": 3, "strike_window": 60} | kw
    return MessageGate(**params, clock=clock)


def test_gate_allows_the_burst_then_rejects_then_closes_on_the_third_strike():
    g = gate(FakeClock())
    verdicts = [g.admit() for _ in range(7)]
    assert verdicts == [Verdict.ALLOW] * 3 + [Verdict.REJECT] * 2 + [Verdict.CLOSE] * 2
    assert g.closing


def test_gate_closed_stays_closed_even_with_tokens_back():
    clock = FakeClock()
    g = gate(clock, strikes_to_close=1)
    for _ in range(4):
        g.admit()
    clock.advance(3600)
    assert g.admit() is Verdict.CLOSE


def test_gate_client_that_slows_down_recovers_without_closing():
    clock = FakeClock()
    g = gate(clock)
    assert [g.admit() for _ in range(5)][-2:] == [Verdict.REJECT, Verdict.REJECT]
    for _ in range(100):  # then a well-behaved pace, forever
        clock.advance(1.0)
        assert g.admit() is Verdict.ALLOW


def test_gate_other_broken_limits_count_as_strikes():
    g = gate(FakeClock())
    assert g.admit() is Verdict.ALLOW
    assert g.strike() is Verdict.REJECT  # e.g. a frame too large
    assert g.strike() is Verdict.REJECT
    assert g.strike() is Verdict.CLOSE
    assert g.admit() is Verdict.CLOSE


# -- sliding window ----------------------------------------------------------------------------
def test_window_index_is_the_fixed_window_number():
    assert window_index(119.9, 60) == 1 and window_index(120.0, 60) == 2


def test_window_allows_up_to_the_limit_with_an_empty_previous_window():
    now = 6000.0  # a window start
    assert sliding_window_decide(limit=3, window=60, now=now, previous=0, current=2).allowed
    refused = sliding_window_decide(limit=3, window=60, now=now, previous=0, current=3)
    assert not refused.allowed
    # This window is full; in the next one its 3 weigh 3 * (1 - e/60): one more fits at e = 20.
    assert refused.retry_after == 80


def test_window_previous_window_weighs_by_its_share_still_inside():
    start = 6000.0
    # 30 s into this window half of the previous one is still inside the last minute.
    assert sliding_window_decide(limit=10, window=60, now=start + 30, previous=10, current=4).allowed  # 5+4+1
    assert not sliding_window_decide(limit=10, window=60, now=start + 30, previous=10, current=5).allowed


def test_window_no_double_burst_across_a_boundary():
    """limit requests at the end of one window, then at the start of the next: refused."""
    start = 6000.0
    decision = sliding_window_decide(limit=100, window=60, now=start + 0.5, previous=100, current=0)
    assert not decision.allowed


def test_window_retry_after_is_when_the_same_request_would_pass():
    start = 6000.0
    d = sliding_window_decide(limit=10, window=60, now=start + 30, previous=10, current=5)
    assert not d.allowed
    later = sliding_window_decide(limit=10, window=60, now=start + 30 + d.retry_after, previous=10, current=5)
    earlier = sliding_window_decide(limit=10, window=60, now=start + 30 + d.retry_after - 1, previous=10, current=5)
    assert later.allowed and not earlier.allowed


@settings(max_examples=150, deadline=None, derandomize=True)
@given(limit=st.integers(1, 500), previous=st.integers(0, 1000), current=st.integers(0, 1000),
       offset=st.floats(0, 59.99))
def test_window_retry_after_never_lets_the_request_in_early_and_is_at_most_two_windows(limit, previous, current,
                                                                                       offset):
    now = 6000.0 + offset
    d = sliding_window_decide(limit=limit, window=60, now=now, previous=previous, current=current)
    if d.allowed:
        assert previous * (1 - offset / 60) + current + 1 <= limit + 1e-9
        return
    assert 1 <= d.retry_after <= 120
    when = now + d.retry_after
    shift = window_index(when, 60) - window_index(now, 60)
    # The counts shift with the window: this one becomes "previous", then nothing.
    prev_then, cur_then = {0: (previous, current), 1: (current, 0)}.get(shift, (0, 0))
    assert sliding_window_decide(limit=limit, window=60, now=when, previous=prev_then, current=cur_then).allowed
    if d.retry_after > 1:  # and a second earlier it would not have been
        before = when - 1
        shift = window_index(before, 60) - window_index(now, 60)
        prev_then, cur_then = {0: (previous, current), 1: (current, 0)}.get(shift, (0, 0))
        early = sliding_window_decide(limit=limit, window=60, now=before, previous=prev_then, current=cur_then)
        assert not early.allowed


# -- client address ----------------------------------------------------------------------------
PROXIES = parse_networks(["127.0.0.1", "10.0.0.0/8"])


def test_address_without_trusted_proxy_ignores_forwarded_for():
    assert client_address("203.0.113.9", "198.51.100.1", PROXIES) == "203.0.113.9"
    assert client_address("203.0.113.9", "198.51.100.1", ()) == "203.0.113.9"


def test_address_behind_trusted_proxy_is_the_rightmost_untrusted_hop():
    # The client claimed 1.1.1.1; nginx appended the real peer 198.51.100.7; then a 10/8 hop.
    assert client_address("127.0.0.1", "1.1.1.1, 198.51.100.7, 10.1.2.3", PROXIES) == "198.51.100.7"


def test_address_all_hops_trusted_is_the_leftmost():
    assert client_address("127.0.0.1", "10.0.0.5, 10.0.0.6", PROXIES) == "10.0.0.5"


def test_address_garbage_in_forwarded_for_stops_at_the_last_vouched_hop():
    assert client_address("127.0.0.1", "junk\x00, 10.9.9.9", PROXIES) == "10.9.9.9"
    assert client_address("127.0.0.1", "x" * 5000, PROXIES) == "127.0.0.1"


def test_address_ipv6_is_counted_per_64_and_mapped_ipv4_as_ipv4():
    a = client_address("2001:db8:1:2:aaaa::1", None, ())
    b = client_address("2001:db8:1:2:bbbb::2", None, ())
    assert a == b == "2001:db8:1:2::/64"
    assert client_address("::ffff:198.51.100.3", None, ()) == "198.51.100.3"


@pytest.mark.parametrize("remote", [None, "", "not-an-ip", "\x00"])
def test_address_unparseable_peer_is_one_shared_bucket(remote):
    assert client_address(remote, "198.51.100.1", PROXIES) == "unknown"


def test_parse_networks_names_the_bad_entry():
    assert parse_networks(["::1", "192.168.0.0/16"])[1] == ipaddress.ip_network("192.168.0.0/16")
    with pytest.raises(ValueError, match="nope"):
        parse_networks(["nope"])


@settings(max_examples=150, deadline=None, derandomize=True)
@given(remote=st.text(max_size=60), forwarded=st.one_of(st.none(), st.text(max_size=200)))
def test_address_is_always_a_short_string(remote, forwarded):
    out = client_address(remote, forwarded, PROXIES)
    assert isinstance(out, str) and 0 < len(out) <= 43
