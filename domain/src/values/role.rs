use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::ValueError;

/// What an account may do. Stored in events by its snake_case name; never rename a variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A paying user managing their own resources.
    Customer,
    /// Staff helping customers; reads customer data.
    Support,
    /// Staff handling invoices and payments.
    Billing,
    /// Staff with full control.
    Admin,
    /// Read-only access to everything, for compliance.
    Auditor,
}

impl Role {
    /// Every role, in declaration (and sort) order.
    pub const ALL: &'static [Role] = &[
        Role::Customer,
        Role::Support,
        Role::Billing,
        Role::Admin,
        Role::Auditor,
    ];

    /// The stored and wire name, same as the serde form.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Support => "support",
            Role::Billing => "billing",
            Role::Admin => "admin",
            Role::Auditor => "auditor",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .iter()
            .copied()
            .find(|role| role.as_str() == s)
            .ok_or(ValueError::UnknownRole)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn role_names_are_pinned_because_they_are_stored_in_events() {
        let names: Vec<&str> = Role::ALL.iter().map(Role::as_str).collect();

        assert_eq!(
            names,
            ["customer", "support", "billing", "admin", "auditor"]
        );
    }

    #[test]
    fn every_role_serialises_to_its_name_and_parses_back() {
        for role in Role::ALL {
            let json = serde_json::to_string(role).unwrap();
            let parsed: Role = role.as_str().parse().unwrap();

            assert_eq!(json, format!("\"{}\"", role.as_str()));
            assert_eq!(serde_json::from_str::<Role>(&json).unwrap(), *role);
            assert_eq!(parsed, *role);
            assert_eq!(role.to_string(), role.as_str());
        }
    }

    #[test]
    fn an_unknown_role_name_is_refused() {
        assert_eq!("root".parse::<Role>(), Err(ValueError::UnknownRole));
        assert_eq!("Admin".parse::<Role>(), Err(ValueError::UnknownRole));
    }

    #[test]
    fn roles_sort_in_declaration_order() {
        let mut roles = vec![Role::Auditor, Role::Customer, Role::Admin];

        roles.sort();

        assert_eq!(roles, [Role::Customer, Role::Admin, Role::Auditor]);
    }
}
