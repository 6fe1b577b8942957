//! The `stratus` command line: `serve` (the default), `migrate`, `projections rebuild NAME`,
//! `audit verify`.
//!
//! Exit status: 0 on success, 1 when `audit verify` found differences, 2 when a command could not
//! run (settings, database, a port in use…), so that a scheduled audit tells a broken ledger from
//! a broken connection.

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use stratus_projections::ledger::{self, verify};
use stratus_projections::{Feed, FeedPosition};

use crate::bootstrap::{self, AdminOutcome, DemoCatalogOutcome};
use crate::database::{self, OpenDatabase};
use crate::lifecycle;
use crate::settings::{Secret, Settings};

/// Bytes of a generated signing key (JWT or challenge key).
pub const GENERATED_SECRET_BYTES: usize = 48;
const JWT_SECRET_FILE: &str = "jwt-secret";
const CHALLENGE_SECRET_FILE: &str = "challenge-secret";
/// How long `audit verify` keeps catching the audited projections up to the head of the log
/// before it checks anyway (and reports them as behind): long enough to wait out a short
/// transaction that holds the feed's fence, short enough for a scheduled job.
pub const AUDIT_CATCH_UP_TIMEOUT_MS: u64 = 10_000;
/// Pause between two catch-up attempts of `audit verify`.
pub const AUDIT_CATCH_UP_RETRY_MS: u64 = 100;

/// Stratus: control plane and billing of a cloud service provider.
#[derive(Debug, Parser)]
#[command(name = "stratus", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Migrate, create the first admin and serve the API (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Work on projections.
    Projections {
        #[command(subcommand)]
        action: ProjectionsAction,
    },
    /// Check the books.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProjectionsAction {
    /// Drop a projection's read model and replay the whole log into it.
    Rebuild {
        /// The projection's name (e.g. `accounts`).
        name: String,
    },
    /// List the projections.
    List,
}

#[derive(Debug, Subcommand)]
pub enum AuditAction {
    /// Replay every wallet from the log and compare the double-entry ledger and the wallets read
    /// model with it; prints a report and exits with 1 when anything differs.
    Verify,
}

/// Anything that ends the process with an error.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Settings(#[from] crate::settings::SettingsError),
    #[error(transparent)]
    Database(#[from] database::DatabaseError),
    #[error(transparent)]
    Start(#[from] lifecycle::StartError),
    #[error(transparent)]
    Bootstrap(#[from] bootstrap::BootstrapError),
    #[error(transparent)]
    Feed(#[from] stratus_projections::FeedError),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: String,
        source: std::io::Error,
    },
    #[error("cannot keep a generated secret in {path}: {source}")]
    SecretFile {
        path: String,
        source: std::io::Error,
    },
    #[error("audit verify could not read the database: {0}")]
    Audit(#[source] sqlx::Error),
    #[error("audit verify found {0} differences")]
    AuditDifferences(usize),
}

impl CliError {
    /// The process exit status for this error (see the module docs).
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::AuditDifferences(_) => 1,
            _ => 2,
        }
    }
}

/// Runs the command line with the process's settings.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    let settings = Settings::load()?;
    crate::telemetry::init(&settings);
    let db = database::open(&settings).await?;
    let result = run_with(cli, settings, &db).await;
    db.close().await;
    result
}

async fn run_with(cli: Cli, settings: Settings, db: &OpenDatabase) -> Result<(), CliError> {
    let pool = database::connect(&db.url, settings.db_max_connections).await?;
    database::migrate(&pool).await?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate => {
            tracing::info!("migrations applied");
            pool.close().await;
            Ok(())
        }
        Command::Projections { action } => {
            let feed = Feed::new(
                pool.clone(),
                lifecycle::subscribers(
                    &settings,
                    &process_keys(&settings)?,
                    &lifecycle::Services::new(&settings, &pool),
                ),
            );
            match action {
                ProjectionsAction::List => {
                    for name in feed.subscriber_names() {
                        report(name);
                    }
                }
                ProjectionsAction::Rebuild { name } => {
                    let started = std::time::Instant::now();
                    let replayed = feed.rebuild(&name).await?;
                    report(&format!(
                        "rebuilt {name}: {replayed} events in {:.3} s",
                        started.elapsed().as_secs_f64()
                    ));
                }
            }
            pool.close().await;
            Ok(())
        }
        Command::Audit {
            action: AuditAction::Verify,
        } => {
            let feed = Feed::new(
                pool.clone(),
                lifecycle::subscribers(
                    &settings,
                    &process_keys(&settings)?,
                    &lifecycle::Services::new(&settings, &pool),
                ),
            );
            let result = audit_verify(&feed, &pool).await;
            pool.close().await;
            result
        }
        Command::Serve => serve(settings, pool).await,
    }
}

/// Catches the ledger and the wallets projection up to the head of the log, verifies, prints the
/// report, and fails with the number of differences.
async fn audit_verify(feed: &Feed, pool: &sqlx::PgPool) -> Result<(), CliError> {
    let head = feed.head().await?;
    let registered = feed.subscriber_names();
    for name in [ledger::NAME, verify::WALLETS_SUBSCRIBER] {
        if registered.contains(&name) {
            catch_up_to(feed, name, head).await;
        }
    }
    let options = verify::VerifyOptions {
        required_position: Some(head),
    };
    let audit = verify::verify(pool, &options)
        .await
        .map_err(CliError::Audit)?;
    report(audit.to_string().trim_end());
    if audit.is_clean() {
        Ok(())
    } else {
        Err(CliError::AuditDifferences(audit.differences.len()))
    }
}

/// Applies what the fence lets through until `name` reaches `head`, for at most
/// [`AUDIT_CATCH_UP_TIMEOUT_MS`]. A failed attempt (a serving process applying the same batch at
/// the same moment, an event the projection cannot decode) is logged and tried again; whatever is
/// still missing at the end is reported by the audit as a projection behind.
async fn catch_up_to(feed: &Feed, name: &str, head: FeedPosition) {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(AUDIT_CATCH_UP_TIMEOUT_MS);
    loop {
        match feed.catch_up(name).await {
            Ok(at) if at >= head => return,
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(subscriber = name, error = %err, "catching up before the audit failed; retrying");
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(AUDIT_CATCH_UP_RETRY_MS)).await;
    }
}

#[allow(clippy::print_stdout)]
fn report(line: &str) {
    println!("{line}");
}

async fn serve(settings: Settings, pool: sqlx::PgPool) -> Result<(), CliError> {
    let keys = process_keys(&settings)?;
    let address = format!("{}:{}", settings.host, settings.port);
    let listener = TcpListener::bind(&address).map_err(|source| CliError::Listen {
        address: address.clone(),
        source,
    })?;
    let settings = Arc::new(settings);
    let mut running = lifecycle::start(
        Arc::clone(&settings),
        pool,
        &keys,
        listener,
        lifecycle::cores(),
    )
    .await?;
    match bootstrap::ensure_admin(&running.state).await? {
        AdminOutcome::AlreadyExists => {}
        AdminOutcome::Created {
            email,
            generated_password: Some(password),
        } => {
            // Printed once, on the terminal only: it is never stored anywhere but as a hash.
            eprintln!("\n  Created the admin account {email} with the password: {password}\n  (shown only this once; set STRATUS_ADMIN_PASSWORD to choose it)\n");
        }
        AdminOutcome::Created { email, .. } => {
            tracing::info!(%email, "created the admin account from STRATUS_ADMIN_PASSWORD");
        }
    }
    // Catalog
    match bootstrap::ensure_demo_catalog(&running.state).await? {
        DemoCatalogOutcome::Seeded {
            datacenters,
            images,
            plans,
        } => tracing::info!(
            datacenters,
            images,
            plans,
            "seeded the demo catalog (STRATUS_DEMO_CATALOG=false turns this off)"
        ),
        DemoCatalogOutcome::AlreadyPresent | DemoCatalogOutcome::Disabled => {}
    }
    tracing::info!(address = %running.local_addr, "Stratus is serving; API docs at /docs/");
    tokio::select! {
        () = shutdown_signal() => tracing::info!("shutting down"),
        () = running.stopped() => tracing::warn!("the HTTP server stopped by itself"),
    }
    running.stop().await;
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

/// The process's keys: configured, or generated once into the data dir.
fn process_keys(settings: &Settings) -> Result<lifecycle::Keys, CliError> {
    Ok(lifecycle::Keys {
        jwt: kept_secret(settings, settings.jwt_secret.as_ref(), JWT_SECRET_FILE)?,
        challenge: kept_secret(
            settings,
            settings.challenge_secret.as_ref(),
            CHALLENGE_SECRET_FILE,
        )?,
    })
}

/// The configured secret, or a key generated once into the data dir (mode 0600) and reused.
fn kept_secret(
    settings: &Settings,
    configured: Option<&Secret>,
    file: &str,
) -> Result<Secret, CliError> {
    if let Some(secret) = configured {
        return Ok(secret.clone());
    }
    let path = settings.data_dir.join(file);
    let err = |source| CliError::SecretFile {
        path: path.display().to_string(),
        source,
    };
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim();
        if existing.len() >= crate::settings::MIN_JWT_SECRET_BYTES {
            return Ok(Secret::new(existing));
        }
    }
    let secret = crate::auth::random_token(GENERATED_SECRET_BYTES);
    write_private(&path, &secret).map_err(err)?;
    Ok(Secret::new(secret))
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())
}
