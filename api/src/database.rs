//! Which PostgreSQL to use: `DATABASE_URL`, or the private cluster under the data dir.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};

use crate::cluster::{ClusterOptions, PrivateCluster};
use crate::settings::{Secret, Settings};

/// The database the private cluster serves Stratus from.
pub const PRIVATE_DATABASE: &str = "stratus";
/// How long a request waits for a pooled connection before failing.
pub const POOL_ACQUIRE_TIMEOUT_MS: u64 = 5_000;
/// A pooled connection idle for longer than this is pinged before it is handed out. sqlx pings on
/// every acquire by default: one more round trip for every statement a request runs on the pool,
/// which measured as the largest share of the database's CPU under load (docs/benchmarks.md).
/// A connection in steady use is known to work; one that sat idle may have been cut (a restart,
/// a firewall's idle timeout), and that is where the ping pays for itself.
pub const POOL_PING_AFTER_IDLE_MS: u64 = 30_000;

/// Failures while opening the database.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
    #[error("cannot prepare the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("the cluster task was lost: {0}")]
    Task(String),
}

/// The open database: its URL and, when private, the cluster to stop at the end.
pub struct OpenDatabase {
    pub url: Secret,
    pub cluster: Option<PrivateCluster>,
}

impl OpenDatabase {
    /// Stops the private cluster, if there is one (a fast, clean shutdown).
    pub async fn close(self) {
        if let Some(mut cluster) = self.cluster {
            let stopped = tokio::task::spawn_blocking(move || cluster.stop()).await;
            match stopped {
                Ok(Ok(())) => tracing::info!("private PostgreSQL cluster stopped"),
                Ok(Err(e)) => tracing::error!(error = %e, "stopping the private cluster failed"),
                Err(e) => tracing::error!(error = %e, "stopping the private cluster failed"),
            }
        }
    }
}

fn absolute(path: &Path) -> Result<PathBuf, DatabaseError> {
    std::fs::create_dir_all(path).map_err(|source| DatabaseError::DataDir {
        path: path.to_owned(),
        source,
    })?;
    path.canonicalize()
        .map_err(|source| DatabaseError::DataDir {
            path: path.to_owned(),
            source,
        })
}

/// Uses `DATABASE_URL` when set; otherwise starts (or reuses) the private cluster under the data
/// dir and makes sure its `stratus` database exists.
pub async fn open(settings: &Settings) -> Result<OpenDatabase, DatabaseError> {
    if let Some(url) = &settings.database_url {
        return Ok(OpenDatabase {
            url: url.clone(),
            cluster: None,
        });
    }
    let data_dir = absolute(&settings.data_dir)?;
    let options = ClusterOptions {
        data_dir: data_dir.join("postgres"),
        ephemeral: false,
    };
    tracing::info!(dir = %options.data_dir.display(), "starting the private PostgreSQL cluster");
    let cluster = tokio::task::spawn_blocking(move || PrivateCluster::start(options))
        .await
        .map_err(|e| DatabaseError::Task(e.to_string()))??;
    create_database_if_missing(&cluster.url("postgres"), PRIVATE_DATABASE).await?;
    Ok(OpenDatabase {
        url: Secret::new(cluster.url(PRIVATE_DATABASE)),
        cluster: Some(cluster),
    })
}

/// Creates `name` on the server at `admin_url` unless it exists.
pub async fn create_database_if_missing(admin_url: &str, name: &str) -> Result<(), sqlx::Error> {
    let mut conn = PgConnection::connect(admin_url).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&mut conn)
            .await?;
    if !exists {
        let quoted = name.replace('"', "\"\"");
        sqlx::query(&format!("CREATE DATABASE \"{quoted}\""))
            .execute(&mut conn)
            .await?;
    }
    conn.close().await
}

/// A pool on `url`; statement logging is at debug level so that tests and production stay quiet.
pub async fn connect(url: &Secret, max_connections: u32) -> Result<PgPool, DatabaseError> {
    let options: PgConnectOptions = url
        .expose()
        .parse::<PgConnectOptions>()?
        .log_statements(tracing::log::LevelFilter::Debug)
        .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_millis(500));
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_millis(POOL_ACQUIRE_TIMEOUT_MS))
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= Duration::from_millis(POOL_PING_AFTER_IDLE_MS) {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
        .connect_with(options)
        .await?;
    Ok(pool)
}

/// Applies every pending migration.
pub async fn migrate(pool: &PgPool) -> Result<(), DatabaseError> {
    stratus_projections::MIGRATOR.run(pool).await?;
    Ok(())
}
