//! Our own extractors, so every rejection (bad JSON, bad query, missing key,
//! oversized body) comes back in the product's problem shape.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::domain::idempotency::{IdempotencyKey, KeyError};
use crate::error::Error;

/// A JSON body of type `T`; the Content-Type header is not required.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                Error::PayloadTooLarge
            } else {
                Error::InvalidBody(format!("the body could not be read: {rejection}"))
            }
        })?;
        parse_json_body(&bytes).map(JsonBody)
    }
}

/// Reads a request body as JSON of type `T`. The whole body must be UTF-8
/// (RFC 8259): serde alone would let invalid bytes through inside members
/// it skips. Every body of this API is an object: serde's derive would also
/// read a struct from an array of its fields in order
/// (`["sandbox","Trans-Begin",["C1"]]`), which no client means.
pub fn parse_json_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| Error::InvalidBody(format!("the body is not UTF-8 text: {e}")))?;
    if !text
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .starts_with('{')
    {
        return Err(Error::InvalidBody(
            "the body must be a JSON object ({...})".into(),
        ));
    }
    serde_json::from_str(text).map_err(|e| {
        Error::InvalidBody(format!(
            "the body is not valid JSON of the expected shape: {e}"
        ))
    })
}

/// Query parameters of type `T`.
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        serde_urlencoded_from_str(query).map(QueryParams)
    }
}

fn serde_urlencoded_from_str<T: DeserializeOwned>(query: &str) -> Result<T, Error> {
    axum::extract::Query::<T>::try_from_uri(
        &format!("/?{query}")
            .parse()
            .map_err(|_| Error::InvalidQuery("unreadable query string".into()))?,
    )
    .map(|q| q.0)
    .map_err(|e| Error::InvalidQuery(e.body_text()))
}

/// The `Idempotency-Key` header, parsed.
pub struct IdempotencyKeyHeader(pub IdempotencyKey);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKeyHeader {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let header = parts.headers.get("idempotency-key").map(|v| v.as_bytes());
        IdempotencyKey::parse(header)
            .map(IdempotencyKeyHeader)
            .map_err(|e| match e {
                KeyError::Missing => Error::MissingIdempotencyKey,
                KeyError::Invalid(why) => Error::InvalidIdempotencyKey(why),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::execution::SetActionRequest;

    #[test]
    fn a_body_with_invalid_utf8_in_an_unknown_member_is_refused() {
        // Found by the actions_body fuzz target: serde skipped the unknown
        // member's bytes without checking them, so a body that is not JSON
        // was accepted.
        let body = b"{\"cluster\":\"eu-prod\",\"action\":\"Susrend\",\"cids\":\"C0 C2\",\"rea\":\"TI\xffqET-42\"}";
        let parsed = parse_json_body::<SetActionRequest>(body);
        assert!(matches!(parsed, Err(Error::InvalidBody(_))), "{parsed:?}");
    }

    #[test]
    fn a_body_that_is_not_an_object_is_refused() {
        for body in [
            &br#"["sandbox","Trans-Begin",["V1"]]"#[..],
            br#"  ["sandbox","Trans-Begin","V1",null,false,null]"#,
            b"\"text\"",
            b"42",
            b"null",
            b"",
        ] {
            let parsed = parse_json_body::<SetActionRequest>(body);
            assert!(matches!(parsed, Err(Error::InvalidBody(_))), "{parsed:?}");
        }
        let parsed = parse_json_body::<SetActionRequest>(
            b" \r\n\t{\"cluster\":\"sandbox\",\"action\":\"Trans-Begin\",\"cids\":[\"C1\"]}",
        );
        assert!(parsed.is_ok(), "{parsed:?}");
    }

    #[test]
    fn a_valid_body_still_parses() {
        let body = br#"{"cluster":"sandbox","action":"Trans-Begin","cids":["C1"],"rea":"\u00ff"}"#;
        let parsed = parse_json_body::<SetActionRequest>(body).expect("valid");
        assert_eq!(parsed.cluster, "sandbox");
    }
}
