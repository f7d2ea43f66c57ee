"""The tick journal on its own: round trip, a torn last write, cleanup, the size cap, and a
directory that stops being writable (market/feed/journal.py)."""

from __future__ import annotations

import logging
import shutil

from market.core.types import Tick
from market.feed.journal import TickJournal, decode, encode


def ticks(n: int, start: int = 0) -> list[Tick]:
    return [Tick(f"T:{i % 3}", 1_700_000_000 + i * 0.25, 100 + i * 0.05, float(10 * i), None, None)
            for i in range(start, start + n)]


def opened(path, **kw) -> TickJournal:
    j = TickJournal(path, max_bytes=kw.pop("max_bytes", 1 << 30), **kw)
    j.open()
    return j


def test_records_come_back_in_order_with_their_numbers_after_a_reopen(tmp_path):
    j = opened(tmp_path / "j")
    for t in ticks(10):
        j.append(t)
    j.sync()
    assert j.position() == {"journal": j.id, "seq": 10}
    again = opened(tmp_path / "j")
    assert again.id == j.id and again.seq == 10 and again.last == ticks(10)[-1]
    assert list(again.read(4)) == list(zip(range(5, 11), ticks(10)[4:]))
    assert encode(ticks(1)[0]).endswith(b"\n") and decode(encode(ticks(1)[0])) == ticks(1)[0]


def test_a_torn_or_corrupt_last_record_is_cut_off_cleanly(tmp_path, caplog):
    j = opened(tmp_path / "j")
    for t in ticks(5):
        j.append(t)
    j.sync()
    segment = next((tmp_path / "j").glob("*.tj"))
    whole = segment.read_bytes()
    with segment.open("ab") as f:
        f.write(encode(ticks(1, 5)[0])[:-7])  # a power cut mid-write
    with caplog.at_level(logging.WARNING, "market.feed"):
        again = opened(tmp_path / "j")
    assert again.seq == 5 and segment.read_bytes() == whole
    assert "torn" in caplog.text
    bad = bytearray(encode(ticks(1, 5)[0]))
    bad[12] ^= 1  # a flipped bit: the checksum catches it
    with segment.open("ab") as f:
        f.write(bytes(bad))
    assert opened(tmp_path / "j").seq == 5 and segment.read_bytes() == whole
    again = opened(tmp_path / "j")
    again.append(ticks(1, 5)[0])  # numbering goes on after the last intact record
    again.sync()
    assert [s for s, _ in again.read(0)] == [1, 2, 3, 4, 5, 6]


def test_segments_a_checkpoint_covers_are_deleted_the_open_one_kept(tmp_path):
    j = opened(tmp_path / "j", segment_seconds=0)  # a new segment per batch
    for batch in range(4):
        for t in ticks(5, batch * 5):
            j.append(t)
        j.sync()
    assert j.stats()["segments"] == 4
    before = j.bytes
    j.covered({"journal": j.id, "seq": 12})  # segments 1-5 and 6-10 wholly, 11-15 partly
    j.sync()
    assert j.stats()["segments"] == 2 and j.bytes < before
    assert [s for s, _ in j.read(10)] == list(range(11, 21))
    j.covered({"journal": "another", "seq": 100})  # not this journal's checkpoint: ignored
    j.sync()
    assert j.stats()["segments"] == 2
    j.covered({"journal": j.id, "seq": 20})
    j.sync()
    assert j.stats()["segments"] == 1  # the open segment stays, so numbering survives a restart
    assert opened(tmp_path / "j").seq == 20


def test_the_size_cap_is_loud_leaves_a_known_gap_and_clears_once_covered(tmp_path, caplog):
    line = len(encode(ticks(1)[0]))
    j = opened(tmp_path / "j", max_bytes=line * 12, segment_seconds=0)
    j.segment_bytes = line * 4
    for t in ticks(10):
        j.append(t)
    j.sync()
    checkpoint = {"journal": j.id, "seq": 10}
    assert j.reproduces({"journal": j.id, "seq": 0}) and not j.full
    with caplog.at_level(logging.ERROR, "market.feed"):
        for t in ticks(5, 10):
            j.append(t)
        j.sync()
    assert j.full and j.unjournaled == 5 and j.gap_upto == 15
    assert "size cap" in caplog.text and "not journaled" in caplog.text
    assert not j.reproduces(checkpoint)  # ticks 11-15 are not on disk
    j.covered({"journal": j.id, "seq": 15})  # a checkpoint stored them: space again
    for t in ticks(3, 15):
        j.append(t)
    j.sync()
    assert not j.full and j.reproduces({"journal": j.id, "seq": 15})
    assert [s for s, _ in j.read(15)] == [16, 17, 18]


def test_an_unwritable_directory_is_loud_and_journaling_resumes_when_it_is_back(tmp_path, caplog):
    j = opened(tmp_path / "j", segment_seconds=0)
    for t in ticks(3):
        j.append(t)
    j.sync()
    shutil.rmtree(tmp_path / "j")  # (root ignores permissions; a vanished directory cannot be written either)
    with caplog.at_level(logging.ERROR, "market.feed"):
        for t in ticks(2, 3):
            j.append(t)
        j.sync()
    assert j.failing and "FileNotFoundError" in j.failing and j.unjournaled == 2
    assert "journal cannot take ticks" in caplog.text
    (tmp_path / "j").mkdir()
    for t in ticks(2, 5):
        j.append(t)
    j.sync()
    assert j.failing is None and [s for s, _ in j.read(0)] == [6, 7]


def test_numbering_skips_to_a_checkpoint_the_disk_does_not_reach(tmp_path):
    j = opened(tmp_path / "j")
    for t in ticks(3):
        j.append(t)
    j.sync()
    again = opened(tmp_path / "j")
    again.skip_to(10)  # the stored checkpoint says 10: ticks 4-10 are in the database, not here
    for t in ticks(2, 3):
        again.append(t)
    again.sync()
    assert again.position()["seq"] == 12
    assert [s for s, _ in again.read(10)] == [11, 12]
    assert opened(tmp_path / "j").seq == 12


def test_journals_set_aside_are_kept_only_the_newest_three(tmp_path, caplog):
    from market.feed.journal import ASIDE_KEPT

    names = []
    for run in range(ASIDE_KEPT + 2):
        j = opened(tmp_path / "j")
        for t in ticks(3, run * 3):
            j.append(t)
        j.sync()
        names.append(j.id)
        with caplog.at_level(logging.WARNING, "market.feed"):
            j.set_aside()  # as at a start against another database
        assert j.seq == 0 and not list(j.read(0))
    asides = sorted(p for p in tmp_path.iterdir() if p.name.startswith("j.aside-"))
    assert len(asides) == ASIDE_KEPT
    # The newest ones are kept, each with its own records.
    kept = [opened(p).id for p in asides]
    assert kept == names[-ASIDE_KEPT:]
    assert caplog.text.count("older than the newest") == 2
    assert (tmp_path / "j").is_dir()  # the live journal is never touched
