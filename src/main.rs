//! The `nsgf` command-line tool.

fn main() -> std::process::ExitCode {
    keep_freed_memory();
    nsgf_cli::run()
}

/// glibc's malloc serves blocks above its (adaptive) mmap threshold by fresh `mmap`s and gives
/// freed heap tops back to the kernel, so every op's multi-megabyte output came back as new
/// pages to fault in and zero: about a tenth of a UNet forward (perf: page faults, page
/// clearing). Keeping blocks up to 32 MiB on the heap and never trimming it made `nsgf sample`
/// of the MNIST UNet 1.14× faster (BENCHMARKS.md) at the same peak memory. A user's
/// `GLIBC_TUNABLES` still wins where it sets either.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let set = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
        // SAFETY: mallopt only changes malloc's parameters; it is called before any thread starts.
        unsafe {
            if !set.contains("glibc.malloc.mmap_threshold") {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
            }
            if !set.contains("glibc.malloc.trim_threshold") {
                libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
            }
        }
    }
}

#[path = "cli/mod.rs"]
mod nsgf_cli;
