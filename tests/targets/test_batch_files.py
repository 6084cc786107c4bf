"""The Batch API file formats (pure): input lines, chunking, output lines to sample answers."""

from __future__ import annotations

from harness.records import Completion, CompletionRequest, Message
from harness.targets._batch_files import (
    answers_by_sample,
    chunk_lines,
    custom_id,
    input_line,
    read_line,
)
from harness.targets.base import BatchItem
from harness.targets.openai_wire import request_body, wire_messages

MSGS = (Message("system", "Be careful."), Message("tool", "pasted output"),
        Message("user", "hello"))


def body(n: int, *, prompt: int = 10, completion: int | None = 7) -> dict[str, object]:
    return {"model": "m", "choices": [{"index": i, "message": {"content": f"a{i}"},
                                       "finish_reason": "stop"} for i in reversed(range(n))],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion}}


def test_input_line_is_the_request_as_the_synchronous_target_sends_it() -> None:
    item = BatchItem("p|bare|0.7", 4, CompletionRequest(MSGS, 0.7, 64, n=3, seed=11))
    line = input_line(item, "gpt-x", request_body)
    assert line["custom_id"] == custom_id(item) == "p|bare|0.7#4"
    assert line["method"] == "POST" and line["url"] == "/v1/chat/completions"
    assert line["body"] == {"model": "gpt-x", "messages": wire_messages(MSGS),
                            "temperature": 0.7, "max_tokens": 64, "n": 3, "seed": 11}
    assert line["body"]["messages"][1] == {"role": "system",
                                           "content": "Tool output:\npasted output"}
    single = input_line(BatchItem("p|bare|0.7", 0, CompletionRequest(MSGS, 0.0, 8)), "m",
                        request_body)
    assert "n" not in single["body"] and "seed" not in single["body"]


def test_chunks_respect_the_request_and_byte_limits() -> None:
    lines = [{}] * 7
    assert chunk_lines(lines, [1] * 7, max_requests=3) == [range(0, 3), range(3, 6),
                                                           range(6, 7)]
    assert chunk_lines(lines, [4, 4, 4, 1, 1, 9, 1], max_bytes=9) == [
        range(0, 2), range(2, 5), range(5, 6), range(6, 7)]
    assert chunk_lines([], []) == []


def test_an_answered_line_shares_out_completion_tokens_in_index_order() -> None:
    got = read_line({"custom_id": "c", "response": {"status_code": 200, "body": body(3)}},
                    n=3, seed_sent=5, where="batch b")
    assert got.error is None and [c.text for c in got.completions] == ["a0", "a1", "a2"]
    assert [c.tokens_out for c in got.completions] == [3, 2, 2]  # 7 tokens over 3 choices
    assert all(c.tokens_in == 10 and c.seed_sent == 5 for c in got.completions)


def test_error_shapes_each_say_what_came_back() -> None:
    filtered = read_line({"custom_id": "c", "response": {"status_code": 400, "body": {
        "error": {"code": "content_filter", "message": "no"}}}}, n=2, seed_sent=1, where="b")
    assert len(filtered.completions) == 2 and all(c.blocked for c in filtered.completions)
    rejected = read_line({"custom_id": "c", "response": {"status_code": 429, "body": {
        "error": {"message": "quota"}}}}, n=1, seed_sent=1, where="batch b")
    assert rejected.error == "batch b: request c answered HTTP 429: quota"
    expired = read_line({"custom_id": "c", "response": None, "error": {
        "code": "batch_expired", "message": "not run"}}, n=1, seed_sent=1, where="b")
    assert expired.error == "b: request c failed (batch_expired: not run)"
    bad = read_line({"custom_id": "c", "response": {"status_code": 200, "body": {
        "choices": "x"}}}, n=1, seed_sent=1, where="b")
    assert bad.error is not None and "`choices` is a string" in bad.error
    assert read_line(["x"], n=1, seed_sent=1, where="b").error == \
        "b: a result line without a custom_id"


def test_answers_by_sample_maps_choices_and_names_what_is_missing() -> None:
    requests = [["c0", "p|bare|0.7", 0, 2, 1], ["c1", "p|bare|0.7", 2, 2, 3],
                ["c2", "q|bare|0.7", 0, 1, 4]]
    lines = [read_line({"custom_id": "c0", "response": {"status_code": 200, "body": body(2)}},
                       n=2, seed_sent=1, where="b"),
             read_line({"custom_id": "c1", "response": {"status_code": 200, "body": body(1)}},
                       n=2, seed_sent=3, where="b"),
             read_line({"custom_id": "other-plan", "response": {"status_code": 200,
                                                               "body": body(1)}},
                       n=1, seed_sent=None, where="b")]
    got = answers_by_sample(requests, lines, missing="batch b (expired)")
    assert set(got) == {("p|bare|0.7", i) for i in range(4)} | {("q|bare|0.7", 0)}
    assert isinstance(got[("p|bare|0.7", 1)], Completion)
    assert got[("p|bare|0.7", 1)].text == "a1"  # type: ignore[union-attr]
    assert isinstance(got[("p|bare|0.7", 2)], Completion)
    assert got[("p|bare|0.7", 3)] == "batch b (expired): request c1 answered 1 of 2 choices"
    assert got[("q|bare|0.7", 0)] == "batch b (expired): no result for request c2"
