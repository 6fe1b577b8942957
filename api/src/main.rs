//! The `stratus` binary: see `stratus --help`.

use std::os::unix::process::CommandExt;

use clap::Parser;

/// mimalloc instead of glibc's malloc: glibc kept freed argon2 buffers (then 19 MiB per password
/// hash) in its heaps, so memory grew with every login; mimalloc returns them to the system.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's option for how long freed memory stays committed before it is returned to the
/// system, read from the environment when the process starts.
const PURGE_DELAY_VARIABLE: &str = "MIMALLOC_PURGE_DELAY";
/// Our value for it, in milliseconds. mimalloc 3 keeps freed memory for 1,000 ms, which under a
/// steady load means the churn of the last second stays resident (the realistic mix peaked at
/// 110 MiB); 10 ms, mimalloc 2's default, measured 97 MiB (docs/benchmarks.md). An operator's own
/// value in the environment is kept.
const PURGE_DELAY_MS: &str = "10";

/// mimalloc reads its options before `main` runs, so the only way to choose one from inside is to
/// start again with it in the environment: the process image is replaced (same process id, same
/// arguments) before anything else happens. If that fails, the process simply goes on with
/// mimalloc's default.
fn with_allocator_options() {
    if std::env::var_os(PURGE_DELAY_VARIABLE).is_some() {
        return;
    }
    let Ok(program) = std::env::current_exe() else {
        return;
    };
    let err = std::process::Command::new(program)
        .args(std::env::args_os().skip(1))
        .env(PURGE_DELAY_VARIABLE, PURGE_DELAY_MS)
        .exec();
    eprintln!(
        "stratus: could not restart with {PURGE_DELAY_VARIABLE} set ({err}); going on without"
    );
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
