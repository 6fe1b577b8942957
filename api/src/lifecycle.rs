//! Starting and stopping one Stratus process: state, feed runners, HTTP server.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::web;
use sqlx::PgPool;
use stratus_commands::secrets::ChallengeKeys;
use stratus_commands::AggregateStore;
use stratus_domain::account::AccountServices;
use stratus_projections::accounts::AccountsProjection;
use stratus_projections::{Feed, Subscriber};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::auth::{Passwords, Tokens};
use crate::rate_limit::RateLimiter;
use crate::settings::{Secret, Settings};
use crate::state::AppState;

/// How long stopping waits for each feed runner to finish its batch.
pub const FEED_STOP_TIMEOUT_MS: u64 = 5_000;

/// The keys of one process.
#[derive(Clone)]
pub struct Keys {
    /// HMAC key of access tokens.
    pub jwt: Secret,
    /// Key of one-time codes, signed links and TOTP secrets.
    pub challenge: Secret,
}

/// Failures while starting.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Password(#[from] crate::auth::PasswordError),
    #[error("cannot serve HTTP: {0}")]
    Io(#[from] std::io::Error),
}

/// Every subscriber of the feed, in one place (add new projections and reactors here).
pub fn subscribers() -> Vec<Arc<dyn Subscriber>> {
    vec![Arc::new(AccountsProjection)]
}

/// A running process.
pub struct Running {
    pub state: web::Data<AppState>,
    pub local_addr: SocketAddr,
    server: ServerHandle,
    server_task: JoinHandle<std::io::Result<()>>,
    feed_shutdown: watch::Sender<bool>,
    feed_tasks: Vec<JoinHandle<()>>,
}

/// Cores available to this process, for worker counts and the hashing pool.
pub fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Builds the state, starts the feed runners and serves HTTP on `listener`.
pub async fn start(
    settings: Arc<Settings>,
    pool: PgPool,
    keys: &Keys,
    listener: TcpListener,
    workers: usize,
) -> Result<Running, StartError> {
    let passwords = tokio::task::spawn_blocking(move || Passwords::new(cores()))
        .await
        .map_err(|e| crate::auth::PasswordError::Task(e.to_string()))??;
    let feed = Feed::new(pool.clone(), subscribers());
    let (feed_shutdown, feed_stop) = watch::channel(false);
    let feed_tasks = feed.start(feed_stop);
    let tokens = web::Data::new(Tokens::new(
        keys.jwt.expose().as_bytes(),
        settings.access_token_ttl_seconds,
    ));
    let challenge_keys = ChallengeKeys::new(keys.challenge.expose().as_bytes());
    let services = AccountServices {
        secrets: Arc::new(challenge_keys.clone()),
    };
    let state = web::Data::new(AppState {
        accounts: AggregateStore::new(pool.clone(), services),
        limiter: RateLimiter::per_minute(settings.auth_rate_limit_per_minute),
        keys: challenge_keys,
        pool,
        feed,
        passwords,
        settings,
    });
    let local_addr = listener.local_addr()?;
    let server = crate::http::server(state.clone(), tokens, listener, workers)?;
    let handle = server.handle();
    let server_task = tokio::spawn(server);
    Ok(Running {
        state,
        local_addr,
        server: handle,
        server_task,
        feed_shutdown,
        feed_tasks,
    })
}

impl Running {
    /// Resolves when the HTTP server stops by itself (it should not).
    pub async fn stopped(&mut self) {
        let _ = (&mut self.server_task).await;
    }

    /// Graceful stop: in-flight requests finish, then the feed runners end their batch and stop.
    pub async fn stop(self) {
        self.server.stop(true).await;
        let _ = self.server_task.await;
        let _ = self.feed_shutdown.send(true);
        for task in self.feed_tasks {
            if tokio::time::timeout(Duration::from_millis(FEED_STOP_TIMEOUT_MS), task)
                .await
                .is_err()
            {
                tracing::warn!("a feed runner did not stop in time");
            }
        }
        self.state.pool.close().await;
    }
}
