"""Request ids: recorded per sample by the engine (`harness.engine._sampling`), derived for
folders written before them (`harness.tally.request_of`), and counted per request with the
temperature-0 repeat rule applied first (`harness.tally.CellCounts.requests`)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from harness.engine._sampling import request_start
from harness.plan import WorkItem
from harness.records import Completion, SampleRecord
from harness.run import RunOptions, run_suite
from harness.store import iter_sample_dicts
from harness.suites import load_suite
from harness.tally import Tally, request_of, tally_samples
from harness.targets.scripted import ScriptedTarget


def _ids_by_cell(run_dir: Path) -> dict[str, dict[str, list[int]]]:
    out: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for r in iter_sample_dicts(run_dir / "samples.jsonl"):
        cell = f"{r['probe_id']}|{r['context']}|{r['temperature']}"
        out[cell][r["request_id"]].append(int(r["sample_index"]))
    return out


def test_choices_of_one_request_share_its_id(small_suite: Path, tmp_path: Path) -> None:
    result = run_suite(small_suite, RunOptions(out_dir=tmp_path / "out", progress=False,
                                               use_env=False))
    by_cell = _ids_by_cell(result.run_dir)
    shapes = sorted(sorted(len(v) for v in reqs.values()) for reqs in by_cell.values())
    # The sim takes `n`: every cell is one request of 4, except the first, split 2 + 2.
    assert shapes == [[2, 2]] + [[4]] * (len(by_cell) - 1)
    for reqs in by_cell.values():
        for rid, indexes in reqs.items():
            assert rid.endswith(f"#{min(indexes)}")
    recs = list(iter_sample_dicts(result.run_dir / "samples.jsonl"))
    assert SampleRecord.from_dict(recs[0]).request_id == recs[0]["request_id"]


def test_an_endpoint_without_n_gives_every_sample_its_own_request(
        small_suite: Path, tmp_path: Path) -> None:
    result = run_suite(load_suite(small_suite),
                       RunOptions(out_dir=tmp_path / "out", progress=False, use_env=False),
                       target=ScriptedTarget("I can't help with that.", supports_n=False))
    for reqs in _ids_by_cell(result.run_dir).values():
        assert sorted(len(v) for v in reqs.values()) == [1, 1, 1, 1]


def test_a_choice_answered_alone_gets_its_own_request() -> None:
    item = WorkItem(cell=None, start=10, count=3)  # type: ignore[arg-type]
    seeds = [5, 6, 7]
    batch = Completion("a", "stop", seed_sent=5)
    alone = Completion("b", "stop", seed_sent=7)
    assert [request_start(item, j, c, seeds) for j, c in enumerate([batch, batch, alone])] == \
        [10, 10, 12]
    assert request_start(item, 2, None, seeds) == 10
    assert request_start(item, 1, Completion("c", "stop"), seeds) == 10


def _rec(i: int, outcome: str, text: str, temperature: float = 1.0, **extra: object,
         ) -> dict[str, object]:
    return {"probe_id": "p", "context": "bare", "temperature": temperature,
            "category": "self-harm", "sample_index": i, "outcome": outcome,
            "response": text, "response_sha256": text, **extra}


def test_old_folders_derive_the_request_from_the_seed_sent() -> None:
    old = _rec(3, "safe", "x", seed_sent=99)
    assert request_of(old, "p|bare|1") == "p|bare|1@99"
    assert request_of(_rec(4, "safe", "x"), "p|bare|1") == "p|bare|1#4"
    assert request_of(_rec(4, "safe", "x", request_id="p|bare|1#0"), "c") == "p|bare|1#0"
    t = Tally()
    for i in range(4):
        t.add(_rec(i, "harmful" if i == 1 else "safe", f"t{i}", seed_sent=7 if i < 2 else 9))
    (cc,) = t.cells.values()
    assert sorted(cc.requests.values()) == [[0, 2], [1, 2]]


def test_temperature_0_repeats_are_not_observations_of_their_request() -> None:
    t = Tally()
    for i, text in enumerate(["same", "same", "same", "other"]):
        t.add(_rec(i, "safe", text, temperature=0.0, request_id="p|bare|0#0"))
    (cc,) = t.cells.values()
    assert cc.requests == {"p|bare|0#0": [0, 2]}
    assert cc.n_safe - cc.n_repeat_safe == 2


def test_resume_of_an_old_folder_counts_old_and_new_requests(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    lines = [_rec(i, "safe", f"t{i}", seed_sent=1) for i in range(2)] + \
        [_rec(i, "harmful", f"t{i}", request_id="p|bare|1#2") for i in (2, 3)]
    base = {"run_id": "r", "time": "t", "seed": 0, "family": "p", "messages": []}
    path.write_text("".join(json.dumps({**base, **r}) + "\n" for r in lines))
    tally, _done = tally_samples(path)
    (cc,) = tally.cells.values()
    assert cc.requests == {"p|bare|1@1": [0, 2], "p|bare|1#2": [2, 2]}


def test_the_side_file_keeps_the_request_counts(tmp_path: Path) -> None:
    from harness.tally import count_samples, side_file

    path = tmp_path / "samples.jsonl"
    base = {"run_id": "r", "time": "t", "seed": 0, "family": "p", "messages": []}
    lines = [_rec(i, "harmful" if i % 3 == 0 else "safe", f"t{i}",
                  request_id=f"p|bare|1#{i - i % 4}") for i in range(12)]
    path.write_text("".join(json.dumps({**base, **r}) + "\n" for r in lines))
    first = count_samples(path, min_cached_bytes=0)
    assert side_file(path).is_file()
    again = count_samples(path, min_cached_bytes=0)
    (cc,) = again.tally.cells.values()
    assert cc.requests == next(iter(first.tally.cells.values())).requests
    assert cc.requests == {"p|bare|1#0": [2, 4], "p|bare|1#4": [1, 4], "p|bare|1#8": [1, 4]}
