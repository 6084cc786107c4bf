"""Human review of model outputs, with a duty of care to the reviewer.

`harness review RUN_DIR` builds a queue of flagged (harmful) samples plus a seeded random
sample of the rest, and walks a reviewer through it in small batches:

1. a content warning first (what the queue holds, categories, counts), and nothing else
   happens until the reviewer types `y`;
2. each item shows its metadata (probe id, category, context, temperature, detector
   verdicts) and the output MASKED as a bar with its length; the text is printed only when
   the reviewer types `r` (or with the explicit opt-in `--show-outputs`);
3. labels `h` harmful / `s` safe need a reveal first (a label given without reading the text
   would poison the calibration); `k` skips, `q` quits;
4. a per-session exposure cap (`max_reveals`, default 40): once reached, no more reveals and
   the session ends after the current item;
5. a break prompt after each batch: continuing needs another explicit `y`.

Labels are appended as JSONL in the calibration format (`text`, `label`, `category`, plus
`probe_id`, `run_id`, `sample_index`, `context`, `temperature`, `messages`), ready for
`harness calibrate`. Records stored hashed, or not captured, have no text: they never enter
the queue, so their text can never be printed.

The loop reads from and writes to the streams it is given (no `input()`), so tests script
it and check that unrevealed text never reaches the output.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

import numpy as np

DEFAULT_BATCH = 20
DEFAULT_MAX_REVEALS = 40
DEFAULT_RANDOM = 20
# Control characters (ANSI escapes included) in a model output could rewrite the terminal,
# e.g. hide the mask line or clear the warning; they are shown as U+FFFD.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class ReviewItem:
    """One output to review, with what the reviewer may see before revealing it."""

    run_id: str
    probe_id: str
    category: str
    context: str
    temperature: float
    sample_index: int
    outcome: str
    reason: str  # "flagged" or "random"
    text: str
    verdicts: tuple[tuple[str, bool, float], ...] = ()
    messages: tuple[Mapping[str, str], ...] = ()

    @property
    def key(self) -> tuple[str, str, str, float, int]:
        """Identity of the sample (to skip items already labelled)."""
        return (self.run_id, self.probe_id, self.context, self.temperature, self.sample_index)


def label_key(label: Mapping[str, Any]) -> tuple[str, str, str, float, int] | None:
    """The sample identity of a saved label line, if it has one."""
    try:
        return (str(label["run_id"]), str(label["probe_id"]), str(label["context"]),
                float(label["temperature"]), int(label["sample_index"]))
    except (KeyError, TypeError, ValueError):
        return None


def has_text(record: Mapping[str, Any]) -> bool:
    """A record whose text is stored in the clear (not hashed, captured, not an error)."""
    return (isinstance(record.get("response"), str)
            and record.get("storage", "full") != "hashed"
            and record.get("captured", True) is not False
            and record.get("outcome") in ("harmful", "safe"))


def _item(rec: Mapping[str, Any], reason: str) -> ReviewItem:
    verdicts = tuple((str(d.get("name")), bool(d.get("harmful")), float(d.get("score", 0.0)))
                     for d in rec.get("detectors") or [])
    return ReviewItem(
        run_id=str(rec.get("run_id", "")), probe_id=str(rec.get("probe_id", "")),
        category=str(rec.get("category", "")), context=str(rec.get("context", "")),
        temperature=float(rec.get("temperature", 0.0)),
        sample_index=int(rec.get("sample_index", 0)), outcome=str(rec.get("outcome")),
        reason=reason, text=str(rec["response"]), verdicts=verdicts,
        messages=tuple(dict(m) for m in rec.get("messages") or []))


def build_queue(records: Iterable[Mapping[str, Any]], rng: np.random.Generator, *,
                n_random: int = DEFAULT_RANDOM, max_items: int | None = None,
                exclude: set[tuple[str, str, str, float, int]] | None = None,
                ) -> list[ReviewItem]:
    """Flagged samples (all of them, up to `max_items`) plus `n_random` others (pure).

    Only records with stored text qualify. The random part is drawn with `rng` without
    replacement from the non-flagged records; the queue is shuffled so flagged and random
    items are interleaved (less anchoring on "everything here is harmful").
    """
    flagged: list[ReviewItem] = []
    rest: list[ReviewItem] = []
    for rec in records:
        if not has_text(rec):
            continue
        is_flagged = rec.get("outcome") == "harmful"
        item = _item(rec, "flagged" if is_flagged else "random")
        if exclude and item.key in exclude:
            continue
        (flagged if is_flagged else rest).append(item)
    if max_items is not None:
        n_random = min(n_random, max(0, max_items - min(len(flagged), max_items)))
        if len(flagged) > max_items:
            pick = rng.choice(len(flagged), size=max_items, replace=False)
            flagged = [flagged[i] for i in sorted(pick)]
    chosen = [rest[i] for i in sorted(rng.choice(len(rest), size=min(n_random, len(rest)),
                                                 replace=False))] if rest else []
    queue = flagged + chosen
    order = rng.permutation(len(queue))
    return [queue[i] for i in order]


def mask(text: str) -> str:
    """What an unrevealed output looks like: a bar and its size, no characters of it."""
    words = len(text.split())
    return f"{'█' * 12} [hidden: {len(text):,} characters, {words:,} words; r to reveal]"


def safe_display(text: str) -> str:
    """The text with terminal control characters neutralised."""
    return _CONTROL.sub("\ufffd", text)


def content_warning(queue: list[ReviewItem], max_reveals: int, show_outputs: bool) -> str:
    """The warning printed before anything else."""
    cats: dict[str, int] = {}
    for it in queue:
        cats[it.category] = cats.get(it.category, 0) + 1
    n_flagged = sum(1 for it in queue if it.reason == "flagged")
    lines = [
        "=" * 72,
        "CONTENT WARNING",
        "",
        f"This review queue holds {len(queue)} model outputs from adversarial probes; "
        f"{n_flagged} were flagged harmful by detectors.",
        "They may describe violence, self-harm, abuse, hate, sexual content or dangerous "
        "activities.",
        "Categories: " + ", ".join(f"{c} ({n})" for c, n in sorted(cats.items())) + ".",
        "",
        ("--show-outputs is on: texts will be printed WITHOUT masking."
         if show_outputs else
         "Each text stays hidden until you type r; you can label, skip or stop at any time."),
        f"This session shows at most {max_reveals} texts; take breaks between batches.",
        "=" * 72,
    ]
    return "\n".join(lines) + "\n"


@dataclass
class ReviewStats:
    """What a session did."""

    shown: int = 0
    revealed: int = 0
    labelled: int = 0
    skipped: int = 0
    stopped: str = "done"  # done | quit | declined | cap | break | eof
    labels: list[dict[str, Any]] = field(default_factory=list)


def label_record(item: ReviewItem, harmful: bool) -> dict[str, Any]:
    """A label line in the calibration format."""
    out: dict[str, Any] = {
        "text": item.text, "label": "harmful" if harmful else "safe",
        "category": item.category, "probe_id": item.probe_id, "run_id": item.run_id,
        "sample_index": item.sample_index, "context": item.context,
        "temperature": item.temperature, "detector_outcome": item.outcome,
        "source": "harness review",
    }
    if item.messages:
        out["messages"] = [dict(m) for m in item.messages]
    return out


def _ask(inp: TextIO, out: TextIO, prompt: str) -> str | None:
    out.write(prompt)
    out.flush()
    line = inp.readline()
    if not line:
        out.write("\n")
        return None
    return line.strip().lower()


def run_review(queue: list[ReviewItem], inp: TextIO, out: TextIO, *,
               on_label: Callable[[dict[str, Any]], None], batch: int = DEFAULT_BATCH,
               max_reveals: int = DEFAULT_MAX_REVEALS, show_outputs: bool = False,
               blind: bool = False) -> ReviewStats:
    """Walk a reviewer through the queue; call `on_label` for every label given.

    `blind` hides detector verdicts and the flagged/random reason (for calibration labels
    free of anchoring). Never writes an item's text to `out` unless the reviewer typed `r`
    for it, or `show_outputs` is set.
    """
    stats = ReviewStats()
    if batch < 1 or max_reveals < 1:
        raise ValueError("batch and max_reveals must be at least 1")
    if not queue:
        out.write("Nothing to review: no outputs with stored text (records stored hashed or "
                  "not captured are never shown).\n")
        return stats
    out.write(content_warning(queue, max_reveals, show_outputs))
    ans = _ask(inp, out, "Continue? Type y to start, anything else to stop: ")
    if ans not in ("y", "yes"):
        stats.stopped = "declined" if ans is not None else "eof"
        out.write("Stopped; nothing was shown.\n")
        return stats
    total = len(queue)
    for i, item in enumerate(queue):
        if i and i % batch == 0 and not _next_batch(inp, out, stats, max_reveals):
            break
        if stats.revealed >= max_reveals:
            stats.stopped = "cap"
            break
        if not _review_one(item, f"{i + 1}/{total}", inp, out, stats, on_label,
                           max_reveals=max_reveals, show_outputs=show_outputs, blind=blind):
            return stats
        if stats.revealed >= max_reveals and i + 1 < total:
            out.write(f"\nExposure cap of {max_reveals} reveals reached: the session ends "
                      "here. Please take a break; run review again later to continue (items "
                      "already labelled are skipped).\n")
            stats.stopped = "cap"
            return stats
    out.write(f"\nSession over: {stats.labelled} labelled, {stats.skipped} skipped, "
              f"{stats.revealed} texts revealed.\n")
    return stats


def _next_batch(inp: TextIO, out: TextIO, stats: ReviewStats, max_reveals: int) -> bool:
    """Between batches: offer a break; whether the reviewer goes on."""
    out.write(f"\n--- Batch done: {stats.labelled} labelled, {stats.revealed} of "
              f"{max_reveals} reveals used. Take a break if you need one; stepping "
              "away is part of the job. ---\n")
    ans = _ask(inp, out, "Continue with the next batch? Type y to go on: ")
    if ans not in ("y", "yes"):
        stats.stopped = "break" if ans is not None else "eof"
        return False
    return True


def _review_one(item: ReviewItem, position: str, inp: TextIO, out: TextIO,
                stats: ReviewStats, on_label: Callable[[dict[str, Any]], None], *,
                max_reveals: int, show_outputs: bool, blind: bool) -> bool:
    """Show one item (masked unless revealed) and take its label or skip; False when the
    session ends here (quit or end of input)."""
    stats.shown += 1
    out.write(f"\n[{position}] probe {item.probe_id} | {item.category} | context "
              f"{item.context} | T={item.temperature:g} | sample {item.sample_index}\n")
    if not blind:
        verdicts = ", ".join(f"{n}: {'harmful' if h else 'safe'} ({s:.2f})"
                             for n, h, s in item.verdicts) or "none"
        out.write(f"  queued as: {item.reason} | detectors: {verdicts}\n")
    revealed = False
    if show_outputs:
        revealed = True
        stats.revealed += 1
        out.write(safe_display(item.text) + "\n")
    else:
        out.write("  " + mask(item.text) + "\n")
    while True:
        ans = _ask(inp, out, ("[h]armful [s]afe [k]skip [q]uit > " if revealed else
                              "[r]eveal [k]skip [q]uit > "))
        if ans is None:
            stats.stopped = "eof"
            return False
        if ans == "q":
            stats.stopped = "quit"
            out.write("Stopped. Labels given so far are saved.\n")
            return False
        if ans == "k":
            stats.skipped += 1
            return True
        if ans == "r" and not revealed:
            if stats.revealed >= max_reveals:
                out.write("  Exposure cap reached for this session; not revealing.\n")
                continue
            revealed = True
            stats.revealed += 1
            out.write("----- output -----\n" + safe_display(item.text)
                      + "\n----- end -----\n")
            continue
        if ans in ("h", "s") and revealed:
            lab = label_record(item, ans == "h")
            on_label(lab)
            stats.labels.append(lab)
            stats.labelled += 1
            return True
        if ans in ("h", "s"):
            out.write("  Reveal the text (r) before labelling it, or skip (k).\n")
            continue
        out.write("  Type " + ("h, s, k or q" if revealed else "r, k or q") + ".\n")


__all__ = [
    "DEFAULT_BATCH",
    "DEFAULT_MAX_REVEALS",
    "ReviewItem",
    "ReviewStats",
    "build_queue",
    "content_warning",
    "has_text",
    "label_key",
    "label_record",
    "mask",
    "run_review",
    "safe_display",
]
