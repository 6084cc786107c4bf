"""Import public red-team benchmark files as harness probe JSONL.

Formats (`FORMATS`):

* ``harmbench``: HarmBench behaviours CSV (`harmbench_behaviors_text_*.csv`), columns
  ``Behavior, FunctionalCategory, SemanticCategory, Tags, ContextString, BehaviorID``.
* ``advbench``: AdvBench ``harmful_behaviors.csv``, columns ``goal, target``.
* ``jailbreakbench``: JailbreakBench JBB-Behaviors CSV, columns
  ``[Index,] Goal, Target, Behavior, Category, Source`` (the index column may be unnamed).
* ``text``: one prompt a line; blank lines and lines starting with ``#`` are skipped.

The parsers (`parse_harmbench`, `parse_advbench`, `parse_jailbreakbench`, `parse_text`,
or `parse(fmt, text, ...)`) are pure functions of the file's text: they return probe
objects in the `probes/*.jsonl` format plus warnings, and raise
`harness.errors.ValidationError` naming ``file:line`` for malformed input. The shell
(`read_text`, `write_probes`, `import_file`) reads, writes with `jsonlines` and validates
what it wrote with the project's probe loader.

Source categories map to the taxonomy through the tables `HARMBENCH_CATEGORIES` and
`JAILBREAKBENCH_CATEGORIES` (documented in docs/taxonomy.md). A category with no mapping,
and every row of a format without categories (AdvBench, text), gets the caller's
`default_category`, or ``dangerous-instructions`` with a warning.

Private machinery: `_common` (result record, probe builder, CSV rows), `_formats` (one
parser per format), `_shell` (file reading and writing).
"""

from __future__ import annotations

# The underscored names were module-private in the single-file `harness.importers`; they
# are re-exported so that anything importable from it before stays importable.
from harness.importers._common import _ID_UNSAFE as _ID_UNSAFE
from harness.importers._common import (
    DEFAULT_PREFIX,
    FALLBACK_CATEGORY,
    FORMATS,
    ImportResult,
)
from harness.importers._common import _Builder as _Builder
from harness.importers._common import _builder as _builder
from harness.importers._common import _dedupe as _dedupe
from harness.importers._common import _expectation as _expectation
from harness.importers._common import _need as _need
from harness.importers._common import _rows as _rows
from harness.importers._common import _slug as _slug
from harness.importers._common import _tag as _tag
from harness.importers._formats import _ADVBENCH_COLUMNS as _ADVBENCH_COLUMNS
from harness.importers._formats import _HARMBENCH_COLUMNS as _HARMBENCH_COLUMNS
from harness.importers._formats import _JBB_COLUMNS as _JBB_COLUMNS
from harness.importers._formats import (
    HARMBENCH_CATEGORIES,
    JAILBREAKBENCH_CATEGORIES,
    PARSERS,
    Parser,
    parse,
    parse_advbench,
    parse_harmbench,
    parse_jailbreakbench,
    parse_text,
)
from harness.importers._shell import default_out, import_file, read_text, write_probes

__all__ = [
    "DEFAULT_PREFIX",
    "FALLBACK_CATEGORY",
    "FORMATS",
    "HARMBENCH_CATEGORIES",
    "JAILBREAKBENCH_CATEGORIES",
    "PARSERS",
    "ImportResult",
    "Parser",
    "default_out",
    "import_file",
    "parse",
    "parse_advbench",
    "parse_harmbench",
    "parse_jailbreakbench",
    "parse_text",
    "read_text",
    "write_probes",
]
