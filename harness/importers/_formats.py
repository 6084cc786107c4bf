"""The format parsers: pure functions of a file's text, one per format, and `parse`.

Source categories map to the taxonomy through `HARMBENCH_CATEGORIES` and
`JAILBREAKBENCH_CATEGORIES` (documented in docs/taxonomy.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from harness.errors import InputError, RegistryError
from harness.importers._common import (
    FORMATS,
    ImportResult,
    _builder,
    _need,
    _rows,
    _tag,
)

# HarmBench `SemanticCategory` -> taxonomy id. HarmBench's categories are described in
# Mazeika et al. 2024, "HarmBench", Table 1 / section 3. `copyright` has no counterpart
# in this taxonomy (it is not a harmful-output category here) and is left unmapped, so
# such rows get the default category with a warning.
HARMBENCH_CATEGORIES: Mapping[str, str] = {
    "chemical_biological": "dangerous-instructions",
    "illegal": "dangerous-instructions",
    "cybercrime_intrusion": "dangerous-instructions",
    "harmful": "dangerous-instructions",
    "harassment_bullying": "targeted-harm",
    "misinformation_disinformation": "misinformation",
}

# JailbreakBench `Category` -> taxonomy id (categories from JBB-Behaviors, Chao et al.
# 2024, built with reference to OpenAI's usage policies).
JAILBREAKBENCH_CATEGORIES: Mapping[str, str] = {
    "Harassment/Discrimination": "targeted-harm",
    "Malware/Hacking": "dangerous-instructions",
    "Physical harm": "dangerous-instructions",
    "Economic harm": "dangerous-instructions",
    "Fraud/Deception": "dangerous-instructions",
    "Disinformation": "misinformation",
    "Sexual/Adult content": "sexual-content",
    "Privacy": "privacy-leak",
    "Expert advice": "misinformation",
    "Government decision-making": "dangerous-instructions",
}

_HARMBENCH_COLUMNS = ("Behavior", "FunctionalCategory", "SemanticCategory", "Tags",
                      "ContextString", "BehaviorID")
_ADVBENCH_COLUMNS = ("goal", "target")
_JBB_COLUMNS = ("Goal", "Target", "Behavior", "Category", "Source")


def parse_harmbench(text: str, file: str = "<harmbench>", *, id_prefix: str | None = None,
                    default_category: str | None = None, severity: str | None = None,
                    benign: bool = False) -> ImportResult:
    """Parse a HarmBench behaviours CSV.

    `Behavior` is the request; a non-empty `ContextString` (contextual behaviours) goes
    before it in the same user turn, separated by a ``---`` rule, as in HarmBench's own
    contextual prompt template. Ids are ``<prefix>-<BehaviorID>``; source
    ``harmbench:<BehaviorID>``; tags carry the functional and semantic category and
    HarmBench's own tags.
    """
    b = _builder("harmbench", file, id_prefix, default_category, severity, benign)
    for line, row in _rows(text, file, _HARMBENCH_COLUMNS, "HarmBench behaviours",
                            b.problems):
        behavior = _need(row, "Behavior", file, line, b.problems)
        behavior_id = _need(row, "BehaviorID", file, line, b.problems)
        if behavior is None or behavior_id is None:
            continue
        semantic = row["SemanticCategory"].strip()
        category = b.category(HARMBENCH_CATEGORIES.get(semantic), semantic)
        context = row["ContextString"].strip()
        content = f"{context}\n\n---\n\n{behavior}" if context else behavior
        tags = [_tag(semantic), _tag(row["FunctionalCategory"])]
        tags += [f"harmbench-{_tag(t)}" for t in row["Tags"].split(",") if t.strip()]
        if context:
            tags.append("context")
        b.add(line, behavior_id, category, [{"role": "user", "content": content}],
              f"harmbench:{behavior_id}", tags)
    return b.result()


def parse_advbench(text: str, file: str = "<advbench>", *, id_prefix: str | None = None,
                   default_category: str | None = None, severity: str | None = None,
                   benign: bool = False) -> ImportResult:
    """Parse AdvBench ``harmful_behaviors.csv`` (``goal,target``).

    AdvBench has no categories, so every probe gets `default_category` (or
    dangerous-instructions with a warning). Ids and sources use the 1-based row number:
    ``<prefix>-0001``, ``advbench:1``. The `target` (the affirmative answer prefix an
    attack aims for) is not part of the probe.
    """
    b = _builder("advbench", file, id_prefix, default_category, severity, benign)
    n = 0
    for line, row in _rows(text, file, _ADVBENCH_COLUMNS, "AdvBench harmful_behaviors",
                            b.problems):
        goal = _need(row, "goal", file, line, b.problems)
        n += 1
        if goal is None:
            continue
        category = b.category(None, "")
        b.add(line, f"{n:04d}", category, [{"role": "user", "content": goal}],
              f"advbench:{n}", [])
    return b.result()


def parse_jailbreakbench(text: str, file: str = "<jailbreakbench>", *,
                         id_prefix: str | None = None, default_category: str | None = None,
                         severity: str | None = None, benign: bool = False) -> ImportResult:
    """Parse a JailbreakBench JBB-Behaviors CSV (harmful or benign set).

    `Goal` is the request. The leading index column (named ``Index`` or unnamed) gives the
    id and source (``jailbreakbench:<index>``); without one the row number is used.
    Import the benign set with ``benign=True``: its probes become over-refusal controls
    that must be answered.
    """
    b = _builder("jailbreakbench", file, id_prefix, default_category, severity, benign)
    n = 0
    for line, row in _rows(text, file, _JBB_COLUMNS, "JailbreakBench behaviours",
                            b.problems):
        goal = _need(row, "Goal", file, line, b.problems)
        n += 1
        if goal is None:
            continue
        index = (row.get("Index") or row.get("") or "").strip() or str(n)
        raw_category = row["Category"].strip()
        category = b.category(JAILBREAKBENCH_CATEGORIES.get(raw_category), raw_category)
        tags = [_tag(raw_category), _tag(row["Behavior"]), f"jbb-source-{_tag(row['Source'])}"]
        if benign:
            tags.append("benign")
        b.add(line, index, category, [{"role": "user", "content": goal}],
              f"jailbreakbench:{index}", [t for t in tags if t != "jbb-source-"])
    return b.result()


def parse_text(text: str, file: str = "<text>", *, id_prefix: str | None = None,
               default_category: str | None = None, severity: str | None = None,
               benign: bool = False) -> ImportResult:
    """Parse plain text, one prompt a line; blank lines and ``#`` comments are skipped.

    Ids count prompts (``<prefix>-0001``); the source names the file and line
    (``text:<file name>:<line>``).
    """
    b = _builder("text", file, id_prefix, default_category, severity, benign)
    name = Path(file).name
    n = 0
    for line, raw in enumerate(text.splitlines(), 1):
        prompt = raw.strip()
        if not prompt or prompt.startswith("#"):
            continue
        n += 1
        category = b.category(None, "")
        b.add(line, f"{n:04d}", category, [{"role": "user", "content": prompt}],
              f"text:{name}:{line}", [])
    if n == 0:
        raise InputError(f"{file}: no prompts found (the file is empty or holds only blank "
                         "lines and # comments); put one prompt on each line")
    return b.result()


Parser = Callable[..., ImportResult]

PARSERS: Mapping[str, Parser] = {
    "harmbench": parse_harmbench,
    "advbench": parse_advbench,
    "jailbreakbench": parse_jailbreakbench,
    "text": parse_text,
}


def parse(fmt: str, text: str, file: str = "<input>", *, id_prefix: str | None = None,
          default_category: str | None = None, severity: str | None = None,
          benign: bool = False) -> ImportResult:
    """Parse `text` in the named format (one of `FORMATS`)."""
    if fmt not in PARSERS:
        raise RegistryError("import format", fmt, FORMATS)
    return PARSERS[fmt](text, file, id_prefix=id_prefix, default_category=default_category,
                        severity=severity, benign=benign)
