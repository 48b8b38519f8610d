//! A secret a page shows once (SPEC §16): a new API token or a generated
//! password. The form that creates it answers with a redirect (so a reload
//! never creates a second one), and the redirect's URL carries only a
//! random id of the secret kept here, never the secret itself. The page
//! shows it on the GET after the redirect and on one reload, then it is
//! gone; it is kept for its owner alone, for a few minutes, in this
//! instance's memory (behind a load balancer without sticky sessions a
//! reload may find it gone sooner).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many times a secret is shown: the redirect's GET and one reload.
pub const VIEWS: u8 = 2;
/// How long a secret waits for its views.
pub const KEPT_FOR: Duration = Duration::from_secs(10 * 60);
/// At most this many secrets wait at once; the oldest go first.
const MAX_KEPT: usize = 1000;

struct Kept {
    owner: String,
    label: String,
    secret: String,
    views_left: u8,
    until: Instant,
}

/// What one GET finds under an id.
#[derive(Debug, PartialEq, Eq)]
pub enum Shown {
    /// The label (a token's name, a username) and the secret.
    Secret { label: String, secret: String },
    /// Shown already as often as it may be, expired, or never kept here.
    Gone,
}

/// The secrets waiting to be shown, by id.
#[derive(Default)]
pub struct ShownOnce {
    kept: Mutex<HashMap<String, Kept>>,
}

impl ShownOnce {
    /// Keeps `secret` for `owner` (the username who created it) and
    /// answers the id for the redirect's URL.
    pub fn keep(&self, owner: &str, label: String, secret: String) -> String {
        let id = format!("{:032x}", rand::random::<u128>());
        let now = Instant::now();
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        kept.retain(|_, k| k.until > now);
        if kept.len() >= MAX_KEPT {
            if let Some(oldest) = kept
                .iter()
                .min_by_key(|(_, k)| k.until)
                .map(|(id, _)| id.clone())
            {
                kept.remove(&oldest);
            }
        }
        kept.insert(
            id.clone(),
            Kept {
                owner: owner.to_owned(),
                label,
                secret,
                views_left: VIEWS,
                until: now + KEPT_FOR,
            },
        );
        id
    }

    /// Shows the secret under `id` to `viewer`, counting the view; another
    /// person's id is `Gone` and counts nothing.
    pub fn show(&self, viewer: &str, id: &str) -> Shown {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let Some(k) = kept.get_mut(id) else {
            return Shown::Gone;
        };
        if k.owner != viewer {
            return Shown::Gone;
        }
        if k.until <= Instant::now() || k.views_left == 0 {
            kept.remove(id);
            return Shown::Gone;
        }
        k.views_left -= 1;
        let shown = Shown::Secret {
            label: k.label.clone(),
            secret: k.secret.clone(),
        };
        if k.views_left == 0 {
            kept.remove(id);
        }
        shown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_shown_twice_to_its_owner_then_gone() {
        let once = ShownOnce::default();
        let id = once.keep("ana", "nightly".into(), "s3cret".into());
        assert_eq!(once.show("bob", &id), Shown::Gone);
        for _ in 0..VIEWS {
            assert_eq!(
                once.show("ana", &id),
                Shown::Secret {
                    label: "nightly".into(),
                    secret: "s3cret".into()
                }
            );
        }
        assert_eq!(once.show("ana", &id), Shown::Gone);
        assert_eq!(once.show("ana", "not-an-id"), Shown::Gone);
    }
}
