//! The secrets an account's decisions need but the log must never hold.
//!
//! One-time codes and TOTP secrets are derived from a server key and the challenge id (an HMAC in
//! `stratus-commands`), so events record only ids and a reactor can render the same code into a
//! message later. The aggregate asks for the expected value and compares in constant time.

use std::fmt;
use std::sync::Arc;

use crate::ids::{AccountId, ChallengeId};

/// Derives the secrets of challenges. Implemented outside the domain with a server key.
pub trait ChallengeSecrets: Send + Sync {
    /// The six-digit code of a login or phone challenge.
    fn code(&self, account_id: AccountId, challenge_id: ChallengeId) -> String;
    /// The six-digit TOTP code of a setup at a 30-second time step.
    fn totp_code(&self, account_id: AccountId, setup_id: ChallengeId, time_step: i64) -> String;
}

/// What the `Account` aggregate is given by its store.
#[derive(Clone)]
pub struct AccountServices {
    pub secrets: Arc<dyn ChallengeSecrets>,
}

impl fmt::Debug for AccountServices {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccountServices")
    }
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares_contents_and_lengths() {
        assert!(constant_time_eq(b"123456", b"123456"));
        assert!(!constant_time_eq(b"123456", b"123457"));
        assert!(!constant_time_eq(b"12345", b"123456"));
        assert!(constant_time_eq(b"", b""));
    }
}
