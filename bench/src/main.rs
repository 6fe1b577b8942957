//! `stratus-bench`: sizes a Stratus deployment on the machine it runs on.
//!
//! One run builds `stratus` in release mode, starts a private durable PostgreSQL cluster in
//! `target/bench/`, measures the machine's own ceilings with pgbench (single-row INSERTs into an
//! events-like table and primary-key SELECTs at 1, 8 and 32 clients), starts `stratus` against a
//! fresh database, seeds accounts and wallets, and drives the HTTP API with goose through the
//! scenarios of docs/benchmarks.md. Every figure is printed as a table beside its target and the
//! ceilings, and written to a JSON report. Start reading at [`run`].

mod ceiling;
mod report;
mod resources;
mod scenarios;
mod seed;
mod server;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

/// Anything that stops a benchmark run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{0}")]
    Failed(String),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("http: {0}")]
    Http(#[from] reqwest::Error),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("load generator: {0}")]
    Goose(String),
    #[error("cluster: {0}")]
    Cluster(#[from] stratus_api::cluster::ClusterError),
}

impl BenchError {
    pub fn failed(message: impl Into<String>) -> Self {
        Self::Failed(message.into())
    }
}

pub type BenchResult<T> = Result<T, BenchError>;

/// The scenarios, by the letters of docs/benchmarks.md.
pub const ALL_SCENARIOS: &str = "abcdefg";

/// Measures the machine's ceilings, then Stratus, and reports both.
#[derive(Debug, Clone, Parser)]
#[command(name = "stratus-bench", version)]
pub struct Args {
    /// Measured seconds of each load scenario (after its warm-up).
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// Seconds of load before measuring starts (connections open, caches fill).
    #[arg(long, default_value_t = 3)]
    pub warmup: u64,
    /// Concurrent connections (goose users) of the load scenarios.
    #[arg(long, default_value_t = 32)]
    pub users: usize,
    /// Concurrent logins of the login flood (g), beside `users` readers.
    #[arg(long, default_value_t = 16)]
    pub flood_users: usize,
    /// Accounts (and so wallets) seeded before the scenarios.
    #[arg(long, default_value_t = 10_000)]
    pub wallets: usize,
    /// Customers logged in over HTTP for the read and mixed scenarios.
    #[arg(long, default_value_t = 64)]
    pub customers: usize,
    /// Events in the log before the projection rebuild (e).
    #[arg(long, default_value_t = 1_000_000)]
    pub rebuild_events: u64,
    /// Events on the long stream of (f).
    #[arg(long, default_value_t = 10_000)]
    pub long_stream: u64,
    /// Seconds of each pgbench run.
    #[arg(long, default_value_t = 10)]
    pub pgbench_seconds: u64,
    /// Which scenarios to run, by letter (e.g. `ac`).
    #[arg(long, default_value = ALL_SCENARIOS)]
    pub only: String,
    /// Where the JSON report is written.
    #[arg(long, default_value = "target/bench/report.json")]
    pub out: PathBuf,
    /// Use the `stratus` binary already in target/release instead of building it.
    #[arg(long)]
    pub no_build: bool,
    /// Measure this `stratus` binary instead (for example an older build, to compare).
    #[arg(long)]
    pub server_binary: Option<PathBuf>,
    /// During (a), (b) and (c): print the statements seen running most often in pg_stat_activity,
    /// and the statements that took the most time by pg_stat_statements.
    #[arg(long)]
    pub sql_profile: bool,
    /// Keep the run's cluster directory (for looking at the database afterwards).
    #[arg(long)]
    pub keep: bool,
}

impl Args {
    pub fn runs(&self, scenario: char) -> bool {
        self.only.contains(scenario)
    }

    pub fn warmup(&self) -> Duration {
        Duration::from_secs(self.warmup)
    }

    pub fn measured(&self) -> Duration {
        Duration::from_secs(self.seconds.max(1))
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("stratus-bench: cannot start the runtime: {err}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(report) if report.all_met() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(err) => {
            eprintln!("stratus-bench: {err}");
            ExitCode::from(2)
        }
    }
}

/// The whole run. Exits 0 when every target was met, 1 when a target was missed, 2 on failure.
async fn run(args: Args) -> BenchResult<report::Report> {
    let root = server::workspace_root();
    let binary = match &args.server_binary {
        Some(binary) => binary.clone(),
        None => server::build(&root, args.no_build).await?,
    };
    let run_dir = root.join("target").join("bench").join(format!(
        "run-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S")
    ));
    std::fs::create_dir_all(&run_dir)?;
    progress(&format!("run directory {}", run_dir.display()));
    let cluster = server::Cluster::start(&run_dir, args.sql_profile).await?;
    let outcome = measure(&args, &binary, &run_dir, &cluster).await;
    cluster.stop(args.keep).await;
    if !args.keep {
        std::fs::remove_dir_all(&run_dir).ok();
    }
    let report = outcome?;
    report.print();
    let out = if args.out.is_absolute() {
        args.out.clone()
    } else {
        root.join(&args.out)
    };
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&out, serde_json::to_vec_pretty(&report)?)?;
    progress(&format!("report written to {}", out.display()));
    Ok(report)
}

async fn measure(
    args: &Args,
    binary: &std::path::Path,
    run_dir: &std::path::Path,
    cluster: &server::Cluster,
) -> BenchResult<report::Report> {
    let mut report = report::Report::new(
        args,
        cluster.server_version().await?,
        cluster.postmaster_pid(),
    );
    report.ceilings = ceiling::measure(cluster, args.pgbench_seconds).await?;
    let database_url = cluster.create_database("stratus").await?;
    let server = server::Stratus::start(binary, run_dir, &database_url).await?;
    let outcome = scenarios::run_all(args, &server, &database_url, &mut report).await;
    let stopped = server.stop().await;
    outcome?;
    stopped?;
    if args.runs('e') {
        report.rebuild = Some(seed::rebuild(args, binary, run_dir, &database_url).await?);
    }
    report.judge();
    Ok(report)
}

/// A line on stderr about where the run is (the report goes to stdout).
pub fn progress(line: &str) {
    eprintln!("[{}] {line}", chrono::Utc::now().format("%H:%M:%S"));
}
