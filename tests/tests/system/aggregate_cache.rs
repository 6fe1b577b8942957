//! The aggregate store's in-process cache and snapshots (ADR 0013): a cached state never changes
//! an answer, and a long stream is loaded from its snapshot.

use chrono::Utc;
use stratus_commands::aggregate_store::{SNAPSHOT_EVERY_EVENTS, SNAPSHOT_SCHEMA};
use stratus_commands::CommandError;
use stratus_domain::wallet::{DebitReason, RefundReason, Wallet, WalletCommand, WalletError};
use stratus_domain::{AccountId, Currency, LedgerReference, Money};
use stratus_tests::fresh_pool;
use stratus_tests::wallets::Wallets;
use uuid::Uuid;

fn eur(micros: i64) -> Money {
    Money::from_micros(micros, Currency::EUR)
}

fn credit(micros: i64) -> WalletCommand {
    WalletCommand::Refund {
        reference: LedgerReference::parse(&format!("credit-{}", Uuid::now_v7().simple())).unwrap(),
        refunds_debit: None,
        amount: eur(micros),
        reason: RefundReason::Goodwill,
        occurred_at: Utc::now(),
    }
}

fn debit(micros: i64) -> WalletCommand {
    WalletCommand::Debit {
        reference: LedgerReference::parse(&format!("debit-{}", Uuid::now_v7().simple())).unwrap(),
        amount: eur(micros),
        reason: DebitReason::Adjustment,
        occurred_at: Utc::now(),
    }
}

/// The snapshot of a wallet once its (asynchronous) write has landed at `sequence` or later.
async fn snapshot_at(pool: &sqlx::PgPool, account: AccountId, sequence: usize) -> (i64, String) {
    for _ in 0..500 {
        let row: Option<(i64, String)> = sqlx::query_as(
            "SELECT sequence, schema FROM aggregate_snapshots WHERE aggregate_type = 'wallet' AND aggregate_id = $1",
        )
        .bind(account.to_string())
        .fetch_optional(pool)
        .await
        .unwrap();
        if let Some(row) = row {
            if row.0 >= i64::try_from(sequence).unwrap() {
                return row;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("no snapshot of {account} at {sequence}");
}

async fn balance(wallets: &Wallets, account: AccountId) -> Money {
    wallets.replayed(account).await.balance().unwrap()
}

#[tokio::test]
async fn a_refusal_decided_on_a_stale_cache_is_checked_against_the_log_first() {
    let pool = fresh_pool().await;
    let here = Wallets::new(pool.clone());
    let elsewhere = Wallets::new(pool.clone());
    let account = here.open(Currency::EUR).await;
    // `here` has the empty wallet cached; another process credits it.
    elsewhere.accept(account, credit(10_000_000)).await;

    let debited = here.execute(account, debit(4_000_000)).await;

    assert!(debited.is_ok(), "{debited:?}");
    assert_eq!(balance(&here, account).await, eur(6_000_000));
}

#[tokio::test]
async fn a_real_refusal_on_a_cached_aggregate_stays_a_refusal() {
    let pool = fresh_pool().await;
    let wallets = Wallets::new(pool.clone());
    let account = wallets.open(Currency::EUR).await;
    wallets.accept(account, credit(1_000_000)).await;

    let refused = wallets.execute(account, debit(2_000_000)).await;

    assert!(
        matches!(
            refused,
            Err(CommandError::Refused(WalletError::InsufficientFunds))
        ),
        "{refused:?}"
    );
    assert_eq!(balance(&wallets, account).await, eur(1_000_000));
}

#[tokio::test]
async fn an_append_on_a_stale_cache_conflicts_catches_up_and_is_decided_again() {
    let pool = fresh_pool().await;
    let here = Wallets::new(pool.clone());
    let elsewhere = Wallets::new(pool.clone());
    let account = here.open(Currency::EUR).await;
    here.accept(account, credit(1_000_000)).await;
    elsewhere.accept(account, credit(2_000_000)).await;

    // `here` still believes the stream ends at sequence 2 and the balance is 1.00.
    let appended = here.accept(account, credit(3_000_000)).await;

    assert_eq!(appended.events.len(), 1);
    assert_eq!(appended.events[0].sequence, 4);
    assert_eq!(balance(&here, account).await, eur(6_000_000));
    // The cached state after the retry is the log's: a debit of everything is accepted.
    here.accept(account, debit(6_000_000)).await;
    assert_eq!(balance(&here, account).await, eur(0));
}

#[tokio::test]
async fn a_long_stream_is_snapshotted_and_a_cold_store_loads_the_same_state() {
    let pool = fresh_pool().await;
    let writer = Wallets::new(pool.clone());
    let account = writer.open(Currency::EUR).await;
    let commands = SNAPSHOT_EVERY_EVENTS * 2 + 30;
    let mut first = credit(1_000_000);
    if let WalletCommand::Refund { reference, .. } = &mut first {
        *reference = LedgerReference::parse("credit-first").unwrap();
    }
    writer.accept(account, first).await;
    for _ in 2..commands {
        writer.accept(account, credit(1_000_000)).await;
    }
    let (sequence, schema) = snapshot_at(&pool, account, SNAPSHOT_EVERY_EVENTS * 2).await;
    assert_eq!(sequence, i64::try_from(SNAPSHOT_EVERY_EVENTS * 2).unwrap());
    assert_eq!(schema, SNAPSHOT_SCHEMA);

    let cold = Wallets::new(pool.clone());
    let loaded: Wallet = cold.store.load(&account.to_string()).await.unwrap();

    let replayed = writer.replayed(account).await;
    assert_eq!(
        serde_json::to_value(&loaded).unwrap(),
        serde_json::to_value(&replayed).unwrap()
    );
    assert_eq!(loaded.balance(), Some(eur(229_000_000)));
    // And it decides on it: the next command gets the next sequence.
    let appended = cold.accept(account, credit(1_000_000)).await;
    assert_eq!(appended.events[0].sequence, commands + 1);

    // The cold load really starts from the snapshot: plant another wallet's valid state in it
    // (an empty ledger) and only the 31 credits after sequence 200 are folded into it.
    let other = writer.open(Currency::EUR).await;
    let planted = serde_json::to_value(writer.replayed(other).await).unwrap();
    sqlx::query("UPDATE aggregate_snapshots SET state = $2 WHERE aggregate_id = $1")
        .bind(account.to_string())
        .bind(&planted)
        .execute(&pool)
        .await
        .unwrap();
    let from_snapshot = Wallets::new(pool.clone())
        .store
        .load(&account.to_string())
        .await
        .unwrap();
    let first = LedgerReference::parse("credit-first").unwrap();
    assert!(loaded.ledger_entry(&first).is_some());
    assert!(from_snapshot.ledger_entry(&first).is_none());
    assert_eq!(from_snapshot.balance(), Some(eur(230_000_000)));
}

#[tokio::test]
async fn a_snapshot_of_another_build_or_one_that_does_not_decode_is_ignored() {
    let pool = fresh_pool().await;
    let writer = Wallets::new(pool.clone());
    let account = writer.open(Currency::EUR).await;
    for _ in 0..SNAPSHOT_EVERY_EVENTS {
        writer.accept(account, credit(1_000_000)).await;
    }
    snapshot_at(&pool, account, SNAPSHOT_EVERY_EVENTS).await;
    let empty_wallet = serde_json::to_value(Wallet::default()).unwrap();
    // A snapshot from other domain code claims an empty wallet: it must not be believed.
    sqlx::query(
        "UPDATE aggregate_snapshots SET schema = 'another-build', state = $2 WHERE aggregate_id = $1",
    )
    .bind(account.to_string())
    .bind(&empty_wallet)
    .execute(&pool)
    .await
    .unwrap();
    let cold = Wallets::new(pool.clone());
    let loaded = cold.store.load(&account.to_string()).await.unwrap();
    assert_eq!(loaded.balance(), Some(eur(100_000_000)));

    // This build's schema with a state that is not a wallet at all: replayed from the log.
    sqlx::query(
        "UPDATE aggregate_snapshots SET schema = $2, state = '{\"not\": \"a wallet\"}' WHERE aggregate_id = $1",
    )
    .bind(account.to_string())
    .bind(SNAPSHOT_SCHEMA)
    .execute(&pool)
    .await
    .unwrap();
    let cold = Wallets::new(pool.clone());
    let loaded = cold.store.load(&account.to_string()).await.unwrap();
    assert_eq!(loaded.balance(), Some(eur(100_000_000)));
}

/// Runs `count` tasks made by `task`, released together by a barrier so that they queue on the
/// aggregate at the same moment; their outputs in the order they were made.
async fn all_at_once<F, T>(count: usize, task: impl Fn(usize) -> F) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(count));
    let tasks: Vec<_> = (0..count)
        .map(|n| {
            let start = std::sync::Arc::clone(&start);
            let work = task(n);
            tokio::spawn(async move {
                start.wait().await;
                work.await
            })
        })
        .collect();
    let mut outputs = Vec::with_capacity(count);
    for task in tasks {
        outputs.push(task.await.unwrap());
    }
    outputs
}

#[tokio::test]
async fn concurrent_commands_on_one_aggregate_share_commits_and_keep_their_own_metadata() {
    let pool = fresh_pool().await;
    let wallets = std::sync::Arc::new(Wallets::new(pool.clone()));
    let account = wallets.open(Currency::EUR).await;
    let commands = 40;
    let answers = all_at_once(commands, |_| {
        let wallets = std::sync::Arc::clone(&wallets);
        async move {
            let metadata =
                stratus_commands::CommandMetadata::system(Uuid::now_v7(), "group-commit");
            let appended = wallets
                .store
                .execute(&account.to_string(), credit(1_000_000), &metadata)
                .await
                .unwrap();
            (metadata.command_id, appended)
        }
    })
    .await;

    // Every command got its own event, its own position, and its own metadata in the log.
    let mut sequences: Vec<usize> = answers
        .iter()
        .map(|(_, appended)| appended.events[0].sequence)
        .collect();
    sequences.sort_unstable();
    assert_eq!(sequences, (2..2 + commands).collect::<Vec<_>>());
    let rows: Vec<(i64, String, String, i64)> = sqlx::query_as(
        "SELECT sequence, metadata->>'command_id', transaction_id::text, global_position \
         FROM events WHERE aggregate_type = 'wallet' AND aggregate_id = $1 AND sequence > 1",
    )
    .bind(account.to_string())
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), commands);
    for (command_id, appended) in &answers {
        let sequence = i64::try_from(appended.events[0].sequence).unwrap();
        let row = rows.iter().find(|row| row.0 == sequence).unwrap();
        assert_eq!(row.1, command_id.to_string());
        let position = appended.position.unwrap();
        assert_eq!(position.global_position, row.3);
        assert_eq!(position.transaction_id.to_string(), row.2);
    }
    // Commands that queued behind a commit were appended together.
    let commits: std::collections::HashSet<&String> = rows.iter().map(|row| &row.2).collect();
    assert!(
        commits.len() < commands,
        "{} commits for {commands} commands",
        commits.len()
    );
    assert_eq!(balance(&wallets, account).await, eur(40_000_000));
}

#[tokio::test]
async fn a_refusal_inside_a_burst_refuses_only_its_own_command() {
    let pool = fresh_pool().await;
    let wallets = std::sync::Arc::new(Wallets::new(pool.clone()));
    let account = wallets.open(Currency::EUR).await;
    wallets.accept(account, credit(10_000_000)).await;
    let answers = all_at_once(5, |_| {
        let wallets = std::sync::Arc::clone(&wallets);
        async move { wallets.execute(account, debit(3_000_000)).await }
    })
    .await;
    let mut accepted = 0;
    let mut refused = 0;
    for answer in answers {
        match answer {
            Ok(appended) => {
                assert_eq!(appended.events.len(), 1);
                accepted += 1;
            }
            Err(CommandError::Refused(WalletError::InsufficientFunds)) => refused += 1,
            Err(other) => panic!("unexpected answer: {other:?}"),
        }
    }

    // Each debit was decided on the balance the debits before it left, burst or not.
    assert_eq!((accepted, refused), (3, 2));
    assert_eq!(balance(&wallets, account).await, eur(1_000_000));
    let events: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_type = 'wallet' AND aggregate_id = $1",
    )
    .bind(account.to_string())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(events, 5, "opened, credited, three debits");
}

#[tokio::test]
async fn opening_an_open_wallet_answers_where_the_log_knows_it_open() {
    let pool = fresh_pool().await;
    let wallets = stratus_commands::wallets::Wallets::new(pool.clone(), Currency::EUR);
    let metadata = stratus_commands::CommandMetadata::system(Uuid::now_v7(), "test");
    let account = AccountId::from_uuid(Uuid::now_v7());

    let opened = wallets.open(account, &metadata).await.unwrap();
    assert!(opened.is_some());
    let credited = wallets
        .execute(account, credit(1_000_000), &metadata)
        .await
        .unwrap()
        .position;
    assert!(credited > opened);

    // Already open (by the reactor, say, an instant before the read model shows it): the answer
    // is the newest position of the wallet, so a caller can wait for the read model to get there.
    let again = wallets.open(account, &metadata).await.unwrap();
    assert_eq!(again, credited);
}

#[tokio::test]
async fn a_store_knows_a_wallet_open_only_once_it_has_seen_it_open() {
    let pool = fresh_pool().await;
    let here = stratus_commands::wallets::Wallets::new(pool.clone(), Currency::EUR);
    let elsewhere = stratus_commands::wallets::Wallets::new(pool.clone(), Currency::EUR);
    let metadata = stratus_commands::CommandMetadata::system(Uuid::now_v7(), "test");
    let account = AccountId::from_uuid(Uuid::now_v7());
    assert!(!here.known_open(account));

    here.open(account, &metadata).await.unwrap();

    assert!(here.known_open(account));
    // Another process (another store) has not seen it: it must look the wallet up.
    assert!(!elsewhere.known_open(account));
    assert!(!here.known_open(AccountId::from_uuid(Uuid::now_v7())));
}
