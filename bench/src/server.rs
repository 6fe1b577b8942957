//! The parts under test: the release build of `stratus`, a private durable PostgreSQL cluster, and
//! the `stratus` process serving on a free port.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use stratus_api::cluster::{ClusterOptions, PrivateCluster};
use tokio::process::{Child, Command};

use crate::{progress, BenchError, BenchResult};

/// The admin the server creates on its first start; the harness logs in as it.
pub const ADMIN_EMAIL: &str = "bench-admin@example.com";
pub const ADMIN_PASSWORD: &str = "bench admin passphrase";
/// Keys of the bench server: the seeding in this process mints challenges with the same key.
pub const JWT_SECRET: &str = "bench-jwt-secret-0123456789abcdef0123456789";
pub const CHALLENGE_SECRET: &str = "bench-challenge-secret-0123456789abcdef01234";
/// How long the server may take to answer `/health/ready` after it was started.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The workspace this harness belongs to.
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(Path::to_path_buf).unwrap_or(manifest)
}

/// Builds `stratus` in release mode (unless told not to) and returns the binary's path.
pub async fn build(root: &Path, skip: bool) -> BenchResult<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let binary = target.join("release").join("stratus");
    if !skip {
        progress("building stratus in release mode");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args([
                "build",
                "--release",
                "-p",
                "stratus-api",
                "--bin",
                "stratus",
            ])
            .current_dir(root)
            .status()
            .await?;
        if !status.success() {
            return Err(BenchError::failed(format!("cargo build failed: {status}")));
        }
    }
    if !binary.exists() {
        return Err(BenchError::failed(format!(
            "{} does not exist; run without --no-build",
            binary.display()
        )));
    }
    Ok(binary)
}

/// A private PostgreSQL cluster tuned as `cargo run` tunes it (durable: fsync on).
pub struct Cluster {
    inner: Mutex<Option<PrivateCluster>>,
    data_dir: PathBuf,
    url: String,
}

impl Cluster {
    /// Starts the cluster; with `statement_statistics` it loads `pg_stat_statements` (a restart,
    /// since the library must be preloaded) for `--sql-profile`.
    pub async fn start(run_dir: &Path, statement_statistics: bool) -> BenchResult<Self> {
        let data_dir = run_dir.join("postgres");
        let options = ClusterOptions {
            data_dir: data_dir.clone(),
            ephemeral: false,
        };
        progress("starting a private PostgreSQL cluster");
        let started = options.clone();
        let mut cluster = tokio::task::spawn_blocking(move || PrivateCluster::start(started))
            .await
            .map_err(|e| BenchError::failed(format!("cluster start task: {e}")))??;
        if statement_statistics {
            let pool = sqlx::PgPool::connect(&cluster.url("postgres")).await?;
            sqlx::query("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
                .execute(&pool)
                .await?;
            pool.close().await;
            progress("restarting the cluster with pg_stat_statements");
            cluster = tokio::task::spawn_blocking(move || {
                cluster.stop()?;
                PrivateCluster::start(options)
            })
            .await
            .map_err(|e| BenchError::failed(format!("cluster restart task: {e}")))??;
        }
        let url = cluster.url("postgres");
        Ok(Self {
            inner: Mutex::new(Some(cluster)),
            data_dir,
            url,
        })
    }

    /// The URL of `database` on this cluster.
    pub fn url(&self, database: &str) -> String {
        match self.url.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{database}"),
            None => self.url.clone(),
        }
    }

    /// Creates an empty database and returns its URL.
    pub async fn create_database(&self, name: &str) -> BenchResult<String> {
        let pool = sqlx::PgPool::connect(&self.url).await?;
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&pool)
            .await?;
        pool.close().await;
        Ok(self.url(name))
    }

    pub async fn server_version(&self) -> BenchResult<String> {
        let pool = sqlx::PgPool::connect(&self.url).await?;
        let version: String = sqlx::query_scalar("SELECT version()")
            .fetch_one(&pool)
            .await?;
        pool.close().await;
        Ok(version)
    }

    /// The postmaster's process id (first line of `postmaster.pid`).
    pub fn postmaster_pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.data_dir.join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }

    pub async fn stop(&self, keep: bool) {
        let cluster = match self.inner.lock() {
            Ok(mut guard) => guard.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(mut cluster) = cluster {
            let stopped = tokio::task::spawn_blocking(move || cluster.stop()).await;
            if !matches!(stopped, Ok(Ok(()))) {
                progress("the cluster did not stop cleanly");
            }
        }
        if keep {
            progress(&format!("cluster kept in {}", self.data_dir.display()));
        }
    }
}

/// A running `stratus` process.
pub struct Stratus {
    child: Child,
    pid: u32,
    pub base_url: String,
}

/// The environment of the server (and of its CLI for the rebuild): bench-only secrets, the auth
/// rate limit lifted (the login flood comes from one address on purpose), the demo catalog, a
/// bank account so that bank transfers can be started.
pub fn server_env(run_dir: &Path, database_url: &str, port: u16) -> Vec<(String, String)> {
    let pairs = [
        ("DATABASE_URL", database_url.to_owned()),
        (
            "STRATUS_DATA_DIR",
            run_dir.join("data").display().to_string(),
        ),
        ("STRATUS_HOST", "127.0.0.1".to_owned()),
        ("STRATUS_PORT", port.to_string()),
        ("STRATUS_ADMIN_EMAIL", ADMIN_EMAIL.to_owned()),
        ("STRATUS_ADMIN_PASSWORD", ADMIN_PASSWORD.to_owned()),
        ("STRATUS_JWT_SECRET", JWT_SECRET.to_owned()),
        ("STRATUS_CHALLENGE_SECRET", CHALLENGE_SECRET.to_owned()),
        ("STRATUS_AUTH_RATE_LIMIT_PER_MINUTE", "100000000".to_owned()),
        ("STRATUS_ACCESS_TOKEN_TTL_SECONDS", "86400".to_owned()),
        ("STRATUS_DEMO_CATALOG", "true".to_owned()),
        ("STRATUS_BANK_IBAN", "DE89370400440532013000".to_owned()),
        ("STRATUS_BANK_BIC", "COBADEFFXXX".to_owned()),
        ("STRATUS_BANK_BENEFICIARY", "Bench Hosting GmbH".to_owned()),
        ("STRATUS_LOG", "warn".to_owned()),
    ];
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

impl Stratus {
    pub async fn start(binary: &Path, run_dir: &Path, database_url: &str) -> BenchResult<Self> {
        let port = free_port()?;
        let env = server_env(run_dir, database_url, port);
        let log = std::fs::File::create(run_dir.join("stratus.log"))?;
        let log_err = log.try_clone()?;
        progress(&format!("starting stratus on port {port}"));
        let child = Command::new(binary)
            .arg("serve")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .kill_on_drop(true)
            .spawn()?;
        let pid = child
            .id()
            .ok_or_else(|| BenchError::failed("stratus exited at once"))?;
        let server = Self {
            child,
            pid,
            base_url: format!("http://127.0.0.1:{port}"),
        };
        server.wait_ready().await?;
        Ok(server)
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    async fn wait_ready(&self) -> BenchResult<()> {
        let client = reqwest::Client::new();
        let url = format!("{}/health/ready", self.base_url);
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(reply) = client.get(&url).send().await {
                if reply.status().is_success() {
                    return Ok(());
                }
            }
            if tokio::time::Instant::now() > deadline {
                return Err(BenchError::failed(
                    "stratus did not become ready; see stratus.log in the run directory",
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Asks the server to shut down (SIGTERM) and waits for it.
    pub async fn stop(mut self) -> BenchResult<()> {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .await?;
        if !status.success() {
            self.child.start_kill()?;
        }
        match tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await {
            Ok(waited) => {
                waited?;
            }
            Err(_) => {
                self.child.start_kill()?;
            }
        }
        Ok(())
    }
}

fn free_port() -> BenchResult<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}
