"""The per-connection send window and held-frame book (market.core.outbox)."""

from __future__ import annotations

import pytest

from market.core.outbox import FlowLimits, Held, Outbox, SendFrame, Snapshot, resync_plan

LIMITS = FlowLimits(frames=8, bytes=1000, stall_seconds=30)


def send_until_full(box: Outbox, nbytes: int = 10) -> list[int]:
    """Send frames while there is room; the sync numbers the outbox asked for."""
    syncs = []
    while box.room():
        seq = box.sent(nbytes)
        if seq is not None:
            syncs.append(seq)
    return syncs


# -- window -------------------------------------------------------------------------------
def test_the_frame_window_closes_after_its_size_with_a_sync_every_quarter_and_at_the_end():
    box = Outbox(limits=LIMITS)
    syncs = send_until_full(box)
    assert box.seq == 8 and box.unacked == 8
    assert syncs == [2, 4, 6, 8], "a sync every frames/4, and the last one covers the whole window"
    assert not box.room()


def test_the_byte_window_closes_too():
    box = Outbox(limits=LIMITS)
    syncs = send_until_full(box, nbytes=300)
    assert box.seq == 4 and box.unacked_bytes == 1200
    assert syncs[-1] == 4


def test_an_ack_reopens_the_window_for_frames_and_bytes_up_to_that_sync():
    box = Outbox(limits=LIMITS)
    send_until_full(box, nbytes=100)  # 8 frames, 800 bytes: closed by frames
    assert not box.ack(4, now=1.0), "not behind: nothing to catch up"
    assert box.unacked == 4 and box.unacked_bytes == 400
    assert box.room()
    box.ack(8, now=2.0)
    assert box.unacked == 0 and box.unacked_bytes == 0


def test_a_repeated_or_older_ack_is_harmless_and_a_future_one_is_refused():
    box = Outbox(limits=LIMITS)
    send_until_full(box)
    box.ack(6, now=1.0)
    box.ack(6, now=1.0)
    box.ack(2, now=1.0)
    assert box.acked == 6
    for bad in (9, -1, "8", 8.0, None, True):
        with pytest.raises(ValueError):
            box.ack(bad, now=1.0)  # type: ignore[arg-type]


def test_forced_sync_points_are_not_repeated():
    box = Outbox(limits=LIMITS)
    box.sent(10)
    assert box.mark() == 1
    assert box.mark() is None, "already current"


def test_marks_are_bounded_and_an_ack_older_than_all_of_them_frees_no_bytes():
    box = Outbox(limits=FlowLimits(frames=10**6, bytes=10**9))
    for _ in range(1000):
        box.sent(10)
        box.mark()
    assert len(box._marks) <= 64
    box.ack(5, now=1.0)  # its mark was forgotten: frames acked, bytes conservatively not
    assert box.acked == 5 and box.acked_bytes == 0
    box.ack(1000, now=1.0)
    assert box.unacked_bytes == 0


def test_window_zero_disables_flow_control():
    box = Outbox(limits=FlowLimits(frames=0, bytes=0))
    for _ in range(10_000):
        assert box.room()
        assert box.sent(1000) is None
    assert box.window_open()


@pytest.mark.parametrize("kwargs", [{"frames": -1}, {"bytes": -1}, {"stall_seconds": 0}, {"frames": 5, "bytes": 0}])
def test_bad_limits_are_refused(kwargs):
    with pytest.raises(ValueError):
        FlowLimits(**kwargs)


# -- held frames: latest wins, bounded by streams ------------------------------------------
def test_holding_puts_the_connection_behind_once_and_keeps_only_the_newest_frame_per_stream():
    box = Outbox(limits=LIMITS)
    send_until_full(box)
    newly = [box.hold(("A", "5s"), f"a{i}", time=100, ticks=i, now=1.0) for i in range(1000)]
    newly += [box.hold(("B", "5s"), f"b{i}", time=100 + 5 * (i // 10), ticks=i, now=1.0) for i in range(1000)]
    assert newly[0] is True and not any(newly[1:]), "told once"
    assert box.behind and box.times_behind == 1
    assert len(box.held) == 2, "memory bounded by the number of streams, not of frames"
    assert box.held[("A", "5s")].text == "a999" and not box.held[("A", "5s")].mixed
    b = box.held[("B", "5s")]
    assert b.text == "b999" and b.mixed and b.min_time == 100
    assert box.dropped == 1998
    assert not box.room(), "nothing live goes while behind"


def test_an_older_update_does_not_replace_a_newer_held_one_unless_it_is_a_revision():
    box = Outbox(limits=LIMITS)
    box.hold("k", "new", time=200, ticks=9, now=0.0)
    box.hold("k", "old", time=200, ticks=3, now=0.0)
    box.hold("k", "older", time=100, ticks=50, now=0.0)
    assert box.held["k"].text == "new" and not box.held["k"].mixed
    box.hold("k", "revision", time=100, ticks=1, now=0.0, revised=True)
    held = box.held["k"]
    assert held.text == "revision" and held.mixed and held.min_time == 100


def test_catching_up_drains_streams_in_order_and_ends_behind_only_when_the_book_is_empty():
    box = Outbox(limits=LIMITS)
    send_until_full(box)
    box.hold("a", "a", time=1, ticks=1, now=0.0)
    box.hold("b", "b", time=1, ticks=1, now=0.0)
    assert box.ack(8, now=1.0) is True, "the window opened while behind: catch up"
    assert not box.room(), "still behind until the held streams went out"
    assert box.next_held()[0] == "a"
    assert not box.caught_up()
    assert box.next_held()[0] == "b"
    assert box.next_held() is None
    assert box.caught_up() and not box.behind and box.room()
    assert not box.caught_up(), "reported once"


def test_a_resubscribed_stream_drops_what_was_held_for_it():
    box = Outbox(limits=LIMITS)
    box.hold("a", "a", time=1, ticks=1, now=0.0)
    box.discard("a")
    box.discard("never held")
    assert box.next_held() is None


def test_a_client_behind_without_acks_stalls_after_stall_seconds_and_an_ack_restarts_the_clock():
    box = Outbox(limits=LIMITS)
    send_until_full(box)
    box.hold("a", "a", time=1, ticks=1, now=100.0)
    assert not box.stalled(129.9)
    assert box.stalled(130.0)
    box.ack(4, now=129.0)  # progress, still behind (window not open: 4 unacked of 8? it is open)
    assert not box.stalled(150.0)
    assert box.stalled(159.0)
    assert not Outbox(limits=LIMITS).stalled(10**9), "never stalled when not behind"


# -- resync decisions -------------------------------------------------------------------
def held(time: int, *, min_time: int | None = None, mixed: bool = False) -> Held:
    return Held(text=f"frame@{time}", time=time, ticks=1, min_time=time if min_time is None else min_time,
                mixed=mixed, extra={"time": time})


def test_updates_of_the_last_sent_candle_only_resync_with_the_held_frame():
    assert resync_plan(held(100), last_sent_time=100) == SendFrame("frame@100", {"time": 100})


def test_a_stream_that_had_no_candle_gets_its_only_candle_as_a_frame():
    assert resync_plan(held(100), last_sent_time=-1) == SendFrame("frame@100", {"time": 100})


def test_a_new_bucket_while_behind_needs_a_snapshot_from_the_last_sent_candle():
    # The last sent candle may have changed (its final state) before the next one opened.
    assert resync_plan(held(105), last_sent_time=100) == Snapshot(since=100)
    assert resync_plan(held(110, min_time=105, mixed=True), last_sent_time=100) == Snapshot(since=100)


def test_a_revised_older_candle_moves_the_snapshot_back_to_it():
    assert resync_plan(held(105, min_time=50, mixed=True), last_sent_time=100) == Snapshot(since=50)
    assert resync_plan(held(50), last_sent_time=100) == Snapshot(since=50)


def test_a_stream_without_sent_candles_and_several_held_ones_reads_from_the_oldest_held():
    assert resync_plan(held(110, min_time=100, mixed=True), last_sent_time=-1) == Snapshot(since=100)
