//! Conditional GETs for lists that pages poll (the web app's agenda): the answer carries a
//! weak `ETag` (a hash of its JSON), and a request whose `If-None-Match` names it is answered
//! `304 Not Modified` with no body, so an agenda polled every few seconds costs its query and
//! a few bytes until something changes.
//!
//! Polling rather than server-sent events: it needs no long-lived connection per open agenda
//! on every replica (none to drain on shutdown, none held by proxies), any replica answers, and
//! a change shows within one poll interval.

use axum::{
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The weak validator of a JSON body.
pub fn of(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("W/\"{hex}\"")
}

/// `value` as JSON with its `ETag`, or 304 when the client already has it.
pub fn json<T: Serialize>(request: &HeaderMap, value: &T) -> Response {
    let body = match serde_json::to_vec(value) {
        Ok(body) => body,
        Err(err) => return super::error::ApiError::Internal(err.into()).into_response(),
    };
    let tag = of(&body);
    let matches = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let tag = HeaderValue::from_str(&tag).expect("hex is a valid header");
    if matches {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, tag)]).into_response();
    }
    let mut response = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response();
    response.headers_mut().insert(header::ETAG, tag);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_body_same_tag_and_a_match_is_304() {
        let value = serde_json::json!({"items": [1, 2]});
        let first = json(&HeaderMap::new(), &value);
        assert_eq!(first.status(), 200);
        let tag = first.headers()[header::ETAG].clone();
        assert!(tag.to_str().unwrap().starts_with("W/\""));
        let mut asking = HeaderMap::new();
        asking.insert(header::IF_NONE_MATCH, tag.clone());
        let again = json(&asking, &value);
        assert_eq!(again.status(), 304);
        assert_eq!(again.headers()[header::ETAG], tag);
        let changed = json(&asking, &serde_json::json!({"items": [1, 2, 3]}));
        assert_eq!(changed.status(), 200);
        assert_ne!(changed.headers()[header::ETAG], tag);
    }
}
