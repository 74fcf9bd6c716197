#!/usr/bin/env bash
# Installs the pinned code-generation and client tools (versions in tools/go.mod)
# into ./.bin. Safe to run repeatedly; Go's build cache makes reruns fast.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/tools"
GOBIN="$root/.bin" go install tool
