//! Who did what, from where: metadata stored with every event.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The actor recorded for work the system does by itself (seeding, reactors).
pub const SYSTEM_ACTOR: &str = "system";

/// Metadata attached to every event a command appends (DESIGN.md section 3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandMetadata {
    /// The account id of the caller, or `system`.
    pub actor: String,
    /// The role the actor acted in, when there is one.
    pub role: Option<String>,
    /// The id of the HTTP request, when the command came from one.
    pub request_id: Option<String>,
    /// Unique per command; retries of the same command keep it.
    pub command_id: Uuid,
    /// Shared by everything that one outside request set in motion.
    pub correlation_id: String,
    /// What directly caused this command: a request id or an event id.
    pub causation_id: String,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
}

impl CommandMetadata {
    /// Metadata for a command the system issues on its own, minted with a fresh command id.
    pub fn system(command_id: Uuid, reason: &str) -> Self {
        Self {
            actor: SYSTEM_ACTOR.to_owned(),
            role: None,
            request_id: None,
            command_id,
            correlation_id: command_id.to_string(),
            causation_id: reason.to_owned(),
            client_ip: None,
            user_agent: None,
        }
    }

    /// The form postgres-es stores (a flat string map); absent values are left out.
    pub fn to_map(&self) -> HashMap<String, String> {
        let mut map = HashMap::new();
        map.insert("actor".to_owned(), self.actor.clone());
        map.insert("command_id".to_owned(), self.command_id.to_string());
        map.insert("correlation_id".to_owned(), self.correlation_id.clone());
        map.insert("causation_id".to_owned(), self.causation_id.clone());
        let optional = [
            ("role", &self.role),
            ("request_id", &self.request_id),
            ("client_ip", &self.client_ip),
            ("user_agent", &self.user_agent),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                map.insert(key.to_owned(), value.clone());
            }
        }
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_present_field_is_stored_and_absent_ones_are_left_out() {
        let id = Uuid::nil();
        let mut meta = CommandMetadata::system(id, "seed");
        meta.client_ip = Some("127.0.0.1".into());
        let map = meta.to_map();
        assert_eq!(map.get("actor").map(String::as_str), Some("system"));
        assert_eq!(map.get("causation_id").map(String::as_str), Some("seed"));
        assert_eq!(map.get("client_ip").map(String::as_str), Some("127.0.0.1"));
        assert!(!map.contains_key("user_agent"));
        assert!(!map.contains_key("request_id"));
    }
}
