import pytest

from market.core.shards import Shard


def test_shards_split_symbols_into_disjoint_sets_that_cover_all():
    tickers = [f"NSE:SYM{i}-EQ" for i in range(300)]
    shards = [Shard(k, 3) for k in range(3)]
    owners = [[s for s in shards if s.owns(t)] for t in tickers]
    assert all(len(o) == 1 for o in owners)
    assert all(40 < sum(s.owns(t) for t in tickers) < 160 for s in shards)  # roughly balanced


def test_shard_parsing_and_validation():
    assert Shard.parse("1/4") == Shard(1, 4) and str(Shard(1, 4)) == "1of4"
    for bad in ("4/4", "-1/2", "1", "a/b", "1/0"):
        with pytest.raises(ValueError):
            Shard.parse(bad)
