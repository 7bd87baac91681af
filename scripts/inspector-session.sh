#!/usr/bin/env bash
# A scripted MCP Inspector CLI session against the release (or debug) binary:
# lists the tools, loads a CSV, summarises, fills, undoes, shows the history,
# then lists and reads the table as a resource (and its history), lists the
# resource templates and renders a prompt.
# Each call exits non-zero if the tool returns isError, so the script stops
# at the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${DATAFRAME_MCP_BIN:-target/release/dataframe-mcp}
[ -x "$bin" ] || bin=target/debug/dataframe-mcp
[ -x "$bin" ] || { echo "build the server first: cargo build --release" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/sales.csv" <<'CSV'
id,region,price,units
1,EU,10.5,3
2,US,,1
3,EU,12.0,
4,APAC,9.75,2
4,APAC,9.75,2
CSV

inspector() {
  npx --yes @modelcontextprotocol/inspector@latest --cli \
    -e DATAFRAME_MCP_DATA_DIR="$work/data" -e RUST_LOG=warn \
    "$@" -- "$bin" --allow-dir "$work"
}
call() {
  local tool=$1; shift
  echo "== $tool"
  inspector --method tools/call --tool-name "$tool" "$@"
}

echo "== tools/list (schema portability checked with --strict)"
inspector --method tools/list --strict > "$work/tools.json"
grep -o '"name": *"[a-z_]*"' "$work/tools.json" | grep -c . | sed 's/^/names listed: /'
call initialize_data_table --tool-arg file_path="$work/sales.csv" --tool-arg session_id=inspector-demo
call get_table_summary --tool-arg session_id=inspector-demo --tool-arg table=sales
call fill_missing --tool-arg session_id=inspector-demo --tool-arg table=sales \
  --tool-arg strategy=mean --tool-arg 'columns=["price"]'
call drop_duplicates --tool-arg session_id=inspector-demo --tool-arg table=sales
call undo --tool-arg session_id=inspector-demo --tool-arg table=sales
call preview_rows --tool-arg session_id=inspector-demo --tool-arg table=sales --tool-arg limit=3
call query_sql --tool-arg session_id=inspector-demo \
  --tool-arg 'sql=SELECT region, AVG(price) AS avg_price FROM sales GROUP BY region ORDER BY region'
call get_history --tool-arg session_id=inspector-demo --tool-arg table=sales
expect() {
  local what=$1 needle=$2; shift 2
  echo "== $what"
  local out
  out=$(inspector "$@")
  grep -qF -- "$needle" <<<"$out" || { echo "$what: '$needle' not in: $out" >&2; exit 1; }
  echo "found $needle"
}
expect resources/list 'dataframe://inspector-demo/sales' --method resources/list
expect resources/read '## First rows' --method resources/read --uri 'dataframe://inspector-demo/sales'
expect 'resources/read (history)' 'fill_missing' --method resources/read --uri 'dataframe://inspector-demo/sales/history'
expect resources/templates/list 'dataframe://{session_id}/{table}/history' --method resources/templates/list
# The Inspector CLI has no completion/complete method (its web UI does):
# completions are tested in tests/integration/surface.rs.
expect prompts/get 'get_history' --method prompts/get --prompt-name explain_history \
  --prompt-args session_id=inspector-demo table=sales
echo "inspector session ran clean"
