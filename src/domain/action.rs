//! The action catalog: what an engineer may run, with its numeric code, its
//! CID limit and the upstream request it makes.

/// HTTP methods an action may use upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpstreamMethod {
    Post,
    Put,
    Patch,
}

impl UpstreamMethod {
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "POST" => Some(Self::Post),
            "PUT" => Some(Self::Put),
            "PATCH" => Some(Self::Patch),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
        }
    }
}

/// One action of the catalog.
#[derive(Clone, Debug)]
pub struct Action {
    pub name: String,
    pub code: i64,
    pub description: String,
    pub max_cids: usize,
    pub reason_required: bool,
    /// Four eyes: a request waits for a second person's approval.
    pub approval_required: bool,
    pub method: UpstreamMethod,
    /// Path appended to the cluster's base URL; always starts with `/`.
    pub path: String,
}

pub const DEFAULT_ACTION_PATH: &str = "/api/v1/customers/actions";
pub const DEFAULT_MAX_CIDS: usize = 500;

/// The configured actions, names and codes unique.
#[derive(Clone, Debug)]
pub struct ActionCatalog {
    actions: Vec<Action>,
}

impl ActionCatalog {
    /// Builds a catalog, refusing empty catalogs and repeated names or codes.
    pub fn new(actions: Vec<Action>) -> Result<Self, String> {
        if actions.is_empty() {
            return Err("the action catalog is empty".into());
        }
        for (i, a) in actions.iter().enumerate() {
            if actions[..i].iter().any(|b| b.name == a.name) {
                return Err(format!("action name {:?} appears twice", a.name));
            }
            if actions[..i].iter().any(|b| b.code == a.code) {
                return Err(format!("action code {} appears twice", a.code));
            }
        }
        Ok(Self { actions })
    }

    pub fn get(&self, name: &str) -> Option<&Action> {
        self.actions.iter().find(|a| a.name == name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Action> {
        self.actions.iter()
    }
}

impl Default for ActionCatalog {
    fn default() -> Self {
        let defaults = [
            ("Trans-Begin", 1, "Begin the customer's transition"),
            ("Trans-End", 2, "End the customer's transition"),
            ("Suspend", 3, "Suspend the customer's service"),
            ("Resume", 4, "Resume the customer's service"),
            ("Reprocess", 5, "Reprocess the customer's pending records"),
            ("Purge-Cache", 6, "Purge the customer's cached data"),
        ];
        let actions = defaults
            .into_iter()
            .map(|(name, code, description)| Action {
                name: name.into(),
                code,
                description: description.into(),
                max_cids: DEFAULT_MAX_CIDS,
                reason_required: false,
                approval_required: false,
                method: UpstreamMethod::Post,
                path: DEFAULT_ACTION_PATH.into(),
            })
            .collect();
        Self { actions }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_catalog_has_the_six_actions_with_their_codes() {
        let catalog = ActionCatalog::default();
        let pairs: Vec<_> = catalog.iter().map(|a| (a.name.as_str(), a.code)).collect();
        assert_eq!(
            pairs,
            [
                ("Trans-Begin", 1),
                ("Trans-End", 2),
                ("Suspend", 3),
                ("Resume", 4),
                ("Reprocess", 5),
                ("Purge-Cache", 6)
            ]
        );
    }

    #[test]
    fn repeated_names_or_codes_are_refused() {
        let a = ActionCatalog::default().get("Suspend").unwrap().clone();
        assert!(ActionCatalog::new(vec![a.clone(), a]).is_err());
        assert!(ActionCatalog::new(vec![]).is_err());
    }
}
