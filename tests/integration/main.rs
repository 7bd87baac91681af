//! Integration tests, one binary (each test binary relinks polars).
//!
//! Redis tests start throwaway `redis-server`s on free loopback ports (or use
//! `REDIS_URL` / `REDIS_CLUSTER_URLS`), and fail when none can be had. The
//! end-to-end tests drive the real `dataframe-mcp` binary, which
//! `cargo test --workspace` builds.

mod contract;
mod e2e;
mod faults;
mod harness;
mod ingest;
mod mcp;
