//! The JSON body of `POST /api/v1/actions`: any bytes are refused or read
//! into a request whose token never shows, whose string and array forms of
//! `cids` are the same payload, and which reads back the same once written.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use tms_dashboard::domain::action::ActionCatalog;
use tms_dashboard::domain::cid::{split_text, CidPolicy, CidsInput, RawCids};
use tms_dashboard::domain::fingerprint::RequestFingerprint;
use tms_dashboard::domain::secret::Secret;
use tms_dashboard::http::extract::parse_json_body;
use tms_dashboard::service::execution::SetActionRequest;

/// Built once: the catalog and the pattern are not what is under test.
static CATALOG: LazyLock<ActionCatalog> = LazyLock::new(ActionCatalog::default);
static POLICY: LazyLock<CidPolicy> = LazyLock::new(CidPolicy::default);

fuzz_target!(|data: &[u8]| {
    // What the server reads: the body extractor's own parser.
    let Ok(request) = parse_json_body::<SetActionRequest>(data) else {
        return;
    };

    // The token never shows: Debug does not depend on its value.
    let mut other = request.clone();
    other.token = other.token.map(|_| Secret::new("another token"));
    assert_eq!(format!("{request:?}"), format!("{other:?}"));

    let raw = RawCids::from_input(&request.cids);
    let reason = request.reason.as_deref();
    let fingerprint = RequestFingerprint::new(&request.cluster, &request.action, &raw, reason);

    // Order and repeats of the CIDs are not part of the payload.
    let mut reversed: Vec<String> = raw.values().to_vec();
    reversed.reverse();
    reversed.extend(raw.values().iter().cloned());
    let shuffled = RawCids::from_input(&CidsInput::List(reversed));
    assert_eq!(
        RequestFingerprint::new(&request.cluster, &request.action, &shuffled, reason),
        fingerprint
    );

    // The string form and the array of its pieces are the same payload.
    if let CidsInput::Text(text) = &request.cids {
        let pieces = split_text(text).map(str::to_owned).collect();
        let as_list = RawCids::from_input(&CidsInput::List(pieces));
        assert_eq!(as_list, raw);
    }

    // Written back as JSON, the body reads as the same request.
    let cids = match &request.cids {
        CidsInput::List(list) => json!(list),
        CidsInput::Text(text) => json!(text),
    };
    let written = json!({
        "cluster": request.cluster,
        "action": request.action,
        "cids": cids,
        "token": request.token.as_ref().map(Secret::expose),
        "confirm_duplicate": request.confirm_duplicate,
        "reason": request.reason,
    });
    let again: SetActionRequest =
        serde_json::from_value(written).expect("a written request reads back");
    assert_eq!(again.cluster, request.cluster);
    assert_eq!(again.action, request.action);
    assert_eq!(again.cids, request.cids);
    assert_eq!(again.token, request.token);
    assert_eq!(again.confirm_duplicate, request.confirm_duplicate);
    assert_eq!(again.reason, request.reason);

    // The domain checks: an accepted list respects the action's limit.
    if let Some(action) = CATALOG.get(&request.action) {
        if let Ok(list) = POLICY.parse_list(&raw, action.max_cids) {
            assert!(!list.is_empty() && list.len() <= action.max_cids);
        }
    }
    // Only JSON is ever accepted.
    let _: Value = serde_json::from_slice(data).expect("an accepted body is JSON");
});
