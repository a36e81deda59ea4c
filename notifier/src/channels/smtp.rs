//! The SMTP client of the email channel: one connection of our own, with TCP_NODELAY, kept
//! open between messages. Its failures say whether the server may have taken the message.

use std::time::Duration;

use anyhow::Context as _;
use lettre::{
    Message,
    transport::smtp::{
        authentication::{Credentials, Mechanism},
        client::{AsyncSmtpConnection, TlsParameters},
        extension::ClientId,
    },
};
use secrecy::ExposeSecret;

use super::SendError;
use crate::redact::redact;
use citaflow_platform::settings::{SmtpSettings, SmtpTls};

/// One SMTP connection, kept open between messages (a notifier replica sends one message at a
/// time) and opened again when it broke.
///
/// The connection is ours rather than lettre's pooled transport so that its socket has
/// TCP_NODELAY: lettre writes a message and its final `.` in two writes, and with Nagle's
/// algorithm the second waits for the server to acknowledge the first, which a server
/// delaying its ACKs holds back by up to 40 ms: every email took 43 ms against Mailpit.
pub(super) struct SmtpClient {
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
    pub(super) fn new(settings: &SmtpSettings) -> anyhow::Result<Self> {
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
    pub(super) async fn send(&self, email: &Message) -> Result<(), SendError> {
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
            // 421: the server is closing the channel, whoever the message is for.
            Ok(Err(e))
                if e.is_transient() && e.status().is_some_and(|c| c.to_string() == "421") =>
            {
                Err(SendError::NotSent(redact(&e.to_string())))
            }
            // Any other 4xx reply: the server said no to this message, for now.
            Ok(Err(e)) if e.is_transient() => Err(SendError::Deferred(redact(&e.to_string()))),
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
