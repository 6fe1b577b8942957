//! How long each kind of challenge lives, and minting one.

use chrono::{TimeDelta, Utc};
use stratus_domain::account::Challenge;
use stratus_domain::ChallengeId;
use uuid::Uuid;

/// An email verification link: long enough for someone who registers in the evening.
pub const EMAIL_VERIFICATION_TTL_MINUTES: i64 = 48 * 60;
/// A password reset link: short, because whoever reads the mailbox can take the account.
pub const PASSWORD_RESET_TTL_MINUTES: i64 = 60;
/// A one-time login code (the rule: 10 minutes).
pub const LOGIN_CODE_TTL_MINUTES: i64 = 10;
/// A phone verification code.
pub const PHONE_CODE_TTL_MINUTES: i64 = 10;

/// A new challenge that expires `ttl_minutes` from now.
pub fn mint(ttl_minutes: i64) -> Challenge {
    Challenge {
        id: ChallengeId::from_uuid(Uuid::now_v7()),
        expires_at: Utc::now() + TimeDelta::minutes(ttl_minutes),
    }
}
