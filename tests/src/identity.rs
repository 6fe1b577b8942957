//! Helpers of the identity tests: the challenge secrets the app derives (tests compute them with
//! the test key where a test does not read them from a delivered message), and requests with the
//! methods `TestApp` has no shortcut for.

use serde_json::Value;
use stratus_commands::secrets::{ChallengeKeys, LinkPurpose};
use stratus_domain::account::ChallengeSecrets;
use stratus_domain::{AccountId, ChallengeId};

use crate::{Reply, TestApp, TEST_CHALLENGE_SECRET};

/// The challenge keys of test apps.
pub fn keys() -> ChallengeKeys {
    ChallengeKeys::new(TEST_CHALLENGE_SECRET.as_bytes())
}

fn account(account_id: &str) -> AccountId {
    account_id.parse().expect("an account id")
}

impl TestApp {
    /// The id of the newest challenge of `event_type` (e.g. `LoginCodeIssued`) for the account,
    /// read from the log. `field` is the id field (`challenge_id` or `setup_id`).
    pub async fn latest_challenge(
        &self,
        account_id: &str,
        event_type: &str,
        field: &str,
    ) -> ChallengeId {
        let rows = self
            .rows(&format!(
                "SELECT payload FROM events WHERE aggregate_type = 'account' AND aggregate_id = '{account_id}' \
                 AND event_type = '{event_type}' ORDER BY sequence DESC LIMIT 1"
            ))
            .await;
        let payload = rows
            .first()
            .and_then(|row| row.get("payload"))
            .unwrap_or_else(|| panic!("no {event_type} for {account_id}"));
        let id = payload[event_type][field]
            .as_str()
            .unwrap_or_else(|| panic!("{event_type} has no {field}: {payload}"));
        id.parse().expect("a challenge id")
    }

    /// The six-digit code of the newest challenge of `event_type`, as the app derives it.
    pub async fn latest_code(&self, account_id: &str, event_type: &str) -> String {
        let challenge = self
            .latest_challenge(account_id, event_type, "challenge_id")
            .await;
        keys().code(account(account_id), challenge)
    }

    /// The token of the newest link of `event_type` (`EmailVerificationIssued`,
    /// `PasswordResetIssued`), as the emailed link carries it.
    pub async fn latest_link_token(&self, account_id: &str, event_type: &str) -> String {
        let challenge = self
            .latest_challenge(account_id, event_type, "challenge_id")
            .await;
        let purpose = if event_type == "PasswordResetIssued" {
            LinkPurpose::ResetPassword
        } else {
            LinkPurpose::VerifyEmail
        };
        keys().link_token(purpose, account(account_id), challenge)
    }

    /// Waits until the newest challenge of `event_type` exists (requests that answer 202 issue it
    /// after responding).
    pub async fn await_event(&self, account_id: &str, event_type: &str, count: usize) {
        for _ in 0..200 {
            let rows = self
                .rows(&format!(
                    "SELECT 1 FROM events WHERE aggregate_id = '{account_id}' AND event_type = '{event_type}'"
                ))
                .await;
            if rows.len() >= count {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("{event_type} #{count} never appeared for {account_id}");
    }

    /// Sends `method` to an `/api/v1` path with an optional JSON body and bearer token.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        token: Option<&str>,
    ) -> Reply {
        let mut request = self.client.request(method, self.url(path));
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        self.send(request).await
    }
}
