//! Given/when/then tests for the identity flows of the `Account` aggregate: locks, one-time
//! codes, verification, password reset and change, TOTP, profile, KYC, suspension and roles.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use cqrs_es::DomainEvent;
use uuid::Uuid;

use super::test_support::{test_services, FakeSecrets};
use super::*;
use crate::values::{Country, NationalId, Reason};

fn given(events: Vec<AccountEvent>) -> cqrs_es::test::AggregateTestExecutor<Account> {
    TestFramework::<Account>::with(test_services()).given(events)
}

fn at(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 9, 0, 0).unwrap() + TimeDelta::minutes(minutes)
}

fn account_id() -> AccountId {
    AccountId::from_uuid(Uuid::from_u128(0x0195_4b3c_0000_7000_8000_0000_0000_0001))
}

fn staff_id() -> AccountId {
    AccountId::from_uuid(Uuid::from_u128(0x0195_4b3c_0000_7000_8000_0000_0000_0099))
}

fn session(n: u128) -> SessionId {
    SessionId::from_uuid(Uuid::from_u128(
        0x0195_4b3c_0000_7000_8000_0000_0000_0100 + n,
    ))
}

fn challenge(n: u128) -> ChallengeId {
    ChallengeId::from_uuid(Uuid::from_u128(
        0x0195_4b3c_0000_7000_8000_0000_0012_3400 + n,
    ))
}

fn email() -> Email {
    Email::parse("ada@example.com").unwrap()
}

fn phone() -> Phone {
    Phone::parse("+442079460958").unwrap()
}

fn registered() -> AccountEvent {
    AccountEvent::AccountRegistered {
        account_id: account_id(),
        name: PersonName::parse("Ada Lovelace").unwrap(),
        email: email(),
        phone: Some(phone()),
        password_hash: "hash".to_owned(),
        roles: vec![Role::Customer],
        registered_at: at(0),
    }
}

fn right_code(id: ChallengeId) -> String {
    FakeSecrets.code(account_id(), id)
}

fn wrong_code(id: ChallengeId) -> String {
    let right: u32 = right_code(id).parse().unwrap();
    format!("{:06}", (right + 1) % 1_000_000)
}

fn totp_at(setup: ChallengeId, when: DateTime<Utc>) -> String {
    FakeSecrets.totp_code(account_id(), setup, totp_step(when))
}

fn started(n: u128, minute: i64) -> AccountEvent {
    AccountEvent::SessionStarted {
        session_id: session(n),
        refresh_token_hash: format!("hash-{n}"),
        expires_at: at(minute + 600),
        client_ip: None,
        user_agent: None,
        started_at: at(minute),
    }
}

fn login(n: u128, minute: i64, proof: LoginProof) -> AccountCommand {
    AccountCommand::StartSession {
        session_id: session(n),
        refresh_token_hash: format!("hash-{n}"),
        expires_at: at(minute + 600),
        client_ip: None,
        user_agent: None,
        proof,
        occurred_at: at(minute),
    }
}

fn password(second_factor: Option<SecondFactor>) -> LoginProof {
    LoginProof::Password { second_factor }
}

fn failed(failures: u32, minute: i64) -> AccountEvent {
    AccountEvent::LoginFailed {
        failure: LoginFailure::WrongPassword,
        failures,
        failed_at: at(minute),
    }
}

fn replay(events: Vec<AccountEvent>) -> Account {
    let mut account = Account::default();
    for event in events {
        account.apply(event);
    }
    account
}

async fn run(
    events: Vec<AccountEvent>,
    command: AccountCommand,
) -> Result<Vec<AccountEvent>, AccountError> {
    let mut account = replay(events);
    let sink = cqrs_es::event_sink::EventSink::<Account>::default();
    let result = account.handle(command, &test_services(), &sink).await;
    let events = sink.collect().await;
    result.map(|()| events)
}

// ---------------------------------------------------------------------------------------------
// Failed logins and locks
// ---------------------------------------------------------------------------------------------

#[test]
fn a_wrong_password_is_counted() {
    given(vec![registered()])
        .when(AccountCommand::RecordFailedLogin { occurred_at: at(1) })
        .then_expect_events(vec![failed(1, 1)]);
}

#[test]
fn the_fifth_failure_locks_the_account_for_a_minute() {
    let history = vec![
        registered(),
        failed(1, 1),
        failed(2, 1),
        failed(3, 1),
        failed(4, 1),
    ];
    given(history)
        .when(AccountCommand::RecordFailedLogin { occurred_at: at(2) })
        .then_expect_events(vec![
            failed(5, 2),
            AccountEvent::AccountLocked {
                failures: 5,
                locked_until: at(3),
                locked_at: at(2),
            },
        ]);
}

#[test]
fn each_failure_past_the_limit_doubles_the_lock_up_to_an_hour() {
    let mut account = replay(vec![registered()]);
    let mut locks = Vec::new();
    for n in 1..=14 {
        for event in account.failure(LoginFailure::WrongPassword, at(0)) {
            if let AccountEvent::AccountLocked { locked_until, .. } = &event {
                locks.push((*locked_until - at(0)).num_minutes());
            }
            account.apply(event);
        }
        assert_eq!(account.failed_logins(), n);
    }
    assert_eq!(locks, vec![1, 2, 4, 8, 16, 32, 60, 60, 60, 60]);
}

#[tokio::test]
async fn a_locked_account_cannot_log_in_even_with_the_right_password() {
    let locked = AccountEvent::AccountLocked {
        failures: 5,
        locked_until: at(10),
        locked_at: at(9),
    };
    let result = run(vec![registered(), locked], login(1, 9, password(None))).await;
    assert_eq!(result, Err(AccountError::AccountLocked { until: at(10) }));
}

#[tokio::test]
async fn a_lock_ends_on_its_own_and_a_login_resets_the_count() {
    let locked = AccountEvent::AccountLocked {
        failures: 5,
        locked_until: at(10),
        locked_at: at(9),
    };
    let events = run(
        vec![registered(), failed(5, 9), locked.clone()],
        login(1, 10, password(None)),
    )
    .await
    .unwrap();
    assert_eq!(events, vec![started(1, 10)]);
    let account = replay(vec![registered(), failed(5, 9), locked, started(1, 10)]);
    assert_eq!(account.failed_logins(), 0);
    assert_eq!(account.locked_until(), None);
}

#[tokio::test]
async fn a_suspended_account_cannot_log_in_or_refresh() {
    let suspended = AccountEvent::AccountSuspended {
        by: staff_id(),
        reason: Reason::parse("fraud").unwrap(),
        suspended_at: at(5),
    };
    let history = vec![registered(), started(1, 1), suspended];
    assert_eq!(
        run(history.clone(), login(2, 6, password(None))).await,
        Err(AccountError::AccountSuspended)
    );
    let refresh = AccountCommand::RefreshSession {
        session_id: session(1),
        presented_token_hash: "hash-1".to_owned(),
        new_token_hash: "hash-x".to_owned(),
        expires_at: at(700),
        occurred_at: at(6),
    };
    assert_eq!(
        run(history, refresh).await,
        Err(AccountError::AccountSuspended)
    );
}

// ---------------------------------------------------------------------------------------------
// One-time login codes
// ---------------------------------------------------------------------------------------------

fn code_issued(n: u128, minute: i64) -> AccountEvent {
    AccountEvent::LoginCodeIssued {
        challenge_id: challenge(n),
        channel: CodeChannel::Email,
        expires_at: at(minute + 10),
        issued_at: at(minute),
    }
}

fn with_code(code: String) -> LoginProof {
    LoginProof::LoginCode {
        code,
        second_factor: None,
    }
}

#[test]
fn a_login_code_is_issued_by_email() {
    given(vec![registered()])
        .when(AccountCommand::IssueLoginCode {
            challenge: Challenge {
                id: challenge(1),
                expires_at: at(10),
            },
            channel: CodeChannel::Email,
            occurred_at: at(0),
        })
        .then_expect_events(vec![code_issued(1, 0)]);
}

#[test]
fn a_login_code_by_sms_needs_a_verified_phone() {
    given(vec![registered()])
        .when(AccountCommand::IssueLoginCode {
            challenge: Challenge {
                id: challenge(1),
                expires_at: at(10),
            },
            channel: CodeChannel::Sms,
            occurred_at: at(0),
        })
        .then_expect_error(AccountError::NoPhone);
}

#[tokio::test]
async fn the_right_login_code_starts_a_session_and_is_used_up() {
    let events = run(
        vec![registered(), code_issued(1, 0)],
        login(1, 3, with_code(right_code(challenge(1)))),
    )
    .await
    .unwrap();
    assert_eq!(
        events,
        vec![
            AccountEvent::LoginCodeUsed {
                challenge_id: challenge(1),
                used_at: at(3),
            },
            started(1, 3),
        ]
    );
    let mut history = vec![registered(), code_issued(1, 0)];
    history.extend(events);
    assert_eq!(
        run(history, login(2, 4, with_code(right_code(challenge(1))))).await,
        Err(AccountError::LoginCodeInvalid)
    );
}

#[tokio::test]
async fn a_wrong_login_code_is_recorded_and_counts_as_a_failed_login() {
    let events = run(
        vec![registered(), code_issued(1, 0)],
        login(1, 3, with_code(wrong_code(challenge(1)))),
    )
    .await
    .unwrap();
    assert_eq!(
        events,
        vec![
            AccountEvent::LoginCodeRejected {
                challenge_id: challenge(1),
                attempts: 1,
                rejected_at: at(3),
            },
            AccountEvent::LoginFailed {
                failure: LoginFailure::WrongLoginCode,
                failures: 1,
                failed_at: at(3),
            },
        ]
    );
}

#[tokio::test]
async fn after_five_wrong_codes_even_the_right_code_needs_a_new_request() {
    let mut history = vec![registered(), code_issued(1, 0)];
    for attempts in 1..=CODE_MAX_ATTEMPTS {
        history.push(AccountEvent::LoginCodeRejected {
            challenge_id: challenge(1),
            attempts,
            rejected_at: at(1),
        });
    }
    assert_eq!(
        run(
            history.clone(),
            login(1, 2, with_code(right_code(challenge(1))))
        )
        .await,
        Err(AccountError::LoginCodeInvalid)
    );
    history.push(code_issued(2, 3));
    let events = run(history, login(1, 4, with_code(right_code(challenge(2)))))
        .await
        .unwrap();
    assert!(events.contains(&started(1, 4)));
}

#[tokio::test]
async fn an_expired_login_code_is_refused() {
    assert_eq!(
        run(
            vec![registered(), code_issued(1, 0)],
            login(1, 10, with_code(right_code(challenge(1))))
        )
        .await,
        Err(AccountError::LoginCodeExpired)
    );
}

#[tokio::test]
async fn a_newer_code_replaces_the_older_one() {
    let history = vec![registered(), code_issued(1, 0), code_issued(2, 1)];
    let events = run(history, login(1, 2, with_code(right_code(challenge(1)))))
        .await
        .unwrap();
    assert!(matches!(events[0], AccountEvent::LoginCodeRejected { .. }));
}

// ---------------------------------------------------------------------------------------------
// Email and phone verification
// ---------------------------------------------------------------------------------------------

fn email_issued(n: u128, minute: i64) -> AccountEvent {
    AccountEvent::EmailVerificationIssued {
        challenge_id: challenge(n),
        email: email(),
        expires_at: at(minute + 60),
        issued_at: at(minute),
    }
}

#[test]
fn following_the_latest_link_verifies_the_email() {
    given(vec![registered(), email_issued(1, 0)])
        .when(AccountCommand::VerifyEmail {
            challenge_id: challenge(1),
            occurred_at: at(5),
        })
        .then_expect_events(vec![AccountEvent::EmailVerified {
            challenge_id: challenge(1),
            email: email(),
            verified_at: at(5),
        }]);
}

#[test]
fn an_older_link_stops_working_after_a_resend() {
    given(vec![registered(), email_issued(1, 0), email_issued(2, 1)])
        .when(AccountCommand::VerifyEmail {
            challenge_id: challenge(1),
            occurred_at: at(5),
        })
        .then_expect_error(AccountError::VerificationInvalid);
}

#[test]
fn an_expired_link_is_refused() {
    given(vec![registered(), email_issued(1, 0)])
        .when(AccountCommand::VerifyEmail {
            challenge_id: challenge(1),
            occurred_at: at(60),
        })
        .then_expect_error(AccountError::VerificationExpired);
}

#[test]
fn a_link_works_once() {
    let verified = AccountEvent::EmailVerified {
        challenge_id: challenge(1),
        email: email(),
        verified_at: at(5),
    };
    given(vec![registered(), email_issued(1, 0), verified.clone()])
        .when(AccountCommand::VerifyEmail {
            challenge_id: challenge(1),
            occurred_at: at(6),
        })
        .then_expect_error(AccountError::EmailAlreadyVerified);
    given(vec![registered(), email_issued(1, 0), verified])
        .when(AccountCommand::IssueEmailVerification {
            challenge: Challenge {
                id: challenge(2),
                expires_at: at(70),
            },
            occurred_at: at(7),
        })
        .then_expect_error(AccountError::EmailAlreadyVerified);
}

fn phone_issued(n: u128) -> AccountEvent {
    AccountEvent::PhoneVerificationIssued {
        challenge_id: challenge(n),
        phone: phone(),
        expires_at: at(10),
        issued_at: at(0),
    }
}

#[tokio::test]
async fn the_right_phone_code_verifies_the_phone_and_a_wrong_one_is_counted() {
    let history = vec![registered(), phone_issued(1)];
    let wrong = run(
        history.clone(),
        AccountCommand::VerifyPhone {
            code: wrong_code(challenge(1)),
            occurred_at: at(1),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        wrong,
        vec![AccountEvent::PhoneCodeRejected {
            challenge_id: challenge(1),
            attempts: 1,
            rejected_at: at(1),
        }]
    );
    let right = run(
        history,
        AccountCommand::VerifyPhone {
            code: right_code(challenge(1)),
            occurred_at: at(2),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        right,
        vec![AccountEvent::PhoneVerified {
            challenge_id: challenge(1),
            phone: phone(),
            verified_at: at(2),
        }]
    );
}

#[test]
fn a_phone_code_is_dead_after_five_wrong_attempts() {
    let mut history = vec![registered(), phone_issued(1)];
    for attempts in 1..=CODE_MAX_ATTEMPTS {
        history.push(AccountEvent::PhoneCodeRejected {
            challenge_id: challenge(1),
            attempts,
            rejected_at: at(1),
        });
    }
    given(history)
        .when(AccountCommand::VerifyPhone {
            code: right_code(challenge(1)),
            occurred_at: at(2),
        })
        .then_expect_error(AccountError::PhoneCodeInvalid);
}

#[test]
fn a_phone_code_needs_a_phone() {
    given(vec![
        registered(),
        AccountEvent::PhoneChanged {
            phone: None,
            changed_at: at(1),
        },
    ])
    .when(AccountCommand::IssuePhoneVerification {
        challenge: Challenge {
            id: challenge(1),
            expires_at: at(10),
        },
        occurred_at: at(2),
    })
    .then_expect_error(AccountError::NoPhone);
}

#[test]
fn changing_the_phone_makes_it_unverified_and_voids_its_code() {
    let account = replay(vec![
        registered(),
        phone_issued(1),
        AccountEvent::PhoneVerified {
            challenge_id: challenge(1),
            phone: phone(),
            verified_at: at(1),
        },
        phone_issued(2),
        AccountEvent::PhoneChanged {
            phone: Some(Phone::parse("+4915112345678").unwrap()),
            changed_at: at(2),
        },
    ]);
    assert!(!account.phone_verified());
    assert!(account.phone_challenge().is_none());
}

// ---------------------------------------------------------------------------------------------
// Passwords
// ---------------------------------------------------------------------------------------------

fn reset_issued(n: u128) -> AccountEvent {
    AccountEvent::PasswordResetIssued {
        challenge_id: challenge(n),
        expires_at: at(60),
        issued_at: at(0),
    }
}

fn revoked(n: u128, reason: RevocationReason, minute: i64) -> AccountEvent {
    AccountEvent::SessionRevoked {
        session_id: session(n),
        reason,
        revoked_at: at(minute),
    }
}

#[test]
fn a_reset_sets_the_password_and_revokes_every_session() {
    given(vec![
        registered(),
        started(1, 1),
        started(2, 2),
        reset_issued(7),
    ])
    .when(AccountCommand::ResetPassword {
        challenge_id: challenge(7),
        password_hash: "new".to_owned(),
        occurred_at: at(5),
    })
    .then_expect_events(vec![
        AccountEvent::PasswordReset {
            challenge_id: challenge(7),
            password_hash: "new".to_owned(),
            reset_at: at(5),
        },
        revoked(1, RevocationReason::PasswordReset, 5),
        revoked(2, RevocationReason::PasswordReset, 5),
    ]);
}

#[test]
fn a_reset_link_works_once_and_not_after_expiry() {
    let used = AccountEvent::PasswordReset {
        challenge_id: challenge(7),
        password_hash: "new".to_owned(),
        reset_at: at(5),
    };
    let reset = |minute| AccountCommand::ResetPassword {
        challenge_id: challenge(7),
        password_hash: "newer".to_owned(),
        occurred_at: at(minute),
    };
    given(vec![registered(), reset_issued(7), used])
        .when(reset(6))
        .then_expect_error(AccountError::ResetInvalid);
    given(vec![registered(), reset_issued(7)])
        .when(reset(60))
        .then_expect_error(AccountError::ResetInvalid);
    given(vec![registered(), reset_issued(7), reset_issued(8)])
        .when(reset(6))
        .then_expect_error(AccountError::ResetInvalid);
}

#[test]
fn a_reset_lifts_the_lock() {
    let account = replay(vec![
        registered(),
        failed(5, 1),
        AccountEvent::AccountLocked {
            failures: 5,
            locked_until: at(2),
            locked_at: at(1),
        },
        reset_issued(7),
        AccountEvent::PasswordReset {
            challenge_id: challenge(7),
            password_hash: "new".to_owned(),
            reset_at: at(1),
        },
    ]);
    assert_eq!((account.failed_logins(), account.locked_until()), (0, None));
}

#[test]
fn a_password_change_keeps_the_current_session_and_revokes_the_others() {
    given(vec![registered(), started(1, 1), started(2, 2)])
        .when(AccountCommand::ChangePassword {
            password_hash: "new".to_owned(),
            keep_session: Some(session(2)),
            occurred_at: at(5),
        })
        .then_expect_events(vec![
            AccountEvent::PasswordChanged {
                password_hash: "new".to_owned(),
                changed_at: at(5),
            },
            revoked(1, RevocationReason::PasswordChanged, 5),
        ]);
}

// ---------------------------------------------------------------------------------------------
// TOTP
// ---------------------------------------------------------------------------------------------

fn setup_started() -> AccountEvent {
    AccountEvent::TotpSetupStarted {
        setup_id: challenge(50),
        started_at: at(0),
    }
}

fn totp_enabled() -> AccountEvent {
    AccountEvent::TotpEnabled {
        setup_id: challenge(50),
        recovery_code_hashes: vec!["rc-0".to_owned(), "rc-1".to_owned()],
        time_step: totp_step(at(1)),
        enabled_at: at(1),
    }
}

#[test]
fn totp_is_enabled_with_a_code_of_the_pending_setup() {
    given(vec![registered(), setup_started()])
        .when(AccountCommand::EnableTotp {
            code: totp_at(challenge(50), at(1)),
            recovery_code_hashes: vec!["rc-0".to_owned(), "rc-1".to_owned()],
            occurred_at: at(1),
        })
        .then_expect_events(vec![totp_enabled()]);
}

#[test]
fn a_code_one_step_away_is_accepted_and_two_steps_away_is_not() {
    let at_one = at(1);
    let next_step = at_one + TimeDelta::seconds(TOTP_STEP_SECONDS);
    let two_steps = at_one + TimeDelta::seconds(2 * TOTP_STEP_SECONDS);
    let account = replay(vec![registered(), setup_started()]);
    let services = test_services();
    let ok = account.matching_totp_step(
        &services,
        challenge(50),
        &totp_at(challenge(50), next_step),
        at_one,
        None,
    );
    let too_far = account.matching_totp_step(
        &services,
        challenge(50),
        &totp_at(challenge(50), two_steps),
        at_one,
        None,
    );
    assert_eq!(ok, Some(totp_step(next_step)));
    assert_eq!(too_far, None);
}

#[test]
fn enabling_without_a_setup_or_with_a_wrong_code_is_refused() {
    given(vec![registered()])
        .when(AccountCommand::EnableTotp {
            code: "000000".to_owned(),
            recovery_code_hashes: vec![],
            occurred_at: at(1),
        })
        .then_expect_error(AccountError::MfaSetupNotStarted);
    let right: u32 = totp_at(challenge(50), at(1)).parse().unwrap();
    given(vec![registered(), setup_started()])
        .when(AccountCommand::EnableTotp {
            code: format!("{:06}", (right + 500_000) % 1_000_000),
            recovery_code_hashes: vec![],
            occurred_at: at(1),
        })
        .then_expect_error(AccountError::InvalidSecondFactor);
}

#[tokio::test]
async fn with_totp_on_a_login_needs_a_second_factor() {
    let history = vec![registered(), setup_started(), totp_enabled()];
    assert_eq!(
        run(history, login(1, 5, password(None))).await,
        Err(AccountError::MfaRequired)
    );
}

#[tokio::test]
async fn a_totp_code_logs_in_once_and_cannot_be_replayed() {
    let history = vec![registered(), setup_started(), totp_enabled()];
    let code = totp_at(challenge(50), at(5));
    let events = run(
        history.clone(),
        login(1, 5, password(Some(SecondFactor::Totp(code.clone())))),
    )
    .await
    .unwrap();
    assert_eq!(
        events,
        vec![
            AccountEvent::TotpCodeAccepted {
                time_step: totp_step(at(5)),
                accepted_at: at(5),
            },
            started(1, 5),
        ]
    );
    let mut after = history;
    after.extend(events);
    let replayed = run(after, login(2, 5, password(Some(SecondFactor::Totp(code)))))
        .await
        .unwrap();
    assert!(matches!(
        replayed.as_slice(),
        [AccountEvent::LoginFailed {
            failure: LoginFailure::WrongSecondFactor,
            ..
        }]
    ));
}

#[tokio::test]
async fn a_recovery_code_logs_in_once() {
    let history = vec![registered(), setup_started(), totp_enabled()];
    let factor = || Some(SecondFactor::RecoveryCodeHash("rc-1".to_owned()));
    let events = run(history.clone(), login(1, 5, password(factor())))
        .await
        .unwrap();
    assert_eq!(
        events[0],
        AccountEvent::RecoveryCodeUsed {
            index: 1,
            used_at: at(5),
        }
    );
    let mut after = history;
    after.extend(events);
    let account = replay(after.clone());
    assert_eq!(account.totp().recovery_codes_left(), 1);
    let again = run(after, login(2, 6, password(factor()))).await.unwrap();
    assert!(matches!(again[0], AccountEvent::LoginFailed { .. }));
}

#[test]
fn totp_is_disabled_with_a_valid_code_only() {
    let history = vec![registered(), setup_started(), totp_enabled()];
    given(history.clone())
        .when(AccountCommand::DisableTotp {
            second_factor: SecondFactor::RecoveryCodeHash("nope".to_owned()),
            occurred_at: at(5),
        })
        .then_expect_error(AccountError::InvalidSecondFactor);
    given(history)
        .when(AccountCommand::DisableTotp {
            second_factor: SecondFactor::RecoveryCodeHash("rc-0".to_owned()),
            occurred_at: at(5),
        })
        .then_expect_events(vec![
            AccountEvent::RecoveryCodeUsed {
                index: 0,
                used_at: at(5),
            },
            AccountEvent::TotpDisabled { disabled_at: at(5) },
        ]);
    given(vec![registered()])
        .when(AccountCommand::DisableTotp {
            second_factor: SecondFactor::Totp("123456".to_owned()),
            occurred_at: at(5),
        })
        .then_expect_error(AccountError::MfaNotEnabled);
}

#[test]
fn setup_cannot_restart_while_totp_is_on() {
    given(vec![registered(), setup_started(), totp_enabled()])
        .when(AccountCommand::StartTotpSetup {
            setup_id: challenge(51),
            occurred_at: at(3),
        })
        .then_expect_error(AccountError::MfaAlreadyEnabled);
}

// ---------------------------------------------------------------------------------------------
// Sessions, profile, KYC, suspension, roles
// ---------------------------------------------------------------------------------------------

#[test]
fn revoking_other_sessions_keeps_the_named_one() {
    given(vec![
        registered(),
        started(1, 1),
        started(2, 2),
        started(3, 3),
    ])
    .when(AccountCommand::RevokeOtherSessions {
        keep: Some(session(3)),
        occurred_at: at(4),
    })
    .then_expect_events(vec![
        revoked(1, RevocationReason::RevokedByUser, 4),
        revoked(2, RevocationReason::RevokedByUser, 4),
    ]);
}

#[test]
fn revoking_a_closed_session_is_refused() {
    given(vec![
        registered(),
        started(1, 1),
        revoked(1, RevocationReason::RevokedByUser, 2),
    ])
    .when(AccountCommand::RevokeSession {
        session_id: session(1),
        occurred_at: at(3),
    })
    .then_expect_error(AccountError::SessionNotActive);
}

#[test]
fn a_profile_update_records_only_what_changed() {
    given(vec![registered()])
        .when(AccountCommand::UpdateProfile {
            name: Some(PersonName::parse("Ada Lovelace").unwrap()),
            phone: Some(None),
            occurred_at: at(1),
        })
        .then_expect_events(vec![AccountEvent::PhoneChanged {
            phone: None,
            changed_at: at(1),
        }]);
}

fn kyc_submitted() -> AccountEvent {
    AccountEvent::KycSubmitted {
        national_id: NationalId::parse("L01X00T47").unwrap(),
        legal_name: PersonName::parse("Augusta Ada King").unwrap(),
        country: Country::parse("GB").unwrap(),
        submitted_at: at(1),
    }
}

#[test]
fn kyc_is_reviewed_only_while_pending_and_resubmitted_only_after_rejection() {
    let submit = AccountCommand::SubmitKyc {
        national_id: NationalId::parse("L01X00T47").unwrap(),
        legal_name: PersonName::parse("Augusta Ada King").unwrap(),
        country: Country::parse("GB").unwrap(),
        occurred_at: at(1),
    };
    given(vec![registered()])
        .when(submit.clone())
        .then_expect_events(vec![kyc_submitted()]);
    given(vec![registered(), kyc_submitted()])
        .when(submit.clone())
        .then_expect_error(AccountError::KycAlreadyPending);
    given(vec![registered()])
        .when(AccountCommand::ApproveKyc {
            reviewer: staff_id(),
            occurred_at: at(2),
        })
        .then_expect_error(AccountError::KycNotPending);
    let rejected = AccountEvent::KycRejected {
        reviewer: staff_id(),
        reason: Reason::parse("blurry").unwrap(),
        rejected_at: at(2),
    };
    given(vec![registered(), kyc_submitted(), rejected])
        .when(submit.clone())
        .then_expect_events(vec![kyc_submitted()]);
    let approved = AccountEvent::KycApproved {
        reviewer: staff_id(),
        approved_at: at(2),
    };
    given(vec![registered(), kyc_submitted(), approved])
        .when(submit)
        .then_expect_error(AccountError::KycAlreadyApproved);
}

#[test]
fn suspension_revokes_every_session_and_reinstatement_needs_a_suspension() {
    given(vec![registered(), started(1, 1)])
        .when(AccountCommand::Suspend {
            by: staff_id(),
            reason: Reason::parse("chargeback").unwrap(),
            occurred_at: at(2),
        })
        .then_expect_events(vec![
            AccountEvent::AccountSuspended {
                by: staff_id(),
                reason: Reason::parse("chargeback").unwrap(),
                suspended_at: at(2),
            },
            revoked(1, RevocationReason::AccountSuspended, 2),
        ]);
    given(vec![registered()])
        .when(AccountCommand::Reinstate {
            by: staff_id(),
            occurred_at: at(2),
        })
        .then_expect_error(AccountError::NotSuspended);
}

#[test]
fn roles_are_replaced_sorted_and_an_unchanged_set_records_nothing() {
    given(vec![registered()])
        .when(AccountCommand::ChangeRoles {
            by: staff_id(),
            roles: vec![Role::Admin, Role::Customer, Role::Admin],
            occurred_at: at(1),
        })
        .then_expect_events(vec![AccountEvent::RolesChanged {
            by: staff_id(),
            roles: vec![Role::Customer, Role::Admin],
            changed_at: at(1),
        }]);
    given(vec![registered()])
        .when(AccountCommand::ChangeRoles {
            by: staff_id(),
            roles: vec![Role::Customer],
            occurred_at: at(1),
        })
        .then_expect_events(vec![]);
    given(vec![registered()])
        .when(AccountCommand::ChangeRoles {
            by: staff_id(),
            roles: vec![],
            occurred_at: at(1),
        })
        .then_expect_error(AccountError::NoRoles);
}

#[test]
fn commands_on_an_unregistered_account_are_refused() {
    given(vec![])
        .when(AccountCommand::RecordFailedLogin { occurred_at: at(1) })
        .then_expect_error(AccountError::NotRegistered);
}

// ---------------------------------------------------------------------------------------------
// Stored format
// ---------------------------------------------------------------------------------------------

#[test]
fn every_event_name_is_pinned_and_listed() {
    let events = vec![
        registered(),
        started(1, 1),
        AccountEvent::SessionRefreshed {
            session_id: session(1),
            refresh_token_hash: "h".to_owned(),
            expires_at: at(2),
            refreshed_at: at(1),
        },
        AccountEvent::SessionEnded {
            session_id: session(1),
            ended_at: at(1),
        },
        revoked(1, RevocationReason::PasswordReset, 1),
        failed(1, 1),
        AccountEvent::AccountLocked {
            failures: 5,
            locked_until: at(2),
            locked_at: at(1),
        },
        email_issued(1, 0),
        AccountEvent::EmailVerified {
            challenge_id: challenge(1),
            email: email(),
            verified_at: at(1),
        },
        phone_issued(1),
        AccountEvent::PhoneCodeRejected {
            challenge_id: challenge(1),
            attempts: 1,
            rejected_at: at(1),
        },
        AccountEvent::PhoneVerified {
            challenge_id: challenge(1),
            phone: phone(),
            verified_at: at(1),
        },
        code_issued(1, 0),
        AccountEvent::LoginCodeRejected {
            challenge_id: challenge(1),
            attempts: 1,
            rejected_at: at(1),
        },
        AccountEvent::LoginCodeUsed {
            challenge_id: challenge(1),
            used_at: at(1),
        },
        reset_issued(1),
        AccountEvent::PasswordReset {
            challenge_id: challenge(1),
            password_hash: "h".to_owned(),
            reset_at: at(1),
        },
        AccountEvent::PasswordChanged {
            password_hash: "h".to_owned(),
            changed_at: at(1),
        },
        setup_started(),
        totp_enabled(),
        AccountEvent::TotpCodeAccepted {
            time_step: 1,
            accepted_at: at(1),
        },
        AccountEvent::RecoveryCodeUsed {
            index: 0,
            used_at: at(1),
        },
        AccountEvent::TotpDisabled { disabled_at: at(1) },
        AccountEvent::NameChanged {
            name: PersonName::parse("Ada").unwrap(),
            changed_at: at(1),
        },
        AccountEvent::PhoneChanged {
            phone: None,
            changed_at: at(1),
        },
        kyc_submitted(),
        AccountEvent::KycApproved {
            reviewer: staff_id(),
            approved_at: at(1),
        },
        AccountEvent::KycRejected {
            reviewer: staff_id(),
            reason: Reason::parse("x").unwrap(),
            rejected_at: at(1),
        },
        AccountEvent::AccountSuspended {
            by: staff_id(),
            reason: Reason::parse("x").unwrap(),
            suspended_at: at(1),
        },
        AccountEvent::AccountReinstated {
            by: staff_id(),
            reinstated_at: at(1),
        },
        AccountEvent::RolesChanged {
            by: staff_id(),
            roles: vec![Role::Admin],
            changed_at: at(1),
        },
    ];
    let names: Vec<String> = events.iter().map(DomainEvent::event_type).collect();
    assert_eq!(names, ACCOUNT_EVENT_TYPES);
    for event in &events {
        assert_eq!(event.event_version(), "1");
        let json = serde_json::to_value(event).unwrap();
        assert_eq!(
            json.as_object().unwrap().keys().next().unwrap(),
            event.name()
        );
        let back: AccountEvent = serde_json::from_value(json).unwrap();
        assert_eq!(&back, event);
    }
}

#[test]
fn the_new_revocation_reasons_and_kyc_statuses_have_pinned_names() {
    let reasons = [
        (RevocationReason::RevokedByUser, "revoked_by_user"),
        (RevocationReason::PasswordChanged, "password_changed"),
        (RevocationReason::PasswordReset, "password_reset"),
        (RevocationReason::AccountSuspended, "account_suspended"),
    ];
    for (reason, name) in reasons {
        assert_eq!(reason.as_str(), name);
        assert_eq!(serde_json::to_value(reason).unwrap(), name);
    }
    let statuses = [
        (KycStatus::NotSubmitted, "not_submitted"),
        (KycStatus::Pending, "pending"),
        (KycStatus::Approved, "approved"),
        (KycStatus::Rejected, "rejected"),
    ];
    for (status, name) in statuses {
        assert_eq!(status.as_str(), name);
        assert_eq!(serde_json::to_value(status).unwrap(), name);
    }
}

#[test]
fn every_error_code_is_pinned() {
    let codes = [
        (
            AccountError::AccountLocked { until: at(1) },
            "account_locked",
        ),
        (AccountError::AccountSuspended, "account_suspended"),
        (AccountError::MfaRequired, "mfa_required"),
        (AccountError::LoginCodeInvalid, "login_code_invalid"),
        (AccountError::LoginCodeExpired, "login_code_expired"),
        (AccountError::EmailAlreadyVerified, "email_already_verified"),
        (AccountError::VerificationInvalid, "verification_invalid"),
        (AccountError::VerificationExpired, "verification_expired"),
        (AccountError::NoPhone, "no_phone"),
        (AccountError::PhoneAlreadyVerified, "phone_already_verified"),
        (AccountError::PhoneCodeInvalid, "phone_code_invalid"),
        (AccountError::ResetInvalid, "reset_token_invalid"),
        (AccountError::MfaAlreadyEnabled, "mfa_already_enabled"),
        (AccountError::MfaNotEnabled, "mfa_not_enabled"),
        (AccountError::MfaSetupNotStarted, "mfa_setup_not_started"),
        (AccountError::InvalidSecondFactor, "invalid_mfa_code"),
        (AccountError::KycAlreadyPending, "kyc_already_pending"),
        (AccountError::KycAlreadyApproved, "kyc_already_approved"),
        (AccountError::KycNotPending, "kyc_not_pending"),
        (AccountError::AlreadySuspended, "already_suspended"),
        (AccountError::NotSuspended, "not_suspended"),
    ];
    for (error, code) in codes {
        assert_eq!(error.code(), code);
    }
}

#[test]
fn reinstatement_lifts_a_login_lock() {
    let account = replay(vec![
        registered(),
        failed(5, 1),
        AccountEvent::AccountLocked {
            failures: 5,
            locked_until: at(2),
            locked_at: at(1),
        },
        AccountEvent::AccountSuspended {
            by: staff_id(),
            reason: Reason::parse("review").unwrap(),
            suspended_at: at(1),
        },
        AccountEvent::AccountReinstated {
            by: staff_id(),
            reinstated_at: at(1),
        },
    ]);
    assert_eq!(account.status(), AccountStatus::Active);
    assert_eq!((account.failed_logins(), account.locked_until()), (0, None));
}

#[test]
fn no_login_code_is_issued_to_a_suspended_account() {
    given(vec![
        registered(),
        AccountEvent::AccountSuspended {
            by: staff_id(),
            reason: Reason::parse("fraud").unwrap(),
            suspended_at: at(1),
        },
    ])
    .when(AccountCommand::IssueLoginCode {
        challenge: Challenge {
            id: challenge(1),
            expires_at: at(10),
        },
        channel: CodeChannel::Email,
        occurred_at: at(2),
    })
    .then_expect_error(AccountError::AccountSuspended);
}
