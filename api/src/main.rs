//! The `stratus` binary: see `stratus --help`.

use clap::Parser;

/// mimalloc instead of glibc's malloc: glibc keeps freed argon2 buffers (19 MiB per password
/// hash) in its heaps, so memory grew with every login; mimalloc returns them to the system.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = stratus_api::cli::Cli::parse();
    match stratus_api::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("stratus: {err}");
            std::process::ExitCode::from(err.exit_code())
        }
    }
}
