"""One entry point for simulated answers, shared by the in-process target and the server.

Judge requests (an LLM-judge prompt built by the judge detector) are answered by the
simulated judge (`harness.sim.judge`); every other conversation goes to the simulated chat
model. So the judge detector reaches the simulator as any other target.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.records import Message
from harness.sim import judge
from harness.sim.canon import normalise_messages
from harness.sim.model import SimModel, SimReply


def as_messages(messages: Sequence[Any]) -> tuple[Message, ...]:
    """Messages as `Message` records (roles outside the known set count as user)."""
    out = []
    for role, content in normalise_messages(messages):
        r = role if role in ("system", "user", "assistant", "tool") else "user"
        out.append(Message(r, content))  # type: ignore[arg-type]
    return tuple(out)


def respond(
    model: SimModel,
    messages: Sequence[Any],
    *,
    temperature: float,
    n: int,
    seed: int,
    max_tokens: int | None,
) -> list[SimReply]:
    """`n` simulated replies: the judge's verdict for judge prompts, else the chat model's."""
    records = as_messages(messages)
    if judge.is_judge_request(records):
        return [SimReply(judge.judge_reply(records, seed + j), "stop", False, "judge", False)
                for j in range(n)]
    return model.complete(messages, temperature=temperature, n=n, seed=seed,
                          max_tokens=max_tokens)
