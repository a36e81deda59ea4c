//! A recipient the SMTP server keeps refusing for now (`450` to `RCPT TO`) is given up on after
//! `notifier.deferred_give_up_secs` and recorded `failed` with the reason; the patient behind
//! it on the same partition gets their email right after, and the refused one is not retried
//! again. A server closing the channel (`421`) is not given up on: it is retried until it
//! takes the message. The SMTP server is a tiny responder in the test, so it can answer 4xx.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, Utc};
use citaflow_tests::{Services, TestApp, in_hours};
use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::TcpListener,
};
use uuid::Uuid;

/// What the responder saw, in order: `refused <addr>` or `accepted <addr>`.
type Log = Arc<Mutex<Vec<String>>>;

/// The reply to `RCPT TO` for the refused address; `None` accepts it like anyone else.
type Refusal = Arc<Mutex<Option<&'static str>>>;

/// Greets 220, answers EHLO 250, MAIL 250, RCPT with the `refusal` for `refused` and 250 for
/// anyone else, DATA 354 then 250. Answers its port.
async fn smtp_responder(refused: String, refusal: Refusal, log: Log) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let refused = refused.to_lowercase();
            let log = log.clone();
            let refusal = refusal.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                let _ = write.write_all(b"220 responder ESMTP\r\n").await;
                let mut recipients: Vec<String> = Vec::new();
                while let Ok(Some(line)) = lines.next_line().await {
                    let upper = line.to_uppercase();
                    let refusal = *refusal.lock().unwrap();
                    let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                        b"250-responder\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 OK\r\n"
                    } else if upper.starts_with("MAIL FROM") {
                        recipients.clear();
                        b"250 2.1.0 OK\r\n"
                    } else if upper.starts_with("RCPT TO") {
                        let address = line
                            .split_once('<')
                            .and_then(|(_, rest)| rest.split_once('>'))
                            .map(|(address, _)| address.to_lowercase())
                            .unwrap_or_default();
                        if let Some(reply) = refusal.filter(|_| address == refused) {
                            log.lock().unwrap().push(format!("refused {address}"));
                            reply.as_bytes()
                        } else {
                            recipients.push(address);
                            b"250 2.1.5 OK\r\n"
                        }
                    } else if upper == "DATA" {
                        let _ = write.write_all(b"354 go ahead\r\n").await;
                        let mut ended = false;
                        while let Ok(Some(body)) = lines.next_line().await {
                            if body == "." {
                                ended = true;
                                break;
                            }
                        }
                        if !ended {
                            return;
                        }
                        let mut log = log.lock().unwrap();
                        for address in recipients.drain(..) {
                            log.push(format!("accepted {address}"));
                        }
                        b"250 2.0.0 queued\r\n"
                    } else if upper.starts_with("RSET") || upper.starts_with("NOOP") {
                        b"250 OK\r\n"
                    } else if upper.starts_with("QUIT") {
                        let _ = write.write_all(b"221 bye\r\n").await;
                        return;
                    } else {
                        b"502 5.5.2 not implemented\r\n"
                    };
                    if write.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// (status, detail, attempts, created_at, updated_at) of a booking's email delivery, once it
/// is no longer `sending`.
async fn closed_delivery(
    app: &TestApp,
    booking_id: Uuid,
    within: Duration,
) -> (String, String, i32, DateTime<Utc>, DateTime<Utc>) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let row: Option<(String, Option<String>, i32, DateTime<Utc>, DateTime<Utc>)> =
            sqlx::query_as(
                "SELECT status, detail, attempts, created_at, updated_at FROM notification_deliveries
                  WHERE booking_id = $1 AND channel = 'email'",
            )
            .bind(booking_id)
            .fetch_optional(&app.pool)
            .await
            .unwrap();
        if let Some((status, detail, attempts, created, updated)) = &row
            && status != "sending"
        {
            let detail = detail.clone().unwrap_or_default();
            return (status.clone(), detail, *attempts, *created, *updated);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the email of booking {booking_id} is still not closed after {within:?}: {row:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn book(app: &TestApp, patient: Uuid, doctor: Uuid, center: Uuid, hours: i64) -> Uuid {
    let directory = citaflow_tests::Directory {
        doctor,
        center,
        patient,
        email: String::new(),
    };
    let response = app.book(&directory, in_hours(hours), 30).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 202, "book: {body}");
    let id = body["booking_id"]
        .as_str()
        .or(body["id"].as_str())
        .unwrap()
        .to_owned();
    let decided = app.wait_for_decision(&id, Duration::from_secs(20)).await;
    assert_eq!(decided["status"], "confirmed", "{decided}");
    Uuid::parse_str(&id).unwrap()
}

/// The bound of these tests.
const GIVE_UP: Duration = Duration::from_secs(3);

/// An app whose email notifier talks to a responder refusing `refused` with `refusal`.
async fn app_with_responder(refused: &str, refusal: Refusal, log: Log) -> TestApp {
    let port = smtp_responder(refused.to_owned(), refusal, log).await;
    TestApp::spawn_with(Services::default(), |s| {
        s.smtp.host = "127.0.0.1".into();
        s.smtp.port = port;
        s.smtp.message_log_url = None;
        s.notifier.deferred_give_up_secs = GIVE_UP.as_secs();
    })
    .await
}

/// A patient whose email is `email`.
async fn create_patient_with(app: &TestApp, email: &str) -> Uuid {
    let body = serde_json::json!({
        "name": "Lucía Pérez",
        "email": email,
        "phone": "+34600123456",
        "language": "es",
    });
    let response = app.post("/patients", &body).await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    Uuid::parse_str(body["id"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn a_recipient_refused_for_now_is_given_up_on_in_time_without_holding_the_others() {
    let log: Log = Arc::default();
    // The refused address is known before the app exists: the patient is created with it.
    let refused = format!("busy-{}@example.test", Uuid::new_v4().simple());
    let refusal: Refusal = Arc::new(Mutex::new(Some("450 4.2.1 Mailbox busy\r\n")));
    let app = app_with_responder(&refused, refusal, log.clone()).await;
    let give_up = GIVE_UP;

    let doctor = app.create_doctor().await;
    let center = app.create_center().await;
    let busy = create_patient_with(&app, &refused).await;
    let (other, other_email) = app.create_patient("es").await;

    // The same doctor: both events are keyed alike and land on one partition, the refused
    // patient's first.
    let refused_booking = book(&app, busy, doctor, center, 24).await;
    let other_booking = book(&app, other, doctor, center, 26).await;

    let (status, detail, attempts, created, updated) =
        closed_delivery(&app, refused_booking, Duration::from_secs(20)).await;
    assert_eq!(status, "failed", "{detail}");
    assert!(detail.starts_with("gave up after "), "{detail}");
    assert!(detail.contains("450"), "{detail}");
    assert!(detail.contains("Mailbox busy"), "{detail}");
    assert!(
        !detail.contains(&refused),
        "the address is redacted: {detail}"
    );
    assert!(attempts > 1, "retried before giving up: {attempts}");
    let held = (updated - created).to_std().unwrap();
    assert!(
        held >= give_up && held < give_up + Duration::from_secs(3),
        "given up after {held:?}, the bound is {give_up:?}"
    );

    let (status, detail, _, _, _) =
        closed_delivery(&app, other_booking, Duration::from_secs(20)).await;
    assert_eq!(status, "sent", "{detail}");

    // Nothing is retried forever: the refused recipient is not tried again.
    let refusals = |log: &Log| {
        log.lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with("refused"))
            .count()
    };
    let before = refusals(&log);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        refusals(&log),
        before,
        "the refused recipient was tried again"
    );
    assert_eq!(before, attempts as usize, "one RCPT per attempt");

    // The other patient's email was taken after the refused one was given up on.
    let log = log.lock().unwrap().clone();
    let last_refusal = log.iter().rposition(|l| l.starts_with("refused")).unwrap();
    let accepted = log
        .iter()
        .position(|l| *l == format!("accepted {}", other_email.to_lowercase()))
        .unwrap_or_else(|| panic!("the other patient's email was not accepted: {log:?}"));
    assert!(accepted > last_refusal, "{log:?}");
}

#[tokio::test]
async fn a_server_closing_the_channel_is_retried_past_the_bound_until_it_takes_the_message() {
    let log: Log = Arc::default();
    let address = format!("closing-{}@example.test", Uuid::new_v4().simple());
    let refusal: Refusal = Arc::new(Mutex::new(Some(
        "421 4.3.2 Service shutting down, try later\r\n",
    )));
    let app = app_with_responder(&address, refusal.clone(), log.clone()).await;
    let doctor = app.create_doctor().await;
    let center = app.create_center().await;
    let patient = create_patient_with(&app, &address).await;
    let booking = book(&app, patient, doctor, center, 24).await;

    // Well past the bound, the delivery is still open and still being tried.
    tokio::time::sleep(GIVE_UP + Duration::from_secs(3)).await;
    let (status, attempts): (String, i32) = sqlx::query_as(
        "SELECT status, attempts FROM notification_deliveries
          WHERE booking_id = $1 AND channel = 'email'",
    )
    .bind(booking)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(status, "sending", "a 421 is not given up on");
    assert!(attempts > 2, "still retried: {attempts}");

    // The server is back: the email goes out.
    *refusal.lock().unwrap() = None;
    let (status, detail, _, _, _) = closed_delivery(&app, booking, Duration::from_secs(20)).await;
    assert_eq!(status, "sent", "{detail}");
    let log = log.lock().unwrap().clone();
    assert_eq!(
        log.last().map(String::as_str),
        Some(format!("accepted {}", address.to_lowercase()).as_str()),
        "{log:?}"
    );
}
