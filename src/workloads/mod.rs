//! Built-in workloads. They are plain users of the public API: an outside
//! application could have written them.

pub mod logs;
pub mod matrix;

use crate::pipeline::Registry;

/// A registry with every built-in workload.
pub fn builtin_registry() -> Registry {
    let mut registry = Registry::new();
    registry.register(logs::NAME, |params: logs::LogsParams| {
        Ok(logs::pipeline(params))
    });
    registry.register(matrix::NAME, matrix::pipeline);
    registry
}
