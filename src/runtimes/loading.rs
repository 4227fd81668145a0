//! How memory is allocated while tract reads a model and builds its plans.
//!
//! glibc's malloc serves large blocks from mappings of their own only up to a threshold that it
//! raises, after the first such block is freed, to that block's size (up to 32 MiB); blocks below
//! the threshold come from its heaps, where a freed block leaves a hole that the system does not
//! get back. Loading converts and repacks hundreds of weights of 1–10 MiB, each freed once
//! converted, so the holes add up to a large part of a model's size at the process's peak. While
//! `Loading` lives, every block of 128 KiB or more gets a mapping of its own, returned to the
//! system when freed; when it ends, the threshold is set to 32 MiB (where glibc's own would have
//! settled, so timed runs allocate as they would have) and the heaps' free space is returned.
//! Elsewhere than Linux with glibc it does nothing.

/// Blocks from this size on get a mapping of their own while loading.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const LOADING_THRESHOLD: libc::c_int = 128 * 1024;
/// glibc's highest dynamic threshold on 64-bit systems.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const RUNNING_THRESHOLD: libc::c_int = 32 * 1024 * 1024;

/// Loading allocation while alive (see the module).
pub struct Loading(());

impl Loading {
    pub fn begin() -> Loading {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: mallopt only changes the allocator's parameters.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, LOADING_THRESHOLD);
        }
        Loading(())
    }
}

impl Drop for Loading {
    fn drop(&mut self) {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: mallopt and malloc_trim only change the allocator's parameters and give free pages back.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, RUNNING_THRESHOLD);
            libc::malloc_trim(0);
        }
    }
}
