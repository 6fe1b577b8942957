//! The `Account` aggregate: registration, login sessions with rotating refresh tokens, login
//! failures and locks, email and phone verification, one-time login codes, password reset and
//! change, TOTP two-factor authentication with recovery codes, profile, identity checks (KYC),
//! suspension and roles.
//!
//! A session holds the hash of its current refresh token and of every token it has rotated out.
//! Presenting the current token before expiry rotates it; presenting a rotated-out token means the
//! token was copied (the legitimate client already moved on), so the whole session is revoked —
//! refresh-token reuse detection as in RFC 9700 §4.14.2.
//!
//! Secrets never enter the domain or the log: passwords and recovery codes arrive hashed, and
//! one-time codes and TOTP secrets are derived outside from a server key and a challenge id
//! ([`ChallengeSecrets`]). A wrong code is not a refusal but a fact: the command succeeds with a
//! `LoginFailed` or `…CodeRejected` event, so the attempt counts even though the caller answers
//! with an error.
//!
//! Start reading at [`AccountCommand`], then `decide` in this file.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use crate::ids::{AccountId, ChallengeId, SessionId};
use crate::values::{Email, PersonName, Phone, Role};

mod command;
mod error;
mod event;
mod services;

pub use command::{AccountCommand, Challenge, CodeChannel, LoginProof, SecondFactor};
pub use error::AccountError;
pub use event::{AccountEvent, LoginFailure, RevocationReason, ACCOUNT_EVENT_TYPES};
pub use services::{constant_time_eq, AccountServices, ChallengeSecrets};

#[cfg(test)]
mod flows_tests;
#[cfg(test)]
mod session_invariants;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

/// Consecutive failed logins after which the account locks.
pub const LOGIN_FAILURES_BEFORE_LOCK: u32 = 5;
/// The first lock lasts this long; each further failure doubles it.
pub const LOCK_BASE_SECONDS: i64 = 60;
/// No lock lasts longer than this, so an attacker cannot lock an owner out for days.
pub const LOCK_MAX_SECONDS: i64 = 60 * 60;
/// Wrong codes a one-time code or phone code tolerates before a new one is needed.
pub const CODE_MAX_ATTEMPTS: u32 = 5;
/// RFC 6238 time step.
pub const TOTP_STEP_SECONDS: i64 = 30;
/// Steps of clock drift accepted on either side (RFC 6238 §5.2 recommends one).
pub const TOTP_SKEW_STEPS: i64 = 1;

/// Whether the account may be used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    #[default]
    Active,
    Suspended,
}

/// Where the identity check stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KycStatus {
    #[default]
    NotSubmitted,
    Pending,
    Approved,
    Rejected,
}

impl KycStatus {
    /// The wire name, same as the serde form.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::NotSubmitted => "not_submitted",
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
        }
    }
}

/// An outstanding challenge: the latest one of its kind wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingChallenge {
    id: ChallengeId,
    expires_at: DateTime<Utc>,
    attempts: u32,
}

impl PendingChallenge {
    fn new(id: ChallengeId, expires_at: DateTime<Utc>) -> Self {
        Self {
            id,
            expires_at,
            attempts: 0,
        }
    }

    pub fn id(&self) -> ChallengeId {
        self.id
    }

    pub fn expires_at(&self) -> DateTime<Utc> {
        self.expires_at
    }

    /// Wrong codes presented so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    fn exhausted(&self) -> bool {
        self.attempts >= CODE_MAX_ATTEMPTS
    }
}

/// Two-factor state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpState {
    pending_setup: Option<ChallengeId>,
    enabled_setup: Option<ChallengeId>,
    last_step: Option<i64>,
    /// Hashes of the recovery codes; a used one becomes `None` (its index stays stable).
    recovery_codes: Vec<Option<String>>,
}

impl TotpState {
    pub fn enabled(&self) -> bool {
        self.enabled_setup.is_some()
    }

    /// Recovery codes not used yet.
    pub fn recovery_codes_left(&self) -> usize {
        self.recovery_codes.iter().flatten().count()
    }
}

/// The state an account needs to decide on commands, rebuilt by applying its events in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Account {
    registered: bool,
    account_id: Option<AccountId>,
    name: Option<PersonName>,
    email: Option<Email>,
    email_verified: bool,
    phone: Option<Phone>,
    phone_verified: bool,
    roles: Vec<Role>,
    status: AccountStatus,
    sessions: BTreeMap<SessionId, SessionState>,
    failed_logins: u32,
    locked_until: Option<DateTime<Utc>>,
    email_challenge: Option<PendingChallenge>,
    phone_challenge: Option<PendingChallenge>,
    login_code: Option<PendingChallenge>,
    reset_challenge: Option<PendingChallenge>,
    totp: TotpState,
    kyc: KycStatus,
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

    pub fn email_verified(&self) -> bool {
        self.email_verified
    }

    pub fn phone(&self) -> Option<&Phone> {
        self.phone.as_ref()
    }

    pub fn phone_verified(&self) -> bool {
        self.phone_verified
    }

    /// The current roles, deduplicated and sorted.
    pub fn roles(&self) -> &[Role] {
        &self.roles
    }

    pub fn status(&self) -> AccountStatus {
        self.status
    }

    /// Consecutive failed logins since the last success.
    pub fn failed_logins(&self) -> u32 {
        self.failed_logins
    }

    /// When the current lock ends, if one was set (it may lie in the past).
    pub fn locked_until(&self) -> Option<DateTime<Utc>> {
        self.locked_until
    }

    pub fn totp(&self) -> &TotpState {
        &self.totp
    }

    pub fn kyc_status(&self) -> KycStatus {
        self.kyc
    }

    /// The outstanding one-time login code, if any.
    pub fn login_code(&self) -> Option<&PendingChallenge> {
        self.login_code.as_ref()
    }

    /// The outstanding phone code, if any.
    pub fn phone_challenge(&self) -> Option<&PendingChallenge> {
        self.phone_challenge.as_ref()
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

/// The 30-second TOTP step an instant falls in.
pub fn totp_step(at: DateTime<Utc>) -> i64 {
    at.timestamp().div_euclid(TOTP_STEP_SECONDS)
}

impl Aggregate for Account {
    const TYPE: &'static str = "account";
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = AccountError;
    type Services = AccountServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command, services)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            AccountEvent::AccountRegistered {
                account_id,
                name,
                email,
                phone,
                roles,
                ..
            } => {
                self.registered = true;
                self.account_id = Some(account_id);
                self.name = Some(name);
                self.email = Some(email);
                self.phone = phone;
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
                self.failed_logins = 0;
                self.locked_until = None;
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
            AccountEvent::LoginFailed { failures, .. } => self.failed_logins = failures,
            AccountEvent::AccountLocked { locked_until, .. } => {
                self.locked_until = Some(locked_until)
            }
            AccountEvent::EmailVerificationIssued {
                challenge_id,
                expires_at,
                ..
            } => self.email_challenge = Some(PendingChallenge::new(challenge_id, expires_at)),
            AccountEvent::EmailVerified { .. } => {
                self.email_verified = true;
                self.email_challenge = None;
            }
            AccountEvent::PhoneVerificationIssued {
                challenge_id,
                expires_at,
                ..
            } => self.phone_challenge = Some(PendingChallenge::new(challenge_id, expires_at)),
            AccountEvent::PhoneCodeRejected { attempts, .. } => {
                if let Some(challenge) = self.phone_challenge.as_mut() {
                    challenge.attempts = attempts;
                }
            }
            AccountEvent::PhoneVerified { .. } => {
                self.phone_verified = true;
                self.phone_challenge = None;
            }
            AccountEvent::LoginCodeIssued {
                challenge_id,
                expires_at,
                ..
            } => self.login_code = Some(PendingChallenge::new(challenge_id, expires_at)),
            AccountEvent::LoginCodeRejected { attempts, .. } => {
                if let Some(challenge) = self.login_code.as_mut() {
                    challenge.attempts = attempts;
                }
            }
            AccountEvent::LoginCodeUsed { .. } => self.login_code = None,
            AccountEvent::PasswordResetIssued {
                challenge_id,
                expires_at,
                ..
            } => self.reset_challenge = Some(PendingChallenge::new(challenge_id, expires_at)),
            AccountEvent::PasswordReset { .. } => {
                self.reset_challenge = None;
                self.failed_logins = 0;
                self.locked_until = None;
            }
            AccountEvent::PasswordChanged { .. } => {}
            AccountEvent::TotpSetupStarted { setup_id, .. } => {
                self.totp.pending_setup = Some(setup_id)
            }
            AccountEvent::TotpEnabled {
                setup_id,
                recovery_code_hashes,
                time_step,
                ..
            } => {
                self.totp = TotpState {
                    pending_setup: None,
                    enabled_setup: Some(setup_id),
                    last_step: Some(time_step),
                    recovery_codes: recovery_code_hashes.into_iter().map(Some).collect(),
                };
            }
            AccountEvent::TotpCodeAccepted { time_step, .. } => {
                self.totp.last_step = Some(time_step)
            }
            AccountEvent::RecoveryCodeUsed { index, .. } => {
                if let Some(slot) = self.totp.recovery_codes.get_mut(index as usize) {
                    *slot = None;
                }
            }
            AccountEvent::TotpDisabled { .. } => self.totp = TotpState::default(),
            AccountEvent::NameChanged { name, .. } => self.name = Some(name),
            AccountEvent::PhoneChanged { phone, .. } => {
                self.phone = phone;
                self.phone_verified = false;
                self.phone_challenge = None;
            }
            AccountEvent::KycSubmitted { .. } => self.kyc = KycStatus::Pending,
            AccountEvent::KycApproved { .. } => self.kyc = KycStatus::Approved,
            AccountEvent::KycRejected { .. } => self.kyc = KycStatus::Rejected,
            AccountEvent::AccountSuspended { .. } => self.status = AccountStatus::Suspended,
            AccountEvent::AccountReinstated { .. } => {
                self.status = AccountStatus::Active;
                self.failed_logins = 0;
                self.locked_until = None;
            }
            AccountEvent::RolesChanged { roles, .. } => self.roles = roles,
        }
    }
}

impl Account {
    /// Every command yields its events or one refusal; kept synchronous and separate from
    /// `handle` so the rules read top to bottom without the sink.
    fn decide(
        &self,
        command: AccountCommand,
        services: &AccountServices,
    ) -> Result<Vec<AccountEvent>, AccountError> {
        if !self.registered && !matches!(command, AccountCommand::Register { .. }) {
            return Err(AccountError::NotRegistered);
        }
        match command {
            AccountCommand::Register {
                account_id,
                name,
                email,
                phone,
                password_hash,
                mut roles,
                email_verification,
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
                Ok(vec![
                    AccountEvent::AccountRegistered {
                        account_id,
                        name,
                        email: email.clone(),
                        phone,
                        password_hash,
                        roles,
                        registered_at: occurred_at,
                    },
                    AccountEvent::EmailVerificationIssued {
                        challenge_id: email_verification.id,
                        email,
                        expires_at: email_verification.expires_at,
                        issued_at: occurred_at,
                    },
                ])
            }
            AccountCommand::StartSession {
                session_id,
                refresh_token_hash,
                expires_at,
                client_ip,
                user_agent,
                proof,
                occurred_at,
            } => self.start_session(
                NewSession {
                    session_id,
                    refresh_token_hash,
                    expires_at,
                    client_ip,
                    user_agent,
                },
                proof,
                occurred_at,
                services,
            ),
            AccountCommand::RecordFailedLogin { occurred_at } => {
                Ok(self.failure(LoginFailure::WrongPassword, occurred_at))
            }
            AccountCommand::RefreshSession {
                session_id,
                presented_token_hash,
                new_token_hash,
                expires_at,
                occurred_at,
            } => {
                if self.status == AccountStatus::Suspended {
                    return Err(AccountError::AccountSuspended);
                }
                let session = self.active_session(&session_id)?;
                if presented_token_hash == session.current_token_hash {
                    if occurred_at >= session.expires_at {
                        return Err(AccountError::SessionExpired);
                    }
                    Ok(vec![AccountEvent::SessionRefreshed {
                        session_id,
                        refresh_token_hash: new_token_hash,
                        expires_at,
                        refreshed_at: occurred_at,
                    }])
                } else if session
                    .previous_token_hashes
                    .contains(&presented_token_hash)
                {
                    // Reuse of a rotated-out token: someone holds a copy. This is a success for
                    // the aggregate (the revocation must be committed); the caller answers 401.
                    Ok(vec![AccountEvent::SessionRevoked {
                        session_id,
                        reason: RevocationReason::RefreshTokenReused,
                        revoked_at: occurred_at,
                    }])
                } else {
                    Err(AccountError::InvalidRefreshToken)
                }
            }
            AccountCommand::EndSession {
                session_id,
                occurred_at,
            } => {
                self.active_session(&session_id)?;
                Ok(vec![AccountEvent::SessionEnded {
                    session_id,
                    ended_at: occurred_at,
                }])
            }
            AccountCommand::RevokeSession {
                session_id,
                occurred_at,
            } => {
                self.active_session(&session_id)?;
                Ok(vec![AccountEvent::SessionRevoked {
                    session_id,
                    reason: RevocationReason::RevokedByUser,
                    revoked_at: occurred_at,
                }])
            }
            AccountCommand::RevokeOtherSessions { keep, occurred_at } => {
                Ok(self.revoke_active_sessions(keep, RevocationReason::RevokedByUser, occurred_at))
            }
            AccountCommand::IssueEmailVerification {
                challenge,
                occurred_at,
            } => {
                if self.email_verified {
                    return Err(AccountError::EmailAlreadyVerified);
                }
                let email = self.email.clone().ok_or(AccountError::NotRegistered)?;
                Ok(vec![AccountEvent::EmailVerificationIssued {
                    challenge_id: challenge.id,
                    email,
                    expires_at: challenge.expires_at,
                    issued_at: occurred_at,
                }])
            }
            AccountCommand::VerifyEmail {
                challenge_id,
                occurred_at,
            } => {
                if self.email_verified {
                    return Err(AccountError::EmailAlreadyVerified);
                }
                let challenge = self
                    .email_challenge
                    .filter(|c| c.id == challenge_id)
                    .ok_or(AccountError::VerificationInvalid)?;
                if occurred_at >= challenge.expires_at {
                    return Err(AccountError::VerificationExpired);
                }
                let email = self.email.clone().ok_or(AccountError::NotRegistered)?;
                Ok(vec![AccountEvent::EmailVerified {
                    challenge_id,
                    email,
                    verified_at: occurred_at,
                }])
            }
            AccountCommand::IssuePhoneVerification {
                challenge,
                occurred_at,
            } => {
                let phone = self.phone.clone().ok_or(AccountError::NoPhone)?;
                if self.phone_verified {
                    return Err(AccountError::PhoneAlreadyVerified);
                }
                Ok(vec![AccountEvent::PhoneVerificationIssued {
                    challenge_id: challenge.id,
                    phone,
                    expires_at: challenge.expires_at,
                    issued_at: occurred_at,
                }])
            }
            AccountCommand::VerifyPhone { code, occurred_at } => {
                let phone = self.phone.clone().ok_or(AccountError::NoPhone)?;
                if self.phone_verified {
                    return Err(AccountError::PhoneAlreadyVerified);
                }
                let challenge = self
                    .phone_challenge
                    .filter(|c| !c.exhausted())
                    .ok_or(AccountError::PhoneCodeInvalid)?;
                if occurred_at >= challenge.expires_at {
                    return Err(AccountError::VerificationExpired);
                }
                if self.code_matches(services, challenge.id, &code) {
                    Ok(vec![AccountEvent::PhoneVerified {
                        challenge_id: challenge.id,
                        phone,
                        verified_at: occurred_at,
                    }])
                } else {
                    Ok(vec![AccountEvent::PhoneCodeRejected {
                        challenge_id: challenge.id,
                        attempts: challenge.attempts.saturating_add(1),
                        rejected_at: occurred_at,
                    }])
                }
            }
            AccountCommand::IssueLoginCode {
                challenge,
                channel,
                occurred_at,
            } => {
                if self.status == AccountStatus::Suspended {
                    return Err(AccountError::AccountSuspended);
                }
                if channel == CodeChannel::Sms && !(self.phone.is_some() && self.phone_verified) {
                    return Err(AccountError::NoPhone);
                }
                Ok(vec![AccountEvent::LoginCodeIssued {
                    challenge_id: challenge.id,
                    channel,
                    expires_at: challenge.expires_at,
                    issued_at: occurred_at,
                }])
            }
            AccountCommand::IssuePasswordReset {
                challenge,
                occurred_at,
            } => Ok(vec![AccountEvent::PasswordResetIssued {
                challenge_id: challenge.id,
                expires_at: challenge.expires_at,
                issued_at: occurred_at,
            }]),
            AccountCommand::ResetPassword {
                challenge_id,
                password_hash,
                occurred_at,
            } => {
                self.reset_challenge
                    .filter(|c| c.id == challenge_id && occurred_at < c.expires_at)
                    .ok_or(AccountError::ResetInvalid)?;
                let mut events = vec![AccountEvent::PasswordReset {
                    challenge_id,
                    password_hash,
                    reset_at: occurred_at,
                }];
                events.extend(self.revoke_active_sessions(
                    None,
                    RevocationReason::PasswordReset,
                    occurred_at,
                ));
                Ok(events)
            }
            AccountCommand::ChangePassword {
                password_hash,
                keep_session,
                occurred_at,
            } => {
                let mut events = vec![AccountEvent::PasswordChanged {
                    password_hash,
                    changed_at: occurred_at,
                }];
                events.extend(self.revoke_active_sessions(
                    keep_session,
                    RevocationReason::PasswordChanged,
                    occurred_at,
                ));
                Ok(events)
            }
            AccountCommand::StartTotpSetup {
                setup_id,
                occurred_at,
            } => {
                if self.totp.enabled() {
                    return Err(AccountError::MfaAlreadyEnabled);
                }
                Ok(vec![AccountEvent::TotpSetupStarted {
                    setup_id,
                    started_at: occurred_at,
                }])
            }
            AccountCommand::EnableTotp {
                code,
                recovery_code_hashes,
                occurred_at,
            } => {
                if self.totp.enabled() {
                    return Err(AccountError::MfaAlreadyEnabled);
                }
                let setup_id = self
                    .totp
                    .pending_setup
                    .ok_or(AccountError::MfaSetupNotStarted)?;
                let time_step = self
                    .matching_totp_step(services, setup_id, &code, occurred_at, None)
                    .ok_or(AccountError::InvalidSecondFactor)?;
                Ok(vec![AccountEvent::TotpEnabled {
                    setup_id,
                    recovery_code_hashes,
                    time_step,
                    enabled_at: occurred_at,
                }])
            }
            AccountCommand::DisableTotp {
                second_factor,
                occurred_at,
            } => {
                if !self.totp.enabled() {
                    return Err(AccountError::MfaNotEnabled);
                }
                let mut events = self
                    .second_factor_events(services, &second_factor, occurred_at)
                    .ok_or(AccountError::InvalidSecondFactor)?;
                events.push(AccountEvent::TotpDisabled {
                    disabled_at: occurred_at,
                });
                Ok(events)
            }
            AccountCommand::UpdateProfile {
                name,
                phone,
                occurred_at,
            } => {
                let mut events = Vec::new();
                if let Some(name) = name.filter(|n| Some(n) != self.name.as_ref()) {
                    events.push(AccountEvent::NameChanged {
                        name,
                        changed_at: occurred_at,
                    });
                }
                if let Some(phone) = phone.filter(|p| p != &self.phone) {
                    events.push(AccountEvent::PhoneChanged {
                        phone,
                        changed_at: occurred_at,
                    });
                }
                Ok(events)
            }
            AccountCommand::SubmitKyc {
                national_id,
                legal_name,
                country,
                occurred_at,
            } => match self.kyc {
                KycStatus::Pending => Err(AccountError::KycAlreadyPending),
                KycStatus::Approved => Err(AccountError::KycAlreadyApproved),
                KycStatus::NotSubmitted | KycStatus::Rejected => {
                    Ok(vec![AccountEvent::KycSubmitted {
                        national_id,
                        legal_name,
                        country,
                        submitted_at: occurred_at,
                    }])
                }
            },
            AccountCommand::ApproveKyc {
                reviewer,
                occurred_at,
            } => {
                self.require_kyc_pending()?;
                Ok(vec![AccountEvent::KycApproved {
                    reviewer,
                    approved_at: occurred_at,
                }])
            }
            AccountCommand::RejectKyc {
                reviewer,
                reason,
                occurred_at,
            } => {
                self.require_kyc_pending()?;
                Ok(vec![AccountEvent::KycRejected {
                    reviewer,
                    reason,
                    rejected_at: occurred_at,
                }])
            }
            AccountCommand::Suspend {
                by,
                reason,
                occurred_at,
            } => {
                if self.status == AccountStatus::Suspended {
                    return Err(AccountError::AlreadySuspended);
                }
                let mut events = vec![AccountEvent::AccountSuspended {
                    by,
                    reason,
                    suspended_at: occurred_at,
                }];
                events.extend(self.revoke_active_sessions(
                    None,
                    RevocationReason::AccountSuspended,
                    occurred_at,
                ));
                Ok(events)
            }
            AccountCommand::Reinstate { by, occurred_at } => {
                if self.status != AccountStatus::Suspended {
                    return Err(AccountError::NotSuspended);
                }
                Ok(vec![AccountEvent::AccountReinstated {
                    by,
                    reinstated_at: occurred_at,
                }])
            }
            AccountCommand::ChangeRoles {
                by,
                mut roles,
                occurred_at,
            } => {
                if roles.is_empty() {
                    return Err(AccountError::NoRoles);
                }
                roles.sort_unstable();
                roles.dedup();
                if roles == self.roles {
                    return Ok(Vec::new());
                }
                Ok(vec![AccountEvent::RolesChanged {
                    by,
                    roles,
                    changed_at: occurred_at,
                }])
            }
        }
    }

    fn start_session(
        &self,
        session: NewSession,
        proof: LoginProof,
        occurred_at: DateTime<Utc>,
        services: &AccountServices,
    ) -> Result<Vec<AccountEvent>, AccountError> {
        if self.status == AccountStatus::Suspended {
            return Err(AccountError::AccountSuspended);
        }
        if let Some(until) = self.locked_until.filter(|until| occurred_at < *until) {
            return Err(AccountError::AccountLocked { until });
        }
        if self.sessions.contains_key(&session.session_id) {
            return Err(AccountError::SessionAlreadyExists);
        }
        let mut events = Vec::new();
        let second_factor = match proof {
            LoginProof::Password { second_factor } => second_factor,
            LoginProof::LoginCode {
                code,
                second_factor,
            } => {
                let challenge = self
                    .login_code
                    .filter(|c| !c.exhausted())
                    .ok_or(AccountError::LoginCodeInvalid)?;
                if occurred_at >= challenge.expires_at {
                    return Err(AccountError::LoginCodeExpired);
                }
                if !self.code_matches(services, challenge.id, &code) {
                    let mut failed = vec![AccountEvent::LoginCodeRejected {
                        challenge_id: challenge.id,
                        attempts: challenge.attempts.saturating_add(1),
                        rejected_at: occurred_at,
                    }];
                    failed.extend(self.failure(LoginFailure::WrongLoginCode, occurred_at));
                    return Ok(failed);
                }
                events.push(AccountEvent::LoginCodeUsed {
                    challenge_id: challenge.id,
                    used_at: occurred_at,
                });
                second_factor
            }
        };
        if self.totp.enabled() {
            let second_factor = second_factor.ok_or(AccountError::MfaRequired)?;
            match self.second_factor_events(services, &second_factor, occurred_at) {
                Some(accepted) => events.extend(accepted),
                None => return Ok(self.failure(LoginFailure::WrongSecondFactor, occurred_at)),
            }
        }
        events.push(AccountEvent::SessionStarted {
            session_id: session.session_id,
            refresh_token_hash: session.refresh_token_hash,
            expires_at: session.expires_at,
            client_ip: session.client_ip,
            user_agent: session.user_agent,
            started_at: occurred_at,
        });
        Ok(events)
    }

    /// The events of one failed login: the count, and a lock once the count reaches the limit.
    /// Each failure past the limit doubles the lock, up to [`LOCK_MAX_SECONDS`].
    fn failure(&self, failure: LoginFailure, at: DateTime<Utc>) -> Vec<AccountEvent> {
        let failures = self.failed_logins.saturating_add(1);
        let mut events = vec![AccountEvent::LoginFailed {
            failure,
            failures,
            failed_at: at,
        }];
        if failures >= LOGIN_FAILURES_BEFORE_LOCK {
            let doublings = (failures - LOGIN_FAILURES_BEFORE_LOCK).min(16);
            let seconds = LOCK_BASE_SECONDS
                .saturating_mul(1_i64 << doublings)
                .min(LOCK_MAX_SECONDS);
            events.push(AccountEvent::AccountLocked {
                failures,
                locked_until: at + TimeDelta::seconds(seconds),
                locked_at: at,
            });
        }
        events
    }

    fn code_matches(
        &self,
        services: &AccountServices,
        challenge_id: ChallengeId,
        code: &str,
    ) -> bool {
        let Some(account_id) = self.account_id else {
            return false;
        };
        let expected = services.secrets.code(account_id, challenge_id);
        constant_time_eq(expected.as_bytes(), code.trim().as_bytes())
    }

    /// The step within the accepted window whose code matches, newer than `after`.
    fn matching_totp_step(
        &self,
        services: &AccountServices,
        setup_id: ChallengeId,
        code: &str,
        at: DateTime<Utc>,
        after: Option<i64>,
    ) -> Option<i64> {
        let account_id = self.account_id?;
        let now = totp_step(at);
        let code = code.trim().as_bytes();
        let mut found = None;
        // Every step of the window is computed, so the time taken does not say which matched.
        for step in (now - TOTP_SKEW_STEPS)..=(now + TOTP_SKEW_STEPS) {
            let expected = services.secrets.totp_code(account_id, setup_id, step);
            let fresh = after.is_none_or(|last| step > last);
            if constant_time_eq(expected.as_bytes(), code) && fresh && found.is_none() {
                found = Some(step);
            }
        }
        found
    }

    /// The events that accepting `second_factor` records, or `None` when it is wrong or used.
    fn second_factor_events(
        &self,
        services: &AccountServices,
        second_factor: &SecondFactor,
        at: DateTime<Utc>,
    ) -> Option<Vec<AccountEvent>> {
        let setup_id = self.totp.enabled_setup?;
        match second_factor {
            SecondFactor::Totp(code) => self
                .matching_totp_step(services, setup_id, code, at, self.totp.last_step)
                .map(|time_step| {
                    vec![AccountEvent::TotpCodeAccepted {
                        time_step,
                        accepted_at: at,
                    }]
                }),
            SecondFactor::RecoveryCodeHash(hash) => self
                .totp
                .recovery_codes
                .iter()
                .position(|slot| {
                    slot.as_deref()
                        .is_some_and(|h| constant_time_eq(h.as_bytes(), hash.as_bytes()))
                })
                .and_then(|index| u32::try_from(index).ok())
                .map(|index| vec![AccountEvent::RecoveryCodeUsed { index, used_at: at }]),
        }
    }

    fn revoke_active_sessions(
        &self,
        keep: Option<SessionId>,
        reason: RevocationReason,
        at: DateTime<Utc>,
    ) -> Vec<AccountEvent> {
        self.sessions
            .iter()
            .filter(|(id, s)| s.status == SessionStatus::Active && Some(**id) != keep)
            .map(|(id, _)| AccountEvent::SessionRevoked {
                session_id: *id,
                reason,
                revoked_at: at,
            })
            .collect()
    }

    fn require_kyc_pending(&self) -> Result<(), AccountError> {
        if self.kyc == KycStatus::Pending {
            Ok(())
        } else {
            Err(AccountError::KycNotPending)
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

/// The parts of `StartSession` that become the session.
struct NewSession {
    session_id: SessionId,
    refresh_token_hash: String,
    expires_at: DateTime<Utc>,
    client_ip: Option<String>,
    user_agent: Option<String>,
}
