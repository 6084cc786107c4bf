"""Load and validate suite files (`suites/*.yaml`) and resolve run settings.

Problems are collected and reported at once as `file:line: field: message`, with the YAML
line of the offending value. Settings resolve as: built-in defaults < suite file <
environment (`HARNESS_*`) < command-line flags.

Public surface::

    load_suite(path) -> Suite                      (raises ValidationError with every problem)
    check_suite_file(path) -> (Suite | None, [Problem])
    parse_suite(raw, lines, file, base, content=b"") -> (Suite | None, [Problem])
    validate_files(paths) -> [Problem]             (suites and probe files, nothing run)
    Suite, GatePolicy, Price, DEFAULTS, STORAGE_MODES

Private machinery: `_model` (the records and defaults), `_yaml` (YAML with lines),
`_fields` (checks of single fields), `_load` (whole suites and files).
"""

from __future__ import annotations

# The underscored names were module-private in the single-file `harness.suites`; they are
# re-exported so that anything importable from it before stays importable.
from harness.suites._fields import _Checker as _Checker
from harness.suites._fields import _number as _number
from harness.suites._fields import _parse_context as _parse_context
from harness.suites._fields import _parse_max_rate as _parse_max_rate
from harness.suites._fields import _parse_probes as _parse_probes
from harness.suites._fields import _valid_sample_capture as _valid_sample_capture
from harness.suites._load import _GATE_METHODS as _GATE_METHODS
from harness.suites._load import _MULTIPLICITY as _MULTIPLICITY
from harness.suites._load import _SUITE_KEYS as _SUITE_KEYS
from harness.suites._load import check_suite_file, load_suite, parse_suite, validate_files
from harness.suites._model import DEFAULTS, STORAGE_MODES, GatePolicy, Price, Suite
from harness.suites._yaml import _construct as _construct
from harness.suites._yaml import _read_yaml as _read_yaml
from harness.suites._yaml import _scalar as _scalar

__all__ = [
    "DEFAULTS",
    "STORAGE_MODES",
    "GatePolicy",
    "Price",
    "Suite",
    "check_suite_file",
    "load_suite",
    "parse_suite",
    "validate_files",
]
