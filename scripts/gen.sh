#!/usr/bin/env bash
# Lints the protobuf sources and regenerates the Go code under api/ with the
# pinned, local plugins. Run scripts/tools.sh first.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH="$root/.bin:$PATH"
buf lint
rm -rf api
buf generate
