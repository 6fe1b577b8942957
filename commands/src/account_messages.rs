//! The account-messages reactor: turns Account events into emails and text messages in the
//! outbox (verification links, one-time codes, reset links, and notices of security changes).
//!
//! It is a feed subscriber, so each event is handled once in effect: the outbox rows are written
//! in the transaction that moves its checkpoint, and each carries a deduplication key derived from
//! the event, so a replay or a rebuild cannot send a message twice. Codes and links are derived
//! here from the challenge id with the server key, exactly as the aggregate will check them; the
//! log never holds them. A challenge that has already expired when the reactor reaches it (a
//! rebuild, or a reactor far behind) is not sent.

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use sqlx::PgConnection;
use stratus_domain::account::{Account, AccountEvent, ChallengeSecrets, CodeChannel};
use stratus_domain::{AccountId, ChallengeId};
use stratus_projections::feed::{Subscriber, SubscriberError};
use stratus_projections::stored_event::StoredEvent;
use uuid::Uuid;

use crate::outbox::templates;
use crate::outbox::{self, OutboxMessage};
use crate::secrets::{ChallengeKeys, LinkPurpose};

/// The subscriber name (its checkpoint row).
pub const NAME: &str = "account-messages";

/// Sends what Account events call for.
#[derive(Debug, Clone)]
pub struct AccountMessages {
    keys: ChallengeKeys,
    /// Base of links, e.g. `https://cloud.example.com`.
    public_url: String,
}

impl AccountMessages {
    pub fn new(keys: ChallengeKeys, public_url: impl Into<String>) -> Self {
        Self {
            keys,
            public_url: public_url.into(),
        }
    }
}

/// Where to reach an account.
struct Recipient {
    name: String,
    email: String,
    phone: Option<String>,
}

async fn recipient(
    tx: &mut PgConnection,
    account_id: Uuid,
) -> Result<Option<Recipient>, sqlx::Error> {
    let row: Option<(String, String, Option<String>)> =
        sqlx::query_as("SELECT name, email, phone FROM message_recipients WHERE account_id = $1")
            .bind(account_id)
            .fetch_optional(&mut *tx)
            .await?;
    Ok(row.map(|(name, email, phone)| Recipient { name, email, phone }))
}

fn minutes_between(from: DateTime<Utc>, to: DateTime<Utc>) -> u32 {
    u32::try_from((to - from).num_minutes().max(1)).unwrap_or(u32::MAX)
}

impl Subscriber for AccountMessages {
    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        const TYPES: &[&str] = &[<Account as cqrs_es::Aggregate>::TYPE];
        Some(TYPES)
    }

    fn name(&self) -> &'static str {
        NAME
    }

    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        events: &'a [StoredEvent],
    ) -> BoxFuture<'a, Result<(), SubscriberError>> {
        Box::pin(async move {
            for stored in events {
                if stored.aggregate_type != <Account as cqrs_es::Aggregate>::TYPE {
                    continue;
                }
                let event: AccountEvent = serde_json::from_value(stored.payload.clone())
                    .map_err(|e| SubscriberError::decode(stored, e))?;
                let account_uuid = Uuid::parse_str(&stored.aggregate_id)
                    .map_err(|e| SubscriberError::decode(stored, e))?;
                self.handle(tx, stored, AccountId::from_uuid(account_uuid), event)
                    .await?;
            }
            Ok(())
        })
    }

    fn reset<'a>(&'a self, tx: &'a mut PgConnection) -> BoxFuture<'a, Result<(), SubscriberError>> {
        // The outbox is history, not a model: it stays, and its keys stop a rebuild resending.
        Box::pin(async move {
            sqlx::query("DELETE FROM message_recipients")
                .execute(&mut *tx)
                .await?;
            Ok(())
        })
    }
}

impl AccountMessages {
    fn link(
        &self,
        path: &str,
        purpose: LinkPurpose,
        account: AccountId,
        challenge: ChallengeId,
    ) -> String {
        let token = self.keys.link_token(purpose, account, challenge);
        format!("{}{path}?token={token}", self.public_url)
    }

    async fn handle(
        &self,
        tx: &mut PgConnection,
        stored: &StoredEvent,
        account: AccountId,
        event: AccountEvent,
    ) -> Result<(), SubscriberError> {
        let id = account.as_uuid();
        // One key per event: the stream and the sequence never repeat.
        let key = |kind: &str| format!("{kind}:{}:{}", stored.aggregate_id, stored.sequence);
        let now = Utc::now();
        let message = match event {
            AccountEvent::AccountRegistered {
                name, email, phone, ..
            } => {
                sqlx::query(
                    "INSERT INTO message_recipients (account_id, name, email, phone) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (account_id) DO UPDATE SET name = $2, email = $3, phone = $4",
                )
                .bind(id)
                .bind(name.as_str())
                .bind(email.as_str())
                .bind(phone.as_ref().map(|p| p.as_str().to_owned()))
                .execute(&mut *tx)
                .await?;
                None
            }
            AccountEvent::NameChanged { name, .. } => {
                sqlx::query("UPDATE message_recipients SET name = $2 WHERE account_id = $1")
                    .bind(id)
                    .bind(name.as_str())
                    .execute(&mut *tx)
                    .await?;
                None
            }
            AccountEvent::PhoneChanged { phone, .. } => {
                sqlx::query("UPDATE message_recipients SET phone = $2 WHERE account_id = $1")
                    .bind(id)
                    .bind(phone.as_ref().map(|p| p.as_str().to_owned()))
                    .execute(&mut *tx)
                    .await?;
                None
            }
            AccountEvent::EmailVerificationIssued {
                challenge_id,
                email,
                expires_at,
                ..
            } if expires_at > now => {
                let name = recipient(tx, id).await?.map(|r| r.name).unwrap_or_default();
                let link = self.link(
                    "/api/v1/auth/email/verify",
                    LinkPurpose::VerifyEmail,
                    account,
                    challenge_id,
                );
                let rendered = templates::VerifyEmail {
                    name: &name,
                    link: &link,
                }
                .email();
                Some(OutboxMessage::email(
                    key("verify-email"),
                    email.as_str(),
                    rendered,
                ))
            }
            AccountEvent::PhoneVerificationIssued {
                challenge_id,
                phone,
                expires_at,
                issued_at,
            } if expires_at > now => {
                let code = self.keys.code(account, challenge_id);
                let body = templates::PhoneCode {
                    code: &code,
                    minutes_valid: minutes_between(issued_at, expires_at),
                }
                .sms();
                Some(OutboxMessage::sms(key("phone-code"), phone.as_str(), body))
            }
            AccountEvent::LoginCodeIssued {
                challenge_id,
                channel,
                expires_at,
                issued_at,
            } if expires_at > now => {
                let Some(to) = recipient(tx, id).await? else {
                    return Ok(());
                };
                let code = self.keys.code(account, challenge_id);
                let template = templates::LoginCode {
                    name: &to.name,
                    code: &code,
                    minutes_valid: minutes_between(issued_at, expires_at),
                };
                match (channel, to.phone) {
                    (CodeChannel::Email, _) => Some(OutboxMessage::email(
                        key("login-code"),
                        to.email,
                        template.email(),
                    )),
                    (CodeChannel::Sms, Some(phone)) => {
                        Some(OutboxMessage::sms(key("login-code"), phone, template.sms()))
                    }
                    (CodeChannel::Sms, None) => None,
                }
            }
            AccountEvent::PasswordResetIssued {
                challenge_id,
                expires_at,
                issued_at,
            } if expires_at > now => {
                let Some(to) = recipient(tx, id).await? else {
                    return Ok(());
                };
                let link = self.link(
                    "/reset-password",
                    LinkPurpose::ResetPassword,
                    account,
                    challenge_id,
                );
                let rendered = templates::PasswordReset {
                    name: &to.name,
                    link: &link,
                    minutes_valid: minutes_between(issued_at, expires_at),
                }
                .email();
                Some(OutboxMessage::email(
                    key("password-reset"),
                    to.email,
                    rendered,
                ))
            }
            AccountEvent::PasswordChanged { .. } | AccountEvent::PasswordReset { .. } => {
                self.notice(tx, id, key("password-changed"), |name| {
                    templates::PasswordChanged { name }.email()
                })
                .await?
            }
            AccountEvent::AccountLocked { locked_until, .. } => {
                self.notice(tx, id, key("account-locked"), |name| {
                    templates::AccountLocked {
                        name,
                        until: locked_until,
                    }
                    .email()
                })
                .await?
            }
            AccountEvent::KycApproved { .. } => {
                self.notice(tx, id, key("kyc-decision"), |name| {
                    templates::KycDecision {
                        name,
                        approved: true,
                        reason: None,
                    }
                    .email()
                })
                .await?
            }
            AccountEvent::KycRejected { reason, .. } => {
                self.notice(tx, id, key("kyc-decision"), |name| {
                    templates::KycDecision {
                        name,
                        approved: false,
                        reason: Some(reason.as_str()),
                    }
                    .email()
                })
                .await?
            }
            AccountEvent::TotpEnabled { .. } | AccountEvent::TotpDisabled { .. } => {
                let enabled = matches!(event, AccountEvent::TotpEnabled { .. });
                self.notice(tx, id, key("two-factor"), |name| {
                    templates::TwoFactorChanged { name, enabled }.email()
                })
                .await?
            }
            _ => None,
        };
        if let Some(message) = message {
            outbox::enqueue(tx, &message).await?;
        }
        Ok(())
    }

    /// A notice by email to the account holder.
    async fn notice(
        &self,
        tx: &mut PgConnection,
        account: Uuid,
        key: String,
        render: impl FnOnce(&str) -> templates::Rendered,
    ) -> Result<Option<OutboxMessage>, sqlx::Error> {
        Ok(recipient(tx, account)
            .await?
            .map(|to| OutboxMessage::email(key, to.email, render(&to.name))))
    }
}
