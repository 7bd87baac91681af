#!/usr/bin/env bash
# Builds an MCP Bundle for Claude Desktop (dist/dataframe-mcp-<version>-<os>-<arch>.mcpb):
# packaging/manifest.json filled in, plus the server binary. The manifest is
# validated and the bundle packed by the official mcpb CLI (npm), then the
# bundle is unpacked and its binary launched with the manifest's command,
# arguments and environment, and must answer tools/list.
#
#   scripts/bundle.sh                 # release build, then bundle
#   BIN=target/debug/dataframe-mcp scripts/bundle.sh   # bundle a binary you have
set -euo pipefail
cd "$(dirname "$0")/.."

mcpb_version=2.1.2
if [ -z "${BIN:-}" ]; then
  cargo build --release -p dataframe-mcp
  BIN=target/release/dataframe-mcp
fi
[ -x "$BIN" ] || { echo "no server binary at $BIN" >&2; exit 1; }

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
repository=$(sed -n 's/^repository = "\(.*\)"/\1/p' Cargo.toml | head -n1)
case "$(uname -s)" in
  Linux) platform=linux ;;
  Darwin) platform=darwin ;;
  *) platform=win32 ;;
esac
grep -q "\"version\": \"$version\"" packaging/server.json \
  || { echo "packaging/server.json does not say version $version" >&2; exit 1; }

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bundle/server" dist
cp "$BIN" "$stage/bundle/server/dataframe-mcp"
sed -e "s|@VERSION@|$version|" -e "s|@REPOSITORY@|$repository|g" -e "s|@PLATFORM@|$platform|" \
  packaging/manifest.json > "$stage/bundle/manifest.json"

mcpb() { npx --yes "@anthropic-ai/mcpb@$mcpb_version" "$@"; }
echo "== mcpb validate"
mcpb validate "$stage/bundle/manifest.json"
out="dist/dataframe-mcp-$version-$platform-$(uname -m).mcpb"
echo "== mcpb pack → $out"
mcpb pack "$stage/bundle" "$out"

echo "== the bundled binary, launched as the manifest says, answers tools/list"
mcpb unpack "$out" "$stage/unpacked" >/dev/null
python3 scripts/bundle_smoke.py "$stage/unpacked"
echo "bundle ready: $out"
