//! parpipe: pipeline-parallel data processing.
#![deny(missing_docs)]

pub mod workloads;
