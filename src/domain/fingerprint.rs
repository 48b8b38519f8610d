//! What makes two Set Action requests "the same": the payload (cluster,
//! action, set of CIDs, reason) for idempotency-key reuse, and the intent
//! (cluster, action, set of CIDs) for the duplicate guard and audit.

use sha2::{Digest, Sha256};

use super::cid::RawCids;

/// Hashes of a request, computed before any catalog check so a replay can be
/// recognised whatever the checks would say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestFingerprint {
    pub payload_hash: String,
    pub intent_hash: String,
}

impl RequestFingerprint {
    pub fn new(cluster: &str, action: &str, cids: &RawCids, reason: Option<&str>) -> Self {
        let intent_hash = intent_hash(cluster, action, cids.sorted_set());
        let mut payload = Sha256::new();
        payload.update(intent_hash.as_bytes());
        match reason {
            Some(r) => {
                payload.update(b"\x01");
                payload.update(r.as_bytes());
            }
            None => payload.update(b"\x00"),
        }
        Self {
            payload_hash: hex::encode(payload.finalize()),
            intent_hash,
        }
    }
}

/// Hash of cluster, action and the sorted set of CIDs, each length-prefixed
/// so no two different requests can collide by concatenation.
pub fn intent_hash<'a>(
    cluster: &str,
    action: &str,
    sorted_cids: impl IntoIterator<Item = &'a str>,
) -> String {
    let mut h = Sha256::new();
    for part in [cluster, action] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    for cid in sorted_cids {
        h.update((cid.len() as u64).to_be_bytes());
        h.update(cid.as_bytes());
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::cid::CidsInput;

    fn raw(text: &str) -> RawCids {
        RawCids::from_input(&CidsInput::Text(text.into()))
    }

    #[test]
    fn order_and_repeats_do_not_change_the_fingerprint() {
        let a = RequestFingerprint::new("c", "A", &raw("X1 X2 X3"), None);
        let b = RequestFingerprint::new("c", "A", &raw("X3,X1,X2,X1"), None);
        assert_eq!(a, b);
    }

    #[test]
    fn the_reason_changes_the_payload_but_not_the_intent() {
        let a = RequestFingerprint::new("c", "A", &raw("X1"), None);
        let b = RequestFingerprint::new("c", "A", &raw("X1"), Some("T-1"));
        assert_ne!(a.payload_hash, b.payload_hash);
        assert_eq!(a.intent_hash, b.intent_hash);
    }

    #[test]
    fn concatenation_cannot_collide() {
        let a = RequestFingerprint::new("ab", "c", &raw("X1"), None);
        let b = RequestFingerprint::new("a", "bc", &raw("X1"), None);
        assert_ne!(a, b);
    }
}
