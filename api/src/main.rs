//! The `stratus` binary: see `stratus --help`.

use std::os::unix::process::CommandExt;

use clap::Parser;

/// How glibc's allocator is tuned, read from the environment when the process starts.
const TUNABLES_VARIABLE: &str = "GLIBC_TUNABLES";
/// Allocations from this size up (128 KiB, glibc's own starting value) are mapped on their own
/// and returned to the system when freed. Setting it also switches off glibc's default of
/// raising the threshold to the size of each large block freed: that made every freed argon2
/// buffer (then 19 MiB) stay in the heap, and a few logins grew the process by hundreds of MiB.
const MMAP_THRESHOLD: usize = 128 * 1024;
/// Free memory at the top of a heap beyond this is given back to the system.
const TRIM_THRESHOLD: usize = 128 * 1024;

/// glibc's allocator settings for this process: the thresholds above, and one heap arena per
/// core instead of eight. Tasks move between threads, so each of many arenas ends up holding
/// freed memory of its own (docs/benchmarks.md, step 4: 60 MiB under the realistic mix, where
/// mimalloc held 80 MiB without transparent huge pages and 113 MiB with them).
fn tunables() -> String {
    let arenas = std::thread::available_parallelism().map_or(2, usize::from);
    format!(
        "glibc.malloc.arena_max={arenas}:glibc.malloc.mmap_threshold={MMAP_THRESHOLD}:\
         glibc.malloc.trim_threshold={TRIM_THRESHOLD}"
    )
}

/// glibc reads its tunables before `main` runs, so the only way to choose them from inside is to
/// start again with them in the environment: the process image is replaced (same process id,
/// same arguments) before anything else happens. An operator's own `GLIBC_TUNABLES` is kept as
/// it is. If the restart fails, the process goes on with glibc's defaults.
fn with_allocator_options() {
    if std::env::var_os(TUNABLES_VARIABLE).is_some() {
        return;
    }
    let Ok(program) = std::env::current_exe() else {
        return;
    };
    let err = std::process::Command::new(program)
        .args(std::env::args_os().skip(1))
        .env(TUNABLES_VARIABLE, tunables())
        .exec();
    eprintln!("stratus: could not restart with {TUNABLES_VARIABLE} set ({err}); going on without");
}

fn main() -> std::process::ExitCode {
    with_allocator_options();
    let cli = stratus_api::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("stratus: cannot start the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(stratus_api::cli::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("stratus: {err}");
            std::process::ExitCode::from(err.exit_code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{tunables, MMAP_THRESHOLD, TRIM_THRESHOLD};

    #[test]
    fn the_allocator_gets_one_arena_per_core_and_fixed_thresholds() {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        assert_eq!(
            tunables(),
            format!(
                "glibc.malloc.arena_max={cores}:glibc.malloc.mmap_threshold=131072:\
                 glibc.malloc.trim_threshold=131072"
            )
        );
        assert_eq!((MMAP_THRESHOLD, TRIM_THRESHOLD), (131_072, 131_072));
    }
}
