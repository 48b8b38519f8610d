//! The legacy importer's row parser on any row: refused with a reason, or a
//! job whose CIDs, times and ids follow the import rules, and no secret of
//! the old payload survives redaction. Fields are separated by newlines, in
//! the order of `LEGACY_COLUMNS`; columns past the last field are absent.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tms_dashboard::service::audit::legacy::{
    convert, parse_cids, parse_legacy_time, redacted_payload, ImportOptions, LegacyRow,
};

fn is_secret_name(name: &str) -> bool {
    let plain: String = name
        .chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_uppercase)
        .flat_map(char::to_lowercase)
        .collect();
    ["token", "password", "authorization", "apikey"].contains(&plain.as_str())
}

fn assert_no_secret(value: &Value) {
    match value {
        Value::Object(members) => {
            for (name, v) in members {
                if is_secret_name(name) {
                    assert_eq!(v, &Value::String("[redacted]".into()), "member {name:?}");
                } else {
                    assert_no_secret(v);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(assert_no_secret),
        _ => {}
    }
}

/// Built once: the configuration is not what is under test.
static OPTIONS: LazyLock<ImportOptions> = LazyLock::new(|| ImportOptions {
    clusters: vec![("eu-prod".into(), "https://tms-eu.internal".into())],
    ..ImportOptions::default()
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut fields = text.split('\n').map(|f| Some(f.to_owned()));
    let mut next = || fields.next().flatten();
    let row = LegacyRow {
        job_id: next(),
        user_id: next(),
        action_code: next(),
        action_name: next(),
        cids: next(),
        cluster_url: next(),
        request_payload: next(),
        response_summary: next(),
        created_at: next(),
    };
    let options = &*OPTIONS;

    if let Some(payload) = row.request_payload.as_deref().and_then(redacted_payload) {
        assert_no_secret(&payload);
    }

    if let Some(created) = row.created_at.as_deref() {
        if let Some(t) = parse_legacy_time(created) {
            assert_eq!(
                t.timestamp_subsec_nanos() % 1_000_000,
                0,
                "kept to the millisecond"
            );
            // Each text form the old dashboard wrote reads back as the same time.
            if (1970..=9999).contains(&chrono::Datelike::year(&t)) {
                for form in [
                    t.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
                    t.format("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string(),
                    format!("{}.{:03}", t.timestamp(), t.timestamp_subsec_millis()),
                ] {
                    assert_eq!(parse_legacy_time(&form), Some(t), "{form}");
                }
            }
        }
    }

    if let Some(cids) = row.cids.as_deref() {
        if let Ok(list) = parse_cids(cids) {
            assert!(!list.is_empty());
            let json = serde_json::to_string(&list).expect("strings serialise");
            assert_eq!(parse_cids(&json).as_ref(), Ok(&list));
        }
    }

    if let Ok(job) = convert(&row, options) {
        assert!(!job.cids.is_empty());
        let mut distinct = job.cids.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), job.cids.len(), "repeats collapsed");
        for cid in &job.cids {
            assert!(!cid.is_empty() && cid.trim() == cid);
        }
        assert_eq!(job.created_at.timestamp_subsec_nanos() % 1_000_000, 0);
        assert!(!job.cluster.is_empty());
        assert_eq!(job.user, row.user_id.as_deref().unwrap_or_default().trim());
        let old_id = row.job_id.as_deref().unwrap_or_default().trim();
        match uuid::Uuid::parse_str(old_id) {
            Ok(uuid) => {
                assert_eq!(job.job_id.as_uuid(), uuid);
                assert_eq!(job.legacy_id, None);
            }
            Err(_) => assert_eq!(job.legacy_id.as_deref(), Some(old_id)),
        }
        if let Some(summary) = &job.response_summary {
            assert!(summary.len() <= 4096);
        }
        // The same row always makes the same hashes (re-imports compare them).
        let again = convert(&row, options).expect("a row converts twice");
        assert_eq!(again.payload_hash, job.payload_hash);
        assert_eq!(again.intent_hash, job.intent_hash);
    }
});
