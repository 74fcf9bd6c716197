#!/usr/bin/env bash
# Generates the Python code for sqlraft's API and the google.rpc error
# details into DIR (default: gen/ beside this script, which git ignores),
# with Debian's packages:
#   apt-get install protobuf-compiler protobuf-compiler-grpc python3-grpcio python3-protobuf
# The generated code is not committed: it depends on the protoc version, and
# run.sh (and CI) generate it before use.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$here/gen}
plugin=${GRPC_PYTHON_PLUGIN:-$(command -v grpc_python_plugin || true)}
if [ -z "$plugin" ]; then
  echo "grpc_python_plugin not found: apt-get install protobuf-compiler-grpc" >&2
  exit 1
fi
rm -rf "$out"
mkdir -p "$out"
cd "$root/proto"
# The well-known types (google/protobuf/*.proto) come with protoc's own
# include directory.
protoc -I . --python_out="$out" --grpc_out="$out" --plugin=protoc-gen-grpc="$plugin" sqlraft/v1/*.proto
# google.rpc has messages only: no gRPC stubs.
(cd third_party && protoc -I . --python_out="$out" google/rpc/*.proto)
echo "generated into $out"
