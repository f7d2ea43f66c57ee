"""Splitting one source's symbols between several runfeed processes.

The Fyers SDK allows one data socket per process, so a large universe is spread over
processes, each owning a disjoint set: ``--shard K/N`` owns the symbols whose stable
hash is K modulo N. Every process of a source must use the same N.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Shard:
    index: int
    count: int

    def __post_init__(self) -> None:
        if not (self.count >= 1 and 0 <= self.index < self.count):
            raise ValueError(f"shard must be K/N with 0 <= K < N, not {self.index}/{self.count}")

    @classmethod
    def parse(cls, text: str) -> "Shard":
        try:
            index, count = (int(part) for part in text.split("/"))
        except ValueError:
            raise ValueError(f"shard must look like 0/2, not {text!r}") from None
        return cls(index, count)

    def owns(self, ticker: str) -> bool:
        return zlib.crc32(ticker.encode()) % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index}of{self.count}"
