fn main() -> std::process::ExitCode {
    limit_heap_retention();
    oxidp::cli::run()
}

/// argon2 allocates 19 MiB per password check on blocking threads; with glibc's dynamic mmap
/// threshold those buffers would then stay in per-thread arenas (hundreds of MB under load).
/// A fixed threshold hands every large buffer back to the system when it is freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_heap_retention() {
    // SAFETY: mallopt only changes allocator tuning; it is called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_heap_retention() {}
