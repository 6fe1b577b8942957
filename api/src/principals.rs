//! A short-lived cache of the session check every authenticated request makes (ADR 0014).
//!
//! Each request checks its access token's session and account against the `accounts` read model,
//! so that logout, revocation, suspension and role changes take effect before the token expires.
//! That check was one of the two statements of every `GET`. An answer is now reused while two
//! things hold:
//! - the `accounts` projection has applied nothing since the answer was read. In the process
//!   that runs the projection, any change to any account or session therefore takes effect at
//!   once, exactly as without the cache;
//! - it is younger than [`PRINCIPAL_CACHE_TTL_MS`]. That bounds how stale an answer can be in a
//!   process whose `accounts` projection runs elsewhere, and so cannot see it move.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use stratus_projections::accounts::Principal;
use stratus_projections::FeedPosition;
use uuid::Uuid;

/// How long a session check is reused at most. In a process that does not run the `accounts`
/// projection, a logout or suspension made elsewhere takes effect within this time; one second
/// keeps that well below any human's next click, and a busy session still queries only once a
/// second.
pub const PRINCIPAL_CACHE_TTL_MS: u64 = 1_000;
/// Sessions remembered at most; when full, the cache starts over (entries live one second anyway).
pub const PRINCIPAL_CACHE_CAPACITY: usize = 10_000;

struct Entry {
    principal: Principal,
    read_at: Instant,
    /// The `accounts` projection's position when the answer was read.
    accounts_at: Option<FeedPosition>,
}

/// Session checks by session id.
#[derive(Default)]
pub struct PrincipalCache {
    entries: Mutex<HashMap<Uuid, Entry>>,
}

impl PrincipalCache {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Entry>> {
        // Entries are inserted and removed whole; a panic cannot leave one half-written.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The cached answer for `session`, if it is still valid now that the `accounts` projection
    /// is at `accounts_at`.
    pub fn get(&self, session: Uuid, accounts_at: Option<FeedPosition>) -> Option<Principal> {
        self.get_at(session, accounts_at, Instant::now())
    }

    fn get_at(
        &self,
        session: Uuid,
        accounts_at: Option<FeedPosition>,
        now: Instant,
    ) -> Option<Principal> {
        let mut entries = self.entries();
        let entry = entries.get(&session)?;
        let fresh = now.saturating_duration_since(entry.read_at)
            < Duration::from_millis(PRINCIPAL_CACHE_TTL_MS);
        if fresh && entry.accounts_at == accounts_at {
            return Some(entry.principal.clone());
        }
        entries.remove(&session);
        None
    }

    /// Remembers `principal`, read from the read model when the `accounts` projection was at
    /// `accounts_at` (taken *before* the read, so that a change applied during it invalidates it).
    pub fn put(&self, session: Uuid, principal: Principal, accounts_at: Option<FeedPosition>) {
        self.put_at(session, principal, accounts_at, Instant::now());
    }

    fn put_at(
        &self,
        session: Uuid,
        principal: Principal,
        accounts_at: Option<FeedPosition>,
        now: Instant,
    ) {
        let mut entries = self.entries();
        if entries.len() >= PRINCIPAL_CACHE_CAPACITY && !entries.contains_key(&session) {
            entries.clear();
        }
        entries.insert(
            session,
            Entry {
                principal,
                read_at: now,
                accounts_at,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn principal(status: &str) -> Principal {
        Principal {
            session_status: status.to_owned(),
            session_expires_at: chrono::DateTime::from_timestamp(2_000_000_000, 0).unwrap(),
            account_status: "active".to_owned(),
            roles: vec!["customer".to_owned()],
        }
    }

    fn at(position: i64) -> Option<FeedPosition> {
        Some(FeedPosition::from_db("7", position).unwrap())
    }

    #[test]
    fn an_answer_is_reused_only_while_the_accounts_projection_stands_still_and_for_a_second() {
        let cache = PrincipalCache::default();
        let session = Uuid::now_v7();
        let start = Instant::now();
        cache.put_at(session, principal("active"), at(10), start);

        assert_eq!(
            cache.get_at(session, at(10), start + Duration::from_millis(999)),
            Some(principal("active"))
        );
        // The projection applied something (a logout, a suspension, anything): read again.
        assert_eq!(cache.get_at(session, at(11), start), None);
        assert_eq!(
            cache.get_at(session, at(10), start),
            None,
            "a stale entry is dropped"
        );

        cache.put_at(session, principal("active"), at(10), start);
        assert_eq!(
            cache.get_at(
                session,
                at(10),
                start + Duration::from_millis(PRINCIPAL_CACHE_TTL_MS)
            ),
            None
        );
        assert_eq!(cache.get_at(Uuid::now_v7(), at(10), start), None);
    }

    #[test]
    fn a_full_cache_starts_over() {
        let cache = PrincipalCache::default();
        let now = Instant::now();
        let first = Uuid::now_v7();
        cache.put_at(first, principal("active"), None, now);
        for _ in 1..PRINCIPAL_CACHE_CAPACITY {
            cache.put_at(Uuid::now_v7(), principal("active"), None, now);
        }
        assert!(cache.get_at(first, None, now).is_some());
        let newest = Uuid::now_v7();
        cache.put_at(newest, principal("active"), None, now);
        assert!(cache.get_at(first, None, now).is_none());
        assert!(cache.get_at(newest, None, now).is_some());
    }
}
