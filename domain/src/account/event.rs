//! What happened to an account. A stored format: variant names, field names and versions are
//! pinned by tests and never change; evolve by adding a version and an upcaster.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use super::command::CodeChannel;
use crate::ids::{AccountId, ChallengeId, SessionId};
use crate::values::{Country, Email, NationalId, PersonName, Phone, Reason, Role};

/// Why a session was revoked. Stored in events by its snake_case name; never rename a variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevocationReason {
    /// A refresh token that had already been rotated out was presented again.
    RefreshTokenReused,
    /// The account holder closed it from another session.
    RevokedByUser,
    /// The password was changed from another session.
    PasswordChanged,
    /// The password was reset by email.
    PasswordReset,
    /// Staff suspended the account.
    AccountSuspended,
}

impl RevocationReason {
    /// The stored and wire name, same as the serde form.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::RefreshTokenReused => "refresh_token_reused",
            Self::RevokedByUser => "revoked_by_user",
            Self::PasswordChanged => "password_changed",
            Self::PasswordReset => "password_reset",
            Self::AccountSuspended => "account_suspended",
        }
    }
}

/// How a login failed, for the audit trail and the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginFailure {
    WrongPassword,
    WrongLoginCode,
    WrongSecondFactor,
}

/// Every event of the `Account` aggregate.
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
    /// The session was closed for [`RevocationReason`].
    SessionRevoked {
        session_id: SessionId,
        reason: RevocationReason,
        revoked_at: DateTime<Utc>,
    },
    /// A login attempt failed; `failures` counts consecutive failures since the last success.
    LoginFailed {
        failure: LoginFailure,
        failures: u32,
        failed_at: DateTime<Utc>,
    },
    /// Too many failed logins: no login until `locked_until`.
    AccountLocked {
        failures: u32,
        locked_until: DateTime<Utc>,
        locked_at: DateTime<Utc>,
    },
    /// An email verification link was sent; earlier links stop working.
    EmailVerificationIssued {
        challenge_id: ChallengeId,
        email: Email,
        expires_at: DateTime<Utc>,
        issued_at: DateTime<Utc>,
    },
    /// The email address was proven.
    EmailVerified {
        challenge_id: ChallengeId,
        email: Email,
        verified_at: DateTime<Utc>,
    },
    /// A code was sent to the phone.
    PhoneVerificationIssued {
        challenge_id: ChallengeId,
        phone: Phone,
        expires_at: DateTime<Utc>,
        issued_at: DateTime<Utc>,
    },
    /// A wrong phone code was typed; `attempts` counts wrong codes for this challenge.
    PhoneCodeRejected {
        challenge_id: ChallengeId,
        attempts: u32,
        rejected_at: DateTime<Utc>,
    },
    /// The phone number was proven.
    PhoneVerified {
        challenge_id: ChallengeId,
        phone: Phone,
        verified_at: DateTime<Utc>,
    },
    /// A one-time login code was sent.
    LoginCodeIssued {
        challenge_id: ChallengeId,
        channel: CodeChannel,
        expires_at: DateTime<Utc>,
        issued_at: DateTime<Utc>,
    },
    /// A wrong login code was presented; `attempts` counts wrong codes for this challenge.
    LoginCodeRejected {
        challenge_id: ChallengeId,
        attempts: u32,
        rejected_at: DateTime<Utc>,
    },
    /// A login code was used to log in; it cannot be used again.
    LoginCodeUsed {
        challenge_id: ChallengeId,
        used_at: DateTime<Utc>,
    },
    /// A password reset link was sent; earlier links stop working.
    PasswordResetIssued {
        challenge_id: ChallengeId,
        expires_at: DateTime<Utc>,
        issued_at: DateTime<Utc>,
    },
    /// A new password was set with a reset link.
    PasswordReset {
        challenge_id: ChallengeId,
        password_hash: String,
        reset_at: DateTime<Utc>,
    },
    /// A new password was set by the logged-in account holder.
    PasswordChanged {
        password_hash: String,
        changed_at: DateTime<Utc>,
    },
    /// TOTP setup began; the secret is derived from `setup_id` outside the log.
    TotpSetupStarted {
        setup_id: ChallengeId,
        started_at: DateTime<Utc>,
    },
    /// TOTP is on; `time_step` is the step of the confirming code (it cannot be replayed).
    TotpEnabled {
        setup_id: ChallengeId,
        recovery_code_hashes: Vec<String>,
        time_step: i64,
        enabled_at: DateTime<Utc>,
    },
    /// A TOTP code of `time_step` was accepted; it and earlier steps cannot be used again.
    TotpCodeAccepted {
        time_step: i64,
        accepted_at: DateTime<Utc>,
    },
    /// Recovery code number `index` was used up.
    RecoveryCodeUsed { index: u32, used_at: DateTime<Utc> },
    /// TOTP is off; the recovery codes are void.
    TotpDisabled { disabled_at: DateTime<Utc> },
    /// The display name changed.
    NameChanged {
        name: PersonName,
        changed_at: DateTime<Utc>,
    },
    /// The phone number changed or was removed; it is unverified again.
    PhoneChanged {
        phone: Option<Phone>,
        changed_at: DateTime<Utc>,
    },
    /// Identity details were submitted for review.
    KycSubmitted {
        national_id: NationalId,
        legal_name: PersonName,
        country: Country,
        submitted_at: DateTime<Utc>,
    },
    /// Staff accepted the identity details.
    KycApproved {
        reviewer: AccountId,
        approved_at: DateTime<Utc>,
    },
    /// Staff refused the identity details.
    KycRejected {
        reviewer: AccountId,
        reason: Reason,
        rejected_at: DateTime<Utc>,
    },
    /// Staff suspended the account.
    AccountSuspended {
        by: AccountId,
        reason: Reason,
        suspended_at: DateTime<Utc>,
    },
    /// Staff lifted the suspension; any login lock is lifted too.
    AccountReinstated {
        by: AccountId,
        reinstated_at: DateTime<Utc>,
    },
    /// Staff replaced the roles.
    RolesChanged {
        by: AccountId,
        roles: Vec<Role>,
        changed_at: DateTime<Utc>,
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
    "LoginFailed",
    "AccountLocked",
    "EmailVerificationIssued",
    "EmailVerified",
    "PhoneVerificationIssued",
    "PhoneCodeRejected",
    "PhoneVerified",
    "LoginCodeIssued",
    "LoginCodeRejected",
    "LoginCodeUsed",
    "PasswordResetIssued",
    "PasswordReset",
    "PasswordChanged",
    "TotpSetupStarted",
    "TotpEnabled",
    "TotpCodeAccepted",
    "RecoveryCodeUsed",
    "TotpDisabled",
    "NameChanged",
    "PhoneChanged",
    "KycSubmitted",
    "KycApproved",
    "KycRejected",
    "AccountSuspended",
    "AccountReinstated",
    "RolesChanged",
];

/// The version every [`AccountEvent`] is currently written with.
const EVENT_VERSION: &str = "1";

impl AccountEvent {
    /// The stored name of this event.
    pub fn name(&self) -> &'static str {
        match self {
            Self::AccountRegistered { .. } => "AccountRegistered",
            Self::SessionStarted { .. } => "SessionStarted",
            Self::SessionRefreshed { .. } => "SessionRefreshed",
            Self::SessionEnded { .. } => "SessionEnded",
            Self::SessionRevoked { .. } => "SessionRevoked",
            Self::LoginFailed { .. } => "LoginFailed",
            Self::AccountLocked { .. } => "AccountLocked",
            Self::EmailVerificationIssued { .. } => "EmailVerificationIssued",
            Self::EmailVerified { .. } => "EmailVerified",
            Self::PhoneVerificationIssued { .. } => "PhoneVerificationIssued",
            Self::PhoneCodeRejected { .. } => "PhoneCodeRejected",
            Self::PhoneVerified { .. } => "PhoneVerified",
            Self::LoginCodeIssued { .. } => "LoginCodeIssued",
            Self::LoginCodeRejected { .. } => "LoginCodeRejected",
            Self::LoginCodeUsed { .. } => "LoginCodeUsed",
            Self::PasswordResetIssued { .. } => "PasswordResetIssued",
            Self::PasswordReset { .. } => "PasswordReset",
            Self::PasswordChanged { .. } => "PasswordChanged",
            Self::TotpSetupStarted { .. } => "TotpSetupStarted",
            Self::TotpEnabled { .. } => "TotpEnabled",
            Self::TotpCodeAccepted { .. } => "TotpCodeAccepted",
            Self::RecoveryCodeUsed { .. } => "RecoveryCodeUsed",
            Self::TotpDisabled { .. } => "TotpDisabled",
            Self::NameChanged { .. } => "NameChanged",
            Self::PhoneChanged { .. } => "PhoneChanged",
            Self::KycSubmitted { .. } => "KycSubmitted",
            Self::KycApproved { .. } => "KycApproved",
            Self::KycRejected { .. } => "KycRejected",
            Self::AccountSuspended { .. } => "AccountSuspended",
            Self::AccountReinstated { .. } => "AccountReinstated",
            Self::RolesChanged { .. } => "RolesChanged",
        }
    }
}

impl DomainEvent for AccountEvent {
    fn event_type(&self) -> String {
        self.name().to_owned()
    }

    fn event_version(&self) -> String {
        EVENT_VERSION.to_owned()
    }
}
