#!/usr/bin/env bash
# Bounded soak: tools/soak.sh [SECONDS]  (default 60). See tools/soak.py.
set -euo pipefail
cd "$(dirname "$0")/.."
exec /usr/bin/python3 tools/soak.py "${1:-60}"
