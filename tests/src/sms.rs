//! A stand-in for the SMS provider that tests start on 127.0.0.1:0: it speaks the Twilio
//! Messages API (`POST /2010-04-01/Accounts/{sid}/Messages.json` with a form `To`, `From`,
//! `Body` and HTTP basic auth; `GET` of the same resource lists what was sent, filtered by `To`
//! and `From`), answers like Twilio (201 with the message resource, `status: "queued"`; errors as
//! `{code, message, more_info, status}`), and records every message it accepts. A test can make
//! it answer 503 for a while, or refuse one number with 400 (Twilio's 21211, which echoes the
//! number, as the real one does).

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Json, Router,
    extract::{Form, Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
};
use chrono::{DateTime, Utc};
use citaflow_platform::Settings;
use secrecy::SecretString;
use serde_json::{Value, json};
use uuid::Uuid;

/// One message the recorder accepted.
#[derive(Debug, Clone)]
pub struct Sms {
    pub sid: String,
    pub to: String,
    pub from: String,
    pub body: String,
    pub received_at: DateTime<Utc>,
}

#[derive(Default)]
struct Recorded {
    messages: Vec<Sms>,
    unavailable: bool,
    refused_numbers: HashSet<String>,
    /// Every send request that reached the recorder, accepted or not.
    requests: usize,
    /// Send requests answered 503.
    unavailable_answers: usize,
    /// List requests (`GET`).
    lookups: usize,
}

#[derive(Clone)]
struct Shared {
    account_sid: String,
    expected_authorization: String,
    recorded: Arc<Mutex<Recorded>>,
}

/// The running recorder; stops when dropped.
pub struct SmsRecorder {
    pub base_url: String,
    pub account_sid: String,
    pub auth_token: Option<String>,
    recorded: Arc<Mutex<Recorded>>,
    task: tokio::task::JoinHandle<()>,
}

impl SmsRecorder {
    /// A recorder with a fresh account SID and auth token.
    pub async fn start() -> SmsRecorder {
        let sid = format!("AC{}", Uuid::new_v4().simple());
        let token = Uuid::new_v4().simple().to_string();
        Self::start_with(sid, Some(token)).await
    }

    /// A recorder expecting these credentials (a notifier without an auth token sends the SID
    /// and an empty password).
    pub async fn start_with(
        account_sid: impl Into<String>,
        auth_token: Option<String>,
    ) -> SmsRecorder {
        let account_sid = account_sid.into();
        let credentials = format!("{account_sid}:{}", auth_token.as_deref().unwrap_or(""));
        let recorded = Arc::new(Mutex::new(Recorded::default()));
        let shared = Shared {
            account_sid: account_sid.clone(),
            expected_authorization: format!("Basic {}", base64(credentials.as_bytes())),
            recorded: recorded.clone(),
        };
        let app = Router::new()
            .route(
                "/2010-04-01/Accounts/{sid}/Messages.json",
                post(create).get(list),
            )
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind SMS recorder");
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        SmsRecorder {
            base_url,
            account_sid,
            auth_token,
            recorded,
            task,
        }
    }

    /// Points an SMS notifier's settings at this recorder.
    pub fn configure(&self, settings: &mut Settings) {
        settings.sms.base_url = self.base_url.clone();
        settings.sms.account_sid = self.account_sid.clone();
        settings.sms.auth_token = self.auth_token.clone().map(SecretString::from);
    }

    /// Every accepted message, in arrival order.
    pub fn messages(&self) -> Vec<Sms> {
        self.recorded.lock().unwrap().messages.clone()
    }

    /// Accepted messages to `to`, in arrival order.
    pub fn messages_to(&self, to: &str) -> Vec<Sms> {
        self.recorded
            .lock()
            .unwrap()
            .messages
            .iter()
            .filter(|m| m.to == to)
            .cloned()
            .collect()
    }

    /// Waits until at least `count` messages reached `to`, then a little longer so that
    /// duplicates, if any, would show up too.
    pub async fn wait_for(&self, to: &str, count: usize, within: Duration) -> Vec<Sms> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if self.messages_to(to).len() >= count {
                tokio::time::sleep(Duration::from_millis(1500)).await;
                return self.messages_to(to);
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "expected {count} SMS to {to} within {within:?}, got {:?}",
                self.messages_to(to)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// While on, every send is answered 503 (the provider is having a bad day).
    pub fn set_unavailable(&self, unavailable: bool) {
        self.recorded.lock().unwrap().unavailable = unavailable;
    }

    /// Sends to `number` are refused with 400 (code 21211) from now on.
    pub fn refuse_number(&self, number: &str) {
        self.recorded
            .lock()
            .unwrap()
            .refused_numbers
            .insert(number.to_owned());
    }

    /// Send requests received, accepted or not.
    pub fn requests(&self) -> usize {
        self.recorded.lock().unwrap().requests
    }

    /// Send requests answered 503.
    pub fn unavailable_answers(&self) -> usize {
        self.recorded.lock().unwrap().unavailable_answers
    }

    /// List requests received.
    pub fn lookups(&self) -> usize {
        self.recorded.lock().unwrap().lookups
    }
}

impl Drop for SmsRecorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn twilio_error(status: StatusCode, code: u32, message: String) -> Response {
    let body = json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status.as_u16(),
    });
    (status, Json(body)).into_response()
}

/// Checks the credentials and the account in the path, as Twilio does; answers the refusal.
fn refusal(shared: &Shared, headers: &HeaderMap, sid: &str) -> Option<Response> {
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if given != shared.expected_authorization {
        return Some(twilio_error(
            StatusCode::UNAUTHORIZED,
            20003,
            "Authenticate".into(),
        ));
    }
    if sid != shared.account_sid {
        return Some(twilio_error(
            StatusCode::NOT_FOUND,
            20404,
            format!(
                "The requested resource /2010-04-01/Accounts/{sid}/Messages.json was not found"
            ),
        ));
    }
    None
}

fn is_e164(number: &str) -> bool {
    number.strip_prefix('+').is_some_and(|d| {
        (8..=15).contains(&d.len()) && d.chars().all(|c| c.is_ascii_digit()) && !d.starts_with('0')
    })
}

fn resource(account_sid: &str, sms: &Sms) -> Value {
    let date = sms.received_at.to_rfc2822();
    json!({
        "account_sid": account_sid,
        "api_version": "2010-04-01",
        "body": sms.body,
        "date_created": date,
        "date_sent": null,
        "date_updated": date,
        "direction": "outbound-api",
        "error_code": null,
        "error_message": null,
        "from": sms.from,
        "messaging_service_sid": null,
        "num_media": "0",
        "num_segments": if sms.body.chars().count() <= 160 { "1" } else { "2" },
        "price": null,
        "price_unit": "USD",
        "sid": sms.sid,
        "status": "queued",
        "to": sms.to,
        "uri": format!("/2010-04-01/Accounts/{account_sid}/Messages/{}.json", sms.sid),
    })
}

async fn create(
    State(shared): State<Shared>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut recorded = shared.recorded.lock().unwrap();
    recorded.requests += 1;
    if let Some(response) = refusal(&shared, &headers, &sid) {
        return response;
    }
    if recorded.unavailable {
        recorded.unavailable_answers += 1;
        return twilio_error(
            StatusCode::SERVICE_UNAVAILABLE,
            20503,
            "Service Unavailable".into(),
        );
    }
    let field = |name: &str| {
        form.get(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let Some(to) = field("To") else {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21604,
            "A 'To' phone number is required.".into(),
        );
    };
    let Some(from) = field("From") else {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21603,
            "A 'From' phone number is required.".into(),
        );
    };
    let Some(body) = form.get("Body").filter(|b| !b.is_empty()).cloned() else {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21602,
            "Message body is required.".into(),
        );
    };
    if !is_e164(&to) || recorded.refused_numbers.contains(&to) {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21211,
            format!("The 'To' number {to} is not a valid phone number."),
        );
    }
    if body.chars().count() > 1600 {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21617,
            "The concatenated message body exceeds the 1600 character limit.".into(),
        );
    }
    let sms = Sms {
        sid: format!("SM{}", Uuid::new_v4().simple()),
        to,
        from,
        body,
        received_at: Utc::now(),
    };
    let answer = resource(&shared.account_sid, &sms);
    recorded.messages.push(sms);
    (StatusCode::CREATED, Json(answer)).into_response()
}

async fn list(
    State(shared): State<Shared>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Some(response) = refusal(&shared, &headers, &sid) {
        return response;
    }
    let mut recorded = shared.recorded.lock().unwrap();
    recorded.lookups += 1;
    let page_size: usize = query
        .get("PageSize")
        .and_then(|s| s.parse().ok())
        .unwrap_or(50)
        .min(1000);
    let messages: Vec<Value> = recorded
        .messages
        .iter()
        .rev()
        .filter(|m| query.get("To").is_none_or(|to| *to == m.to))
        .filter(|m| query.get("From").is_none_or(|from| *from == m.from))
        .take(page_size)
        .map(|m| resource(&shared.account_sid, m))
        .collect();
    Json(json!({
        "messages": messages,
        "page": 0,
        "page_size": page_size,
        "start": 0,
        "end": messages.len().saturating_sub(1),
        "next_page_uri": null,
        "previous_page_uri": null,
        "uri": format!("/2010-04-01/Accounts/{sid}/Messages.json"),
    }))
    .into_response()
}

/// Standard base64 with padding (for the expected `Authorization` header).
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> shift) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected);
        }
    }

    #[tokio::test]
    async fn answers_like_twilio_and_records() {
        let recorder = SmsRecorder::start().await;
        let http = reqwest::Client::new();
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            recorder.base_url, recorder.account_sid
        );
        let send = |to: &'static str, token: Option<String>| {
            http.post(&url)
                .basic_auth(&recorder.account_sid, token)
                .form(&[("To", to), ("From", "+34600000000"), ("Body", "hola")])
                .send()
        };
        let wrong = send("+34600123456", Some("nope".into())).await.unwrap();
        assert_eq!(wrong.status(), 401);
        let ok = send("+34600123456", recorder.auth_token.clone())
            .await
            .unwrap();
        assert_eq!(ok.status(), 201);
        let body: Value = ok.json().await.unwrap();
        assert_eq!(body["status"], "queued");
        assert!(body["sid"].as_str().unwrap().starts_with("SM"));
        recorder.refuse_number("+34600999999");
        let refused = send("+34600999999", recorder.auth_token.clone())
            .await
            .unwrap();
        assert_eq!(refused.status(), 400);
        assert_eq!(refused.json::<Value>().await.unwrap()["code"], 21211);
        recorder.set_unavailable(true);
        assert_eq!(
            send("+34600123456", recorder.auth_token.clone())
                .await
                .unwrap()
                .status(),
            503
        );
        assert_eq!(recorder.messages().len(), 1);
        assert_eq!(recorder.requests(), 4);
        let listed: Value = http
            .get(&url)
            .basic_auth(&recorder.account_sid, recorder.auth_token.clone())
            .query(&[("To", "+34600123456")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(listed["messages"][0]["body"], "hola");
    }
}
