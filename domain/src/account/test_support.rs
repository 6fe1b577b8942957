//! Deterministic stand-ins for the server-side secrets, shared by the aggregate's tests.

use std::sync::Arc;

use super::{AccountServices, ChallengeSecrets};
use crate::ids::{AccountId, ChallengeId};

/// Codes computed from the ids alone, so a test can know the right code and pick a wrong one.
pub(super) struct FakeSecrets;

impl ChallengeSecrets for FakeSecrets {
    fn code(&self, _account_id: AccountId, challenge_id: ChallengeId) -> String {
        format!("{:06}", challenge_id.as_uuid().as_u128() % 1_000_000)
    }

    fn totp_code(&self, _account_id: AccountId, setup_id: ChallengeId, time_step: i64) -> String {
        let seed = (setup_id.as_uuid().as_u128() % 1_000_000) as i64;
        format!("{:06}", (seed + time_step * 7).rem_euclid(1_000_000))
    }
}

pub(super) fn test_services() -> AccountServices {
    AccountServices {
        secrets: Arc::new(FakeSecrets),
    }
}
