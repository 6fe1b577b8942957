//! The dispatcher: claims due messages under a lease, sends them, and records the outcome.
//!
//! A claim is one statement: it picks pending, due, unleased messages with `FOR UPDATE SKIP LOCKED`,
//! sets their lease and counts the attempt. Two dispatchers (in one process or several) never claim
//! the same message while its lease runs, so a message has one sender at a time. A sender that dies
//! mid-send leaves the lease to run out; the message is then claimed again, which is the one way a
//! message can be sent twice.
//!
//! After a send the message is marked `sent`, or scheduled again after an exponential backoff
//! (`base · 2^(attempts − 1)`, capped), or, after the last attempt or a failure no retry can cure,
//! marked `dead` with a `tracing::error!`. Outcome updates are conditional on the attempt they
//! belong to, so a slow sender whose lease ran out cannot undo what a later sender recorded.
//!
//! The runner wakes on `LISTEN stratus_outbox` (a trigger on insert), when the next retry falls
//! due, and on a slow poll as a fallback; it stops when its shutdown channel turns true.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use sqlx::postgres::PgListener;
use sqlx::{PgPool, Row};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::sleep;
use tracing::Instrument;
use uuid::Uuid;

use super::email::EmailTransport;
use super::sms::SmsTransport;
use super::{loggable_recipient, Channel, DeliveryError};

/// The channel the `outbox_notify` trigger signals.
pub const NOTIFY_CHANNEL: &str = "stratus_outbox";
/// First retry delay: soon enough that a login code sent during a short blip still arrives well
/// within its validity.
pub const BACKOFF_BASE_MS: u64 = 2_000;
/// Longest retry delay: a relay that is down for hours is still tried four times an hour.
pub const BACKOFF_CAP_MS: u64 = 15 * 60 * 1_000;
/// Attempts before a message is given up: with the backoff above, the last one comes about three
/// hours after the first, which rides out an ordinary provider outage; past that an operator must look.
pub const MAX_ATTEMPTS: i32 = 20;
/// How long a claimed message belongs to its sender. Far above `SEND_TIMEOUT_MS`, since a whole
/// batch is sent at once within that bound; a crashed sender's messages wait this long to be retried.
pub const LEASE_MS: u64 = 120_000;
/// Hard bound on one send, whatever the transport's own timeouts do.
pub const SEND_TIMEOUT_MS: u64 = 45_000;
const _: () = assert!(
    LEASE_MS > 2 * SEND_TIMEOUT_MS,
    "a lease must outlast a whole batch, or a slow batch would be claimed twice"
);
/// Messages claimed and sent concurrently at once: enough to drain a burst quickly, few enough to
/// stay within the SMTP connection pool and the database pool.
pub const CLAIM_BATCH_SIZE: i64 = 16;
/// Fallback poll when no notification arrives (a lost NOTIFY, a listener reconnecting, another
/// process's lease running out).
pub const POLL_INTERVAL_MS: u64 = 5_000;
/// Back-off after the database failed (the listener or a claim).
pub const ERROR_BACKOFF_MS: u64 = 1_000;
/// Shortest sleep between two passes, so a message due "now" that another sender holds cannot turn
/// the loop into a busy one.
pub const MIN_WAIT_MS: u64 = 10;
/// Characters of the last error kept on the message: enough for an SMTP reply, bounded so that a
/// provider's long answer cannot bloat the table.
pub const LAST_ERROR_MAX_CHARS: usize = 1_000;

/// The dispatcher's timing and sizes; [`Default`] holds the production values above. Tests shorten
/// the backoff and the lease.
#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    pub backoff_base_ms: u64,
    pub backoff_cap_ms: u64,
    pub max_attempts: i32,
    pub lease_ms: u64,
    pub send_timeout_ms: u64,
    pub batch_size: i64,
    pub poll_interval_ms: u64,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        Self {
            backoff_base_ms: BACKOFF_BASE_MS,
            backoff_cap_ms: BACKOFF_CAP_MS,
            max_attempts: MAX_ATTEMPTS,
            lease_ms: LEASE_MS,
            send_timeout_ms: SEND_TIMEOUT_MS,
            batch_size: CLAIM_BATCH_SIZE,
            poll_interval_ms: POLL_INTERVAL_MS,
        }
    }
}

impl DispatcherConfig {
    /// The wait before the next attempt once `attempts` attempts have failed (1 → base, 2 → 2·base,
    /// …, never above the cap).
    pub fn retry_delay(&self, attempts: i32) -> Duration {
        let doublings = u32::try_from(attempts.saturating_sub(1)).unwrap_or(0);
        let factor = 1u64.checked_shl(doublings).unwrap_or(u64::MAX);
        let delay_ms = self
            .backoff_base_ms
            .saturating_mul(factor)
            .min(self.backoff_cap_ms);
        Duration::from_millis(delay_ms)
    }
}

/// The transports of each channel.
pub struct Transports {
    pub email: EmailTransport,
    pub sms: SmsTransport,
}

/// Failures of the dispatcher itself (not of a delivery, which is recorded on the message).
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A claimed message, as stored.
struct Claimed {
    id: Uuid,
    dedup_key: String,
    channel: String,
    recipient: String,
    subject: Option<String>,
    body_text: String,
    body_html: Option<String>,
    attempts: i32,
}

enum Outcome {
    Sent,
    Retry,
    Dead,
}

/// Sends what the outbox holds. Cheap to share: start it once per process.
pub struct Dispatcher {
    pool: PgPool,
    transports: Transports,
    config: DispatcherConfig,
}

impl Dispatcher {
    /// A dispatcher over `pool`. Nothing runs until [`Dispatcher::start`] or
    /// [`Dispatcher::dispatch_due`].
    pub fn new(pool: PgPool, transports: Transports, config: DispatcherConfig) -> Arc<Self> {
        Arc::new(Self {
            pool,
            transports,
            config,
        })
    }

    /// Starts the runner task; it finishes its batch and stops when `shutdown` turns true.
    pub fn start(self: &Arc<Self>, shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        tracing::info!(
            email = %self.transports.email.describe(),
            sms = %self.transports.sms.describe(),
            "outbox dispatcher started"
        );
        tokio::spawn(Arc::clone(self).run(shutdown))
    }

    /// Sends every message that is due now, on the calling task, and returns how many were sent.
    /// For tools and tests; the runner does the same continuously.
    pub async fn dispatch_due(&self) -> Result<usize, DispatchError> {
        self.drain(None).await
    }

    async fn drain(
        &self,
        shutdown: Option<&watch::Receiver<bool>>,
    ) -> Result<usize, DispatchError> {
        self.give_up_abandoned().await?;
        let mut sent = 0;
        loop {
            let claimed = self.claim().await?;
            let full_batch =
                i64::try_from(claimed.len()).unwrap_or(i64::MAX) >= self.config.batch_size;
            let outcomes = join_all(claimed.into_iter().map(|m| self.deliver(m))).await;
            for outcome in outcomes {
                if matches!(outcome?, Outcome::Sent) {
                    sent += 1;
                }
            }
            let stopping = shutdown.is_some_and(|s| *s.borrow());
            if !full_batch || stopping {
                return Ok(sent);
            }
        }
    }

    /// Marks `dead` the messages that used up their attempts without an outcome being recorded (a
    /// message that crashes its sender every time would otherwise be picked up forever).
    async fn give_up_abandoned(&self) -> Result<(), sqlx::Error> {
        let buried = sqlx::query(
            "UPDATE outbox SET status = 'dead', leased_until = NULL, \
             last_error = coalesce(last_error, 'every attempt was abandoned by its sender') \
             WHERE status = 'pending' AND attempts >= $1 \
               AND (leased_until IS NULL OR leased_until < now()) \
             RETURNING id, dedup_key, channel",
        )
        .bind(self.config.max_attempts)
        .fetch_all(&self.pool)
        .await?;
        for row in buried {
            let id: Uuid = row.try_get("id")?;
            let dedup_key: String = row.try_get("dedup_key")?;
            let channel: String = row.try_get("channel")?;
            tracing::error!(%id, %dedup_key, %channel, "message is dead: its senders never finished an attempt");
        }
        Ok(())
    }

    async fn claim(&self) -> Result<Vec<Claimed>, sqlx::Error> {
        let rows = sqlx::query(
            "UPDATE outbox SET leased_until = now() + make_interval(secs => $1), attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM outbox \
                          WHERE status = 'pending' AND next_attempt_at <= now() AND attempts < $3 \
                            AND (leased_until IS NULL OR leased_until < now()) \
                          ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED) \
             RETURNING id, dedup_key, channel, recipient, subject, body_text, body_html, attempts",
        )
        .bind(millis_as_seconds(self.config.lease_ms))
        .bind(self.config.batch_size)
        .bind(self.config.max_attempts)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Claimed {
                    id: row.try_get("id")?,
                    dedup_key: row.try_get("dedup_key")?,
                    channel: row.try_get("channel")?,
                    recipient: row.try_get("recipient")?,
                    subject: row.try_get("subject")?,
                    body_text: row.try_get("body_text")?,
                    body_html: row.try_get("body_html")?,
                    attempts: row.try_get("attempts")?,
                })
            })
            .collect()
    }

    async fn deliver(&self, message: Claimed) -> Result<Outcome, sqlx::Error> {
        let channel = Channel::parse(&message.channel);
        let span = tracing::info_span!(
            "outbox.deliver",
            id = %message.id,
            channel = %message.channel,
            dedup_key = %message.dedup_key,
            recipient_domain = channel
                .map(|c| loggable_recipient(c, &message.recipient))
                .unwrap_or(""),
            attempt = message.attempts,
        );
        async {
            let timeout_ms = self.config.send_timeout_ms;
            let result = match tokio::time::timeout(
                Duration::from_millis(timeout_ms),
                self.send(channel, &message),
            )
            .await
            {
                Ok(result) => result,
                Err(_) => Err(DeliveryError::Timeout(timeout_ms)),
            };
            match result {
                Ok(()) => {
                    self.mark_sent(&message).await?;
                    tracing::info!("message sent");
                    Ok(Outcome::Sent)
                }
                Err(err) if err.is_permanent() || message.attempts >= self.config.max_attempts => {
                    self.mark_dead(&message, &err).await?;
                    tracing::error!(error = %err, attempts = message.attempts, "message is dead: it will not be sent");
                    Ok(Outcome::Dead)
                }
                Err(err) => {
                    let delay = self.config.retry_delay(message.attempts);
                    self.mark_retry(&message, &err, delay).await?;
                    tracing::warn!(
                        error = %err,
                        retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                        "message not sent; it will be retried"
                    );
                    Ok(Outcome::Retry)
                }
            }
        }
        .instrument(span)
        .await
    }

    async fn send(&self, channel: Option<Channel>, m: &Claimed) -> Result<(), DeliveryError> {
        match channel {
            Some(Channel::Email) => {
                let subject = m
                    .subject
                    .as_deref()
                    .ok_or(DeliveryError::Malformed("an email without a subject"))?;
                self.transports
                    .email
                    .send(
                        m.id,
                        &m.recipient,
                        subject,
                        &m.body_text,
                        m.body_html.as_deref(),
                    )
                    .await
            }
            Some(Channel::Sms) => {
                self.transports
                    .sms
                    .send(m.id, &m.recipient, &m.body_text)
                    .await
            }
            None => Err(DeliveryError::Malformed("an unknown channel")),
        }
    }

    /// Whoever sent it, it is sent: not conditional on the attempt, only on not being final yet.
    async fn mark_sent(&self, m: &Claimed) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE outbox SET status = 'sent', sent_at = now(), leased_until = NULL, last_error = NULL \
             WHERE id = $1 AND status = 'pending'",
        )
        .bind(m.id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn mark_retry(
        &self,
        m: &Claimed,
        err: &DeliveryError,
        delay: Duration,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE outbox SET next_attempt_at = now() + make_interval(secs => $3), leased_until = NULL, \
             last_error = $4 WHERE id = $1 AND status = 'pending' AND attempts = $2",
        )
        .bind(m.id)
        .bind(m.attempts)
        .bind(delay.as_secs_f64())
        .bind(bounded_error(err))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn mark_dead(&self, m: &Claimed, err: &DeliveryError) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE outbox SET status = 'dead', leased_until = NULL, last_error = $3 \
             WHERE id = $1 AND status = 'pending' AND attempts = $2",
        )
        .bind(m.id)
        .bind(m.attempts)
        .bind(bounded_error(err))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// How long until the next pending message falls due (its retry time, or the end of its lease),
    /// or `None` when nothing is pending.
    async fn next_due_in(&self) -> Result<Option<Duration>, sqlx::Error> {
        let millis: Option<f64> = sqlx::query_scalar(
            "SELECT (EXTRACT(EPOCH FROM min(GREATEST(next_attempt_at, coalesce(leased_until, next_attempt_at))) - now()) * 1000)::float8 \
             FROM outbox WHERE status = 'pending'",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(millis.map(|ms| Duration::from_millis(ms.max(0.0) as u64)))
    }

    async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let poll = Duration::from_millis(self.config.poll_interval_ms);
        let mut listener: Option<PgListener> = None;
        loop {
            if *shutdown.borrow() {
                break;
            }
            // Listen before draining: a message enqueued during the pass still wakes the next one.
            if listener.is_none() {
                listener = match self.listen().await {
                    Ok(listener) => Some(listener),
                    Err(err) => {
                        tracing::warn!(error = %err, "outbox listener cannot connect; polling");
                        None
                    }
                };
            }
            let wait = match self.drain(Some(&shutdown)).await {
                Ok(_) => match self.next_due_in().await {
                    Ok(Some(due)) => due.clamp(Duration::from_millis(MIN_WAIT_MS), poll),
                    Ok(None) => poll,
                    Err(err) => {
                        tracing::error!(error = %err, "cannot read the outbox; retrying");
                        Duration::from_millis(ERROR_BACKOFF_MS)
                    }
                },
                Err(err) => {
                    tracing::error!(error = %err, "outbox dispatch failed; retrying");
                    Duration::from_millis(ERROR_BACKOFF_MS)
                }
            };
            tokio::select! {
                received = next_notification(&mut listener) => {
                    if let Err(err) = received {
                        tracing::warn!(error = %err, "outbox listener failed; reconnecting");
                        listener = None;
                    }
                }
                () = sleep(wait) => {}
                changed = shutdown.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
            }
        }
        tracing::debug!("outbox dispatcher stopped");
    }

    async fn listen(&self) -> Result<PgListener, sqlx::Error> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(NOTIFY_CHANNEL).await?;
        Ok(listener)
    }
}

/// Waits for the next notification, or forever without a listener (the poll then wakes the loop).
async fn next_notification(listener: &mut Option<PgListener>) -> Result<(), sqlx::Error> {
    match listener {
        Some(listener) => listener.recv().await.map(|_| ()),
        None => std::future::pending().await,
    }
}

fn millis_as_seconds(ms: u64) -> f64 {
    Duration::from_millis(ms).as_secs_f64()
}

fn bounded_error(err: &DeliveryError) -> String {
    err.to_string().chars().take(LAST_ERROR_MAX_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retry_delay_doubles_from_the_base_and_stops_at_the_cap() {
        let config = DispatcherConfig::default();

        let delays: Vec<u64> = (1..=12)
            .map(|attempts| config.retry_delay(attempts).as_secs())
            .collect();

        assert_eq!(
            delays,
            vec![2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900]
        );
    }

    #[test]
    fn the_retry_delay_never_overflows() {
        let config = DispatcherConfig::default();
        assert_eq!(
            config.retry_delay(i32::MAX),
            Duration::from_millis(BACKOFF_CAP_MS)
        );
        assert_eq!(
            config.retry_delay(0),
            Duration::from_millis(BACKOFF_BASE_MS)
        );
    }

    #[test]
    fn the_production_attempts_span_about_three_hours() {
        let config = DispatcherConfig::default();
        let total: Duration = (1..config.max_attempts)
            .map(|a| config.retry_delay(a))
            .sum();
        assert!((2 * 3600..4 * 3600).contains(&total.as_secs()), "{total:?}");
    }

    #[test]
    fn a_stored_error_is_bounded() {
        let long = DeliveryError::Build("x".repeat(5 * LAST_ERROR_MAX_CHARS));
        assert_eq!(bounded_error(&long).chars().count(), LAST_ERROR_MAX_CHARS);
    }
}
