//! Delivery channels. Each failure says whether trying again may help and, if so, whether the
//! provider may already have taken the message (then a retry could deliver it twice, and the
//! worker takes care: same `Message-ID` for email, a look at the provider's log for SMS).
//! Error texts are redacted: providers echo addresses and numbers.

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use lettre::{
    Address, Message,
    message::{
        Attachment, Mailbox, MultiPart,
        header::{ContentType, HeaderName, HeaderValue},
    },
    transport::smtp::{
        authentication::{Credentials, Mechanism},
        client::{AsyncSmtpConnection, TlsParameters},
        extension::ClientId,
    },
};
use secrecy::ExposeSecret;
use serde::Deserialize;
use uuid::Uuid;

use crate::{phone::Phone, redact::redact, templates::Rendered};
use citaflow_platform::settings::{SmsSettings, SmtpSettings, SmtpTls};

/// Why a send failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Never going to work (invalid address, refused by the provider): recorded `failed`.
    #[error("permanent: {0}")]
    Permanent(String),
    /// Try again later; the provider did not take the message (connection refused, SMTP 4xx
    /// reply, HTTP 429 or 5xx).
    #[error("not sent: {0}")]
    NotSent(String),
    /// Try again later; the provider may have taken the message (connection lost or timed out
    /// once the message was on its way).
    #[error("in doubt: {0}")]
    InDoubt(String),
}

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

/// One SMTP connection, kept open between messages (a notifier replica sends one message at a
/// time) and opened again when it broke.
///
/// The connection is ours rather than lettre's pooled transport so that its socket has
/// TCP_NODELAY: lettre writes a message and its final `.` in two writes, and with Nagle's
/// algorithm the second waits for the server to acknowledge the first, which a server
/// delaying its ACKs holds back by up to 40 ms: every email took 43 ms against Mailpit.
struct SmtpClient {
    host: String,
    port: u16,
    tls: SmtpTls,
    credentials: Option<Credentials>,
    timeout: Duration,
    hello: ClientId,
    connection: tokio::sync::Mutex<Option<AsyncSmtpConnection>>,
    last_used: std::sync::Mutex<std::time::Instant>,
}

/// How long a connection may sit unused before it is checked with NOOP before a message.
const IDLE_CHECK: Duration = Duration::from_secs(5);

impl SmtpClient {
    fn new(settings: &SmtpSettings) -> anyhow::Result<Self> {
        if settings.tls != SmtpTls::None {
            // Fail at start-up, not at the first message, on a host TLS cannot name.
            TlsParameters::new(settings.host.clone()).context("configuring SMTP TLS")?;
        }
        Ok(Self {
            host: settings.host.clone(),
            port: settings.port,
            tls: settings.tls,
            credentials: match (&settings.username, &settings.password) {
                (Some(user), Some(password)) => Some(Credentials::new(
                    user.clone(),
                    password.expose_secret().to_owned(),
                )),
                _ => None,
            },
            timeout: Duration::from_millis(settings.timeout_ms),
            hello: ClientId::default(),
            connection: tokio::sync::Mutex::new(None),
            last_used: std::sync::Mutex::new(std::time::Instant::now()),
        })
    }

    /// Sends one message; any failure closes the connection (the next send opens another).
    async fn send(&self, email: &Message) -> Result<(), SendError> {
        let mut connection = self.connection.lock().await;
        // A connection idle for a while may have been closed by the server: NOOP first.
        let idle = self.last_used.lock().expect("last_used lock").elapsed() > IDLE_CHECK;
        if let Some(open) = connection.as_mut()
            && (open.has_broken() || (idle && !open.test_connected().await))
        {
            *connection = None;
        }
        let open = match connection.as_mut() {
            Some(open) => open,
            None => connection.insert(self.connect().await?),
        };
        let sent = tokio::time::timeout(
            self.timeout,
            open.send(email.envelope(), &email.formatted()),
        )
        .await;
        *self.last_used.lock().expect("last_used lock") = std::time::Instant::now();
        let result = match sent {
            Ok(Ok(_)) => return Ok(()),
            Err(_) => Err(SendError::InDoubt(format!(
                "SMTP server did not answer within {} ms",
                self.timeout.as_millis()
            ))),
            Ok(Err(e)) if e.is_permanent() => Err(SendError::Permanent(redact(&e.to_string()))),
            // A 4xx reply: the server said no, for now.
            Ok(Err(e)) if e.is_transient() => Err(SendError::NotSent(redact(&e.to_string()))),
            // The connection broke: maybe before, maybe after the final dot.
            Ok(Err(e)) => Err(SendError::InDoubt(redact(&e.to_string()))),
        };
        if let Some(mut broken) = connection.take() {
            broken.abort().await;
        }
        result
    }

    /// Opens a connection: greeting, EHLO, STARTTLS or implicit TLS, AUTH. Nothing of a message
    /// has been sent yet, so every failure here is "not sent".
    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        let not_sent = |e: lettre::transport::smtp::Error| {
            SendError::NotSent(format!(
                "SMTP connection failed: {}",
                redact(&e.to_string())
            ))
        };
        let connecting = async {
            let mut connection = match self.tls {
                // Implicit TLS: lettre opens the socket itself (without TCP_NODELAY).
                SmtpTls::Tls => AsyncSmtpConnection::connect_tokio1(
                    (self.host.as_str(), self.port),
                    Some(self.timeout),
                    &self.hello,
                    Some(TlsParameters::new(self.host.clone()).map_err(not_sent)?),
                    None,
                )
                .await
                .map_err(not_sent)?,
                SmtpTls::None | SmtpTls::Starttls => {
                    let stream = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
                        .await
                        .map_err(|e| SendError::NotSent(format!("SMTP server unreachable: {e}")))?;
                    stream
                        .set_nodelay(true)
                        .map_err(|e| SendError::NotSent(format!("SMTP socket option: {e}")))?;
                    let mut connection =
                        AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello)
                            .await
                            .map_err(not_sent)?;
                    if self.tls == SmtpTls::Starttls {
                        let parameters = TlsParameters::new(self.host.clone()).map_err(not_sent)?;
                        connection
                            .starttls(parameters, &self.hello)
                            .await
                            .map_err(not_sent)?;
                    }
                    connection
                }
            };
            if let Some(credentials) = &self.credentials {
                connection
                    .auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                    .await
                    // Refused credentials are the operator's to fix, not the message's fault:
                    // retried (and logged) until they work, never recorded as a failed email.
                    .map_err(not_sent)?;
            }
            Ok(connection)
        };
        tokio::time::timeout(self.timeout, connecting)
            .await
            .unwrap_or_else(|_| {
                Err(SendError::NotSent(format!(
                    "SMTP connection not ready within {} ms",
                    self.timeout.as_millis()
                )))
            })
    }
}

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

/// A Twilio error body.
#[derive(Debug, Deserialize)]
struct ProviderError {
    code: Option<i64>,
    message: Option<String>,
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

/// Asks a provider's record of what it sent (`what` names the provider in errors). `Ok(None)`
/// when it cannot answer (a 4xx): the caller then sends again, at least once rather than never.
async fn query_log<T: serde::de::DeserializeOwned>(
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
async fn provider_error(
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
