//! The `stratus` binary: see `stratus --help`.

use clap::Parser;

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
