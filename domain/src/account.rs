//! The `Account` aggregate: registration and login sessions with rotating refresh tokens.
//!
//! A session holds the hash of its current refresh token and of every token it has rotated out.
//! Presenting the current token before expiry rotates it; presenting a rotated-out token means the
//! token was copied (the legitimate client already moved on), so the whole session is revoked —
//! refresh-token reuse detection as in RFC 9700 §4.14.2. The domain only ever sees hashes; hashing
//! and token generation happen in the caller.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::ids::{AccountId, SessionId};
use crate::values::{Email, PersonName, Phone, Role};

#[cfg(test)]
mod session_invariants;
#[cfg(test)]
mod tests;

/// The state an account needs to decide on commands, rebuilt by applying its events in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Account {
    registered: bool,
    account_id: Option<AccountId>,
    email: Option<Email>,
    roles: Vec<Role>,
    sessions: BTreeMap<SessionId, SessionState>,
}

impl Account {
    /// Whether `AccountRegistered` has been applied.
    pub fn is_registered(&self) -> bool {
        self.registered
    }

    /// The id recorded at registration.
    pub fn account_id(&self) -> Option<AccountId> {
        self.account_id
    }

    /// The email recorded at registration.
    pub fn email(&self) -> Option<&Email> {
        self.email.as_ref()
    }

    /// The roles recorded at registration, deduplicated and sorted.
    pub fn roles(&self) -> &[Role] {
        &self.roles
    }

    /// One session, whatever its status.
    pub fn session(&self, session_id: &SessionId) -> Option<&SessionState> {
        self.sessions.get(session_id)
    }

    /// Every session ever started on this account, whatever its status, ordered by id.
    pub fn sessions(&self) -> &BTreeMap<SessionId, SessionState> {
        &self.sessions
    }
}

/// What the aggregate remembers about one session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionState {
    current_token_hash: String,
    previous_token_hashes: Vec<String>,
    expires_at: DateTime<Utc>,
    status: SessionStatus,
}

impl SessionState {
    /// Hash of the refresh token that may be presented next.
    pub fn current_token_hash(&self) -> &str {
        &self.current_token_hash
    }

    /// Hashes of every token rotated out, oldest first. Presenting any of them revokes the session.
    pub fn previous_token_hashes(&self) -> &[String] {
        &self.previous_token_hashes
    }

    /// When the current refresh token stops being accepted.
    pub fn expires_at(&self) -> DateTime<Utc> {
        self.expires_at
    }

    /// Whether the session is active, logged out or revoked.
    pub fn status(&self) -> SessionStatus {
        self.status
    }
}

/// The life cycle of a session. `Ended` and `Revoked` are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    /// Its current refresh token may be exchanged for a new one until it expires.
    Active,
    /// The user logged out.
    Ended,
    /// Closed by the system, see [`RevocationReason`].
    Revoked,
}

/// What can be asked of an account. Time, ids and hashes are chosen by the caller.
#[derive(Debug, Clone)]
pub enum AccountCommand {
    /// Create the account. Refused if it already exists or no role is given.
    Register {
        account_id: AccountId,
        name: PersonName,
        email: Email,
        phone: Option<Phone>,
        /// The password hash (e.g. an Argon2 PHC string), never the password.
        password_hash: String,
        roles: Vec<Role>,
        occurred_at: DateTime<Utc>,
    },
    /// Log in: open a session whose first refresh token has the given hash.
    StartSession {
        session_id: SessionId,
        refresh_token_hash: String,
        expires_at: DateTime<Utc>,
        client_ip: Option<String>,
        user_agent: Option<String>,
        occurred_at: DateTime<Utc>,
    },
    /// Exchange the presented refresh token for a new one.
    RefreshSession {
        session_id: SessionId,
        presented_token_hash: String,
        new_token_hash: String,
        expires_at: DateTime<Utc>,
        occurred_at: DateTime<Utc>,
    },
    /// Log out.
    EndSession {
        session_id: SessionId,
        occurred_at: DateTime<Utc>,
    },
}

/// Why a session was revoked. Stored in events by its snake_case name; never rename a variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevocationReason {
    /// A refresh token that had already been rotated out was presented again.
    RefreshTokenReused,
}

impl RevocationReason {
    /// The stored and wire name, same as the serde form.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::RefreshTokenReused => "refresh_token_reused",
        }
    }
}

/// What happened to an account. A stored format: variant names, field names and versions are
/// pinned by tests and never change; evolve by adding a version and an upcaster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AccountEvent {
    /// The account was created.
    AccountRegistered {
        account_id: AccountId,
        name: PersonName,
        email: Email,
        phone: Option<Phone>,
        password_hash: String,
        roles: Vec<Role>,
        registered_at: DateTime<Utc>,
    },
    /// A login opened a session.
    SessionStarted {
        session_id: SessionId,
        refresh_token_hash: String,
        expires_at: DateTime<Utc>,
        client_ip: Option<String>,
        user_agent: Option<String>,
        started_at: DateTime<Utc>,
    },
    /// The current refresh token was exchanged for a new one; the old one is now rotated out.
    SessionRefreshed {
        session_id: SessionId,
        /// Hash of the new current refresh token.
        refresh_token_hash: String,
        expires_at: DateTime<Utc>,
        refreshed_at: DateTime<Utc>,
    },
    /// The user logged out.
    SessionEnded {
        session_id: SessionId,
        ended_at: DateTime<Utc>,
    },
    /// The system closed the session.
    SessionRevoked {
        session_id: SessionId,
        reason: RevocationReason,
        revoked_at: DateTime<Utc>,
    },
}

/// Every `event_type()` an [`AccountEvent`] can have, for upcasters and projections that filter
/// by type.
pub const ACCOUNT_EVENT_TYPES: &[&str] = &[
    "AccountRegistered",
    "SessionStarted",
    "SessionRefreshed",
    "SessionEnded",
    "SessionRevoked",
];

/// The version every [`AccountEvent`] is currently written with.
const EVENT_VERSION: &str = "1";

impl DomainEvent for AccountEvent {
    fn event_type(&self) -> String {
        let name = match self {
            Self::AccountRegistered { .. } => "AccountRegistered",
            Self::SessionStarted { .. } => "SessionStarted",
            Self::SessionRefreshed { .. } => "SessionRefreshed",
            Self::SessionEnded { .. } => "SessionEnded",
            Self::SessionRevoked { .. } => "SessionRevoked",
        };
        name.to_owned()
    }

    fn event_version(&self) -> String {
        EVENT_VERSION.to_owned()
    }
}

/// Why a command was refused. One variant per business rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// `Register` on an account that already exists.
    #[error("the account is already registered")]
    AlreadyRegistered,
    /// A session command on an account that does not exist.
    #[error("the account is not registered")]
    NotRegistered,
    /// `Register` with an empty role list.
    #[error("an account needs at least one role")]
    NoRoles,
    /// `StartSession` with an id already used on this account.
    #[error("a session with this id already exists")]
    SessionAlreadyExists,
    /// No session with this id on this account.
    #[error("no such session")]
    SessionNotFound,
    /// The session was ended or revoked.
    #[error("the session has ended or was revoked")]
    SessionNotActive,
    /// The current refresh token was presented at or after its expiry.
    #[error("the session has expired")]
    SessionExpired,
    /// The presented token is neither the current nor a rotated-out one.
    #[error("the refresh token is not valid for this session")]
    InvalidRefreshToken,
}

impl AccountError {
    /// Stable machine-readable code for API error bodies. Never change an existing code: clients
    /// branch on it.
    pub fn code(&self) -> &'static str {
        match self {
            Self::AlreadyRegistered => "already_registered",
            Self::NotRegistered => "not_registered",
            Self::NoRoles => "no_roles",
            Self::SessionAlreadyExists => "session_already_exists",
            Self::SessionNotFound => "session_not_found",
            Self::SessionNotActive => "session_not_active",
            Self::SessionExpired => "session_expired",
            Self::InvalidRefreshToken => "invalid_refresh_token",
        }
    }
}

impl Aggregate for Account {
    const TYPE: &'static str = "account";
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = AccountError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let event = self.decide(command)?;
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            AccountEvent::AccountRegistered {
                account_id,
                email,
                roles,
                ..
            } => {
                self.registered = true;
                self.account_id = Some(account_id);
                self.email = Some(email);
                self.roles = roles;
            }
            AccountEvent::SessionStarted {
                session_id,
                refresh_token_hash,
                expires_at,
                ..
            } => {
                self.sessions.insert(
                    session_id,
                    SessionState {
                        current_token_hash: refresh_token_hash,
                        previous_token_hashes: Vec::new(),
                        expires_at,
                        status: SessionStatus::Active,
                    },
                );
            }
            AccountEvent::SessionRefreshed {
                session_id,
                refresh_token_hash,
                expires_at,
                ..
            } => {
                if let Some(session) = self.sessions.get_mut(&session_id) {
                    let rotated_out =
                        std::mem::replace(&mut session.current_token_hash, refresh_token_hash);
                    session.previous_token_hashes.push(rotated_out);
                    session.expires_at = expires_at;
                }
            }
            AccountEvent::SessionEnded { session_id, .. } => {
                self.set_status(&session_id, SessionStatus::Ended);
            }
            AccountEvent::SessionRevoked { session_id, .. } => {
                self.set_status(&session_id, SessionStatus::Revoked);
            }
        }
    }
}

impl Account {
    /// Every command yields exactly one event or one refusal; kept synchronous and separate from
    /// `handle` so the rules read top to bottom without the sink.
    fn decide(&self, command: AccountCommand) -> Result<AccountEvent, AccountError> {
        match command {
            AccountCommand::Register {
                account_id,
                name,
                email,
                phone,
                password_hash,
                mut roles,
                occurred_at,
            } => {
                if self.registered {
                    return Err(AccountError::AlreadyRegistered);
                }
                if roles.is_empty() {
                    return Err(AccountError::NoRoles);
                }
                roles.sort_unstable();
                roles.dedup();
                Ok(AccountEvent::AccountRegistered {
                    account_id,
                    name,
                    email,
                    phone,
                    password_hash,
                    roles,
                    registered_at: occurred_at,
                })
            }
            AccountCommand::StartSession {
                session_id,
                refresh_token_hash,
                expires_at,
                client_ip,
                user_agent,
                occurred_at,
            } => {
                if !self.registered {
                    return Err(AccountError::NotRegistered);
                }
                if self.sessions.contains_key(&session_id) {
                    return Err(AccountError::SessionAlreadyExists);
                }
                Ok(AccountEvent::SessionStarted {
                    session_id,
                    refresh_token_hash,
                    expires_at,
                    client_ip,
                    user_agent,
                    started_at: occurred_at,
                })
            }
            AccountCommand::RefreshSession {
                session_id,
                presented_token_hash,
                new_token_hash,
                expires_at,
                occurred_at,
            } => {
                let session = self.active_session(&session_id)?;
                if presented_token_hash == session.current_token_hash {
                    if occurred_at >= session.expires_at {
                        return Err(AccountError::SessionExpired);
                    }
                    Ok(AccountEvent::SessionRefreshed {
                        session_id,
                        refresh_token_hash: new_token_hash,
                        expires_at,
                        refreshed_at: occurred_at,
                    })
                } else if session
                    .previous_token_hashes
                    .contains(&presented_token_hash)
                {
                    // Reuse of a rotated-out token: someone holds a copy. This is a success for
                    // the aggregate (the revocation must be committed); the caller answers 401.
                    Ok(AccountEvent::SessionRevoked {
                        session_id,
                        reason: RevocationReason::RefreshTokenReused,
                        revoked_at: occurred_at,
                    })
                } else {
                    Err(AccountError::InvalidRefreshToken)
                }
            }
            AccountCommand::EndSession {
                session_id,
                occurred_at,
            } => {
                self.active_session(&session_id)?;
                Ok(AccountEvent::SessionEnded {
                    session_id,
                    ended_at: occurred_at,
                })
            }
        }
    }

    fn active_session(&self, session_id: &SessionId) -> Result<&SessionState, AccountError> {
        let session = self
            .sessions
            .get(session_id)
            .ok_or(AccountError::SessionNotFound)?;
        if session.status != SessionStatus::Active {
            return Err(AccountError::SessionNotActive);
        }
        Ok(session)
    }

    fn set_status(&mut self, session_id: &SessionId, status: SessionStatus) {
        if let Some(session) = self.sessions.get_mut(session_id) {
            session.status = status;
        }
    }
}
