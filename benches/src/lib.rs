//! Shared helpers for the benches (see BENCHMARKS.md).
