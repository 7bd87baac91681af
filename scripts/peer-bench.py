#!/usr/bin/env python3
"""Peer benchmark: one analyst workflow over MCP stdio against three servers.

Setup (two virtualenvs; the first also gives this script the `mcp` client):

    python3 -m venv /tmp/peers && /tmp/peers/bin/pip install mcp-server-motherduck
    python3 -m venv /tmp/csvenv && /tmp/csvenv/bin/pip install <checkout of santoshray02/csv-editor>
    cargo build --release -p dataframe-mcp

How to run:

    /tmp/peers/bin/python scripts/peer-bench.py                 # 1,000,000 rows, all three servers
    /tmp/peers/bin/python scripts/peer-bench.py --rows 10000 --servers motherduck,csveditor

The servers' executables default to the paths above; MOTHERDUCK_BIN and CSVEDITOR_BIN
override them, --ours-bin gives ours (default target/release/dataframe-mcp).

Options: --rows N (default 1000000), --servers motherduck,csveditor,ours (any subset, in that
order), --ours-bin PATH, --rounds N (default 5), --csveditor-preview resource|info, --keep
(keep the temp dir with the CSV and server logs), --verbose (print every tool result, shortened).

The workflow mirrors crates/server/benches/workflow.rs: write the same CSV (same
xorshift generator, 6 columns id,price,qty,region,customer,date, same missing values), then
load; then ROUNDS x (summary -> fill price with its mean -> undo -> redo -> preview 10 rows).
After the rounds (untimed) it counts the missing prices left: 0 means the last redo really
re-applied the fill.

  server      load                     summary                 fill                       undo / redo    preview
  motherduck  CREATE TABLE t AS        SUMMARIZE t             UPDATE t SET price = (avg) n/a (no        SELECT * FROM t LIMIT 10
              SELECT * FROM read_csv                           WHERE price IS NULL        history)
  csveditor   load_csv                 get_statistics          fill_missing_values mean   undo / redo    resource csv://{sid}/data
                                                                                                         (no row-preview tool exists;
                                                                                                         this returns the whole frame)
  ours        initialize_data_table    get_table_summary       fill_missing mean          undo / redo    preview_rows (default 10)

Each call is timed from just before the client call to its return; the client's one-time
work (listing tools, importing jsonschema to validate output schemas) is done before the
first timed call. A tool result with
isError, or a JSON payload with "success": false, is printed and flagged in the table.
Peak RSS is VmHWM of the server process (a child of this Python process, found in /proc),
read after the workflow, before the server is closed. Servers run one after another, each
on its own copy of the CSV (csv-editor's default auto-save overwrites its source file on
undo/redo) and with its own working directory (csv-editor writes .csv_history there).
Server stderr goes to <tmp>/<server>/server.log.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

MASK = (1 << 64) - 1
DEFAULT_OURS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "release", "dataframe-mcp")
MOTHERDUCK_BIN = os.environ.get("MOTHERDUCK_BIN", "/tmp/peers/bin/mcp-server-motherduck")
CSVEDITOR_BIN = os.environ.get("CSVEDITOR_BIN", "/tmp/csvenv/bin/csv-editor")


# --------------------------------------------------------------------------- data


def write_csv(path: str, rows: int) -> int:
    """Port of write_csv(path, rows, 6) from benches/workflow.rs (byte-identical output)."""
    regions = ("north", "south", "east", "west")
    x = 0x9E3779B97F4A7C15
    buf: list[str] = []
    with open(path, "w", newline="") as out:
        out.write("id,price,qty,region,customer,date\n")
        for i in range(rows):
            x ^= (x << 13) & MASK
            x ^= x >> 7
            x ^= (x << 17) & MASK
            price = "" if x % 10 == 0 else f"{x % 500}.{x % 100:02d}"
            qty = "" if x % 20 == 1 else str(x % 50)
            day = 1 + x % 28
            month = 1 + (x // 7) % 12
            buf.append(
                f"{i},{price},{qty},{regions[x % 4]},c{x % 1_000_003:07d},2024-{month:02d}-{day:02d}\n"
            )
            if len(buf) >= 65536:
                out.write("".join(buf))
                buf.clear()
        out.write("".join(buf))
    return os.path.getsize(path)


# --------------------------------------------------------------------------- /proc


def _ppid_map() -> dict[int, int]:
    m: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
            # comm may contain spaces/parens: ppid is the 2nd field after the last ')'
            m[int(name)] = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            pass
    return m


def descendants(pid: int) -> list[int]:
    ppids = _ppid_map()
    out, frontier = [], [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in ppids.items() if pp == p]
        out.extend(kids)
        frontier.extend(kids)
    return out


def proc_status(pid: int, key: str) -> str | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def vmhwm_mb(pid: int) -> float:
    v = proc_status(pid, "VmHWM")
    return int(v.split()[0]) / 1024.0 if v else float("nan")


# --------------------------------------------------------------------------- client


@dataclass
class Stats:
    server: str
    rows: int
    load: float = float("nan")
    summaries: list[float] = field(default_factory=list)
    fills: list[float] = field(default_factory=list)
    undos: list[float] = field(default_factory=list)
    redos: list[float] = field(default_factory=list)
    previews: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    nulls_at_end: Any = "?"
    rss_mb: float = float("nan")
    rss_note: str = ""
    note: str = ""
    failed: str | None = None


def payload_of(res: Any) -> Any:
    """The result as JSON: structured content (unwrapping a {'result': '<json>'} string), else text."""
    sc = getattr(res, "structured_content", None)
    if isinstance(sc, dict) and set(sc) == {"result"} and isinstance(sc["result"], str):
        try:
            return json.loads(sc["result"])
        except ValueError:
            return sc["result"]
    if sc is not None:
        return sc
    texts = [c.text for c in getattr(res, "content", []) or [] if getattr(c, "text", None)]
    if len(texts) == 1:
        try:
            return json.loads(texts[0])
        except ValueError:
            return texts[0]
    return texts


def text_of(res: Any) -> str:
    parts = [getattr(c, "text", None) or str(c) for c in getattr(res, "content", []) or []]
    return " ".join(parts) or repr(getattr(res, "structured_content", None))


class Runner:
    def __init__(self, session: ClientSession, stats: Stats, verbose: bool):
        self.s = session
        self.stats = stats
        self.verbose = verbose

    def _flag(self, step: str, detail: str) -> None:
        self.stats.errors[step] = self.stats.errors.get(step, 0) + 1
        print(f"  [{self.stats.server}] {step}: ERROR {detail[:400]}", file=sys.stderr)

    async def tool(self, step: str, name: str, args: dict) -> tuple[float, Any]:
        t0 = time.perf_counter()
        res = await self.s.call_tool(name, args)
        ms = (time.perf_counter() - t0) * 1000.0
        payload = payload_of(res)
        if getattr(res, "is_error", False):
            self._flag(step, f"isError from {name}: {text_of(res)}")
        elif isinstance(payload, dict) and payload.get("success") is False:
            self._flag(step, f"{name} returned success=false: "
                             f"{payload.get('error') or payload.get('message')}")
        elif self.verbose:
            print(f"  [{self.stats.server}] {step} {ms:.1f} ms: {json.dumps(payload, default=str)[:200]}",
                  file=sys.stderr)
        return ms, payload

    async def resource(self, step: str, uri: str) -> tuple[float, Any]:
        t0 = time.perf_counter()
        try:
            res = await self.s.read_resource(uri)
        except Exception as e:  # an MCP error response raises
            ms = (time.perf_counter() - t0) * 1000.0
            self._flag(step, f"read_resource {uri}: {e}")
            return ms, None
        ms = (time.perf_counter() - t0) * 1000.0
        text = "".join(getattr(c, "text", "") or "" for c in res.contents)
        try:
            payload = json.loads(text)
        except ValueError:
            payload = text
        if isinstance(payload, dict) and "error" in payload and "data" not in payload:
            self._flag(step, f"read_resource {uri}: {payload['error']}")
        elif self.verbose:
            print(f"  [{self.stats.server}] {step} {ms:.1f} ms: {len(text)} chars", file=sys.stderr)
        return ms, payload


# --------------------------------------------------------------------------- servers


class MotherDuck:
    name = "motherduck"
    has_history = False

    def params(self, opts, csv_dir: str, work_dir: str) -> StdioServerParameters:
        return StdioServerParameters(
            command=MOTHERDUCK_BIN,
            args=["--db-path", ":memory:", "--read-write"],
            cwd=work_dir,
        )

    async def sql(self, r: Runner, step: str, q: str):
        return await r.tool(step, "execute_query", {"sql": q})

    async def load(self, r, csv):
        path = csv.replace("'", "''")
        ms, _ = await self.sql(r, "load", f"CREATE TABLE t AS SELECT * FROM read_csv('{path}')")
        return ms

    async def summary(self, r):
        return (await self.sql(r, "summary", "SUMMARIZE t"))[0]

    async def fill(self, r):
        return (await self.sql(
            r, "fill", "UPDATE t SET price = (SELECT avg(price) FROM t) WHERE price IS NULL"))[0]

    async def undo(self, r):
        return None

    async def redo(self, r):
        return None

    async def preview(self, r):
        return (await self.sql(r, "preview", "SELECT * FROM t LIMIT 10"))[0]

    async def nulls(self, r):
        _, p = await self.sql(r, "check", "SELECT count(*) FROM t WHERE price IS NULL")
        return p["rows"][0][0]


class CsvEditor:
    name = "csveditor"
    has_history = True

    def __init__(self, preview_mode: str):
        self.preview_mode = preview_mode
        self.sid = None

    def params(self, opts, csv_dir: str, work_dir: str) -> StdioServerParameters:
        return StdioServerParameters(command=CSVEDITOR_BIN, args=[], cwd=work_dir)

    async def load(self, r, csv):
        ms, p = await r.tool("load", "load_csv", {"file_path": csv})
        self.sid = p["session_id"]
        return ms

    async def summary(self, r):
        return (await r.tool("summary", "get_statistics", {"session_id": self.sid}))[0]

    async def fill(self, r):
        return (await r.tool("fill", "fill_missing_values",
                             {"session_id": self.sid, "strategy": "mean", "columns": ["price"]}))[0]

    async def undo(self, r):
        return (await r.tool("undo", "undo", {"session_id": self.sid}))[0]

    async def redo(self, r):
        return (await r.tool("redo", "redo", {"session_id": self.sid}))[0]

    async def preview(self, r):
        if self.preview_mode == "info":
            return (await r.tool("preview", "get_session_info", {"session_id": self.sid}))[0]
        return (await r.resource("preview", f"csv://{self.sid}/data"))[0]

    async def nulls(self, r):
        _, p = await r.tool("check", "get_statistics", {"session_id": self.sid, "columns": ["price"]})
        return p["statistics"]["price"]["null_count"]


class Ours:
    name = "ours"
    has_history = True

    def __init__(self, binary: str):
        self.binary = binary
        self.t = None

    def params(self, opts, csv_dir: str, work_dir: str) -> StdioServerParameters:
        env = {k: v for k, v in os.environ.items()
               if k not in ("STORAGE_BACKEND", "REDIS_URL", "DATAFRAME_MCP_DATA_DIR")}
        env["RUST_LOG"] = "info"  # as tests::mcp::Server does (stderr goes to server.log)
        data_dir = os.path.join(work_dir, "data")
        os.makedirs(data_dir, exist_ok=True)
        return StdioServerParameters(
            command=self.binary,
            args=["--allow-dir", csv_dir, "--storage", "embedded", "--data-dir", data_dir],
            env=env,
            cwd=work_dir,
        )

    async def load(self, r, csv):
        ms, p = await r.tool("load", "initialize_data_table", {"file_path": csv, "table_name": "t"})
        self.t = {"session_id": p["session_id"], "table": "t"}
        return ms

    async def summary(self, r):
        return (await r.tool("summary", "get_table_summary", dict(self.t)))[0]

    async def fill(self, r):
        return (await r.tool("fill", "fill_missing",
                             {**self.t, "columns": ["price"], "strategy": "mean"}))[0]

    async def undo(self, r):
        return (await r.tool("undo", "undo", dict(self.t)))[0]

    async def redo(self, r):
        return (await r.tool("redo", "redo", dict(self.t)))[0]

    async def preview(self, r):
        return (await r.tool("preview", "preview_rows", dict(self.t)))[0]

    async def nulls(self, r):
        _, p = await r.tool("check", "get_table_summary", {**self.t, "columns": ["price"]})
        return p["column_summaries"][0]["missing"]


# --------------------------------------------------------------------------- workflow


async def run_server(srv, opts, base_csv: str, base_dir: str) -> Stats:
    st = Stats(server=srv.name, rows=opts.rows)
    work = os.path.join(base_dir, srv.name)
    csv_dir = os.path.join(work, "csv")
    os.makedirs(csv_dir, exist_ok=True)
    csv = os.path.join(csv_dir, "data.csv")
    shutil.copyfile(base_csv, csv)
    params = srv.params(opts, csv_dir, work)
    me = os.getpid()
    before = set(descendants(me))
    with open(os.path.join(work, "server.log"), "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                # The client's own one-time costs stay out of the timings: the
                # SDK validates a result against the tool's output schema and,
                # before the first such call, lists the tools and imports
                # jsonschema (80-110 ms here), which would land in the first
                # summary of a server that declares output schemas.
                await session.list_tools()
                import jsonschema.validators  # noqa: F401
                import referencing  # noqa: F401
                spawned = [p for p in descendants(me) if p not in before]
                r = Runner(session, st, opts.verbose)
                try:
                    st.load = await srv.load(r, csv)
                    for _ in range(opts.rounds):
                        st.summaries.append(await srv.summary(r))
                        st.fills.append(await srv.fill(r))
                        u = await srv.undo(r)
                        if u is not None:
                            st.undos.append(u)
                        d = await srv.redo(r)
                        if d is not None:
                            st.redos.append(d)
                        st.previews.append(await srv.preview(r))
                    try:
                        st.nulls_at_end = await srv.nulls(r)
                    except Exception as e:  # noqa: BLE001
                        st.nulls_at_end = "?"
                        print(f"  [{srv.name}] end check failed: {e!r}", file=sys.stderr)
                except Exception as e:  # noqa: BLE001
                    st.failed = f"{type(e).__name__}: {e}"
                    print(f"  [{srv.name}] workflow aborted: {st.failed}", file=sys.stderr)
                # Peak RSS before closing: the largest VmHWM among the processes we spawned
                # (the server itself; its children, if any, are listed in the note).
                spawned = spawned or [p for p in descendants(me) if p not in before]
                best = None
                for p in spawned:
                    hwm = vmhwm_mb(p)
                    if best is None or hwm > best[1]:
                        best = (p, hwm)
                if best:
                    st.rss_mb = best[1]
                    st.rss_note = (f"pid {best[0]} ({proc_status(best[0], 'Name')})"
                                   + (f", {len(spawned)} processes spawned" if len(spawned) > 1 else ""))
    return st


def med(v: list[float]) -> float:
    return statistics.median(v) if v else float("nan")


def cell(v: float, step: str, st: Stats, total: int | None = None) -> str:
    if v != v:  # nan
        return "n/a"
    s = f"{v:.1f}" if v < 100 else f"{v:.0f}"
    n = st.errors.get(step, 0)
    if n:
        s += f" ⚠{n}/{total}" if total else f" ⚠{n}"
    return s


def table(results: list[Stats], csv_mb: float, rounds: int) -> str:
    lines = [
        f"\n{results[0].rows if results else 0:,} rows × 6 cols, CSV {csv_mb:.1f} MB; "
        f"ms, medians over {rounds} rounds unless noted\n",
        "| server | load | 1st summary | summary (median of rest) | fill (1st) | fill again (median) "
        "| undo | redo | preview | price nulls at end | peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for st in results:
        if st.failed and not st.summaries:
            lines.append(f"| {st.server} | failed: {st.failed[:80]} | | | | | | | | | |")
            continue
        n = rounds
        lines.append(
            "| " + " | ".join([
                st.server,
                cell(st.load, "load", st, 1),
                cell(st.summaries[0] if st.summaries else float("nan"), "summary", st, n),
                cell(med(st.summaries[1:]), "summary", st, n),
                cell(st.fills[0] if st.fills else float("nan"), "fill", st, n),
                cell(med(st.fills[1:]), "fill", st, n),
                cell(med(st.undos), "undo", st, n),
                cell(med(st.redos), "redo", st, n),
                cell(med(st.previews), "preview", st, n),
                str(st.nulls_at_end),
                f"{st.rss_mb:.0f}" if st.rss_mb == st.rss_mb else "?",
            ]) + " |"
        )
    return "\n".join(lines)


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--servers", default="motherduck,csveditor,ours")
    ap.add_argument("--ours-bin", default=DEFAULT_OURS)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--csveditor-preview", choices=["resource", "info"], default="resource",
                    help="resource: read csv://{sid}/data (all rows; csv-editor has no head/preview "
                         "tool); info: get_session_info (shape and columns, no rows)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    ap.add_argument("--verbose", action="store_true")
    opts = ap.parse_args()

    wanted = [s.strip() for s in opts.servers.split(",") if s.strip()]
    servers = []
    for name in wanted:
        if name == "motherduck":
            servers.append(MotherDuck())
        elif name == "csveditor":
            servers.append(CsvEditor(opts.csveditor_preview))
        elif name == "ours":
            if not os.access(opts.ours_bin, os.X_OK):
                print(f"skipping ours: {opts.ours_bin} is not an executable file", file=sys.stderr)
                continue
            servers.append(Ours(opts.ours_bin))
        else:
            ap.error(f"unknown server {name!r} (motherduck, csveditor, ours)")

    base = tempfile.mkdtemp(prefix="peerbench-")
    try:
        csv = os.path.join(base, "data.csv")
        t0 = time.perf_counter()
        size = write_csv(csv, opts.rows)
        print(f"wrote {opts.rows:,} rows ({size / 1e6:.1f} MB) in {time.perf_counter() - t0:.1f} s "
              f"to {csv}", file=sys.stderr)
        results = []
        for srv in servers:
            print(f"running {srv.name} ...", file=sys.stderr)
            try:
                results.append(await run_server(srv, opts, csv, base))
            except Exception as e:  # noqa: BLE001  (start-up failure etc.)
                st = Stats(server=srv.name, rows=opts.rows, failed=f"{type(e).__name__}: {e}")
                print(f"  [{srv.name}] failed: {st.failed} (see {base}/{srv.name}/server.log)",
                      file=sys.stderr)
                results.append(st)
        print(table(results, size / 1e6, opts.rounds))
        notes = []
        for st in results:
            if st.rss_note:
                notes.append(f"- {st.server}: RSS from {st.rss_note}")
            if st.errors:
                notes.append(f"- {st.server}: failed calls per step {st.errors} (⚠n/m = n of m calls failed)")
        notes.append("- motherduck has no history: undo/redo n/a; its fill is an SQL UPDATE.")
        if any(s.name == "csveditor" for s in servers):
            notes.append(
                "- csveditor preview = " + ("read_resource csv://{sid}/data (whole frame as JSON; "
                                            "it has no head/preview tool)" if opts.csveditor_preview
                                            == "resource" else "get_session_info (no rows)")
                + "; its load_csv response also carries every row as 'preview'.")
        notes.append("- price nulls at end: missing prices after the last redo (0 = fill re-applied).")
        print("\n" + "\n".join(notes))
    finally:
        if opts.keep:
            print(f"kept {base}", file=sys.stderr)
        else:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
