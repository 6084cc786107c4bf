"""Counting: per-cell outcome counts (`_counts`), the only per-run state that lives in memory,
and reading them back from samples.jsonl fast: a typed reader (`_file`), the side file
samples.tally.json that keeps the counts of a large file (`_side`), and the per-cell sample
indices both share (`_state`)."""

from harness.tally._counts import CellCounts, Tally, cell_key, request_of
from harness.tally._file import MIN_CACHED_BYTES, count_samples, counting_fingerprint, tally_samples
from harness.tally._side import side_file
from harness.tally._state import CountedSamples, SampleIndices

__all__ = [
    "MIN_CACHED_BYTES",
    "CellCounts",
    "CountedSamples",
    "SampleIndices",
    "Tally",
    "cell_key",
    "count_samples",
    "counting_fingerprint",
    "request_of",
    "side_file",
    "tally_samples",
]
