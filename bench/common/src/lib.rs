//! What the benchmark programs under `bench/` share: reading Prometheus scrapes and putting a
//! generated section into docs/benchmarks.md.

pub mod doc;
pub mod prom;
