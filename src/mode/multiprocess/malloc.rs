//! Keeps glibc's allocator from handing chunk-sized buffers back to the
//! kernel after every chunk.
//!
//! Multiprocess mode allocates and frees buffers of one or two MiB per chunk
//! on every side (the coordinator's frames, the workers' read buffers,
//! payloads and batches). With glibc's defaults such buffers are often
//! `mmap`ed and `munmap`ed, or trimmed off the heap top, each time, so every
//! chunk pays again for page faults and for the kernel zeroing its pages:
//! measured on a 1M-line run, ~40 000 minor faults and about half the
//! system CPU time of the whole run. Raising the mmap and trim thresholds
//! makes freed buffers get reused instead. Memory use stays bounded (the
//! buffers are reused, not accumulated); only returning it to the kernel
//! waits for the process to end. No effect with another C library.

/// Allocations up to this size come from the heap and are reused.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 32 << 20;
/// Free memory kept at the heap top before it is returned to the kernel.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: libc::c_int = 64 << 20;

/// Applies the thresholds to this process (idempotent, cheap).
pub(crate) fn keep_chunk_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is safe to call
    // at any time, from any thread.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}
