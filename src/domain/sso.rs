//! Who a single sign-on login is: the username taken from the provider's
//! claims and the role its groups map to. Pure rules, so they are tested here
//! and the HTTP layer only carries claims in and a verdict out.

use serde_json::Value;

use super::user::{Role, Username};

/// The claims of a verified login that decide who the user is.
#[derive(Clone, Debug, Default)]
pub struct SsoClaims {
    pub subject: String,
    pub preferred_username: Option<String>,
    pub email: Option<String>,
    /// The value of the configured role claim: a string, an array of
    /// strings, or absent.
    pub groups: Option<Value>,
}

/// Group → role, from the `[oidc]` table's `roles`.
#[derive(Clone, Debug, Default)]
pub struct RoleMap(Vec<(String, Role)>);

/// A user the provider vouched for, with the role they get now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SsoIdentity {
    pub username: Username,
    pub role: Role,
}

/// Why a verified login still gets no session.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SsoRefusal {
    #[error("the identity provider gave no username this console accepts ({0:?}): use 1 to 64 letters, digits or _ . @ -")]
    InvalidUsername(String),
    #[error("{username} is signed in at the identity provider, but none of their groups gives a role in the TMS Dashboard; ask an administrator to add them to a group")]
    NoRole { username: String },
    #[error("{username} is a local account of the TMS Dashboard, so it cannot be signed in to through single sign-on; log in with its password")]
    LocalAccount { username: String },
    #[error("the account {username} is disabled")]
    Disabled { username: String },
}

/// The local account that may always log in with its password, even where
/// only single sign-on is allowed: the way back in when the provider is down
/// or misconfigured.
pub const BREAK_GLASS_USER: &str = "admin";

/// Whether `username` may log in with a password when `local_login` is as
/// configured.
pub fn local_login_allowed(local_login: bool, username: &str) -> bool {
    local_login || username == BREAK_GLASS_USER
}

fn rank(role: Role) -> u8 {
    match role {
        Role::Admin => 3,
        Role::Operator => 2,
        Role::Auditor => 1,
    }
}

impl RoleMap {
    pub fn new(pairs: Vec<(String, Role)>) -> Self {
        RoleMap(pairs)
    }

    /// The highest role any of `groups` maps to. The claim may be one string
    /// or an array; values that are not strings are ignored.
    pub fn role_of(&self, groups: Option<&Value>) -> Option<Role> {
        let names: Vec<&str> = match groups {
            Some(Value::String(one)) => vec![one.as_str()],
            Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        self.0
            .iter()
            .filter(|(group, _)| names.contains(&group.as_str()))
            .map(|(_, role)| *role)
            .max_by_key(|role| rank(*role))
    }
}

impl SsoClaims {
    /// `preferred_username`, else `email`, else `sub`; blank values are skipped.
    pub fn username(&self) -> &str {
        [&self.preferred_username, &self.email]
            .into_iter()
            .flatten()
            .map(|s| s.trim())
            .find(|s| !s.is_empty())
            .unwrap_or(self.subject.trim())
    }

    /// The user and role of this login, or why there is none.
    pub fn identify(&self, roles: &RoleMap) -> Result<SsoIdentity, SsoRefusal> {
        let name = self.username();
        let username =
            Username::parse(name).map_err(|_| SsoRefusal::InvalidUsername(name.to_owned()))?;
        let role = roles
            .role_of(self.groups.as_ref())
            .ok_or_else(|| SsoRefusal::NoRole {
                username: name.to_owned(),
            })?;
        Ok(SsoIdentity { username, role })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn roles() -> RoleMap {
        RoleMap::new(vec![
            ("tms-admins".into(), Role::Admin),
            ("tms-operators".into(), Role::Operator),
            ("tms-auditors".into(), Role::Auditor),
        ])
    }

    fn claims(preferred: Option<&str>, email: Option<&str>, groups: Value) -> SsoClaims {
        SsoClaims {
            subject: "sub-123".into(),
            preferred_username: preferred.map(str::to_owned),
            email: email.map(str::to_owned),
            groups: Some(groups),
        }
    }

    #[test]
    fn the_username_is_the_preferred_username_else_the_email_else_the_subject() {
        let g = json!("tms-operators");
        assert_eq!(
            claims(Some("ana"), Some("a@x.io"), g.clone()).username(),
            "ana"
        );
        assert_eq!(claims(None, Some("a@x.io"), g.clone()).username(), "a@x.io");
        assert_eq!(claims(Some(" "), None, g.clone()).username(), "sub-123");
        assert_eq!(claims(None, None, g).username(), "sub-123");
    }

    #[test]
    fn the_highest_mapped_role_wins_whether_the_claim_is_a_string_or_an_array() {
        let r = roles();
        assert_eq!(r.role_of(Some(&json!("tms-auditors"))), Some(Role::Auditor));
        assert_eq!(
            r.role_of(Some(&json!(["tms-auditors", "staff", "tms-operators"]))),
            Some(Role::Operator)
        );
        assert_eq!(
            r.role_of(Some(&json!(["tms-admins", "tms-auditors"]))),
            Some(Role::Admin)
        );
        assert_eq!(r.role_of(Some(&json!(["staff", 7]))), None);
        assert_eq!(r.role_of(Some(&json!({"tms-admins": true}))), None);
        assert_eq!(r.role_of(None), None);
    }

    #[test]
    fn a_user_in_no_mapped_group_is_refused_by_name() {
        let refusal = claims(Some("eve"), None, json!(["staff"]))
            .identify(&roles())
            .unwrap_err();
        assert_eq!(
            refusal,
            SsoRefusal::NoRole {
                username: "eve".into()
            }
        );
        assert!(refusal.to_string().contains("eve"));
    }

    #[test]
    fn without_local_logins_only_the_break_glass_admin_uses_a_password() {
        assert!(local_login_allowed(true, "ana"));
        assert!(local_login_allowed(false, "admin"));
        assert!(!local_login_allowed(false, "ana"));
        assert!(!local_login_allowed(false, "Admin"));
    }

    #[test]
    fn a_username_the_console_cannot_hold_is_refused() {
        let refusal = claims(Some("Ana Lima"), None, json!("tms-operators"))
            .identify(&roles())
            .unwrap_err();
        assert!(matches!(refusal, SsoRefusal::InvalidUsername(_)));
        let ok = claims(None, Some("ana.lima@example.com"), json!("tms-operators"))
            .identify(&roles())
            .unwrap();
        assert_eq!(ok.username.as_str(), "ana.lima@example.com");
        assert_eq!(ok.role, Role::Operator);
    }
}
