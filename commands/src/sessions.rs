//! Session lifecycle on the Account aggregate: start (login by password or one-time code, with a
//! second factor when TOTP is on), failed logins, refresh (token rotation), end (logout) and
//! revocation by the account holder.

use chrono::{DateTime, Utc};
use stratus_domain::account::{Account, AccountCommand, AccountError, AccountEvent, LoginProof};
use stratus_domain::{AccountId, SessionId};

use crate::aggregate_store::{AggregateStore, Appended, CommandError};
use crate::metadata::CommandMetadata;

/// A new session after the caller checked what only it can check (the password).
#[derive(Debug, Clone)]
pub struct NewSession {
    pub account_id: AccountId,
    pub session_id: SessionId,
    pub refresh_token_hash: String,
    pub expires_at: DateTime<Utc>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    pub proof: LoginProof,
    pub occurred_at: DateTime<Utc>,
}

/// What a login attempt did.
#[derive(Debug)]
pub enum LoginOutcome {
    /// A session was opened.
    Started(Appended<Account>),
    /// A wrong one-time code or second factor: the failure (and perhaps a lock) was recorded.
    Failed(Appended<Account>),
}

impl LoginOutcome {
    /// The feed position of whatever was appended.
    pub fn appended(&self) -> &Appended<Account> {
        match self {
            Self::Started(appended) | Self::Failed(appended) => appended,
        }
    }
}

/// Records a login: a session, or the failure the aggregate found.
pub async fn start(
    store: &AggregateStore<Account>,
    session: NewSession,
    metadata: &CommandMetadata,
) -> Result<LoginOutcome, CommandError<AccountError>> {
    let command = AccountCommand::StartSession {
        session_id: session.session_id,
        refresh_token_hash: session.refresh_token_hash,
        expires_at: session.expires_at,
        client_ip: session.client_ip,
        user_agent: session.user_agent,
        proof: session.proof,
        occurred_at: session.occurred_at,
    };
    let appended = store
        .execute(&session.account_id.to_string(), command, metadata)
        .await?;
    let started = appended
        .events
        .iter()
        .any(|e| matches!(e.payload, AccountEvent::SessionStarted { .. }));
    Ok(if started {
        LoginOutcome::Started(appended)
    } else {
        LoginOutcome::Failed(appended)
    })
}

/// Records a wrong password.
pub async fn record_failed_login(
    store: &AggregateStore<Account>,
    account_id: AccountId,
    occurred_at: DateTime<Utc>,
    metadata: &CommandMetadata,
) -> Result<Appended<Account>, CommandError<AccountError>> {
    store
        .execute(
            &account_id.to_string(),
            AccountCommand::RecordFailedLogin { occurred_at },
            metadata,
        )
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
