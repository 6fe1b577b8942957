//! What can be asked of an account. Time, ids, hashes and challenge ids are chosen by the caller.

use chrono::{DateTime, Utc};

use crate::ids::{AccountId, ChallengeId, SessionId};
use crate::values::{Country, Email, NationalId, PersonName, Phone, Reason, Role};

/// A challenge the caller minted: its id (secrets are derived from it outside the domain) and
/// when it stops being accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Challenge {
    pub id: ChallengeId,
    pub expires_at: DateTime<Utc>,
}

/// Where a one-time login code is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeChannel {
    Email,
    Sms,
}

/// The second factor presented with a login, or to turn two-factor authentication off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecondFactor {
    /// A six-digit TOTP code from the authenticator app.
    Totp(String),
    /// The hash of a recovery code (the caller hashes; the plaintext never enters the domain).
    RecoveryCodeHash(String),
}

/// How a login proves who it is. The password itself is checked by the caller (argon2 is too
/// slow and too secret for the aggregate); the aggregate checks everything that lives in its
/// history: locks, suspension, one-time codes and the second factor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginProof {
    /// The caller verified the password.
    Password { second_factor: Option<SecondFactor> },
    /// A one-time code sent by email or SMS.
    LoginCode {
        code: String,
        second_factor: Option<SecondFactor>,
    },
}

/// Every command of the `Account` aggregate.
#[derive(Debug, Clone)]
pub enum AccountCommand {
    /// Create the account and send the first email verification. Refused if it already exists or
    /// no role is given.
    Register {
        account_id: AccountId,
        name: PersonName,
        email: Email,
        phone: Option<Phone>,
        /// The password hash (e.g. an Argon2 PHC string), never the password.
        password_hash: String,
        roles: Vec<Role>,
        email_verification: Challenge,
        occurred_at: DateTime<Utc>,
    },
    /// Log in: open a session whose first refresh token has the given hash.
    StartSession {
        session_id: SessionId,
        refresh_token_hash: String,
        expires_at: DateTime<Utc>,
        client_ip: Option<String>,
        user_agent: Option<String>,
        proof: LoginProof,
        occurred_at: DateTime<Utc>,
    },
    /// A login presented a wrong password (checked by the caller).
    RecordFailedLogin { occurred_at: DateTime<Utc> },
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
    /// The account holder closes one of their sessions (another device).
    RevokeSession {
        session_id: SessionId,
        occurred_at: DateTime<Utc>,
    },
    /// The account holder closes every active session except `keep` (usually the current one).
    RevokeOtherSessions {
        keep: Option<SessionId>,
        occurred_at: DateTime<Utc>,
    },
    /// Send a new email verification link; earlier links stop working.
    IssueEmailVerification {
        challenge: Challenge,
        occurred_at: DateTime<Utc>,
    },
    /// The link of `challenge_id` was followed (its secret was checked by the caller).
    VerifyEmail {
        challenge_id: ChallengeId,
        occurred_at: DateTime<Utc>,
    },
    /// Send a code to the account's phone.
    IssuePhoneVerification {
        challenge: Challenge,
        occurred_at: DateTime<Utc>,
    },
    /// The code sent to the phone was typed in.
    VerifyPhone {
        code: String,
        occurred_at: DateTime<Utc>,
    },
    /// Send a one-time login code.
    IssueLoginCode {
        challenge: Challenge,
        channel: CodeChannel,
        occurred_at: DateTime<Utc>,
    },
    /// Send a password reset link.
    IssuePasswordReset {
        challenge: Challenge,
        occurred_at: DateTime<Utc>,
    },
    /// Set a new password with a reset link (its secret was checked by the caller).
    ResetPassword {
        challenge_id: ChallengeId,
        password_hash: String,
        occurred_at: DateTime<Utc>,
    },
    /// Set a new password; the caller checked the current one. Other sessions are revoked.
    ChangePassword {
        password_hash: String,
        keep_session: Option<SessionId>,
        occurred_at: DateTime<Utc>,
    },
    /// Begin setting up TOTP; the secret is derived from `setup_id` outside the domain.
    StartTotpSetup {
        setup_id: ChallengeId,
        occurred_at: DateTime<Utc>,
    },
    /// Confirm the setup with a code from the app; the recovery codes arrive hashed.
    EnableTotp {
        code: String,
        recovery_code_hashes: Vec<String>,
        occurred_at: DateTime<Utc>,
    },
    /// Turn TOTP off with a current code or a recovery code.
    DisableTotp {
        second_factor: SecondFactor,
        occurred_at: DateTime<Utc>,
    },
    /// Change the name and/or the phone (`Some(None)` removes the phone).
    UpdateProfile {
        name: Option<PersonName>,
        phone: Option<Option<Phone>>,
        occurred_at: DateTime<Utc>,
    },
    /// Submit identity details for review.
    SubmitKyc {
        national_id: NationalId,
        legal_name: PersonName,
        country: Country,
        occurred_at: DateTime<Utc>,
    },
    /// Staff accept the pending identity details.
    ApproveKyc {
        reviewer: AccountId,
        occurred_at: DateTime<Utc>,
    },
    /// Staff refuse the pending identity details.
    RejectKyc {
        reviewer: AccountId,
        reason: Reason,
        occurred_at: DateTime<Utc>,
    },
    /// Staff block the account: no login, every session revoked.
    Suspend {
        by: AccountId,
        reason: Reason,
        occurred_at: DateTime<Utc>,
    },
    /// Staff lift a suspension (and any login lock).
    Reinstate {
        by: AccountId,
        occurred_at: DateTime<Utc>,
    },
    /// Staff replace the roles. The last-admin rule spans accounts and is checked by the caller.
    ChangeRoles {
        by: AccountId,
        roles: Vec<Role>,
        occurred_at: DateTime<Utc>,
    },
}
