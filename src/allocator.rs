//! Opt-in tuning of glibc's allocator for batch-sized buffers.
//!
//! parpipe allocates and frees buffers of one or two MiB per batch or chunk
//! (line data, frames, read buffers), often on one thread and freed on
//! another. With glibc's defaults such buffers are `mmap`ed and `munmap`ed,
//! or trimmed off the heap top, each time, so every batch pays again for page
//! faults and for the kernel zeroing its pages (measured on a 1M-line run:
//! ~40 000 minor faults and about half the system CPU time; pipeline mode
//! ran ~25% faster, serial ~15%, multiprocess ~20% with the tuning).
//! Raising the thresholds makes freed buffers get reused; capping the arenas
//! keeps RSS as with the defaults. Memory use stays bounded: buffers are
//! reused, not accumulated.
//!
//! It changes a process-wide setting, so the library never calls it by
//! itself: the `parpipe` binary does, first thing in `main`; an embedding
//! application may too. No effect with another C library.

/// Allocations up to this size come from the heap and are reused.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 32 << 20;
/// Free memory kept at the heap top before it is returned to the kernel.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: libc::c_int = 16 << 20;
/// Arenas: enough for parpipe's few busy threads, few enough to keep RSS flat.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENA_MAX: libc::c_int = 2;

/// Applies the thresholds to this process. Call it before starting threads.
pub fn tune_for_batches() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
        libc::mallopt(libc::M_ARENA_MAX, ARENA_MAX);
    }
}
