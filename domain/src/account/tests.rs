//! Given/when/then tests for the `Account` aggregate: one test per business rule, plus the pinned
//! stored format of its events.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use cqrs_es::DomainEvent;
use uuid::Uuid;

use super::test_support::test_services;
use super::*;

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

fn given(events: Vec<AccountEvent>) -> cqrs_es::test::AggregateTestExecutor<Account> {
    TestFramework::<Account>::with(test_services()).given(events)
}

/// A fixed instant plus `minutes`: tests never read the clock.
fn at(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 9, 0, 0).unwrap() + TimeDelta::minutes(minutes)
}

fn account_id() -> AccountId {
    AccountId::from_uuid(Uuid::from_u128(0x0195_4b3c_0000_7000_8000_0000_0000_0001))
}

fn session_id() -> SessionId {
    SessionId::from_uuid(Uuid::from_u128(0x0195_4b3c_0000_7000_8000_0000_0000_0101))
}

fn other_session_id() -> SessionId {
    SessionId::from_uuid(Uuid::from_u128(0x0195_4b3c_0000_7000_8000_0000_0000_0102))
}

fn register(roles: Vec<Role>) -> AccountCommand {
    AccountCommand::Register {
        account_id: account_id(),
        name: PersonName::parse("Ada Lovelace").unwrap(),
        email: Email::parse("ada@example.com").unwrap(),
        phone: Some(Phone::parse("+44 20 7946 0958").unwrap()),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned(),
        roles,
        email_verification: Challenge {
            id: email_challenge_id(),
            expires_at: at(24 * 60),
        },
        occurred_at: at(0),
    }
}

fn email_challenge_id() -> ChallengeId {
    ChallengeId::from_uuid(Uuid::from_u128(0x0195_4b3c_0000_7000_8000_0000_0000_0201))
}

fn verification_issued() -> AccountEvent {
    AccountEvent::EmailVerificationIssued {
        challenge_id: email_challenge_id(),
        email: Email::parse("ada@example.com").unwrap(),
        expires_at: at(24 * 60),
        issued_at: at(0),
    }
}

fn registered_with(roles: Vec<Role>) -> AccountEvent {
    AccountEvent::AccountRegistered {
        account_id: account_id(),
        name: PersonName::parse("Ada Lovelace").unwrap(),
        email: Email::parse("ada@example.com").unwrap(),
        phone: Some(Phone::parse("+442079460958").unwrap()),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned(),
        roles,
        registered_at: at(0),
    }
}

fn registered() -> AccountEvent {
    registered_with(vec![Role::Customer])
}

fn start(session_id: SessionId, hash: &str) -> AccountCommand {
    AccountCommand::StartSession {
        session_id,
        refresh_token_hash: hash.to_owned(),
        expires_at: at(60),
        client_ip: Some("203.0.113.7".to_owned()),
        user_agent: Some("stratus-cli/1.0".to_owned()),
        proof: LoginProof::Password {
            second_factor: None,
        },
        occurred_at: at(1),
    }
}

/// A session started at minute 1 with token hash `hash-0`, expiring at minute 60.
fn started() -> AccountEvent {
    started_with(session_id(), "hash-0")
}

fn started_with(session_id: SessionId, hash: &str) -> AccountEvent {
    AccountEvent::SessionStarted {
        session_id,
        refresh_token_hash: hash.to_owned(),
        expires_at: at(60),
        client_ip: Some("203.0.113.7".to_owned()),
        user_agent: Some("stratus-cli/1.0".to_owned()),
        started_at: at(1),
    }
}

/// Presenting `presented` at `minute`, asking for `new` valid for another hour.
fn refresh(presented: &str, new: &str, minute: i64) -> AccountCommand {
    AccountCommand::RefreshSession {
        session_id: session_id(),
        presented_token_hash: presented.to_owned(),
        new_token_hash: new.to_owned(),
        expires_at: at(minute + 60),
        occurred_at: at(minute),
    }
}

fn refreshed(new: &str, minute: i64) -> AccountEvent {
    AccountEvent::SessionRefreshed {
        session_id: session_id(),
        refresh_token_hash: new.to_owned(),
        expires_at: at(minute + 60),
        refreshed_at: at(minute),
    }
}

fn end(minute: i64) -> AccountCommand {
    AccountCommand::EndSession {
        session_id: session_id(),
        occurred_at: at(minute),
    }
}

fn ended(minute: i64) -> AccountEvent {
    AccountEvent::SessionEnded {
        session_id: session_id(),
        ended_at: at(minute),
    }
}

fn revoked(minute: i64) -> AccountEvent {
    AccountEvent::SessionRevoked {
        session_id: session_id(),
        reason: RevocationReason::RefreshTokenReused,
        revoked_at: at(minute),
    }
}

fn replay(events: Vec<AccountEvent>) -> Account {
    let mut account = Account::default();
    for event in events {
        account.apply(event);
    }
    account
}

// ---------------------------------------------------------------------------------------------
// Register
// ---------------------------------------------------------------------------------------------

#[test]
fn registering_a_new_account_records_account_registered() {
    let executor = given(vec![]);

    let validator = executor.when(register(vec![Role::Customer]));

    validator.then_expect_events(vec![registered(), verification_issued()]);
}

#[test]
fn registration_deduplicates_and_sorts_the_roles() {
    let executor = given(vec![]);

    let validator = executor.when(register(vec![
        Role::Auditor,
        Role::Customer,
        Role::Auditor,
        Role::Admin,
        Role::Customer,
    ]));

    validator.then_expect_events(vec![
        registered_with(vec![Role::Customer, Role::Admin, Role::Auditor]),
        verification_issued(),
    ]);
}

#[test]
fn a_second_registration_of_the_same_account_is_refused() {
    let executor = given(vec![registered()]);

    let validator = executor.when(register(vec![Role::Customer]));

    validator.then_expect_error(AccountError::AlreadyRegistered);
}

#[test]
fn a_registration_without_roles_is_refused() {
    let executor = given(vec![]);

    let validator = executor.when(register(vec![]));

    validator.then_expect_error(AccountError::NoRoles);
}

#[test]
fn registration_records_the_account_in_state() {
    let events = vec![registered_with(vec![Role::Support, Role::Billing])];

    let account = replay(events);

    assert!(account.is_registered());
    assert_eq!(account.account_id(), Some(account_id()));
    assert_eq!(account.email().map(Email::as_str), Some("ada@example.com"));
    assert_eq!(account.roles(), [Role::Support, Role::Billing]);
}

// ---------------------------------------------------------------------------------------------
// StartSession
// ---------------------------------------------------------------------------------------------

#[test]
fn a_registered_account_can_start_a_session() {
    let executor = given(vec![registered()]);

    let validator = executor.when(start(session_id(), "hash-0"));

    validator.then_expect_events(vec![started()]);
}

#[test]
fn a_second_session_with_another_id_can_start_alongside_the_first() {
    let executor = given(vec![registered(), started()]);

    let validator = executor.when(start(other_session_id(), "hash-x"));

    validator.then_expect_events(vec![started_with(other_session_id(), "hash-x")]);
}

#[test]
fn starting_a_session_on_an_unregistered_account_is_refused() {
    let executor = given(vec![]);

    let validator = executor.when(start(session_id(), "hash-0"));

    validator.then_expect_error(AccountError::NotRegistered);
}

#[test]
fn starting_a_session_with_an_id_already_used_is_refused() {
    let executor = given(vec![registered(), started(), ended(5)]);

    let validator = executor.when(start(session_id(), "hash-new"));

    validator.then_expect_error(AccountError::SessionAlreadyExists);
}

#[test]
fn a_started_session_is_active_with_its_token_and_expiry() {
    let events = vec![registered(), started()];

    let account = replay(events);

    let session = account.session(&session_id()).unwrap();
    assert_eq!(session.status(), SessionStatus::Active);
    assert_eq!(session.current_token_hash(), "hash-0");
    assert!(session.previous_token_hashes().is_empty());
    assert_eq!(session.expires_at(), at(60));
}

// ---------------------------------------------------------------------------------------------
// RefreshSession
// ---------------------------------------------------------------------------------------------

#[test]
fn presenting_the_current_token_before_expiry_rotates_it() {
    let executor = given(vec![registered(), started()]);

    let validator = executor.when(refresh("hash-0", "hash-1", 30));

    validator.then_expect_events(vec![refreshed("hash-1", 30)]);
}

#[test]
fn after_a_rotation_the_new_token_is_the_one_that_refreshes() {
    let executor = given(vec![registered(), started(), refreshed("hash-1", 30)]);

    let validator = executor.when(refresh("hash-1", "hash-2", 40));

    validator.then_expect_events(vec![refreshed("hash-2", 40)]);
}

#[test]
fn a_rotation_extends_the_expiry_to_the_new_one() {
    // The session first expired at minute 60; the rotation at 30 moved it to 90.
    let executor = given(vec![registered(), started(), refreshed("hash-1", 30)]);

    let validator = executor.when(refresh("hash-1", "hash-2", 75));

    validator.then_expect_events(vec![refreshed("hash-2", 75)]);
}

#[test]
fn a_rotation_keeps_every_rotated_out_hash_in_state() {
    let events = vec![
        registered(),
        started(),
        refreshed("hash-1", 10),
        refreshed("hash-2", 20),
    ];

    let account = replay(events);

    let session = account.session(&session_id()).unwrap();
    assert_eq!(session.current_token_hash(), "hash-2");
    assert_eq!(session.previous_token_hashes(), ["hash-0", "hash-1"]);
    assert_eq!(session.expires_at(), at(80));
}

#[test]
fn refreshing_an_unknown_session_is_refused() {
    let executor = given(vec![registered()]);

    let validator = executor.when(refresh("hash-0", "hash-1", 30));

    validator.then_expect_error(AccountError::SessionNotFound);
}

#[test]
fn presenting_the_current_token_at_the_expiry_instant_is_refused_as_expired() {
    let executor = given(vec![registered(), started()]);

    let validator = executor.when(refresh("hash-0", "hash-1", 60));

    validator.then_expect_error(AccountError::SessionExpired);
}

#[test]
fn an_expired_session_cannot_be_refreshed() {
    let executor = given(vec![registered(), started()]);

    let validator = executor.when(refresh("hash-0", "hash-1", 61));

    validator.then_expect_error(AccountError::SessionExpired);
}

#[test]
fn reusing_a_rotated_refresh_token_revokes_the_session() {
    let executor = given(vec![registered(), started(), refreshed("hash-1", 10)]);

    let validator = executor.when(refresh("hash-0", "hash-attacker", 20));

    validator.then_expect_events(vec![revoked(20)]);
}

#[test]
fn reusing_the_oldest_of_several_rotated_tokens_also_revokes_the_session() {
    let executor = given(vec![
        registered(),
        started(),
        refreshed("hash-1", 10),
        refreshed("hash-2", 20),
        refreshed("hash-3", 30),
    ]);

    let validator = executor.when(refresh("hash-0", "hash-attacker", 40));

    validator.then_expect_events(vec![revoked(40)]);
}

#[test]
fn reusing_a_rotated_token_revokes_even_after_the_session_expired() {
    let executor = given(vec![registered(), started(), refreshed("hash-1", 10)]);

    let validator = executor.when(refresh("hash-0", "hash-attacker", 500));

    validator.then_expect_events(vec![revoked(500)]);
}

#[test]
fn a_revoked_session_is_recorded_as_revoked_in_state() {
    let events = vec![
        registered(),
        started(),
        refreshed("hash-1", 10),
        revoked(20),
    ];

    let account = replay(events);

    let session = account.session(&session_id()).unwrap();
    assert_eq!(session.status(), SessionStatus::Revoked);
}

#[test]
fn after_revocation_further_refreshes_are_refused_as_not_active() {
    let executor = given(vec![
        registered(),
        started(),
        refreshed("hash-1", 10),
        revoked(20),
    ]);

    let validator = executor.when(refresh("hash-1", "hash-2", 25));

    validator.then_expect_error(AccountError::SessionNotActive);
}

#[test]
fn after_revocation_reusing_the_rotated_token_again_is_refused_as_not_active() {
    let executor = given(vec![
        registered(),
        started(),
        refreshed("hash-1", 10),
        revoked(20),
    ]);

    let validator = executor.when(refresh("hash-0", "hash-2", 25));

    validator.then_expect_error(AccountError::SessionNotActive);
}

#[test]
fn refreshing_a_logged_out_session_is_refused_as_not_active() {
    let executor = given(vec![registered(), started(), ended(5)]);

    let validator = executor.when(refresh("hash-0", "hash-1", 10));

    validator.then_expect_error(AccountError::SessionNotActive);
}

#[test]
fn presenting_a_token_the_session_never_issued_is_refused_without_revoking() {
    let executor = given(vec![registered(), started(), refreshed("hash-1", 10)]);

    let validator = executor.when(refresh("hash-forged", "hash-2", 20));

    validator.then_expect_error(AccountError::InvalidRefreshToken);
}

#[test]
fn a_token_of_another_session_does_not_refresh_this_one() {
    let executor = given(vec![
        registered(),
        started(),
        started_with(other_session_id(), "hash-other"),
    ]);

    let validator = executor.when(refresh("hash-other", "hash-1", 10));

    validator.then_expect_error(AccountError::InvalidRefreshToken);
}

// ---------------------------------------------------------------------------------------------
// EndSession
// ---------------------------------------------------------------------------------------------

#[test]
fn logging_out_an_active_session_records_session_ended() {
    let executor = given(vec![registered(), started()]);

    let validator = executor.when(end(5));

    validator.then_expect_events(vec![ended(5)]);
}

#[test]
fn logging_out_an_expired_but_active_session_is_allowed() {
    let executor = given(vec![registered(), started()]);

    let validator = executor.when(end(500));

    validator.then_expect_events(vec![ended(500)]);
}

#[test]
fn a_logged_out_session_is_recorded_as_ended_in_state() {
    let events = vec![registered(), started(), ended(5)];

    let account = replay(events);

    let session = account.session(&session_id()).unwrap();
    assert_eq!(session.status(), SessionStatus::Ended);
}

#[test]
fn logging_out_twice_is_refused() {
    let executor = given(vec![registered(), started(), ended(5)]);

    let validator = executor.when(end(6));

    validator.then_expect_error(AccountError::SessionNotActive);
}

#[test]
fn logging_out_a_revoked_session_is_refused() {
    let executor = given(vec![
        registered(),
        started(),
        refreshed("hash-1", 10),
        revoked(20),
    ]);

    let validator = executor.when(end(25));

    validator.then_expect_error(AccountError::SessionNotActive);
}

#[test]
fn logging_out_an_unknown_session_is_refused() {
    let executor = given(vec![registered()]);

    let validator = executor.when(end(5));

    validator.then_expect_error(AccountError::SessionNotFound);
}

#[test]
fn logging_out_one_session_leaves_the_others_active() {
    let events = vec![
        registered(),
        started(),
        started_with(other_session_id(), "hash-other"),
        ended(5),
    ];

    let account = replay(events);

    let other = account.session(&other_session_id()).unwrap();
    assert_eq!(other.status(), SessionStatus::Active);
}

// ---------------------------------------------------------------------------------------------
// Handle through the sink
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn handle_applies_the_event_it_records_to_the_live_aggregate() {
    let mut account = replay(vec![registered()]);
    let sink = EventSink::<Account>::default();

    account
        .handle(start(session_id(), "hash-0"), &test_services(), &sink)
        .await
        .unwrap();

    assert_eq!(sink.collect().await, vec![started()]);
    assert_eq!(account, replay(vec![registered(), started()]));
}

// ---------------------------------------------------------------------------------------------
// Stable codes and stored format
// ---------------------------------------------------------------------------------------------

#[test]
fn every_account_error_has_its_pinned_code() {
    let cases = [
        (AccountError::AlreadyRegistered, "already_registered"),
        (AccountError::NotRegistered, "not_registered"),
        (AccountError::NoRoles, "no_roles"),
        (AccountError::SessionAlreadyExists, "session_already_exists"),
        (AccountError::SessionNotFound, "session_not_found"),
        (AccountError::SessionNotActive, "session_not_active"),
        (AccountError::SessionExpired, "session_expired"),
        (AccountError::InvalidRefreshToken, "invalid_refresh_token"),
    ];

    for (error, code) in cases {
        assert_eq!(error.code(), code, "{error:?}");
    }
}

#[test]
fn the_aggregate_type_is_pinned_because_it_keys_the_event_store() {
    assert_eq!(Account::TYPE, "account");
}

#[test]
fn every_event_type_name_and_version_is_pinned() {
    let events = [
        (registered(), "AccountRegistered"),
        (started(), "SessionStarted"),
        (refreshed("hash-1", 10), "SessionRefreshed"),
        (ended(5), "SessionEnded"),
        (revoked(20), "SessionRevoked"),
    ];

    for (event, name) in &events {
        assert_eq!(event.event_type(), *name);
        assert_eq!(event.event_version(), "1", "{name}");
    }
    let names: Vec<&str> = events.iter().map(|(_, name)| *name).collect();
    assert_eq!(&ACCOUNT_EVENT_TYPES[..names.len()], names.as_slice());
}

#[test]
fn the_revocation_reason_name_is_pinned() {
    let reason = RevocationReason::RefreshTokenReused;

    assert_eq!(reason.as_str(), "refresh_token_reused");
    assert_eq!(
        serde_json::to_string(&reason).unwrap(),
        "\"refresh_token_reused\""
    );
}

#[test]
fn account_registered_serialises_to_its_pinned_json() {
    let event = registered_with(vec![Role::Customer, Role::Admin]);

    let json = serde_json::to_string(&event).unwrap();

    assert_eq!(
        json,
        concat!(
            r#"{"AccountRegistered":{"#,
            r#""account_id":"01954b3c-0000-7000-8000-000000000001","#,
            r#""name":"Ada Lovelace","#,
            r#""email":"ada@example.com","#,
            r#""phone":"+442079460958","#,
            r#""password_hash":"$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA","#,
            r#""roles":["customer","admin"],"#,
            r#""registered_at":"2025-03-01T09:00:00Z"}}"#,
        )
    );
}

#[test]
fn every_event_keeps_its_json_shape_and_round_trips() {
    let cases = [
        (
            registered(),
            serde_json::json!({"AccountRegistered": {
                "account_id": "01954b3c-0000-7000-8000-000000000001",
                "name": "Ada Lovelace",
                "email": "ada@example.com",
                "phone": "+442079460958",
                "password_hash": "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
                "roles": ["customer"],
                "registered_at": "2025-03-01T09:00:00Z",
            }}),
        ),
        (
            started(),
            serde_json::json!({"SessionStarted": {
                "session_id": "01954b3c-0000-7000-8000-000000000101",
                "refresh_token_hash": "hash-0",
                "expires_at": "2025-03-01T10:00:00Z",
                "client_ip": "203.0.113.7",
                "user_agent": "stratus-cli/1.0",
                "started_at": "2025-03-01T09:01:00Z",
            }}),
        ),
        (
            refreshed("hash-1", 10),
            serde_json::json!({"SessionRefreshed": {
                "session_id": "01954b3c-0000-7000-8000-000000000101",
                "refresh_token_hash": "hash-1",
                "expires_at": "2025-03-01T10:10:00Z",
                "refreshed_at": "2025-03-01T09:10:00Z",
            }}),
        ),
        (
            ended(5),
            serde_json::json!({"SessionEnded": {
                "session_id": "01954b3c-0000-7000-8000-000000000101",
                "ended_at": "2025-03-01T09:05:00Z",
            }}),
        ),
        (
            revoked(20),
            serde_json::json!({"SessionRevoked": {
                "session_id": "01954b3c-0000-7000-8000-000000000101",
                "reason": "refresh_token_reused",
                "revoked_at": "2025-03-01T09:20:00Z",
            }}),
        ),
    ];

    for (event, expected) in cases {
        let json = serde_json::to_value(&event).unwrap();
        let back: AccountEvent = serde_json::from_value(json.clone()).unwrap();

        assert_eq!(json, expected, "{}", event.event_type());
        assert_eq!(back, event);
    }
}

#[test]
fn a_stored_event_with_an_invalid_email_does_not_deserialise() {
    let stored = serde_json::json!({"AccountRegistered": {
        "account_id": "01954b3c-0000-7000-8000-000000000001",
        "name": "Ada Lovelace",
        "email": "not-an-email",
        "phone": null,
        "password_hash": "x",
        "roles": ["customer"],
        "registered_at": "2025-03-01T09:00:00Z",
    }});

    let result = serde_json::from_value::<AccountEvent>(stored);

    assert!(result.is_err());
}

#[test]
fn the_aggregate_state_round_trips_through_json_for_snapshots() {
    let account = replay(vec![
        registered(),
        started(),
        refreshed("hash-1", 10),
        ended(20),
    ]);

    let json = serde_json::to_string(&account).unwrap();
    let back: Account = serde_json::from_str(&json).unwrap();

    assert_eq!(back, account);
}
