//! The `parpipe` binary: the command line lives in the library
//! ([`parpipe::cli_main`], feature `cli`).

use std::process::ExitCode;

/// With the `mimalloc` feature, mimalloc is the binary's global allocator
/// (see docs/performance.md for what it changes).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    parpipe::cli_main()
}
