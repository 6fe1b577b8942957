//! Data the scenarios need, made before they run, and the projection rebuild (e).
//!
//! Seeded accounts go through the real write side (email claim, `Account` aggregate, event store)
//! in this process; only the password hash is computed once and shared, because 10,000 argon2
//! hashes would take minutes and measure nothing the login flood (g) does not. The running server
//! opens their wallets through its `wallet-opener` reactor, as for any registration.
//!
//! The million events of the rebuild are real `WalletEvent`s serialised exactly as postgres-es
//! serialises them, written with COPY: replaying them is what is measured, not producing them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use cqrs_es::DomainEvent;
use futures::{stream, StreamExt, TryStreamExt};
use serde::Serialize;
use sqlx::PgPool;
use stratus_api::auth::Passwords;
use stratus_commands::register_account::{self, Registration};
use stratus_commands::secrets::ChallengeKeys;
use stratus_commands::{AggregateStore, CommandMetadata};
use stratus_domain::account::{Account, AccountServices};
use stratus_domain::wallet::{RefundReason, WalletEvent};
use stratus_domain::{AccountId, Currency, Email, LedgerReference, Money, PersonName, Role};
use tokio::process::Command;
use uuid::Uuid;

use crate::server::server_env;
use crate::{progress, Args, BenchError, BenchResult};

/// The password of every seeded account.
pub const SEEDED_PASSWORD: &str = "bench customer passphrase";
/// Registrations in flight while seeding.
const SEED_CONCURRENCY: usize = 16;
/// How long the server may take to open the seeded wallets and send their welcome mail.
const SEED_SETTLE_TIMEOUT: Duration = Duration::from_secs(600);
/// Events per generated wallet in the rebuild log.
const EVENTS_PER_WALLET: u64 = 100;
/// Rows per COPY transaction.
const COPY_CHUNK_WALLETS: u64 = 100;

/// A seeded account.
#[derive(Debug, Clone)]
pub struct Seeded {
    pub account_id: Uuid,
    pub email: String,
}

/// The email of the `index`th seeded account.
pub fn seeded_email(index: usize) -> String {
    format!("bench-{index}@example.com")
}

/// Registers `count` accounts through the write side and waits until the server has opened
/// their wallets and emptied the outbox of their verification mail.
pub async fn accounts(database_url: &str, count: usize) -> BenchResult<Vec<Seeded>> {
    progress(&format!("seeding {count} accounts through the write side"));
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(u32::try_from(SEED_CONCURRENCY).unwrap_or(16))
        .connect(database_url)
        .await?;
    let passwords = Passwords::new(1).map_err(|e| BenchError::failed(e.to_string()))?;
    let hash = passwords
        .hash(SEEDED_PASSWORD.to_owned())
        .await
        .map_err(|e| BenchError::failed(e.to_string()))?;
    let secrets = ChallengeKeys::new(crate::server::CHALLENGE_SECRET.as_bytes());
    let store = Arc::new(AggregateStore::<Account>::new(
        pool.clone(),
        AccountServices {
            secrets: Arc::new(secrets),
        },
    ));
    let name =
        PersonName::parse("Bench Customer").map_err(|e| BenchError::failed(e.to_string()))?;
    let started = Instant::now();
    let seeded: Vec<Seeded> = stream::iter(0..count)
        .map(|index| {
            let store = Arc::clone(&store);
            let pool = pool.clone();
            let hash = hash.clone();
            let name = name.clone();
            async move {
                let email = seeded_email(index);
                let account_id = Uuid::now_v7();
                let registration = Registration {
                    account_id: AccountId::from_uuid(account_id),
                    name,
                    email: Email::parse(&email).map_err(|e| BenchError::failed(e.to_string()))?,
                    phone: None,
                    password_hash: hash,
                    roles: vec![Role::Customer],
                    email_verification: stratus_api::challenges::mint(
                        stratus_api::challenges::EMAIL_VERIFICATION_TTL_MINUTES,
                    ),
                    occurred_at: Utc::now(),
                };
                let metadata = CommandMetadata::system(Uuid::now_v7(), "bench seed");
                register_account::register(&store, &pool, registration, &metadata)
                    .await
                    .map_err(|e| BenchError::failed(format!("seeding {email}: {e}")))?;
                Ok::<_, BenchError>(Seeded { account_id, email })
            }
        })
        .buffer_unordered(SEED_CONCURRENCY)
        .try_collect()
        .await?;
    progress(&format!(
        "registered {count} accounts in {:.1} s; waiting for their wallets",
        started.elapsed().as_secs_f64()
    ));
    settle(&pool, count).await?;
    progress(&format!(
        "wallets open and outbox empty after {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    pool.close().await;
    Ok(seeded)
}

/// Waits until `count` wallets exist and no message waits in the outbox.
async fn settle(pool: &PgPool, count: usize) -> BenchResult<()> {
    let deadline = Instant::now() + SEED_SETTLE_TIMEOUT;
    loop {
        let wallets: i64 = sqlx::query_scalar("SELECT count(*) FROM wallets")
            .fetch_one(pool)
            .await?;
        let pending: i64 =
            sqlx::query_scalar("SELECT count(*) FROM outbox WHERE status = 'pending'")
                .fetch_one(pool)
                .await?;
        if usize::try_from(wallets).unwrap_or(0) >= count && pending == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(BenchError::failed(format!(
                "after {} s only {wallets} of {count} wallets are open ({pending} messages pending)",
                SEED_SETTLE_TIMEOUT.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// One projection's rebuild.
#[derive(Debug, Clone, Serialize)]
pub struct RebuildRun {
    pub projection: String,
    pub events: u64,
    pub seconds: f64,
    pub events_per_second: f64,
}

/// Scenario (e): the log filled to `rebuild_events`, then projections rebuilt by the CLI.
#[derive(Debug, Clone, Serialize)]
pub struct Rebuild {
    pub log_events: u64,
    pub runs: Vec<RebuildRun>,
}

/// Fills the log with generated wallet histories up to `args.rebuild_events` and times
/// `stratus projections rebuild` of the wallet read models (the server is stopped by then).
pub async fn rebuild(
    args: &Args,
    binary: &std::path::Path,
    run_dir: &std::path::Path,
    database_url: &str,
) -> BenchResult<Rebuild> {
    let pool = PgPool::connect(database_url).await?;
    let existing: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await?;
    let existing = u64::try_from(existing).unwrap_or(0);
    let missing = args.rebuild_events.saturating_sub(existing);
    let wallets = missing.div_ceil(EVENTS_PER_WALLET);
    progress(&format!(
        "(e) writing {} generated wallet events beside the {existing} in the log",
        wallets * EVENTS_PER_WALLET
    ));
    let started = Instant::now();
    let mut written = 0;
    while written < wallets {
        let chunk = COPY_CHUNK_WALLETS.min(wallets - written);
        copy_wallets(&pool, chunk).await?;
        written += chunk;
    }
    sqlx::query("VACUUM ANALYZE events").execute(&pool).await?;
    let log_events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await?;
    pool.close().await;
    progress(&format!(
        "log holds {log_events} events (written in {:.1} s)",
        started.elapsed().as_secs_f64()
    ));
    let env = server_env(run_dir, database_url, 0);
    let mut runs = Vec::new();
    for projection in ["wallets", "ledger"] {
        progress(&format!("(e) stratus projections rebuild {projection}"));
        let output = Command::new(binary)
            .args(["projections", "rebuild", projection])
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .await?;
        let text = String::from_utf8_lossy(&output.stdout).to_string();
        if !output.status.success() {
            return Err(BenchError::failed(format!(
                "rebuild of {projection} failed: {text}{}",
                String::from_utf8_lossy(&output.stderr)
            )));
        }
        let (events, seconds) = parse_rebuilt(&text)
            .ok_or_else(|| BenchError::failed(format!("unexpected rebuild output: {text}")))?;
        runs.push(RebuildRun {
            projection: projection.to_owned(),
            events,
            seconds,
            events_per_second: events as f64 / seconds.max(1e-9),
        });
    }
    Ok(Rebuild {
        log_events: u64::try_from(log_events).unwrap_or(0),
        runs,
    })
}

/// `rebuilt wallets: 1000000 events in 8.123 s` → (1000000, 8.123).
fn parse_rebuilt(text: &str) -> Option<(u64, f64)> {
    let line = text.lines().find(|line| line.starts_with("rebuilt "))?;
    let (_, rest) = line.split_once(": ")?;
    let mut words = rest.split_whitespace();
    let events = words.next()?.parse().ok()?;
    let seconds = words.nth(2)?.parse().ok()?;
    Some((events, seconds))
}

/// COPYs `wallets` generated histories: opened, then goodwill credits.
async fn copy_wallets(pool: &PgPool, wallets: u64) -> BenchResult<()> {
    let currency = Currency::parse("EUR").map_err(|e| BenchError::failed(e.to_string()))?;
    let credit = Money::from_micros(1_000_000, currency);
    let metadata =
        serde_json::to_string(&CommandMetadata::system(Uuid::now_v7(), "bench").to_map())?;
    let mut rows = String::new();
    for _ in 0..wallets {
        let account_id = AccountId::from_uuid(Uuid::now_v7());
        let id = account_id.to_string();
        let now = Utc::now();
        let mut events = vec![WalletEvent::WalletOpened {
            account_id,
            currency,
            opened_at: now,
        }];
        for n in 1..EVENTS_PER_WALLET {
            let micros = i64::try_from(n).unwrap_or(0).saturating_mul(1_000_000);
            let reference = LedgerReference::parse(&format!("bench-{n}"))
                .map_err(|e| BenchError::failed(e.to_string()))?;
            events.push(WalletEvent::WalletRefunded {
                reference,
                refunds_debit: None,
                amount: credit,
                reason: RefundReason::Goodwill,
                balance_after: Money::from_micros(micros, currency),
                refunded_at: now,
            });
        }
        for (sequence, event) in events.iter().enumerate() {
            let payload = serde_json::to_string(event)?;
            rows.push_str(&format!(
                "wallet\t{id}\t{}\t{}\t{}\t{}\t{}\n",
                sequence + 1,
                event.event_type(),
                event.event_version(),
                copy_escape(&payload),
                copy_escape(&metadata),
            ));
        }
    }
    let mut conn = pool.acquire().await?;
    let mut copy = conn
        .copy_in_raw(
            "COPY events (aggregate_type, aggregate_id, sequence, event_type, event_version, \
             payload, metadata) FROM STDIN",
        )
        .await?;
    copy.send(rows.into_bytes()).await?;
    copy.finish().await?;
    Ok(())
}

/// A value for COPY's text format: backslash, tab and line breaks escaped.
fn copy_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{copy_escape, parse_rebuilt};

    #[test]
    fn reads_the_rebuild_line_of_the_cli() {
        assert_eq!(
            parse_rebuilt("rebuilt wallets: 1000000 events in 8.123 s\n"),
            Some((1_000_000, 8.123))
        );
        assert_eq!(parse_rebuilt("something else"), None);
    }

    #[test]
    fn escapes_what_copy_text_format_treats_specially() {
        assert_eq!(copy_escape(r#"{"a":"b\"c"}"#), r#"{"a":"b\\"c"}"#);
        assert_eq!(copy_escape("a\tb\nc"), "a\\tb\\nc");
    }
}
