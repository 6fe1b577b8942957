//! The ordered feed: fencing, atomic checkpoints, one active runner, rebuilds, append-only log.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use sqlx::{PgConnection, PgPool};
use stratus_projections::feed::checkpoint;
use stratus_projections::{Feed, FeedPosition, StoredEvent, Subscriber, SubscriberError};
use stratus_tests::wallets::{sample_books, wait_for_projections, Wallets};
use stratus_tests::{fresh_pool, TestApp};
use tokio::sync::watch;

/// Records every event it applies into `recorded`; the primary key makes a double application fail.
struct Recorder;

impl Subscriber for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }
    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        events: &'a [StoredEvent],
    ) -> BoxFuture<'a, Result<(), SubscriberError>> {
        Box::pin(async move {
            for event in events {
                if event.event_type == "Poison" {
                    return Err(SubscriberError::decode(event, "poison"));
                }
                sqlx::query("INSERT INTO recorded (global_position, aggregate_id) VALUES ($1, $2)")
                    .bind(event.position.global_position)
                    .bind(&event.aggregate_id)
                    .execute(&mut *tx)
                    .await?;
            }
            Ok(())
        })
    }
    fn reset<'a>(&'a self, tx: &'a mut PgConnection) -> BoxFuture<'a, Result<(), SubscriberError>> {
        Box::pin(async move {
            sqlx::query("DELETE FROM recorded")
                .execute(&mut *tx)
                .await?;
            Ok(())
        })
    }
}

/// Records like [`Recorder`], but acts on the `wanted` aggregate type only.
struct Picky;

impl Subscriber for Picky {
    fn name(&self) -> &'static str {
        "picky"
    }
    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        events: &'a [StoredEvent],
    ) -> BoxFuture<'a, Result<(), SubscriberError>> {
        Recorder.apply(tx, events)
    }
    fn reset<'a>(&'a self, tx: &'a mut PgConnection) -> BoxFuture<'a, Result<(), SubscriberError>> {
        Recorder.reset(tx)
    }
    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        Some(&["wanted"])
    }
}

async fn recorder_pool() -> PgPool {
    let pool = fresh_pool().await;
    sqlx::query("CREATE TABLE recorded (global_position bigint PRIMARY KEY, aggregate_id text NOT NULL, applied bigserial)")
        .execute(&pool)
        .await
        .unwrap();
    pool
}

const INSERT_EVENT: &str = "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
     VALUES ('test', $1, 1, $2, '1', '{}', '{}')";

async fn append(conn: &mut PgConnection, id: &str, event_type: &str) {
    sqlx::query(INSERT_EVENT)
        .bind(id)
        .bind(event_type)
        .execute(conn)
        .await
        .unwrap();
}

async fn recorded(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar("SELECT aggregate_id FROM recorded ORDER BY applied")
        .fetch_all(pool)
        .await
        .unwrap()
}

/// Other tests share the cluster; their transactions can hold the fence back for a moment.
async fn until_recorded(feed: &Feed, pool: &PgPool, count: usize) -> Vec<String> {
    for _ in 0..200 {
        feed.catch_up("recorder").await.unwrap();
        let seen = recorded(pool).await;
        if seen.len() >= count {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    recorded(pool).await
}

#[tokio::test]
async fn an_event_from_a_transaction_that_commits_late_is_not_skipped() {
    let pool = recorder_pool().await;
    let feed = Feed::new(pool.clone(), vec![Arc::new(Recorder)]);
    let mut slow = pool.begin().await.unwrap();
    append(&mut slow, "slow", "Tested").await; // lower global position, still uncommitted
    let mut conn = pool.acquire().await.unwrap();
    append(&mut conn, "fast", "Tested").await; // higher position, committed first

    feed.catch_up("recorder").await.unwrap();
    assert!(
        recorded(&pool).await.is_empty(),
        "the fast event must wait behind the fence"
    );

    slow.commit().await.unwrap();
    let seen = until_recorded(&feed, &pool, 2).await;

    assert_eq!(seen, vec!["slow", "fast"]);
}

#[tokio::test]
async fn transaction_ids_order_as_numbers_where_their_text_would_not() {
    let pool = recorder_pool().await;
    let feed = Feed::new(pool.clone(), vec![Arc::new(Recorder)]);
    // Long-finished transaction ids on either side of a power of ten: as text, "100" < "99".
    for (id, transaction_id) in [("ninety-nine", "99"), ("hundred", "100")] {
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, \
             payload, metadata, transaction_id) VALUES ('test', $1, 1, 'Tested', '1', '{}', '{}', $2::text::xid8)",
        )
        .bind(id)
        .bind(transaction_id)
        .execute(&pool)
        .await
        .unwrap();
    }

    let first = feed.catch_up("recorder").await.unwrap();
    let again = feed.catch_up("recorder").await.unwrap();
    let log = stratus_projections::audit::global_log(&pool, FeedPosition::START, None, 10)
        .await
        .unwrap();

    assert_eq!(recorded(&pool).await, vec!["ninety-nine", "hundred"]);
    assert_eq!(first.transaction_id, 100);
    assert_eq!(again, first, "nothing is applied twice");
    assert_eq!(feed.head().await.unwrap(), first);
    let ids: Vec<_> = log.iter().map(|e| e.aggregate_id.as_str()).collect();
    assert_eq!(ids, vec!["ninety-nine", "hundred"]);
}

#[tokio::test]
async fn a_failing_batch_moves_neither_the_read_model_nor_the_checkpoint() {
    let pool = recorder_pool().await;
    let feed = Feed::new(pool.clone(), vec![Arc::new(Recorder)]);
    let mut conn = pool.acquire().await.unwrap();
    append(&mut conn, "good", "Tested").await;
    append(&mut conn, "bad", "Poison").await;

    let mut failed = false;
    for _ in 0..100 {
        if feed.catch_up("recorder").await.is_err() {
            failed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    assert!(failed, "the poison event must fail the batch");
    assert!(recorded(&pool).await.is_empty());
    assert_eq!(
        checkpoint(&pool, "recorder").await.unwrap(),
        FeedPosition::START
    );
}

#[tokio::test]
async fn two_processes_apply_every_event_exactly_once_with_one_active_runner() {
    let pool = recorder_pool().await;
    let first = Feed::new(pool.clone(), vec![Arc::new(Recorder)]);
    let second = Feed::new(pool.clone(), vec![Arc::new(Recorder)]);
    let (stop, stopped) = watch::channel(false);
    let mut tasks = first.start(stopped.clone());
    tasks.extend(second.start(stopped));

    let writers = (0..40).map(|i| {
        let pool = pool.clone();
        tokio::spawn(async move {
            let mut conn = pool.acquire().await.unwrap();
            append(&mut conn, &format!("e{i}"), "Tested").await;
        })
    });
    futures::future::join_all(writers).await;
    let head = first.head().await.unwrap();
    let caught_up = first
        .wait_for(&["recorder"], head, Duration::from_secs(15))
        .await
        .unwrap();
    let holders: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    stop.send(true).unwrap();
    for task in tasks {
        task.await.unwrap();
    }

    assert!(caught_up);
    assert_eq!(recorded(&pool).await.len(), 40);
    assert_eq!(holders, 1, "exactly one runner holds the subscriber's lock");
}

#[tokio::test]
async fn rebuilding_the_accounts_projection_reproduces_the_live_read_model() {
    let app = TestApp::spawn().await;
    let customer = app.customer().await;
    app.post(
        "/auth/refresh",
        &serde_json::json!({"refresh_token": customer.refresh_token}),
        None,
    )
    .await;
    app.post(
        "/auth/refresh",
        &serde_json::json!({"refresh_token": customer.refresh_token}),
        None,
    )
    .await; // reuse: revokes
    let other = app.customer().await;
    app.post(
        "/auth/logout",
        &serde_json::json!({}),
        Some(&other.access_token),
    )
    .await;
    let accounts_sql = "SELECT * FROM accounts ORDER BY account_id";
    let sessions_sql = "SELECT * FROM account_sessions ORDER BY session_id";
    let (live_accounts, live_sessions) =
        (app.rows(accounts_sql).await, app.rows(sessions_sql).await);

    let state = &app.running.as_ref().unwrap().state;
    // The wallet opener appends a WalletOpened per account; let it finish first.
    let head = state.feed.head().await.unwrap();
    state.feed.wake();
    assert!(state
        .feed
        .wait_for(&["wallet-opener"], head, std::time::Duration::from_secs(10))
        .await
        .unwrap());
    let replayed = state.feed.rebuild("accounts").await.unwrap();

    assert_eq!(
        replayed, 14,
        "admin 2, first customer 5, second customer 4, and three wallets opened"
    );
    assert_eq!(app.rows(accounts_sql).await, live_accounts);
    assert_eq!(app.rows(sessions_sql).await, live_sessions);
    assert_eq!(live_sessions.len(), 2);
}

/// Every table the feed's subscribers write, each as its rows in text, sorted. Left out: the log,
/// the claims commands make, and the outbox columns the dispatcher changes while it sends
/// (the outbox is compared by id and deduplication key); checkpoints are compared by position.
async fn read_models(pool: &PgPool) -> BTreeMap<String, Vec<String>> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables          WHERE table_schema = 'public' AND table_type = 'BASE TABLE' AND table_name NOT IN          ('events', 'unique_claims', 'outbox', 'subscriber_checkpoints', '_sqlx_migrations')",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut queries: Vec<(String, String)> = tables
        .into_iter()
        .map(|t| {
            (
                t.clone(),
                format!("SELECT to_jsonb(t)::text FROM {t} t ORDER BY 1"),
            )
        })
        .collect();
    queries.push((
        "outbox".to_owned(),
        "SELECT id::text || ' ' || dedup_key FROM outbox ORDER BY 1".to_owned(),
    ));
    queries.push((
        "subscriber_checkpoints".to_owned(),
        "SELECT name || ' ' || transaction_id::text || ' ' || global_position          FROM subscriber_checkpoints ORDER BY 1"
            .to_owned(),
    ));
    let mut models = BTreeMap::new();
    for (name, sql) in queries {
        let rows: Vec<String> = sqlx::query_scalar(&sql).fetch_all(pool).await.unwrap();
        models.insert(name, rows);
    }
    models
}

/// The columns, indexes and constraints of every read-model table, as the catalog prints them,
/// and the schemas whose name a rebuild's fresh tables use.
async fn read_model_definitions(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.table_name || ' ' || c.column_name || ' ' || c.data_type || ' ' || c.is_nullable \
           || ' ' || coalesce(c.column_default, '') FROM information_schema.columns c \
           WHERE c.table_schema = current_schema() \
         UNION ALL SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i \
           JOIN pg_class t ON t.oid = i.indrelid WHERE t.relnamespace = current_schema()::regnamespace \
         UNION ALL SELECT conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid) \
           FROM pg_constraint WHERE connamespace = current_schema()::regnamespace \
         UNION ALL SELECT 'schema ' || nspname FROM pg_namespace WHERE nspname LIKE 'stratus_rebuild%' \
         ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn rebuilding_every_subscriber_leaves_every_read_model_as_it_was() {
    let app = TestApp::spawn().await;
    let customer = app.customer().await;
    app.post(
        "/auth/logout",
        &serde_json::json!({}),
        Some(&customer.access_token),
    )
    .await;
    sample_books(&Wallets::new(app.pool.clone())).await;
    let feed = &app.running.as_ref().unwrap().state.feed;
    let names = feed.subscriber_names();
    wait_for_projections(feed, &names).await;
    let live = read_models(&app.pool).await;
    let definitions = read_model_definitions(&app.pool).await;

    for name in &names {
        feed.rebuild(name).await.unwrap();
    }

    assert!(names.contains(&"ledger"), "{names:?}");
    assert_eq!(live["ledger_entries"].len(), 14);
    assert_eq!(live["accounts"].len(), 2, "the admin and the customer");
    assert_eq!(read_models(&app.pool).await, live);
    assert!(definitions
        .iter()
        .any(|d| d.contains("wallet_transactions_by_kind")));
    assert_eq!(
        read_model_definitions(&app.pool).await,
        definitions,
        "the tables rebuilt fresh have the columns, indexes and constraints of those they replace"
    );
}

#[tokio::test]
async fn the_event_log_refuses_updates_deletes_and_truncation() {
    let pool = fresh_pool().await;
    let mut conn = pool.acquire().await.unwrap();
    append(&mut conn, "kept", "Tested").await;

    for sql in [
        "UPDATE events SET event_type = 'Changed'",
        "DELETE FROM events",
        "TRUNCATE events",
    ] {
        let err = sqlx::query(sql).execute(&pool).await.unwrap_err();
        let code = err
            .as_database_error()
            .and_then(|e| e.code())
            .map(|c| c.into_owned());
        assert_eq!(code.as_deref(), Some("23001"), "{sql}: {err}");
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 1);
}

#[tokio::test]
async fn a_subscriber_of_some_aggregate_types_gets_only_those_and_its_checkpoint_passes_the_rest() {
    let pool = recorder_pool().await;
    let feed = Feed::new(pool.clone(), vec![Arc::new(Picky)]);
    let (stop, stopped) = watch::channel(false);
    let tasks = feed.start(stopped);
    for (kind, id) in [
        ("other", "o1"),
        ("wanted", "w1"),
        ("other", "o2"),
        ("wanted", "w2"),
        ("other", "o3"),
    ] {
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, \
             payload, metadata) VALUES ($1, $2, 1, 'Tested', '1', '{}', '{}')",
        )
        .bind(kind)
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    }
    // The newest event is of a type the subscriber passes over: waiting for it still ends,
    // because waiting wakes the runner whatever the event's type.
    let head = feed.head().await.unwrap();
    let caught_up = feed
        .wait_for(&["picky"], head, Duration::from_secs(15))
        .await
        .unwrap();
    let live = recorded(&pool).await;
    stop.send(true).unwrap();
    for task in tasks {
        task.await.unwrap();
    }
    let replayed = feed.rebuild("picky").await.unwrap();

    assert!(caught_up);
    assert_eq!(live, vec!["w1", "w2"]);
    assert_eq!(checkpoint(&pool, "picky").await.unwrap(), head);
    assert_eq!(replayed, 5, "a rebuild reads the whole log");
    assert_eq!(recorded(&pool).await, vec!["w1", "w2"]);
}
