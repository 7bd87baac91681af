//! Support for the integration tests and benchmarks of dataframe-mcp:
//! throwaway Redis servers and clusters tied to the test process.

pub mod redis;
