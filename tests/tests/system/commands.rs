//! The write side: conflict retries, unique claims and their release.

use chrono::Utc;
use sqlx::PgPool;
use stratus_commands::register_account::{self, RegisterError, Registration};
use stratus_commands::secrets::ChallengeKeys;
use stratus_commands::sessions::{self, NewSession};
use stratus_commands::{AggregateStore, CommandError, CommandMetadata};
use stratus_domain::account::{Account, AccountError, AccountServices, Challenge, LoginProof};
use stratus_domain::{AccountId, ChallengeId, Email, PersonName, Role, SessionId};
use stratus_tests::fresh_pool;
use uuid::Uuid;

fn registration(email: &str) -> Registration {
    Registration {
        account_id: AccountId::from_uuid(Uuid::now_v7()),
        name: PersonName::parse("Writer").unwrap(),
        email: Email::parse(email).unwrap(),
        phone: None,
        password_hash: "$argon2id$test".to_owned(),
        roles: vec![Role::Customer],
        email_verification: Challenge {
            id: ChallengeId::from_uuid(Uuid::now_v7()),
            expires_at: Utc::now() + chrono::Duration::hours(1),
        },
        occurred_at: Utc::now(),
    }
}

fn account_store(pool: &PgPool) -> AggregateStore<Account> {
    AggregateStore::new(
        pool.clone(),
        AccountServices {
            secrets: std::sync::Arc::new(ChallengeKeys::new(b"test key")),
        },
    )
}

fn meta() -> CommandMetadata {
    CommandMetadata::system(Uuid::now_v7(), "test")
}

fn new_session(account_id: AccountId) -> NewSession {
    NewSession {
        account_id,
        session_id: SessionId::from_uuid(Uuid::now_v7()),
        refresh_token_hash: "h".to_owned(),
        expires_at: Utc::now() + chrono::Duration::hours(1),
        client_ip: None,
        user_agent: None,
        proof: LoginProof::Password {
            second_factor: None,
        },
        occurred_at: Utc::now(),
    }
}

/// Makes the next `n` appends fail with a unique violation, exactly as a concurrent writer would.
async fn inject_conflicts(pool: &PgPool, n: i32) {
    // A sequence, not a table: nextval survives the rollback of the failed append.
    sqlx::raw_sql(&format!(
        "DROP SEQUENCE IF EXISTS injected_conflicts; CREATE SEQUENCE injected_conflicts;
         CREATE OR REPLACE FUNCTION inject_conflict() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF nextval('injected_conflicts') <= {n} THEN
             RAISE EXCEPTION 'injected' USING ERRCODE = 'unique_violation';
           END IF;
           RETURN NEW;
         END $$;
         DROP TRIGGER IF EXISTS inject_conflict ON events;
         CREATE TRIGGER inject_conflict BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION inject_conflict();"
    ))
    .execute(pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn a_conflict_is_decided_again_and_succeeds_within_the_retry_budget() {
    let pool = fresh_pool().await;
    let store = account_store(&pool);
    let reg = registration("retry@example.com");
    let account_id = reg.account_id;
    register_account::register(&store, &pool, reg, &meta())
        .await
        .unwrap();
    inject_conflicts(&pool, 3).await;

    let started = sessions::start(&store, new_session(account_id), &meta()).await;

    assert!(started.is_ok(), "{started:?}");
    assert_eq!(
        store
            .load_events(&account_id.to_string())
            .await
            .unwrap()
            .len(),
        3,
        "registered, verification issued, session started"
    );
}

#[tokio::test]
async fn conflicts_beyond_the_retry_budget_become_a_conflict_error_and_write_nothing() {
    let pool = fresh_pool().await;
    let store = account_store(&pool).with_max_conflict_retries(2);
    let reg = registration("exhausted@example.com");
    let account_id = reg.account_id;
    register_account::register(&store, &pool, reg, &meta())
        .await
        .unwrap();
    inject_conflicts(&pool, 3).await;

    let started = sessions::start(&store, new_session(account_id), &meta()).await;

    assert!(
        matches!(started, Err(CommandError::Conflict)),
        "{started:?}"
    );
    assert_eq!(
        store
            .load_events(&account_id.to_string())
            .await
            .unwrap()
            .len(),
        2,
        "only the registration's two events"
    );
}

#[tokio::test]
async fn a_refused_registration_gives_its_email_claim_back() {
    let pool = fresh_pool().await;
    let store = account_store(&pool);
    let first = registration("first@example.com");
    let mut second = registration("second@example.com");
    second.account_id = first.account_id; // the same aggregate: AlreadyRegistered
    register_account::register(&store, &pool, first, &meta())
        .await
        .unwrap();

    let refused = register_account::register(&store, &pool, second, &meta()).await;

    assert!(matches!(
        refused,
        Err(RegisterError::Command(CommandError::Refused(
            AccountError::AlreadyRegistered
        )))
    ));
    let claims: Vec<String> = sqlx::query_scalar("SELECT value FROM unique_claims ORDER BY value")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(claims, vec!["first@example.com"]);
}

#[tokio::test]
async fn an_orphaned_claim_is_taken_over_but_a_live_one_is_not() {
    let pool = fresh_pool().await;
    let store = account_store(&pool);
    sqlx::query("INSERT INTO unique_claims (scope, value, owner_id, claimed_at) VALUES ('account.email', 'orphan@example.com', 'crashed-owner', now() - interval '1 hour')")
        .execute(&pool)
        .await
        .unwrap();
    let live = registration("live@example.com");
    register_account::register(&store, &pool, live, &meta())
        .await
        .unwrap();
    sqlx::query("UPDATE unique_claims SET claimed_at = now() - interval '1 hour'")
        .execute(&pool)
        .await
        .unwrap();

    let took_over =
        register_account::register(&store, &pool, registration("orphan@example.com"), &meta())
            .await;
    let refused =
        register_account::register(&store, &pool, registration("live@example.com"), &meta()).await;

    assert!(took_over.is_ok(), "{took_over:?}");
    assert!(matches!(refused, Err(RegisterError::EmailTaken)));
}
