"""market.core.demand.DemandBook: which tickers a capped connection streams, and who is told no.

A fake clock drives every test: no sleeping, microseconds each.
"""

from __future__ import annotations

import pytest

from market.core.demand import DemandBook, Refusal


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def book(capacity: int = 3, linger: float = 300.0, ttl: float = 90.0, clock: Clock | None = None) -> DemandBook:
    return DemandBook(capacity=capacity, linger=linger, ttl=ttl, clock=clock or Clock())


# -- pinned symbols ---------------------------------------------------------------------
def test_pinned_tickers_stream_in_given_order_up_to_the_cap():
    b = book(capacity=2)
    b.set_pinned(["REC", "ACT1", "ACT2"])
    assert b.streamed() == ["REC", "ACT1"]
    assert b.left_out() == ["ACT2"]


def test_pinned_duplicates_count_once():
    b = book(capacity=2)
    b.set_pinned(["A", "A", "B"])
    assert b.streamed() == ["A", "B"]
    assert b.left_out() == []


# -- first viewer subscribes, last viewer lingers ----------------------------------------
def test_first_viewer_adds_the_ticker_after_the_pinned_ones():
    b = book()
    b.set_pinned(["P"])
    b.add("v1", "X")
    assert b.streamed() == ["P", "X"]
    assert b.viewers("X") == 1


def test_demand_for_a_pinned_ticker_changes_nothing_and_is_never_refused():
    b = book(capacity=1)
    b.set_pinned(["P"])
    b.add("v1", "P")
    assert b.streamed() == ["P"]
    assert b.take_refusals() == []


def test_last_viewer_leaving_keeps_the_ticker_for_the_linger_then_drops_it():
    clock = Clock()
    b = book(linger=300, clock=clock)
    b.add("v1", "X")
    b.add("v2", "X")
    b.remove("v1", "X")
    assert b.streamed() == ["X"] and b.lingering() == []
    b.remove("v2", "X")
    assert b.streamed() == ["X"] and b.lingering() == ["X"]
    assert b.next_deadline() == 1300.0
    clock.t = 1299.9
    b.expire()
    assert b.streamed() == ["X"]
    clock.t = 1300.0
    b.expire()
    assert b.streamed() == [] and b.lingering() == []
    assert b.next_deadline() is None


def test_a_viewer_returning_during_the_linger_keeps_the_subscription():
    clock = Clock()
    b = book(linger=300, clock=clock)
    b.add("v1", "X")
    b.remove("v1", "X")
    clock.t += 200
    b.add("v2", "X")
    for _ in range(4):  # past the original linger end, v2 re-announcing
        clock.t += 60
        b.refresh("v2", ["X"])
        b.expire()
    assert b.streamed() == ["X"] and b.lingering() == []


def test_zero_linger_unsubscribes_at_once():
    b = book(linger=0)
    b.add("v1", "X")
    b.remove("v1", "X")
    assert b.streamed() == []


def test_removing_an_unknown_viewer_or_ticker_is_harmless():
    b = book()
    b.add("v1", "X")
    b.remove("v2", "X")
    b.remove("v1", "Y")
    assert b.streamed() == ["X"] and b.viewers("X") == 1


def test_drop_viewer_releases_all_its_tickers():
    b = book(linger=0)
    b.add("v1", "X")
    b.add("v1", "Y")
    b.add("v2", "Y")
    b.drop_viewer("v1")
    assert b.streamed() == ["Y"] and b.viewers("Y") == 1


def test_a_pinned_ticker_whose_viewer_leaves_does_not_linger():
    b = book()
    b.set_pinned(["P"])
    b.add("v1", "P")
    b.remove("v1", "P")
    assert b.lingering() == []


def test_unpinning_a_watched_ticker_keeps_it_while_watched():
    b = book(linger=0)
    b.set_pinned(["P"])
    b.add("v1", "P")
    b.set_pinned([])
    assert b.streamed() == ["P"]
    b.remove("v1", "P")
    assert b.streamed() == []


def test_unpinning_an_unwatched_ticker_drops_it_at_once():
    b = book()
    b.set_pinned(["P"])
    b.set_pinned([])
    assert b.streamed() == []


# -- a crashed web worker's demand expires -------------------------------------------------
def test_a_viewer_not_heard_for_longer_than_ttl_is_forgotten_and_then_the_linger_runs():
    clock = Clock()
    b = book(ttl=90, linger=300, clock=clock)
    b.add("crashed", "X")
    b.add("alive", "Y")
    for _ in range(3):  # "alive" re-announces every 30 s
        clock.t += 30
        b.refresh("alive", ["Y"])
        b.expire()
    assert b.viewers("X") == 1  # 90 s exactly: not yet
    clock.t += 0.5
    b.expire()
    assert b.viewers("X") == 0 and b.viewers("Y") == 1
    assert b.lingering() == ["X"]
    clock.t += 300
    b.refresh("alive", ["Y"])
    b.expire()
    assert b.streamed() == ["Y"]


def test_refresh_restores_demand_a_restarted_feed_never_heard():
    b = book()
    b.refresh("v1", ["X", "Y"])
    assert b.streamed() == ["X", "Y"]


# -- the cap ---------------------------------------------------------------------------------
def test_past_the_cap_the_asking_viewer_is_refused_once_and_others_are_unaffected():
    b = book(capacity=2)
    b.set_pinned(["P"])
    b.add("v1", "X")
    assert b.take_refusals() == []
    b.add("v2", "Y")
    assert b.streamed() == ["P", "X"]
    assert b.take_refusals() == [Refusal("v2", "Y")]
    b.refresh("v2", ["Y"])  # re-announced: still waiting, not told again
    assert b.take_refusals() == []
    assert b.waiting() == ["Y"]


def test_a_second_viewer_of_a_refused_ticker_is_refused_too():
    b = book(capacity=1)
    b.add("v1", "X")
    b.add("v2", "Y")
    b.add("v3", "Y")
    assert b.take_refusals() == [Refusal("v2", "Y"), Refusal("v3", "Y")]


def test_a_freed_slot_goes_to_the_longest_waiting_ticker():
    b = book(capacity=1, linger=0)
    b.add("v1", "X")
    b.add("v2", "Y")
    b.add("v3", "Z")
    b.take_refusals()
    b.remove("v1", "X")
    assert b.streamed() == ["Y"]
    assert b.waiting() == ["Z"]


def test_a_lingering_ticker_yields_its_slot_to_a_new_viewer_at_once():
    b = book(capacity=2, linger=300)
    b.add("v1", "X")
    b.add("v2", "Y")
    b.remove("v1", "X")
    b.add("v3", "Z")
    assert b.streamed() == ["Y", "Z"]
    assert b.take_refusals() == []


def test_the_longest_idle_lingering_ticker_is_evicted_first():
    clock = Clock()
    b = book(capacity=3, linger=300, clock=clock)
    for v, t in (("v1", "A"), ("v2", "B"), ("v3", "C")):
        b.add(v, t)
    b.remove("v1", "A")
    clock.t += 10
    b.remove("v2", "B")
    b.add("v4", "D")
    assert set(b.streamed()) == {"B", "C", "D"}


def test_a_ticker_back_from_idle_does_not_displace_one_admitted_meanwhile():
    b = book(capacity=1, linger=300)
    b.add("v1", "A")
    b.remove("v1", "A")   # A lingers
    b.add("v2", "B")      # B takes the slot from lingering A
    b.add("v1", "A")      # A is asked for again: a new request, behind B
    assert b.streamed() == ["B"]
    assert b.take_refusals() == [Refusal("v1", "A")]


def test_a_waiting_viewer_that_leaves_leaves_nothing_behind():
    b = book(capacity=1, linger=300)
    b.add("v1", "X")
    b.add("v2", "Y")
    b.remove("v2", "Y")
    assert b.lingering() == [] and b.waiting() == []


def test_pinning_more_displaces_the_newest_demand_and_tells_its_viewers():
    b = book(capacity=2)
    b.add("v1", "X")
    b.add("v2", "Y")
    assert b.take_refusals() == []
    b.set_pinned(["P"])
    assert b.streamed() == ["P", "X"]
    assert b.take_refusals() == [Refusal("v2", "Y")]
    b.set_pinned([])
    assert b.streamed() == ["X", "Y"]
    assert b.take_refusals() == []  # the feed asks after every change
    b.set_pinned(["P"])  # displaced again: told again
    assert b.take_refusals() == [Refusal("v2", "Y")]


def test_a_pinned_ticker_past_the_cap_is_refused_to_its_viewer():
    b = book(capacity=1)
    b.set_pinned(["P1", "P2"])
    b.add("v1", "P2")
    assert b.streamed() == ["P1"]
    assert b.take_refusals() == [Refusal("v1", "P2")]


def test_capacity_zero_streams_nothing():
    b = book(capacity=0)
    b.set_pinned(["P"])
    b.add("v1", "X")
    assert b.streamed() == []
    assert b.take_refusals() == [Refusal("v1", "X")]


@pytest.mark.parametrize("kwargs", [{"capacity": -1}, {"linger": -1}, {"ttl": 0}])
def test_bad_configuration_is_rejected(kwargs):
    with pytest.raises(ValueError):
        book(**kwargs)


def test_next_deadline_is_the_earliest_ttl_or_linger_end():
    clock = Clock(0)
    b = book(ttl=90, linger=300, clock=clock)
    b.add("v1", "X")
    clock.t = 50
    b.add("v2", "Y")
    assert b.next_deadline() == 90
    b.remove("v1", "X")  # X lingers until 350; Y's viewer expires at 140
    assert b.next_deadline() == 140
