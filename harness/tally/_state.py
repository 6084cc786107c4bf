"""The state of counting a samples.jsonl: per-cell sample indices, the counts, and what of the
file they cover (shared by the reader, `_file`, and the side file, `_side`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from harness.tally._counts import Tally

_MAX_BITMAP_INDEX = 1 << 24


class SampleIndices:
    """The sample indices present in one cell: a bitmap (the usual 0..n-1), plus a set for
    indices a bitmap cannot hold (negative or huge ones in a hand-made file)."""

    __slots__ = ("bits", "other")

    def __init__(self) -> None:
        self.bits = bytearray()
        self.other: set[int] = set()

    def add(self, i: int) -> bool:
        """Mark `i` present; False when it already was (a duplicate record)."""
        if 0 <= i < _MAX_BITMAP_INDEX:
            byte, bit = i >> 3, 1 << (i & 7)
            if byte >= len(self.bits):
                self.bits.extend(bytes(byte + 1 - len(self.bits) + len(self.bits) // 2))
            if self.bits[byte] & bit:
                return False
            self.bits[byte] |= bit
            return True
        if i in self.other:
            return False
        self.other.add(i)
        return True

    def __iter__(self) -> Iterator[int]:
        for byte, value in enumerate(self.bits):
            if value:
                yield from (byte * 8 + j for j in range(8) if value >> j & 1)
        yield from sorted(self.other)

    def ranges(self) -> list[list[int]]:
        """Runs of consecutive indices, [[start, stop), ...] (how the side file keeps them)."""
        out: list[list[int]] = []
        for i in self:
            if out and out[-1][1] == i:
                out[-1][1] = i + 1
            else:
                out.append([i, i + 1])
        return out

    @classmethod
    def from_ranges(cls, ranges: list[list[int]]) -> SampleIndices:
        s = cls()
        for start, stop in ranges:
            if start < 0 or stop > _MAX_BITMAP_INDEX:
                for i in range(start, stop):
                    s.add(i)
                continue
            s.bits.extend(bytes(max(0, (stop + 7) // 8 - len(s.bits))))
            i = start
            while i < stop and i & 7:  # the partial byte at the start
                s.bits[i >> 3] |= 1 << (i & 7)
                i += 1
            whole = (stop - i) // 8
            s.bits[i >> 3:(i >> 3) + whole] = b"\xff" * whole
            for j in range(i + whole * 8, stop):  # the partial byte at the end
                s.bits[j >> 3] |= 1 << (j & 7)
        return s


@dataclass
class CountedSamples:
    """The counts of a samples.jsonl and, per cell key, the sample indices present."""

    tally: Tally
    indices: dict[str, SampleIndices]

    def done(self) -> set[tuple[str, int]]:
        """(cell key, sample index) of every sample present (what a resume skips)."""
        return {(key, i) for key, idx in self.indices.items() for i in idx}


@dataclass
class Progress:
    """How far the typed reader has come: the counts and what of the file they cover."""

    counted: CountedSamples
    covered_bytes: int = 0
    covered_lines: int = 0
    crc32: int = 0
    stat: tuple[int, int, int, int] = (-1, -1, -1, -1)
    """(size, mtime_ns, inode, device) of samples.jsonl when it was opened for this read."""
    settled: bool = False
    """The side file may be trusted on `stat` alone (see `_resume_from_side`)."""
