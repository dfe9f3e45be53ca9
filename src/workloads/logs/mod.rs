//! The built-in `logs` workload (shared/WORKLOAD.md §1): read or generate
//! access-log lines, parse, enrich, aggregate, write `summary.json`.

pub mod batch;
