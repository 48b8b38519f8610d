//! The stylesheet, scripts and icon, embedded in the binary and served at
//! `/static/<name>`. Pages link them with `?v=<hash>`, which may be cached
//! for a year; other requests (module imports) revalidate with the ETag.

use std::sync::LazyLock;

use axum::extract::{Path, RawQuery};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::http::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/static/{name}", get(serve))
}

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
    /// First 16 hex digits of the SHA-256 of the body.
    version: String,
}

static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| {
    let files: [(&str, &str, &[u8]); 9] = [
        (
            "app.css",
            "text/css; charset=utf-8",
            include_bytes!("../../../static/app.css"),
        ),
        (
            "cids.js",
            "text/javascript; charset=utf-8",
            include_bytes!("../../../static/cids.js"),
        ),
        (
            "cids-worker.js",
            "text/javascript; charset=utf-8",
            include_bytes!("../../../static/cids-worker.js"),
        ),
        (
            "customer-set.js",
            "text/javascript; charset=utf-8",
            include_bytes!("../../../static/customer-set.js"),
        ),
        (
            "dialogs.js",
            "text/javascript; charset=utf-8",
            include_bytes!("../../../static/dialogs.js"),
        ),
        (
            "job.js",
            "text/javascript; charset=utf-8",
            include_bytes!("../../../static/job.js"),
        ),
        (
            "run.js",
            "text/javascript; charset=utf-8",
            include_bytes!("../../../static/run.js"),
        ),
        (
            "send.js",
            "text/javascript; charset=utf-8",
            include_bytes!("../../../static/send.js"),
        ),
        (
            "favicon.svg",
            "image/svg+xml",
            include_bytes!("../../../static/favicon.svg"),
        ),
    ];
    files
        .into_iter()
        .map(|(name, content_type, body)| Asset {
            name,
            content_type,
            body,
            version: hex::encode(Sha256::digest(body))[..16].to_owned(),
        })
        .collect()
});

fn find(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

/// `/static/<name>?v=<version>`: the URL pages use for an asset.
pub fn url(name: &str) -> String {
    match find(name) {
        Some(asset) => format!("/static/{}?v={}", asset.name, asset.version),
        None => format!("/static/{name}"),
    }
}

async fn serve(
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let Some(asset) = find(&name) else {
        return Error::NotFound.into_response();
    };
    let etag = format!("\"{}\"", asset.version);
    let versioned = query.as_deref() == Some(&format!("v={}", asset.version));
    let cache = if versioned {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut response = if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag))
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            )],
            asset.body,
        )
            .into_response()
    };
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_has_a_versioned_url() {
        for name in [
            "app.css",
            "cids.js",
            "cids-worker.js",
            "customer-set.js",
            "dialogs.js",
            "job.js",
            "run.js",
            "send.js",
            "favicon.svg",
        ] {
            let u = url(name);
            assert!(u.starts_with(&format!("/static/{name}?v=")), "{u}");
            assert_eq!(u.len(), format!("/static/{name}?v=").len() + 16);
        }
    }
}
