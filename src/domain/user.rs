//! Users, their roles and the rules for names and passwords.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// What a user may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including user management.
    Admin,
    /// Executes actions; sees only their own jobs.
    Operator,
    /// Sees all jobs and duplicate reports; cannot execute.
    Auditor,
}

impl Role {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Self::Admin),
            "operator" => Some(Self::Operator),
            "auditor" => Some(Self::Auditor),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Operator => "operator",
            Self::Auditor => "auditor",
        }
    }

    pub fn can_execute(self) -> bool {
        matches!(self, Self::Admin | Self::Operator)
    }

    pub fn sees_all_jobs(self) -> bool {
        matches!(self, Self::Admin | Self::Auditor)
    }
}

/// A valid username: 1–64 characters, letters, digits and `_ . @ -`,
/// starting with a letter or digit.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    pub fn parse(s: &str) -> Result<Self, String> {
        let ok_len = (1..=64).contains(&s.len());
        let ok_first = s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
        let ok_chars = s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.@-".contains(c));
        if ok_len && ok_first && ok_chars {
            Ok(Self(s.to_owned()))
        } else {
            Err(format!(
                "invalid username {s:?}: use 1 to 64 letters, digits or _ . @ -, starting with a letter or digit"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password acceptable for a local account.
pub fn check_password_policy(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < 8 {
        Err("the password must have at least 8 characters".into())
    } else if n > 1024 {
        Err("the password must have at most 1024 characters".into())
    } else {
        Ok(())
    }
}

/// A user as the API shows it.
#[derive(Clone, Debug, Serialize)]
pub struct User {
    pub username: String,
    pub role: Role,
    pub disabled: bool,
    #[serde(serialize_with = "crate::time::serialize")]
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_the_rules() {
        assert!(Username::parse("alice.o-b_1@corp").is_ok());
        for bad in ["", "-x", "a b", "<script>", &"a".repeat(65)] {
            assert!(Username::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn roles_decide_execution_and_visibility() {
        assert!(Role::Operator.can_execute() && !Role::Operator.sees_all_jobs());
        assert!(!Role::Auditor.can_execute() && Role::Auditor.sees_all_jobs());
        assert!(Role::Admin.can_execute() && Role::Admin.sees_all_jobs());
    }
}
