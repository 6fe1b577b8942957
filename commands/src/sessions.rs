//! Session lifecycle on the Account aggregate: start (login), refresh (token rotation), end (logout).

use chrono::{DateTime, Utc};
use stratus_domain::account::{Account, AccountCommand, AccountEvent};
use stratus_domain::{AccountId, SessionId};

use crate::aggregate_store::{AggregateStore, Appended, CommandError};
use crate::metadata::CommandMetadata;
use stratus_domain::account::AccountError;

/// A new session after a successful credential check.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub account_id: AccountId,
    pub session_id: SessionId,
    pub refresh_token_hash: String,
    pub expires_at: DateTime<Utc>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

/// Records a login.
pub async fn start(
    store: &AggregateStore<Account>,
    session: NewSession,
    metadata: &CommandMetadata,
) -> Result<Appended<Account>, CommandError<AccountError>> {
    let command = AccountCommand::StartSession {
        session_id: session.session_id,
        refresh_token_hash: session.refresh_token_hash,
        expires_at: session.expires_at,
        client_ip: session.client_ip,
        user_agent: session.user_agent,
        occurred_at: session.occurred_at,
    };
    store
        .execute(&session.account_id.to_string(), command, metadata)
        .await
}

/// A refresh request: the presented token's hash and the replacement.
#[derive(Debug, Clone)]
pub struct Rotation {
    pub account_id: AccountId,
    pub session_id: SessionId,
    pub presented_token_hash: String,
    pub new_token_hash: String,
    pub expires_at: DateTime<Utc>,
    pub occurred_at: DateTime<Utc>,
}

/// What a refresh did.
#[derive(Debug)]
pub enum RefreshOutcome {
    /// The token was current: it is now dead and the new one is live.
    Rotated(Appended<Account>),
    /// A token that had already been rotated out was presented: the session is revoked.
    ReuseDetected(Appended<Account>),
}

/// Rotates a refresh token, or revokes the session when an old token is replayed.
pub async fn refresh(
    store: &AggregateStore<Account>,
    rotation: Rotation,
    metadata: &CommandMetadata,
) -> Result<RefreshOutcome, CommandError<AccountError>> {
    let command = AccountCommand::RefreshSession {
        session_id: rotation.session_id,
        presented_token_hash: rotation.presented_token_hash,
        new_token_hash: rotation.new_token_hash,
        expires_at: rotation.expires_at,
        occurred_at: rotation.occurred_at,
    };
    let appended = store
        .execute(&rotation.account_id.to_string(), command, metadata)
        .await?;
    let revoked = appended
        .events
        .iter()
        .any(|e| matches!(e.payload, AccountEvent::SessionRevoked { .. }));
    Ok(if revoked {
        RefreshOutcome::ReuseDetected(appended)
    } else {
        RefreshOutcome::Rotated(appended)
    })
}

/// Records a logout.
pub async fn end(
    store: &AggregateStore<Account>,
    account_id: AccountId,
    session_id: SessionId,
    occurred_at: DateTime<Utc>,
    metadata: &CommandMetadata,
) -> Result<Appended<Account>, CommandError<AccountError>> {
    let command = AccountCommand::EndSession {
        session_id,
        occurred_at,
    };
    store
        .execute(&account_id.to_string(), command, metadata)
        .await
}
