//! Time as the product keeps and writes it: UTC, to the millisecond, and on
//! the wire as RFC 3339 with `Z` (`2026-11-29T10:00:00.123Z`). One place for
//! the format and its serde helpers.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serializer;

/// RFC 3339, UTC, milliseconds, `Z`.
pub fn format_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Times are kept to the millisecond everywhere, so what the API shows is
/// exactly what the store compares.
pub fn now_millis() -> DateTime<Utc> {
    truncate_millis(Utc::now())
}

pub fn truncate_millis(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

/// `#[serde(serialize_with = "crate::time::serialize")]` for a time.
pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_time(t))
}

/// `#[serde(serialize_with = "crate::time::serialize_opt")]` for an optional time.
pub fn serialize_opt<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => serialize(t, s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_in_utc_with_milliseconds() {
        let t = DateTime::parse_from_rfc3339("2026-11-29T10:00:00.123456+01:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(format_time(&truncate_millis(t)), "2026-11-29T09:00:00.123Z");
    }
}
