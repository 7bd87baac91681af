//! Nothing to see here: this crate only depends on things.
//!
//! Cargo resolves features per command: `cargo run -p examples` and `cargo
//! build -p dataframe-mcp` would otherwise compile some dependencies (polars
//! among them, through `getrandom`) with other features than `cargo test
//! --workspace`, and so compile them twice. Every workspace member depends on
//! this crate, which asks for the union of the features the workspace uses,
//! so every command compiles every dependency the same way.
//!
//! When a dependency or feature changes, compare
//! `cargo tree -p <package> -e normal,build,dev -f '{p}|{f}'` with the same
//! command on `--workspace` and add any crate whose features differ here.
