//! Integration tests, one binary (each test binary relinks polars).
//!
//! Redis tests start throwaway `redis-server`s on free loopback ports (or use
//! `REDIS_URL` / `REDIS_CLUSTER_URLS`), and fail when none can be had. The
//! server's tool handlers are driven in process here; the real binary is
//! driven by the server package's own end-to-end tests.

mod behaviour;
mod contract;
mod faults;
mod handlers;
mod harness;
mod ingest;
mod recipes;
mod regressions;
mod surface;
mod tls;
mod transforms;
