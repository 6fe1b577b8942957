//! Credentials: argon2id password hashing on a few dedicated threads of lower scheduling
//! priority, JWT access tokens with the algorithm pinned, and opaque rotating refresh tokens
//! stored only as hashes.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm as ArgonAlgorithm, Argon2, Params, Version};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use stratus_domain::{AccountId, Role, SessionId};
use tokio::sync::oneshot;
use uuid::Uuid;

/// argon2id cost: 9 MiB of memory, 4 passes, 1 lane. OWASP's Password Storage Cheat Sheet lists
/// it among five configurations of equal strength (19 MiB × 2 passes, the one used before, is
/// another); it spends the same CPU time in less than half the memory, and memory is what bounds
/// a server that hashes beside everything else (ADR 0014). Hashes record their own cost, so those
/// made with the old one keep verifying.
pub const ARGON2_MEMORY_KIB: u32 = 9 * 1024;
pub const ARGON2_ITERATIONS: u32 = 4;
pub const ARGON2_LANES: u32 = 1;
/// Random bytes in a refresh token secret (256 bits).
pub const REFRESH_SECRET_BYTES: usize = 32;
/// Clock skew tolerated when checking `exp` and `iat`.
pub const TOKEN_LEEWAY_SECONDS: u64 = 5;
/// Issuer and audience written into and required of every access token.
pub const TOKEN_ISSUER: &str = "stratus";
pub const TOKEN_AUDIENCE: &str = "stratus-api";

/// Failures of the hashing pool (never a wrong password: that is `Ok(false)`).
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("the hashing task was lost: {0}")]
    Task(String),
}

/// The niceness of the password-hashing threads (0 is the default, 19 the lowest priority).
/// At 10 the kernel gives a hashing thread about a tenth of a core that other threads of the
/// process or the database also want: a login flood then slows logins, not every other request
/// (scenario (g) in docs/benchmarks.md), while logins still progress on a busy machine. A process
/// already started at a higher niceness keeps it.
pub const PASSWORD_HASHING_NICENESS: i32 = 10;
/// The name of the hashing threads, followed by their number (as seen in `top -H`).
pub const PASSWORD_HASHING_THREAD: &str = "stratus-hash";

type HashJob = Box<dyn FnOnce() + Send>;

/// Hashes and verifies passwords on `threads` dedicated threads, so that at most that many hashes
/// run at once and a login flood queues for them instead of starving every other request; the
/// threads run at a lower priority ([`PASSWORD_HASHING_NICENESS`]) and end with the pool.
pub struct Passwords {
    jobs: mpsc::Sender<HashJob>,
    /// A real hash of a random password: unknown accounts are verified against it, so that a login
    /// for an account that does not exist takes as long as one with a wrong password.
    decoy_hash: String,
}

fn argon2() -> Result<Argon2<'static>, PasswordError> {
    let params = Params::new(ARGON2_MEMORY_KIB, ARGON2_ITERATIONS, ARGON2_LANES, None)
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
    Ok(Argon2::new(
        ArgonAlgorithm::Argon2id,
        Version::V0x13,
        params,
    ))
}

fn hash_now(password: &str) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()?
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

fn verify_now(password: &str, hash: &str) -> Result<bool, PasswordError> {
    let parsed = PasswordHash::new(hash).map_err(|e| PasswordError::Hash(e.to_string()))?;
    Ok(argon2()?
        .verify_password(password.as_bytes(), &parsed)
        .is_ok())
}

/// One hashing thread: lowers its own priority, then runs jobs until the pool is dropped.
fn hashing_thread(queue: &Mutex<mpsc::Receiver<HashJob>>) {
    lower_this_threads_priority();
    loop {
        let job = {
            // A job that panicked poisoned nothing the queue relies on.
            let queue = queue
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            queue.recv()
        };
        match job {
            Ok(job) => job(),
            Err(mpsc::RecvError) => return,
        }
    }
}

fn lower_this_threads_priority() {
    let thread = rustix::thread::gettid();
    let current = rustix::process::getpriority_process(Some(thread)).unwrap_or(0);
    let niceness = current.max(PASSWORD_HASHING_NICENESS);
    if let Err(err) = rustix::process::setpriority_process(Some(thread), niceness) {
        tracing::warn!(error = %err, "could not lower the priority of a password-hashing thread");
    }
}

impl Passwords {
    /// A pool of `threads` hashing threads (half the cores is the default).
    pub fn new(threads: usize) -> Result<Self, PasswordError> {
        let (jobs, queue) = mpsc::channel::<HashJob>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..threads.max(1) {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("{PASSWORD_HASHING_THREAD}-{n}"))
                .spawn(move || hashing_thread(&queue))
                .map_err(|e| PasswordError::Task(e.to_string()))?;
        }
        let decoy = random_token(REFRESH_SECRET_BYTES);
        Ok(Self {
            jobs,
            decoy_hash: hash_now(&decoy)?,
        })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, PasswordError> + Send + 'static,
    ) -> Result<T, PasswordError> {
        let (answer, answered) = oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                // The caller may have gone away; the work is done either way.
                answer.send(work()).ok();
            }))
            .map_err(|_| PasswordError::Task("the hashing threads have stopped".to_owned()))?;
        answered
            .await
            .map_err(|e| PasswordError::Task(e.to_string()))?
    }

    /// A PHC-format argon2id hash of `password` with a fresh salt.
    pub async fn hash(&self, password: String) -> Result<String, PasswordError> {
        self.blocking(move || hash_now(&password)).await
    }

    /// Whether `password` matches `hash`.
    pub async fn verify(&self, password: String, hash: String) -> Result<bool, PasswordError> {
        self.blocking(move || verify_now(&password, &hash)).await
    }

    /// Spends the same work as a real verification and fails: for accounts that do not exist.
    pub async fn verify_decoy(&self, password: String) -> Result<bool, PasswordError> {
        let decoy = self.decoy_hash.clone();
        self.blocking(move || verify_now(&password, &decoy).map(|_| false))
            .await
    }
}

/// The claims of an access token (DESIGN.md section 6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    pub sid: Uuid,
    pub roles: Vec<Role>,
    pub exp: i64,
    pub iat: i64,
    pub iss: String,
    pub aud: String,
}

/// Why a bearer token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the access token has expired")]
    Expired,
    #[error("the access token is not valid")]
    Invalid,
}

/// Issues and checks access tokens. HS256 only: the accepted algorithm list is pinned, so a token
/// that names `none` or another algorithm in its header is refused.
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    access_ttl_seconds: i64,
}

impl Tokens {
    pub fn new(secret: &[u8], access_ttl_seconds: i64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.set_issuer(&[TOKEN_ISSUER]);
        validation.set_audience(&[TOKEN_AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = TOKEN_LEEWAY_SECONDS;
        validation.validate_exp = true;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            access_ttl_seconds,
        }
    }

    /// The lifetime of an access token, for `expires_in`.
    pub fn access_ttl_seconds(&self) -> i64 {
        self.access_ttl_seconds
    }

    /// A signed access token for a session.
    pub fn issue(
        &self,
        account_id: AccountId,
        session_id: SessionId,
        roles: Vec<Role>,
        now: DateTime<Utc>,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let claims = Claims {
            sub: account_id.as_uuid(),
            sid: session_id.as_uuid(),
            roles,
            iat: now.timestamp(),
            exp: (now + Duration::seconds(self.access_ttl_seconds)).timestamp(),
            iss: TOKEN_ISSUER.to_owned(),
            aud: TOKEN_AUDIENCE.to_owned(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    /// Checks signature, algorithm, issuer, audience and expiry.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })
    }
}

/// URL-safe random text of `bytes` random bytes.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// A new refresh token for `session_id` and the hash that is stored. The token is
/// `<session id, 32 hex>.<secret>`: the session id lets the server find the session without a scan;
/// only the SHA-256 of the whole token is ever stored.
pub fn new_refresh_token(session_id: SessionId) -> (String, String) {
    let token = format!(
        "{}.{}",
        session_id.as_uuid().simple(),
        random_token(REFRESH_SECRET_BYTES)
    );
    let hash = refresh_token_hash(&token);
    (token, hash)
}

/// The stored form of a refresh token.
pub fn refresh_token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The session a refresh token claims to belong to, if it is shaped like one.
pub fn refresh_token_session(token: &str) -> Option<SessionId> {
    let (session, secret) = token.split_once('.')?;
    if session.len() != 32 || secret.is_empty() || secret.len() > 128 {
        return None;
    }
    Uuid::try_parse(session).ok().map(SessionId::from_uuid)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The niceness of every thread of this process whose name starts with `prefix`.
    fn niceness_of_threads(prefix: &str) -> Vec<i64> {
        let mut found = Vec::new();
        for task in std::fs::read_dir("/proc/self/task").unwrap() {
            let path = task.unwrap().path();
            let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
            if !name.trim_end().starts_with(prefix) {
                continue;
            }
            let stat = std::fs::read_to_string(path.join("stat")).unwrap();
            // Fields after the parenthesised name: state is field 3, nice is field 19.
            let after_name = stat.rsplit_once(')').unwrap().1;
            let nice = after_name.split_whitespace().nth(16).unwrap();
            found.push(nice.parse().unwrap());
        }
        found
    }

    #[tokio::test]
    async fn passwords_are_hashed_on_their_own_threads_at_a_lower_priority() {
        let passwords = Passwords::new(2).unwrap();
        let hash = passwords.hash("correct horse".to_owned()).await.unwrap();
        assert!(passwords
            .verify("correct horse".to_owned(), hash.clone())
            .await
            .unwrap());
        assert!(!passwords
            .verify("wrong horse".to_owned(), hash)
            .await
            .unwrap());

        let niceness = niceness_of_threads(PASSWORD_HASHING_THREAD);
        // Other tests of this binary may run pools of their own at the same time.
        assert!(niceness.len() >= 2, "{niceness:?}");
        let this_thread = rustix::process::getpriority_process(None).unwrap();
        let expected = i64::from(this_thread.max(PASSWORD_HASHING_NICENESS));
        assert!(niceness.iter().all(|n| *n == expected), "{niceness:?}");
    }

    #[test]
    fn a_refresh_token_names_its_session_and_is_stored_only_as_a_hash() {
        let session = SessionId::from_uuid(Uuid::now_v7());
        let (token, hash) = new_refresh_token(session);
        assert_eq!(refresh_token_session(&token), Some(session));
        assert_eq!(hash, refresh_token_hash(&token));
        assert!(!hash.contains(&token));
        assert_eq!(refresh_token_session("garbage"), None);
        assert_eq!(refresh_token_session("abc.def"), None);
    }

    #[test]
    fn access_tokens_round_trip_and_other_keys_are_refused() {
        let tokens = Tokens::new(&[7u8; 32], 60);
        let account = AccountId::from_uuid(Uuid::now_v7());
        let session = SessionId::from_uuid(Uuid::now_v7());
        let token = tokens
            .issue(account, session, vec![Role::Customer], Utc::now())
            .unwrap();
        let claims = tokens.verify(&token).unwrap();
        assert_eq!(claims.sub, account.as_uuid());
        let other = Tokens::new(&[8u8; 32], 60);
        assert_eq!(other.verify(&token), Err(TokenError::Invalid));
    }

    #[test]
    fn an_expired_access_token_is_refused_as_expired() {
        let tokens = Tokens::new(&[7u8; 32], 60);
        let long_ago = Utc::now() - Duration::hours(2);
        let token = tokens
            .issue(
                AccountId::from_uuid(Uuid::now_v7()),
                SessionId::from_uuid(Uuid::now_v7()),
                vec![],
                long_ago,
            )
            .unwrap();
        assert_eq!(tokens.verify(&token), Err(TokenError::Expired));
    }

    #[tokio::test]
    async fn a_hash_made_with_the_former_cost_still_verifies() {
        let former = Argon2::new(
            ArgonAlgorithm::Argon2id,
            Version::V0x13,
            Params::new(19 * 1024, 2, 1, None).unwrap(),
        );
        let salt = SaltString::generate(&mut OsRng);
        let hash = former
            .hash_password(b"an older password", &salt)
            .unwrap()
            .to_string();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        let passwords = Passwords::new(1).unwrap();
        assert!(passwords
            .verify("an older password".into(), hash.clone())
            .await
            .unwrap());
        assert!(!passwords
            .verify("a newer password".into(), hash)
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn passwords_verify_only_against_their_own_hash() {
        let passwords = Passwords::new(2).unwrap();
        let hash = passwords
            .hash("correct horse battery".into())
            .await
            .unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=9216,t=4,p=1$"));
        assert!(passwords
            .verify("correct horse battery".into(), hash.clone())
            .await
            .unwrap());
        assert!(!passwords
            .verify("wrong horse battery".into(), hash)
            .await
            .unwrap());
        assert!(!passwords
            .verify_decoy("anything at all".into())
            .await
            .unwrap());
    }
}
