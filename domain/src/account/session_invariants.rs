//! Property test: session invariants hold for any sequence of session commands.
//!
//! Commands go through the real `Aggregate::handle` and `EventSink`, so the live aggregate is
//! exactly what cqrs-es would hold; the replay goes through JSON, as events come back from the
//! store.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use cqrs_es::event_sink::EventSink;
use proptest::prelude::*;
use tokio::runtime::Runtime;
use uuid::Uuid;

use super::test_support::test_services;
use super::*;

/// Few enough session ids that sequences often hit the same session again.
const SESSION_SLOTS: u128 = 3;
/// Short relative to the waits below, so expiry is reached in many sequences.
const SESSION_TTL_MINUTES: i64 = 30;
const MAX_STEPS: usize = 40;

#[derive(Debug, Clone)]
enum Step {
    Start { slot: u128 },
    RefreshWithCurrent { slot: u128 },
    RefreshWithRotated { slot: u128, pick: usize },
    RefreshWithWrong { slot: u128 },
    End { slot: u128 },
    Wait { minutes: i64 },
}

fn step() -> impl Strategy<Value = Step> {
    let slot = || 0..SESSION_SLOTS;
    prop_oneof![
        2 => slot().prop_map(|slot| Step::Start { slot }),
        4 => slot().prop_map(|slot| Step::RefreshWithCurrent { slot }),
        2 => (slot(), any::<usize>()).prop_map(|(slot, pick)| Step::RefreshWithRotated { slot, pick }),
        1 => slot().prop_map(|slot| Step::RefreshWithWrong { slot }),
        1 => slot().prop_map(|slot| Step::End { slot }),
        2 => (1_i64..=45).prop_map(|minutes| Step::Wait { minutes }),
    ]
}

fn session_id(slot: u128) -> SessionId {
    SessionId::from_uuid(Uuid::from_u128(
        0x0195_0000_0000_7000_8000_0000_0000_0000 + slot,
    ))
}

/// A registered account driven through `handle`, with the log of every committed event.
struct Run {
    runtime: Runtime,
    live: Account,
    log: Vec<AccountEvent>,
    now: DateTime<Utc>,
    issued: u64,
}

impl Run {
    fn registered() -> Self {
        let mut run = Self {
            runtime: tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap(),
            live: Account::default(),
            log: Vec::new(),
            now: Utc.with_ymd_and_hms(2025, 3, 1, 9, 0, 0).unwrap(),
            issued: 0,
        };
        run.execute(AccountCommand::Register {
            account_id: AccountId::from_uuid(Uuid::from_u128(1)),
            name: PersonName::parse("Grace Hopper").unwrap(),
            email: Email::parse("grace@example.com").unwrap(),
            phone: None,
            password_hash: "argon2-hash".to_owned(),
            roles: vec![Role::Customer],
            email_verification: Challenge {
                id: ChallengeId::from_uuid(Uuid::from_u128(2)),
                expires_at: run.now,
            },
            occurred_at: run.now,
        })
        .unwrap();
        run
    }

    fn execute(&mut self, command: AccountCommand) -> Result<Vec<AccountEvent>, AccountError> {
        let sink = EventSink::<Account>::default();
        let result = self
            .runtime
            .block_on(self.live.handle(command, &test_services(), &sink));
        let events = self.runtime.block_on(sink.collect());
        if result.is_ok() {
            self.log.extend(events.iter().cloned());
        }
        result.map(|()| events)
    }

    fn fresh_hash(&mut self) -> String {
        self.issued += 1;
        format!("hash-{}", self.issued)
    }

    fn refresh(
        &mut self,
        slot: u128,
        presented: String,
    ) -> Result<Vec<AccountEvent>, AccountError> {
        let new_token_hash = self.fresh_hash();
        self.execute(AccountCommand::RefreshSession {
            session_id: session_id(slot),
            presented_token_hash: presented,
            new_token_hash,
            expires_at: self.now + TimeDelta::minutes(SESSION_TTL_MINUTES),
            occurred_at: self.now,
        })
    }

    /// The rotated-out hash the step picks, if the session has any.
    fn rotated(&self, slot: u128, pick: usize) -> Option<String> {
        let previous = self
            .live
            .session(&session_id(slot))?
            .previous_token_hashes();
        previous.get(pick % previous.len().max(1)).cloned()
    }

    fn perform(&mut self, step: &Step) -> Result<Vec<AccountEvent>, AccountError> {
        match *step {
            Step::Start { slot } => {
                let refresh_token_hash = self.fresh_hash();
                self.execute(AccountCommand::StartSession {
                    session_id: session_id(slot),
                    refresh_token_hash,
                    expires_at: self.now + TimeDelta::minutes(SESSION_TTL_MINUTES),
                    client_ip: None,
                    user_agent: None,
                    proof: LoginProof::Password {
                        second_factor: None,
                    },
                    occurred_at: self.now,
                })
            }
            Step::RefreshWithCurrent { slot } => {
                let presented = self.live.session(&session_id(slot)).map_or_else(
                    || "never-issued".to_owned(),
                    |s| s.current_token_hash().to_owned(),
                );
                self.refresh(slot, presented)
            }
            Step::RefreshWithRotated { slot, pick } => {
                let presented = self
                    .rotated(slot, pick)
                    .unwrap_or_else(|| "never-issued".to_owned());
                self.refresh(slot, presented)
            }
            Step::RefreshWithWrong { slot } => self.refresh(slot, "forged".to_owned()),
            Step::End { slot } => self.execute(AccountCommand::EndSession {
                session_id: session_id(slot),
                occurred_at: self.now,
            }),
            Step::Wait { minutes } => {
                self.now += TimeDelta::minutes(minutes);
                Ok(Vec::new())
            }
        }
    }
}

proptest! {
    #[test]
    fn a_closed_session_never_reopens_and_replay_equals_live(
        steps in prop::collection::vec(step(), 1..=MAX_STEPS)
    ) {
        let mut run = Run::registered();
        let mut closed: BTreeSet<SessionId> = BTreeSet::new();

        for step in &steps {
            let active_before = match step {
                Step::RefreshWithRotated { slot, .. } => run
                    .live
                    .session(&session_id(*slot))
                    .is_some_and(|s| s.status() == SessionStatus::Active),
                _ => false,
            };
            let rotated = match step {
                Step::RefreshWithRotated { slot, pick } => run.rotated(*slot, *pick),
                _ => None,
            };

            let outcome = run.perform(step);

            for id in &closed {
                let status = run.live.session(id).map(SessionState::status);
                prop_assert_ne!(status, Some(SessionStatus::Active), "{} reopened by {:?}", id, step);
            }
            closed.extend(
                run.live
                    .sessions()
                    .iter()
                    .filter(|(_, s)| s.status() != SessionStatus::Active)
                    .map(|(id, _)| *id),
            );
            if let (Some(_), true) = (rotated, active_before) {
                let is_revocation = matches!(
                    outcome.as_deref(),
                    Ok([AccountEvent::SessionRevoked { reason: RevocationReason::RefreshTokenReused, .. }])
                );
                prop_assert!(is_revocation, "rotated token on an active session gave {:?}", outcome);
            }
        }

        let stored: Vec<AccountEvent> = run
            .log
            .iter()
            .map(|event| serde_json::from_str(&serde_json::to_string(event).unwrap()).unwrap())
            .collect();
        let mut replayed = Account::default();
        for event in stored {
            replayed.apply(event);
        }
        prop_assert_eq!(replayed, run.live);
    }
}
