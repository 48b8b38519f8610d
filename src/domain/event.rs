//! Events for other systems (SPEC §15): what an event is, how its hash
//! chains it to the previous one, and which types a sink's pattern takes.
//! Pure: the store numbers and writes events, the sinks send them.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// `prev_hash` of event 1.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

macro_rules! event_types {
    ($($variant:ident => $name:literal),* $(,)?) => {
        /// What changed: one of the types SPEC §15 fixes.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum EventType {
            $($variant),*
        }

        impl EventType {
            pub const ALL: &'static [EventType] = &[$(EventType::$variant),*];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $(EventType::$variant => $name),*
                }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($name => Some(EventType::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

event_types! {
    JobCreated => "job.created",
    JobFinalized => "job.finalized",
    RunCreated => "run.created",
    RunStatusChanged => "run.status_changed",
    ApprovalRequested => "approval.requested",
    ApprovalDecided => "approval.decided",
    UserCreated => "user.created",
    UserChanged => "user.changed",
    TokenCreated => "token.created",
    TokenRevoked => "token.revoked",
    SessionLogin => "session.login",
    SessionLoginFailed => "session.login_failed",
    SessionLogout => "session.logout",
}

/// One event as the feed, the sinks and the chain see it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub event_id: Uuid,
    pub seq: i64,
    #[serde(rename = "type")]
    pub event_type: String,
    /// RFC 3339, UTC, milliseconds, `Z`, exactly as stored (the hash covers it).
    pub occurred_at: String,
    /// Who made the change; null for the console itself (the sweep, the
    /// scheduler).
    pub actor: Option<String>,
    pub subject: Value,
    pub data: Value,
    pub prev_hash: String,
    pub hash: String,
}

impl Event {
    /// The hash this event should carry, from its own `prev_hash`: SHA-256,
    /// lower-case hex, of `prev_hash`'s bytes followed by the RFC 8785
    /// canonical JSON of the event without `hash` and `prev_hash`.
    pub fn expected_hash(&self) -> Result<String, serde_json::Error> {
        chain_hash(
            &self.prev_hash,
            &HashedPart {
                event_id: self.event_id,
                seq: self.seq,
                event_type: &self.event_type,
                occurred_at: &self.occurred_at,
                actor: self.actor.as_deref(),
                subject: &self.subject,
                data: &self.data,
            },
        )
    }
}

/// The members of an event the hash covers.
#[derive(Serialize)]
pub struct HashedPart<'a> {
    pub event_id: Uuid,
    pub seq: i64,
    #[serde(rename = "type")]
    pub event_type: &'a str,
    pub occurred_at: &'a str,
    pub actor: Option<&'a str>,
    pub subject: &'a Value,
    pub data: &'a Value,
}

/// SHA-256 (hex) of `prev_hash` followed by the canonical JSON of `part`.
pub fn chain_hash(prev_hash: &str, part: &HashedPart<'_>) -> Result<String, serde_json::Error> {
    let canonical = serde_json_canonicalizer::to_vec(part)?;
    let mut digest = Sha256::new();
    digest.update(prev_hash.as_bytes());
    digest.update(&canonical);
    Ok(hex::encode(digest.finalize()))
}

/// Where a chain first breaks, if it does: the first event whose `seq` is
/// not the one after its predecessor's, whose `prev_hash` is not its
/// predecessor's hash, or whose hash is not what its content gives.
/// `before` is the last checked link (`(0, GENESIS_HASH)` at the start).
pub fn first_break<'a>(
    before: (i64, &str),
    events: impl IntoIterator<Item = &'a Event>,
) -> Option<(i64, &'static str)> {
    let (mut seq, mut hash) = (before.0, before.1.to_owned());
    for event in events {
        if event.seq != seq + 1 {
            return Some((seq + 1, "missing: the sequence has a gap"));
        }
        if event.prev_hash != hash {
            return Some((event.seq, "prev_hash is not the previous event's hash"));
        }
        match event.expected_hash() {
            Ok(h) if h == event.hash => {}
            _ => return Some((event.seq, "hash does not match the event's content")),
        }
        seq = event.seq;
        hash = event.hash.clone();
    }
    None
}

/// A sink's `types` entry: an exact type (`job.finalized`), a prefix
/// pattern (`job.*`), or `*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypePattern(String);

impl TypePattern {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let known = if text == "*" {
            true
        } else if let Some(prefix) = text.strip_suffix(".*") {
            EventType::ALL
                .iter()
                .any(|t| t.as_str().starts_with(&format!("{prefix}.")))
        } else {
            EventType::parse(text).is_some()
        };
        if known {
            Ok(TypePattern(text.to_owned()))
        } else {
            Err(format!(
                "{text:?} matches no event type (types are like \"job.finalized\"; patterns like \"job.*\")"
            ))
        }
    }

    pub fn matches(&self, event_type: &str) -> bool {
        if self.0 == "*" {
            return true;
        }
        match self.0.strip_suffix('*') {
            Some(prefix) => event_type.starts_with(prefix),
            None => self.0 == event_type,
        }
    }
}

/// True when `patterns` is empty (every type) or one of them matches.
pub fn wanted(patterns: &[TypePattern], event_type: &str) -> bool {
    patterns.is_empty() || patterns.iter().any(|p| p.matches(event_type))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(seq: i64, prev_hash: &str) -> Event {
        let mut e = Event {
            event_id: Uuid::now_v7(),
            seq,
            event_type: "job.created".into(),
            occurred_at: "2026-12-04T02:00:00.000Z".into(),
            actor: Some("admin".into()),
            subject: json!({"job_id": "x"}),
            data: json!({"b": 1, "a": [true, null, "é"]}),
            prev_hash: prev_hash.into(),
            hash: String::new(),
        };
        e.hash = e.expected_hash().unwrap();
        e
    }

    #[test]
    fn the_hash_covers_prev_hash_and_the_canonical_event() {
        let e = Event {
            event_id: Uuid::nil(),
            seq: 1,
            event_type: "user.created".into(),
            occurred_at: "2026-12-04T02:00:00.000Z".into(),
            actor: None,
            subject: json!({"username": "ann"}),
            data: json!({"role": "admin", "disabled": false}),
            prev_hash: GENESIS_HASH.into(),
            hash: String::new(),
        };
        // Keys sorted, no blanks: what RFC 8785 writes.
        let canonical = r#"{"actor":null,"data":{"disabled":false,"role":"admin"},"event_id":"00000000-0000-0000-0000-000000000000","occurred_at":"2026-12-04T02:00:00.000Z","seq":1,"subject":{"username":"ann"},"type":"user.created"}"#;
        let mut digest = Sha256::new();
        digest.update(GENESIS_HASH.as_bytes());
        digest.update(canonical.as_bytes());
        assert_eq!(e.expected_hash().unwrap(), hex::encode(digest.finalize()));
    }

    #[test]
    fn a_chain_breaks_at_the_first_changed_gapped_or_relinked_event() {
        let one = event(1, GENESIS_HASH);
        let two = event(2, &one.hash);
        let three = event(3, &two.hash);
        assert_eq!(first_break((0, GENESIS_HASH), [&one, &two, &three]), None);
        let mut edited = two.clone();
        edited.data = json!({"b": 2});
        assert_eq!(
            first_break((0, GENESIS_HASH), [&one, &edited, &three]).map(|b| b.0),
            Some(2)
        );
        assert_eq!(
            first_break((0, GENESIS_HASH), [&one, &three]).map(|b| b.0),
            Some(2)
        );
        let relinked = event(3, &one.hash);
        assert_eq!(
            first_break((0, GENESIS_HASH), [&one, &two, &relinked]).map(|b| b.0),
            Some(3)
        );
    }

    #[test]
    fn patterns_take_exact_types_prefixes_and_everything() {
        let job = TypePattern::parse("job.*").unwrap();
        assert!(job.matches("job.created") && job.matches("job.finalized"));
        assert!(!job.matches("run.created"));
        assert!(TypePattern::parse("run.created")
            .unwrap()
            .matches("run.created"));
        assert!(TypePattern::parse("*").unwrap().matches("session.login"));
        assert!(TypePattern::parse("jobs.*").is_err());
        assert!(TypePattern::parse("job.made").is_err());
        assert!(wanted(&[], "anything"));
    }
}
