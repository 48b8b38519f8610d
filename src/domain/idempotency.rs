//! The `Idempotency-Key` header as the IETF draft writes it: a bare token or a
//! quoted structured-field string, both naming the same key.

/// A well-formed key: 1–255 characters in 0x21–0x7E, quotes removed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

/// Why a header did not give a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyError {
    Missing,
    Invalid(String),
}

impl IdempotencyKey {
    /// Parses the raw header bytes; `None` when the header is absent.
    pub fn parse(header: Option<&[u8]>) -> Result<Self, KeyError> {
        let Some(bytes) = header else {
            return Err(KeyError::Missing);
        };
        let Ok(text) = std::str::from_utf8(bytes) else {
            return Err(KeyError::Invalid("the key must be printable ASCII".into()));
        };
        let text = text.trim_matches(|c| c == ' ' || c == '\t');
        let unquoted = match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
            Some(inner) if text.len() >= 2 => inner,
            _ => text,
        };
        if unquoted.is_empty() {
            return Err(KeyError::Missing);
        }
        if unquoted.len() > 255 {
            return Err(KeyError::Invalid(
                "the key is longer than 255 characters".into(),
            ));
        }
        if let Some(bad) = unquoted.bytes().find(|b| !(0x21..=0x7e).contains(b)) {
            return Err(KeyError::Invalid(format!(
                "the key may only hold visible ASCII characters (found byte 0x{bad:02x})"
            )));
        }
        Ok(Self(unquoted.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<IdempotencyKey, KeyError> {
        IdempotencyKey::parse(Some(s.as_bytes()))
    }

    #[test]
    fn a_quoted_key_is_the_same_key_as_the_bare_value() {
        assert_eq!(parse("\"8e03-ab\""), parse("8e03-ab"));
    }

    #[test]
    fn absent_empty_and_empty_quoted_keys_are_missing() {
        assert_eq!(IdempotencyKey::parse(None), Err(KeyError::Missing));
        assert_eq!(parse(""), Err(KeyError::Missing));
        assert_eq!(parse("\"\""), Err(KeyError::Missing));
    }

    #[test]
    fn spaces_control_characters_and_overlong_keys_are_invalid() {
        assert!(matches!(parse("a b"), Err(KeyError::Invalid(_))));
        assert!(matches!(parse("a\u{7f}"), Err(KeyError::Invalid(_))));
        assert!(matches!(parse(&"k".repeat(256)), Err(KeyError::Invalid(_))));
        assert!(parse(&"k".repeat(255)).is_ok());
    }

    #[test]
    fn a_lone_quote_is_a_one_character_key() {
        assert_eq!(parse("\"").unwrap().as_str(), "\"");
    }
}
