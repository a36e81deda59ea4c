//! Delivery channels. Each failure says whether trying again later may help (server down,
//! timeout, 4xx SMTP replies, HTTP 5xx/429) or never will (invalid address, HTTP 4xx).

use std::time::Duration;

use anyhow::Context as _;
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Attachment, Mailbox, MultiPart, header::ContentType},
    transport::smtp::authentication::Credentials,
};
use secrecy::ExposeSecret;

use crate::templates::Rendered;
use citaflow_platform::settings::{SmsSettings, SmtpSettings, SmtpTls};

/// Why a send failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("transient: {0}")]
    Transient(String),
    #[error("permanent: {0}")]
    Permanent(String),
}

/// Sends email over SMTP.
#[derive(Clone)]
pub struct EmailChannel {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl EmailChannel {
    pub fn new(settings: &SmtpSettings) -> anyhow::Result<Self> {
        let timeout = Some(Duration::from_millis(settings.timeout_ms));
        let builder = match settings.tls {
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host),
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&settings.host)
                .context("configuring SMTP STARTTLS")?,
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&settings.host)
                .context("configuring SMTP TLS")?,
        };
        let mut builder = builder.port(settings.port).timeout(timeout);
        if let (Some(user), Some(password)) = (&settings.username, &settings.password) {
            builder = builder
                .credentials(Credentials::new(user.clone(), password.expose_secret().to_owned()));
        }
        let from: Mailbox = settings.from.parse().context("smtp.from is not a valid mailbox")?;
        Ok(Self { transport: builder.build(), from })
    }

    pub async fn send(&self, to: &str, to_name: &str, message: &Rendered) -> Result<(), SendError> {
        let to: Mailbox = format!("{} <{}>", to_name.replace(['<', '>', '"'], ""), to)
            .parse()
            .map_err(|e| SendError::Permanent(format!("invalid recipient address: {e}")))?;
        let alternative = MultiPart::alternative_plain_html(message.text.clone(), message.html.clone());
        let body = match &message.ics {
            Some(ics) => MultiPart::mixed().multipart(alternative).singlepart(
                Attachment::new("cita.ics".into()).body(
                    ics.clone(),
                    ContentType::parse("text/calendar; charset=utf-8; method=PUBLISH")
                        .expect("valid content type"),
                ),
            ),
            None => alternative,
        };
        let email = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&message.subject)
            .multipart(body)
            .map_err(|e| SendError::Permanent(format!("cannot build the email: {e}")))?;
        match self.transport.send(email).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(SendError::Permanent(e.to_string())),
            Err(e) => Err(SendError::Transient(e.to_string())),
        }
    }
}

/// Sends SMS through a Twilio-compatible Messages API: `POST
/// {base}/2010-04-01/Accounts/{sid}/Messages.json`, form fields `To`, `From`, `Body`, HTTP
/// basic auth with the account SID and auth token.
#[derive(Clone)]
pub struct SmsChannel {
    http: reqwest::Client,
    url: String,
    account_sid: String,
    auth_token: Option<secrecy::SecretString>,
    from: String,
}

impl SmsChannel {
    pub fn new(settings: &SmsSettings) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(settings.timeout_ms))
            .build()
            .context("building the SMS HTTP client")?;
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            settings.base_url.trim_end_matches('/'),
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

    pub async fn send(&self, to: &str, message: &Rendered) -> Result<(), SendError> {
        let response = self
            .http
            .post(&self.url)
            .basic_auth(&self.account_sid, self.auth_token.as_ref().map(|t| t.expose_secret()))
            .form(&[("To", to), ("From", self.from.as_str()), ("Body", message.sms.as_str())])
            .send()
            .await
            .map_err(|e| SendError::Transient(format!("SMS provider unreachable: {e}")))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            Err(SendError::Transient(format!("SMS provider answered {status}")))
        } else {
            let body = response.text().await.unwrap_or_default();
            let body: String = body.chars().take(300).collect();
            Err(SendError::Permanent(format!("SMS provider answered {status}: {body}")))
        }
    }
}
