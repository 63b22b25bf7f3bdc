//! Giving memory back to the system after a large upload. glibc keeps freed memory in
//! its arenas for reuse; after a million-row upload that is a few hundred MiB the
//! process would otherwise hold until the next one.

/// Returns the allocator's free memory to the operating system, where the allocator
/// supports it (glibc); elsewhere does nothing.
pub fn return_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn malloc_trim(pad: usize) -> i32;
        }
        // SAFETY: malloc_trim only releases free pages held by glibc's allocator; it
        // takes no pointers and is safe to call from any thread at any time.
        unsafe {
            malloc_trim(0);
        }
    }
}
