//! A local SMS provider for the dev stack, as Mailpit is for email: it speaks the part of the
//! Twilio Messages API the SMS notifier uses (`notifier/src/channels/sms.rs`) and shows a
//! person what arrived.
//!
//! - `POST /2010-04-01/Accounts/{sid}/Messages.json` (form `To`, `From`, `Body`): answered like
//!   Twilio (201 with the message resource, `status: "queued"`; a missing field is a 400 with
//!   Twilio's `{code, message, more_info, status}`). Any credentials are accepted (like
//!   Mailpit's `--smtp-auth-accept-any`); nothing is ever sent on.
//! - `GET` of the same resource (`To`, `From`, `PageSize`): the account's messages, newest
//!   first — how the notifier looks up a send in doubt before sending again.
//! - `GET /api/messages` (`to` to filter): every message, newest first, as JSON;
//!   `DELETE /api/messages` empties the list.
//! - `GET /`: the same as a small HTML page. `GET /health`: 200 (the launcher's probe).
//!
//! Messages are kept in memory (the newest [`MAX_MESSAGES`]); a restart empties the sink.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
};

use axum::{
    Form, Json, Router,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{Html, IntoResponse, Response},
    routing::get,
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

/// How many messages the sink keeps; older ones are dropped first.
pub const MAX_MESSAGES: usize = 10_000;

/// One message the sink accepted.
#[derive(Debug, Clone, Serialize)]
pub struct Sms {
    pub sid: String,
    pub account_sid: String,
    pub to: String,
    pub from: String,
    pub body: String,
    pub received_at: DateTime<Utc>,
}

/// The messages received, shared by the handlers.
#[derive(Clone, Default)]
pub struct Sink {
    messages: Arc<Mutex<VecDeque<Sms>>>,
}

impl Sink {
    /// Every message kept, newest first.
    pub fn messages(&self) -> Vec<Sms> {
        self.messages
            .lock()
            .unwrap()
            .iter()
            .rev()
            .cloned()
            .collect()
    }

    fn push(&self, sms: Sms) {
        let mut messages = self.messages.lock().unwrap();
        if messages.len() == MAX_MESSAGES {
            messages.pop_front();
        }
        messages.push_back(sms);
    }
}

/// The sink's routes over `sink`.
pub fn router(sink: Sink) -> Router {
    Router::new()
        .route(
            "/2010-04-01/Accounts/{sid}/Messages.json",
            get(twilio_list).post(twilio_create),
        )
        .route("/api/messages", get(api_list).delete(api_clear))
        .route("/health", get(|| async { "ok" }))
        .route("/", get(page))
        .with_state(sink)
}

fn twilio_error(status: StatusCode, code: u32, message: &str) -> Response {
    let body = json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status.as_u16(),
    });
    (status, Json(body)).into_response()
}

/// The message as Twilio's API shows it.
fn resource(sms: &Sms) -> Value {
    let date = sms.received_at.to_rfc2822();
    json!({
        "account_sid": sms.account_sid,
        "api_version": "2010-04-01",
        "body": sms.body,
        "date_created": date,
        "date_sent": null,
        "date_updated": date,
        "direction": "outbound-api",
        "error_code": null,
        "error_message": null,
        "from": sms.from,
        "num_media": "0",
        "num_segments": if sms.body.chars().count() <= 160 { "1" } else { "2" },
        "price": null,
        "sid": sms.sid,
        "status": "queued",
        "to": sms.to,
        "uri": format!("/2010-04-01/Accounts/{}/Messages/{}.json", sms.account_sid, sms.sid),
    })
}

async fn twilio_create(
    State(sink): State<Sink>,
    Path(account_sid): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let field = |name: &str| {
        form.get(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let Some(to) = field("To") else {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21604,
            "A 'To' phone number is required.",
        );
    };
    let Some(from) = field("From") else {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21603,
            "A 'From' phone number is required.",
        );
    };
    let Some(body) = form.get("Body").filter(|b| !b.is_empty()).cloned() else {
        return twilio_error(StatusCode::BAD_REQUEST, 21602, "Message body is required.");
    };
    let sms = Sms {
        sid: format!("SM{}", Uuid::new_v4().simple()),
        account_sid,
        to,
        from,
        body,
        received_at: Utc::now(),
    };
    let answer = resource(&sms);
    sink.push(sms);
    (StatusCode::CREATED, Json(answer)).into_response()
}

async fn twilio_list(
    State(sink): State<Sink>,
    Path(account_sid): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Json<Value> {
    let page_size: usize = query
        .get("PageSize")
        .and_then(|s| s.parse().ok())
        .unwrap_or(50)
        .clamp(1, 1000);
    let messages: Vec<Value> = sink
        .messages()
        .iter()
        .filter(|m| m.account_sid == account_sid)
        .filter(|m| query.get("To").is_none_or(|to| *to == m.to))
        .filter(|m| query.get("From").is_none_or(|from| *from == m.from))
        .take(page_size)
        .map(resource)
        .collect();
    Json(json!({
        "messages": messages,
        "page": 0,
        "page_size": page_size,
        "start": 0,
        "end": messages.len().saturating_sub(1),
        "next_page_uri": null,
        "previous_page_uri": null,
        "uri": format!("/2010-04-01/Accounts/{account_sid}/Messages.json"),
    }))
}

fn selected(sink: &Sink, query: &HashMap<String, String>) -> Vec<Sms> {
    sink.messages()
        .into_iter()
        .filter(|m| query.get("to").is_none_or(|to| *to == m.to))
        .collect()
}

async fn api_list(
    State(sink): State<Sink>,
    Query(query): Query<HashMap<String, String>>,
) -> Json<Value> {
    let messages = selected(&sink, &query);
    Json(json!({ "total": messages.len(), "messages": messages }))
}

async fn api_clear(State(sink): State<Sink>) -> StatusCode {
    sink.messages.lock().unwrap().clear();
    StatusCode::NO_CONTENT
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

async fn page(
    State(sink): State<Sink>,
    Query(query): Query<HashMap<String, String>>,
) -> Html<String> {
    let messages = selected(&sink, &query);
    let mut rows = String::new();
    for m in &messages {
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"body\">{}</td></tr>\n",
            escape(&m.received_at.format("%Y-%m-%d %H:%M:%S UTC").to_string()),
            escape(&m.to),
            escape(&m.from),
            escape(&m.body),
        ));
    }
    if messages.is_empty() {
        rows.push_str("<tr><td colspan=\"4\">No messages yet.</td></tr>\n");
    }
    Html(format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="5">
<title>SMS sink — Citaflow</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ border-bottom: 1px solid #ddd; padding: .4rem .6rem; text-align: left; vertical-align: top; }}
td.body {{ white-space: pre-wrap; }}
</style>
</head>
<body>
<h1>SMS sink</h1>
<p>{count} message(s), newest first; refreshes every 5 s. JSON: <a href="/api/messages">/api/messages</a>.</p>
<form method="get" action="/"><label for="to">To</label> <input id="to" name="to" value="{to}"> <button>Filter</button></form>
<table>
<thead><tr><th scope="col">Received</th><th scope="col">To</th><th scope="col">From</th><th scope="col">Message</th></tr></thead>
<tbody>
{rows}</tbody>
</table>
</body>
</html>
"#,
        count = messages.len(),
        to = escape(query.get("to").map(String::as_str).unwrap_or("")),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::{body::Body, http::Request};
    use tower::ServiceExt as _;

    async fn call(app: &Router, request: Request<Body>) -> (StatusCode, String) {
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    fn send(sid: &str, form: &str) -> Request<Body> {
        Request::post(format!("/2010-04-01/Accounts/{sid}/Messages.json"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("authorization", "Basic QUNsb2NhbDo=")
            .body(Body::from(form.to_owned()))
            .unwrap()
    }

    #[tokio::test]
    async fn accepts_like_twilio_and_shows_what_arrived() {
        let app = router(Sink::default());
        let (status, body) = call(
            &app,
            send(
                "AClocal",
                "To=%2B34600111222&From=%2B34600000000&Body=Cita+%3Cconfirmada%3E",
            ),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
        let created: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(created["status"], "queued");
        assert!(created["sid"].as_str().unwrap().starts_with("SM"));
        assert_eq!(created["to"], "+34600111222");

        let (status, body) = call(&app, send("AClocal", "From=%2B34600000000&Body=x")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["code"], 21604);

        // The notifier's lookup of a send in doubt: by account, To and From.
        let lookup = |uri: &str| Request::get(uri).body(Body::empty()).unwrap();
        let (_, body) = call(
            &app,
            lookup("/2010-04-01/Accounts/AClocal/Messages.json?To=%2B34600111222&From=%2B34600000000&PageSize=100"),
        )
        .await;
        let listed: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(listed["messages"][0]["body"], "Cita <confirmada>");
        assert_eq!(listed["messages"][0]["sid"], created["sid"]);
        let (_, body) = call(&app, lookup("/2010-04-01/Accounts/ACother/Messages.json")).await;
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap()["messages"],
            json!([])
        );

        let (status, body) = call(&app, lookup("/api/messages?to=%2B34600111222")).await;
        assert_eq!(status, StatusCode::OK);
        let api: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(api["total"], 1);
        assert_eq!(api["messages"][0]["from"], "+34600000000");
        let (_, body) = call(&app, lookup("/api/messages?to=%2B34999")).await;
        assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["total"], 0);

        let (status, html) = call(&app, lookup("/")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("Cita &lt;confirmada&gt;"), "{html}");
        assert!(!html.contains("<confirmada>"));

        let (status, _) = call(
            &app,
            Request::delete("/api/messages")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (_, body) = call(&app, lookup("/api/messages")).await;
        assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["total"], 0);
        assert_eq!(call(&app, lookup("/health")).await.0, StatusCode::OK);
    }

    #[test]
    fn keeps_the_newest_messages_only() {
        let sink = Sink::default();
        for i in 0..MAX_MESSAGES + 2 {
            sink.push(Sms {
                sid: format!("SM{i}"),
                account_sid: "AC".into(),
                to: "+34600111222".into(),
                from: "+34600000000".into(),
                body: "x".into(),
                received_at: Utc::now(),
            });
        }
        let messages = sink.messages();
        assert_eq!(messages.len(), MAX_MESSAGES);
        assert_eq!(messages[0].sid, format!("SM{}", MAX_MESSAGES + 1));
    }
}
