//! Support for the integration tests and benchmarks of dataframe-mcp:
//! throwaway Redis servers and clusters tied to the test process, and an MCP
//! client for a server under test (a child process or a value in-process).

pub mod http;
pub mod mcp;
pub mod redis;
