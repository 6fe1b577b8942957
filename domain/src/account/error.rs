//! Why an account command was refused. One variant per business rule.

use chrono::{DateTime, Utc};

/// Why a command was refused. Tests match variants; the API maps [`AccountError::code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// `Register` on an account that already exists.
    #[error("the account is already registered")]
    AlreadyRegistered,
    /// A command on an account that does not exist.
    #[error("the account is not registered")]
    NotRegistered,
    /// `Register` or `ChangeRoles` with an empty role list.
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
    /// Too many failed logins; no login until the lock ends.
    #[error("too many failed logins; try again after {until}")]
    AccountLocked { until: DateTime<Utc> },
    /// Staff suspended the account.
    #[error("this account is suspended")]
    AccountSuspended,
    /// Two-factor authentication is on and no second factor was presented.
    #[error("a second factor (TOTP or recovery code) is required")]
    MfaRequired,
    /// No login code is outstanding, or it was used or exhausted.
    #[error("the login code is not valid; request a new one")]
    LoginCodeInvalid,
    /// The login code expired.
    #[error("the login code has expired; request a new one")]
    LoginCodeExpired,
    /// The email is already verified.
    #[error("the email address is already verified")]
    EmailAlreadyVerified,
    /// The link is not the latest one sent, or was used.
    #[error("the verification link is not valid; request a new one")]
    VerificationInvalid,
    /// The link or code expired.
    #[error("the verification has expired; request a new one")]
    VerificationExpired,
    /// Phone verification without a phone on the account.
    #[error("the account has no phone number")]
    NoPhone,
    /// The phone is already verified.
    #[error("the phone number is already verified")]
    PhoneAlreadyVerified,
    /// No phone code outstanding, or it was exhausted by wrong attempts.
    #[error("no valid phone code is outstanding; request a new one")]
    PhoneCodeInvalid,
    /// The reset link is not the latest one, was used, or expired.
    #[error("the password reset link is not valid or has expired; request a new one")]
    ResetInvalid,
    /// TOTP is already on.
    #[error("two-factor authentication is already enabled")]
    MfaAlreadyEnabled,
    /// TOTP is off.
    #[error("two-factor authentication is not enabled")]
    MfaNotEnabled,
    /// `EnableTotp` before `StartTotpSetup`.
    #[error("start the two-factor setup first")]
    MfaSetupNotStarted,
    /// The TOTP or recovery code is wrong, or was already used.
    #[error("the two-factor code is not valid")]
    InvalidSecondFactor,
    /// Identity details are already waiting for review.
    #[error("identity details are already under review")]
    KycAlreadyPending,
    /// The identity is already approved.
    #[error("the identity is already approved")]
    KycAlreadyApproved,
    /// A review decision with nothing pending.
    #[error("no identity details are waiting for review")]
    KycNotPending,
    /// `Suspend` on a suspended account.
    #[error("the account is already suspended")]
    AlreadySuspended,
    /// `Reinstate` on an account that is not suspended.
    #[error("the account is not suspended")]
    NotSuspended,
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
            Self::AccountLocked { .. } => "account_locked",
            Self::AccountSuspended => "account_suspended",
            Self::MfaRequired => "mfa_required",
            Self::LoginCodeInvalid => "login_code_invalid",
            Self::LoginCodeExpired => "login_code_expired",
            Self::EmailAlreadyVerified => "email_already_verified",
            Self::VerificationInvalid => "verification_invalid",
            Self::VerificationExpired => "verification_expired",
            Self::NoPhone => "no_phone",
            Self::PhoneAlreadyVerified => "phone_already_verified",
            Self::PhoneCodeInvalid => "phone_code_invalid",
            Self::ResetInvalid => "reset_token_invalid",
            Self::MfaAlreadyEnabled => "mfa_already_enabled",
            Self::MfaNotEnabled => "mfa_not_enabled",
            Self::MfaSetupNotStarted => "mfa_setup_not_started",
            Self::InvalidSecondFactor => "invalid_mfa_code",
            Self::KycAlreadyPending => "kyc_already_pending",
            Self::KycAlreadyApproved => "kyc_already_approved",
            Self::KycNotPending => "kyc_not_pending",
            Self::AlreadySuspended => "already_suspended",
            Self::NotSuspended => "not_suspended",
        }
    }
}
