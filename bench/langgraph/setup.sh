#!/usr/bin/env bash
# Create the LangGraph benchmark's own virtualenv (never the product's): the LangGraph dev
# server (`langgraph-cli[inmem]`) plus the OpenAI SDK the graph's one node streams with.
# Usage: bash bench/langgraph/setup.sh [VENV_DIR]
# Default VENV_DIR: $BENCH_LANGGRAPH_VENV, else ~/.cache/runwright-bench/langgraph-venv (outside
# the repository, so no linter, test or scan of the tree walks it).
set -euo pipefail
venv="${1:-${BENCH_LANGGRAPH_VENV:-$HOME/.cache/runwright-bench/langgraph-venv}}"
mkdir -p "$(dirname "$venv")"
python3 -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q "langgraph-cli[inmem]" openai
"$venv/bin/langgraph" --version
