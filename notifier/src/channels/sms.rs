//! SMS through a Twilio-compatible Messages API, which also lists what it sent (how an SMS in
//! doubt is looked up before it is sent again).

use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde::Deserialize;

use super::{
    SendError,
    provider::{provider_error, query_log},
};
use crate::{phone::Phone, redact::redact, templates::Rendered};
use citaflow_platform::settings::SmsSettings;

/// Sends SMS through a Twilio-compatible Messages API: `POST
/// {base}/2010-04-01/Accounts/{sid}/Messages.json`, form fields `To`, `From`, `Body`, HTTP
/// basic auth with the account SID and auth token. The same resource lists what was sent
/// (`GET …/Messages.json?To=…&From=…`), which is how a send in doubt is checked.
#[derive(Clone)]
pub struct SmsChannel {
    http: reqwest::Client,
    url: String,
    account_sid: String,
    auth_token: Option<secrecy::SecretString>,
    from: String,
}

/// The parts of a Twilio message resource we read.
#[derive(Debug, Deserialize)]
struct MessageResource {
    sid: String,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    date_created: Option<String>,
}

#[derive(Debug, Deserialize)]
struct MessageList {
    messages: Vec<MessageResource>,
}

/// Whether `from` can be an SMS sender: an E.164 number or an alphanumeric sender id (1 to 11
/// letters, digits or spaces, at least one letter).
fn valid_sender(from: &str) -> bool {
    let alphanumeric = (1..=11).contains(&from.len())
        && from.chars().all(|c| c.is_ascii_alphanumeric() || c == ' ')
        && from.chars().any(|c| c.is_ascii_alphabetic());
    alphanumeric || Phone::try_from(from).is_ok_and(|p| p.as_str() == from)
}

impl SmsChannel {
    pub fn new(settings: &SmsSettings) -> anyhow::Result<Self> {
        anyhow::ensure!(
            valid_sender(&settings.from),
            "sms.from must be an E.164 number (e.g. +34600000000) or an alphanumeric sender id of up to 11 characters"
        );
        anyhow::ensure!(
            !settings.account_sid.trim().is_empty(),
            "sms.account_sid must not be empty"
        );
        let base = reqwest::Url::parse(&settings.base_url).context("sms.base_url is not a URL")?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(settings.timeout_ms))
            .build()
            .context("building the SMS HTTP client")?;
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            base.as_str().trim_end_matches('/'),
            settings.account_sid
        );
        Ok(Self {
            http,
            url,
            account_sid: settings.account_sid.clone(),
            auth_token: settings.auth_token.clone(),
            from: settings.from.clone(),
        })
    }

    fn request(&self, builder: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        builder.basic_auth(
            &self.account_sid,
            self.auth_token.as_ref().map(|t| t.expose_secret()),
        )
    }

    /// Sends `message.sms` to `to`, answering the provider's message SID.
    pub async fn send(&self, to: &Phone, message: &Rendered) -> Result<String, SendError> {
        let response = self
            .request(self.http.post(&self.url))
            .form(&[
                ("To", to.as_str()),
                ("From", self.from.as_str()),
                ("Body", message.sms.as_str()),
            ])
            .send()
            .await
            .map_err(|e| {
                // Not connected: the request never left. Anything later: it may have arrived.
                let connect = e.is_connect();
                let reason = format!(
                    "SMS provider unreachable: {}",
                    redact(&e.without_url().to_string())
                );
                if connect {
                    SendError::NotSent(reason)
                } else {
                    SendError::InDoubt(reason)
                }
            })?;
        let status = response.status();
        if status.is_success() {
            return match response.json::<MessageResource>().await {
                Ok(resource) => Ok(resource.sid),
                // Accepted all the same; the SID is only for the record.
                Err(_) => Ok(String::new()),
            };
        }
        let reason = provider_error("SMS provider", status, response).await;
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            Err(SendError::NotSent(reason))
        } else {
            Err(SendError::Permanent(reason))
        }
    }

    /// Looks in the provider's log for `body` sent to `to` since `since` (a few minutes of
    /// clock skew allowed), answering its SID. Used only when an earlier attempt may have
    /// delivered the message. A provider that cannot list answers `Ok(None)`: the message is
    /// then sent again (at least once rather than never).
    pub async fn find_sent(
        &self,
        to: &Phone,
        body: &str,
        since: DateTime<Utc>,
    ) -> Result<Option<String>, SendError> {
        let request = self.request(self.http.get(&self.url)).query(&[
            ("To", to.as_str()),
            ("From", self.from.as_str()),
            ("PageSize", "100"),
        ]);
        let Some(list) = query_log::<MessageList>(request, "SMS provider").await? else {
            return Ok(None);
        };
        let since = since - chrono::Duration::minutes(5);
        Ok(list
            .messages
            .into_iter()
            .filter(|m| m.body.as_deref() == Some(body))
            .find(|m| {
                m.date_created
                    .as_deref()
                    .and_then(|d| DateTime::parse_from_rfc2822(d).ok())
                    .is_none_or(|created| created >= since)
            })
            .map(|m| m.sid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn senders_are_numbers_or_short_names() {
        assert!(valid_sender("+34600000000"));
        assert!(valid_sender("Citaflow"));
        assert!(!valid_sender("600000000"));
        assert!(
            !valid_sender("+34 600 000 000"),
            "the compact form, as the provider wants it"
        );
        assert!(!valid_sender("Citaflow Clinics"));
        let settings = SmsSettings {
            from: "nope!".into(),
            ..SmsSettings::default()
        };
        assert!(SmsChannel::new(&settings).is_err());
    }
}
