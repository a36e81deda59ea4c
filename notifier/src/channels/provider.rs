//! What the HTTP providers share: asking a provider's record of what it sent (the mail
//! system's message log, the SMS Messages API) and turning its error answers into one
//! redacted line.

use serde::Deserialize;

use super::SendError;
use crate::redact::redact;

/// A Twilio error body.
#[derive(Debug, Deserialize)]
struct ProviderError {
    code: Option<i64>,
    message: Option<String>,
}

/// Asks a provider's record of what it sent (`what` names the provider in errors). `Ok(None)`
/// when it cannot answer (a 4xx): the caller then sends again, at least once rather than never.
pub(super) async fn query_log<T: serde::de::DeserializeOwned>(
    request: reqwest::RequestBuilder,
    what: &str,
) -> Result<Option<T>, SendError> {
    let response = request.send().await.map_err(|e| {
        SendError::NotSent(format!(
            "{what} unreachable: {}",
            redact(&e.without_url().to_string())
        ))
    })?;
    let status = response.status();
    if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        return Err(SendError::NotSent(
            provider_error(what, status, response).await,
        ));
    }
    if !status.is_success() {
        tracing::warn!(
            status = status.as_u16(),
            provider = what,
            "the provider cannot search what it sent; sending again"
        );
        return Ok(None);
    }
    response
        .json()
        .await
        .map(Some)
        .map_err(|e| SendError::NotSent(format!("unreadable answer from the {what}: {e}")))
}

/// `SMS provider answered 400 (code 21211): The 'To' number [phone] is not a valid phone number.`
pub(super) async fn provider_error(
    what: &str,
    status: reqwest::StatusCode,
    response: reqwest::Response,
) -> String {
    let body = response.text().await.unwrap_or_default();
    match serde_json::from_str::<ProviderError>(&body) {
        Ok(ProviderError { code, message }) => {
            let code = code.map(|c| format!(" (code {c})")).unwrap_or_default();
            let message: String = message.unwrap_or_default().chars().take(200).collect();
            format!(
                "{what} answered {}{code}: {}",
                status.as_u16(),
                redact(&message)
            )
        }
        Err(_) => {
            let body: String = body.chars().take(200).collect();
            format!("{what} answered {}: {}", status.as_u16(), redact(&body))
        }
    }
}
