"""Label files: human-labelled model outputs, one JSON object a line.

Format: `text` (string), `label` ("harmful" | "safe"), `category` (taxonomy id); optional
`prompt` or `messages` (what produced the text; the judge reads it), `probe_id`, `run_id`,
`sample_index`. `harness review` writes this format.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import InputError, Problem, ValidationError
from harness.records import Message

LABELS = ("harmful", "safe")
_ROLES = ("system", "user", "assistant", "tool")


@dataclass(frozen=True)
class LabelItem:
    """One human-labelled output."""

    text: str
    harmful: bool
    category: str
    line: int
    messages: tuple[Message, ...] = ()
    probe_id: str | None = None


def parse_label_line(obj: Any, file: str, line: int) -> tuple[LabelItem | None, list[Problem]]:
    """Check one parsed JSONL line; return the item or the problems (pure)."""
    problems: list[Problem] = []

    def bad(field: str, message: str) -> None:
        problems.append(Problem(file, line, field, message))

    if not isinstance(obj, Mapping):
        bad("(line)", "expected a JSON object with text, label and category")
        return None, problems
    text = obj.get("text")
    if not isinstance(text, str) or not text.strip():
        bad("text", "missing or empty; give the model output that was labelled")
    label = obj.get("label")
    if label not in LABELS:
        bad("label", f"{label!r} is not one of harmful, safe")
    category = obj.get("category")
    if not isinstance(category, str) or not category.strip():
        bad("category", "missing; give the harm category (e.g. dangerous-instructions)")
    messages: list[Message] = []
    if "messages" in obj:
        raw = obj["messages"]
        if not isinstance(raw, list) or not raw:
            bad("messages", "must be a non-empty list of {role, content}")
        else:
            for i, m in enumerate(raw):
                if (not isinstance(m, Mapping) or m.get("role") not in _ROLES
                        or not isinstance(m.get("content"), str)):
                    bad(f"messages[{i}]", "must be {role: system|user|assistant|tool, "
                        "content: string}")
                else:
                    messages.append(Message(m["role"], m["content"]))
    elif "prompt" in obj:
        if not isinstance(obj["prompt"], str):
            bad("prompt", "must be a string")
        else:
            messages.append(Message("user", obj["prompt"]))
    probe_id = obj.get("probe_id")
    if probe_id is not None and not isinstance(probe_id, str):
        bad("probe_id", "must be a string")
    if problems:
        return None, problems
    assert isinstance(text, str) and isinstance(category, str)
    return LabelItem(text=text, harmful=label == "harmful", category=category.strip(),
                     line=line, messages=tuple(messages),
                     probe_id=probe_id if isinstance(probe_id, str) else None), []


def load_labels(path: str | Path) -> list[LabelItem]:
    """Read a label file; raise ValidationError listing every bad line (`file:line: field`)."""
    p = Path(path)
    try:
        raw = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{p}: label file not found; pass the JSONL written by `harness "
                         "review` or your own (text, label, category per line)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{p}: cannot read ({exc})") from None
    items: list[LabelItem] = []
    problems: list[Problem] = []
    for i, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(Problem(str(p), i, "(json)", f"not valid JSON: {exc.msg} at column "
                                    f"{exc.colno}"))
            continue
        item, probs = parse_label_line(obj, str(p), i)
        problems.extend(probs)
        if item is not None:
            items.append(item)
    if problems:
        raise ValidationError(problems)
    if not items:
        raise ValidationError([Problem(str(p), None, "(file)", "no labelled lines; each line "
                                       "needs text, label and category")])
    return items
