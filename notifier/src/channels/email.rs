//! Email: the message built from a rendered notification (text, HTML and calendar parts, a
//! stable `Message-ID`), sent over [`SmtpClient`], and looked up in the mail system's message
//! log when an earlier attempt may have delivered it.

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use lettre::{
    Address, Message,
    message::{
        Attachment, Mailbox, MultiPart,
        header::{ContentType, HeaderName, HeaderValue},
    },
};
use serde::Deserialize;
use uuid::Uuid;

use super::{SendError, provider::query_log, smtp::SmtpClient};
use crate::{redact::redact, templates::Rendered};
use citaflow_platform::settings::SmtpSettings;

/// The `Message-ID` of the email for `event_id`: the same on every attempt, so a copy sent
/// again after a crash is recognisably the same message (RFC 5322 §3.6.4), and mail systems
/// that de-duplicate on it (Gmail among them) show it once.
pub fn message_id(event_id: Uuid, domain: &str) -> String {
    format!("<{event_id}.email@{domain}>")
}

/// Sends email over SMTP.
#[derive(Clone)]
pub struct EmailChannel {
    smtp: Arc<SmtpClient>,
    from: Mailbox,
    /// The mail system's message search, when there is one (`smtp.message_log_url`).
    log: Option<MessageLog>,
}

/// A mail system's message search in Mailpit's API shape: `GET {base}/api/v1/search?query=…`
/// answers `{"messages": [{"MessageID": …}, …]}`. SMTP itself cannot tell whether a message
/// whose sender died mid-send was taken; the server's own record can.
#[derive(Clone)]
struct MessageLog {
    http: reqwest::Client,
    search_url: String,
}

#[derive(Debug, Deserialize)]
struct SearchResult {
    messages: Vec<FoundMessage>,
}

#[derive(Debug, Deserialize)]
struct FoundMessage {
    #[serde(rename = "MessageID")]
    message_id: String,
}

impl EmailChannel {
    pub fn new(settings: &SmtpSettings) -> anyhow::Result<Self> {
        let smtp = SmtpClient::new(settings)?;
        let from: Mailbox = settings
            .from
            .parse()
            .context("smtp.from is not a valid mailbox")?;
        let log = match settings
            .message_log_url
            .as_deref()
            .filter(|u| !u.trim().is_empty())
        {
            None => None,
            Some(url) => {
                let base = reqwest::Url::parse(url).context("smtp.message_log_url is not a URL")?;
                Some(MessageLog {
                    http: reqwest::Client::builder()
                        .timeout(Duration::from_millis(settings.timeout_ms))
                        .build()
                        .context("building the message log's HTTP client")?,
                    search_url: format!("{}/api/v1/search", base.as_str().trim_end_matches('/')),
                })
            }
        };
        Ok(Self {
            smtp: Arc::new(smtp),
            from,
            log,
        })
    }

    /// Whether a message log is configured: without one, an email in doubt is sent again.
    pub fn has_message_log(&self) -> bool {
        self.log.is_some()
    }

    /// Looks for the email of `event_id` in the mail system's message log, answering its
    /// Message-ID when it is there. Used only when an earlier attempt may have delivered it;
    /// without a log (or a log that cannot search) it answers `Ok(None)` and the email is sent
    /// again with the same Message-ID: at least once rather than never.
    pub async fn find_sent(&self, event_id: Uuid) -> Result<Option<String>, SendError> {
        let Some(log) = &self.log else {
            return Ok(None);
        };
        let message_id = self.message_id(event_id);
        let bare = |id: &str| id.trim_start_matches('<').trim_end_matches('>').to_owned();
        let wanted = bare(&message_id);
        let request = log.http.get(&log.search_url).query(&[
            ("query", format!("message-id:\"{wanted}\"")),
            ("limit", "10".into()),
        ]);
        let Some(found) = query_log::<SearchResult>(request, "message log").await? else {
            return Ok(None);
        };
        Ok(found
            .messages
            .iter()
            .any(|m| bare(&m.message_id) == wanted)
            .then_some(message_id))
    }

    /// The sender's address (the calendar event's organizer).
    pub fn from_address(&self) -> String {
        self.from.email.to_string()
    }

    /// The stable `Message-ID` of the email for `event_id`.
    pub fn message_id(&self, event_id: Uuid) -> String {
        message_id(event_id, self.from.email.domain())
    }

    /// Sends the email for `event_id`, answering its `Message-ID`.
    pub async fn send(
        &self,
        event_id: Uuid,
        to: &str,
        to_name: &str,
        message: &Rendered,
    ) -> Result<String, SendError> {
        let email = self.build(event_id, to, to_name, message)?;
        self.smtp.send(&email).await?;
        Ok(self.message_id(event_id))
    }

    fn build(
        &self,
        event_id: Uuid,
        to: &str,
        to_name: &str,
        message: &Rendered,
    ) -> Result<Message, SendError> {
        let address: Address = to
            .trim()
            .parse()
            .map_err(|e| SendError::Permanent(format!("invalid recipient address: {e}")))?;
        // The name is a display name, never parsed: commas, quotes or accents are all fine.
        let name = to_name
            .chars()
            .filter(|c| !c.is_control())
            .collect::<String>();
        let to = Mailbox::new((!name.trim().is_empty()).then_some(name), address);
        let alternative =
            MultiPart::alternative_plain_html(message.text.clone(), message.html.clone());
        let body = match &message.ics {
            Some(ics) => {
                let content_type = ContentType::parse(&format!(
                    "text/calendar; charset=utf-8; method={}",
                    ics.method.as_str()
                ))
                .expect("valid content type");
                MultiPart::mixed().multipart(alternative).singlepart(
                    Attachment::new(ics.file_name.to_owned())
                        .body(ics.content.clone(), content_type),
                )
            }
            None => alternative,
        };
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&message.subject)
            .message_id(Some(self.message_id(event_id)))
            // RFC 3834: an automatic message; auto-responders should not answer it.
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Auto-Submitted"),
                "auto-generated".to_owned(),
            ))
            .multipart(body)
            .map_err(|e| {
                SendError::Permanent(format!(
                    "cannot build the email: {}",
                    redact(&e.to_string())
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::templates::{Ics, IcsMethod};

    fn rendered(ics: bool) -> Rendered {
        Rendered {
            subject: "Cita confirmada".into(),
            text: "Hola".into(),
            html: "<p>Hola</p>".into(),
            sms: "Citaflow: hola".into(),
            ics: ics.then(|| Ics {
                method: IcsMethod::Cancel,
                file_name: "cita.ics",
                content: "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n".into(),
            }),
        }
    }

    fn channel() -> EmailChannel {
        EmailChannel::new(&SmtpSettings::default()).unwrap()
    }

    #[tokio::test]
    async fn the_message_id_is_stable_per_event() {
        let id = Uuid::parse_str("4b1d2c9e-5f8a-4e6b-9c1d-7a2b3c4d5e6f").unwrap();
        assert_eq!(
            channel().message_id(id),
            "<4b1d2c9e-5f8a-4e6b-9c1d-7a2b3c4d5e6f.email@citaflow.local>"
        );
        let email = channel()
            .build(id, "ana@example.com", "Ana", &rendered(false))
            .unwrap();
        let raw = String::from_utf8(email.formatted()).unwrap();
        assert!(
            raw.contains(
                "Message-ID: <4b1d2c9e-5f8a-4e6b-9c1d-7a2b3c4d5e6f.email@citaflow.local>\r\n"
            ),
            "{raw}"
        );
        assert!(raw.contains("Auto-Submitted: auto-generated\r\n"), "{raw}");
    }

    #[tokio::test]
    async fn display_names_with_commas_quotes_and_accents_are_fine() {
        let id = Uuid::new_v4();
        for name in ["Pérez, Lucía", "Ana \"la\" <García>", "", "O'Brien; Seán"] {
            let email = channel().build(id, "ana@example.com", name, &rendered(false));
            assert!(email.is_ok(), "{name}: {:?}", email.err());
        }
        let bad = channel()
            .build(id, "not an address", "Ana", &rendered(false))
            .unwrap_err();
        assert!(matches!(bad, SendError::Permanent(_)));
        assert!(!bad.to_string().contains("not an address"), "{bad}");
    }

    #[tokio::test]
    async fn the_calendar_part_says_its_method() {
        let email = channel()
            .build(Uuid::new_v4(), "ana@example.com", "Ana", &rendered(true))
            .unwrap();
        let raw = String::from_utf8(email.formatted()).unwrap();
        assert!(
            raw.contains("text/calendar; charset=utf-8; method=CANCEL"),
            "{raw}"
        );
        assert!(raw.contains("filename=\"cita.ics\""), "{raw}");
    }
}
