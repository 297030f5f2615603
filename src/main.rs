//! The `nsgf` command-line tool.

fn main() -> std::process::ExitCode {
    keep_freed_memory();
    nsgf_cli::run()
}

/// glibc's malloc serves blocks above its (adaptive) mmap threshold by fresh `mmap`s and gives
/// freed heap tops back to the kernel, so every op's multi-megabyte output came back as new
/// pages to fault in and zero: about a tenth of a UNet forward (perf: page faults, page
/// clearing). Keeping blocks up to 32 MiB on the heap and never trimming it made `nsgf sample`
/// of the MNIST UNet 1.10–1.14× faster (BENCHMARKS.md) at the same peak memory. A user's
/// setting still wins (`GLIBC_TUNABLES` or the older `MALLOC_MMAP_THRESHOLD_` /
/// `MALLOC_TRIM_THRESHOLD_`). 64-bit glibc only (its largest mmap threshold is 32 MiB there).
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64"))]
    {
        let tunables = std::env::var_os("GLIBC_TUNABLES").unwrap_or_default();
        let tunables = tunables.to_string_lossy();
        let user_sets = |tunable: &str, legacy: &str| {
            tunables.contains(tunable) || std::env::var_os(legacy).is_some()
        };
        // SAFETY: mallopt only changes malloc's parameters; it is called before any thread starts.
        unsafe {
            if !user_sets("glibc.malloc.mmap_threshold", "MALLOC_MMAP_THRESHOLD_") {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
            }
            if !user_sets("glibc.malloc.trim_threshold", "MALLOC_TRIM_THRESHOLD_") {
                libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
            }
        }
    }
}

#[path = "cli/mod.rs"]
mod nsgf_cli;
