//! The jobs list paging cursor: any text is refused or decodes to a position
//! that encodes and decodes to itself, and every cursor the server issues
//! decodes to the position it came from.
#![no_main]

use chrono::DateTime;
use libfuzzer_sys::fuzz_target;
use tms_dashboard::domain::query::JobCursor;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(cursor) = JobCursor::decode(text) {
            assert_eq!(JobCursor::decode(&cursor.encode()), Some(cursor));
        }
    }

    // The same bytes read as a position the server could issue.
    if let (Some(millis), Some(id)) = (data.get(..8), data.get(8..24)) {
        let millis = i64::from_le_bytes(millis.try_into().expect("8 bytes"));
        let id = uuid::Uuid::from_bytes(id.try_into().expect("16 bytes"));
        if let Some(created_at) = DateTime::from_timestamp_millis(millis) {
            let cursor = JobCursor {
                created_at,
                job_id: id,
            };
            let text = cursor.encode();
            // Safe in a query string as it is.
            assert!(text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            assert_eq!(JobCursor::decode(&text), Some(cursor));
        }
    }
});
