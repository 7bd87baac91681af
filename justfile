# Convenience recipes; every one is a plain cargo (or shell) command you can
# run without just.

default:
    @just --list

# Build the server (release).
build:
    cargo build --release -p dataframe-mcp

# The whole test suite (starts throwaway redis-servers as needed).
test:
    cargo test --workspace

# The scripted quickstart session on the embedded store.
quickstart:
    cargo run -p examples --example quickstart

# A scripted MCP Inspector CLI session calling several tools (needs Node/npx).
inspector: build
    scripts/inspector-session.sh

# A local Redis for trying the shared backend (port 6380, nothing on disk).
redis:
    redis-server --port 6380 --save '' --appendonly no --maxmemory-policy noeviction

# Run the server against that local Redis.
serve-redis: build
    STORAGE_BACKEND=redis REDIS_URL=redis://127.0.0.1:6380 target/release/dataframe-mcp

# Serve MCP over HTTP on 127.0.0.1:8080 (loopback needs no tokens).
serve-http: build
    target/release/dataframe-mcp --transport http

# Benchmarks (print tables; slow in debug builds, so release).
bench:
    cargo bench -p tests

# The HTTP load benchmark: 4 instances, 200 clients of 50 principals, on one
# Redis, a 3-node cluster and through a Redis outage (LOAD_SECONDS etc.).
load:
    cargo bench -p dataframe-mcp --bench load

# What CI runs.
ci:
    .ci/run

fmt:
    cargo fmt --all

lint:
    cargo clippy --workspace --all-targets -- -D warnings
