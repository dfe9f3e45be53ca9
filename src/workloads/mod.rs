//! Built-in workloads. They are plain users of the public API.

pub mod logs;
