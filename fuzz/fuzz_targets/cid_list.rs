//! The CID list parser on any pasted text: split, de-duplicated and checked
//! the same way whatever the text, and a list it accepts reads back the same.
#![no_main]

use std::collections::HashSet;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use tms_dashboard::domain::cid::{split_text, Cid, CidListError, CidPolicy, CidsInput, RawCids};
use tms_dashboard::domain::fingerprint::RequestFingerprint;

const MAX: usize = 500;
/// Compiled once: building the pattern is not what is under test.
static POLICY: LazyLock<CidPolicy> = LazyLock::new(CidPolicy::default);

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let policy = &*POLICY;
    let raw = RawCids::from_input(&CidsInput::Text(text.to_owned()));

    // Split on separators, repeats collapsed, first occurrence and order kept.
    let split: Vec<&str> = split_text(text).collect();
    let mut seen = HashSet::new();
    let firsts: Vec<&str> = split.iter().copied().filter(|s| seen.insert(*s)).collect();
    assert_eq!(raw.values(), firsts.as_slice());
    for value in raw.values() {
        assert!(!value.is_empty());
        assert!(!value.contains(',') && !value.chars().any(char::is_whitespace));
    }

    // The array form of the same items is the same request.
    let as_list = RawCids::from_input(&CidsInput::List(
        split.iter().map(|s| (*s).to_owned()).collect(),
    ));
    assert_eq!(as_list, raw);
    assert_eq!(
        RequestFingerprint::new("c", "A", &as_list, None),
        RequestFingerprint::new("c", "A", &raw, None)
    );

    match policy.parse_list(&raw, MAX) {
        Ok(list) => {
            assert!(!list.is_empty() && list.len() <= MAX);
            let values: Vec<&str> = list.as_slice().iter().map(Cid::as_str).collect();
            assert_eq!(values, firsts);
            // Render as the form would show it, parse again: the same list.
            let rendered = values.join("\n");
            let again = policy
                .parse_list(&RawCids::from_input(&CidsInput::Text(rendered)), MAX)
                .expect("a list the parser accepted parses again");
            assert_eq!(again, list);
        }
        Err(CidListError::Invalid(bad)) => {
            // Every bad value is named, and each really is bad.
            assert!(!bad.is_empty());
            for b in &bad {
                assert!(raw.values().contains(&b.value));
                assert!(policy.parse_one(&b.value).is_err());
                assert!(!b.reason.is_empty());
            }
            let named: HashSet<&str> = bad.iter().map(|b| b.value.as_str()).collect();
            for value in raw.values() {
                assert_eq!(
                    named.contains(value.as_str()),
                    policy.parse_one(value).is_err()
                );
            }
        }
        Err(CidListError::NoCids) => assert!(raw.values().is_empty()),
        Err(CidListError::TooMany { max, count }) => {
            assert_eq!(max, MAX);
            assert!(count > max && count == raw.values().len());
        }
    }
});
