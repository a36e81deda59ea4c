//! The limits a clinic sets and the headers every answer carries: future bookings per patient,
//! the rate of booking commands per user, the item cap of bulk requests, the booking horizon
//! and whole-minute starts, `nosniff`/`no-store`, and `/metrics` only on the ops listener.

use std::time::Duration;

use citaflow_tests::{Directory, Services, TestApp, in_hours};
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A directory whose patient can log in, and the patient's token.
async fn patient_world(app: &TestApp) -> (Directory, String) {
    let d = app.directory().await;
    app.patient_who_logs_in(&d).await
}

fn booking(d: &Directory, start: &str) -> Value {
    json!({
        "patient_id": d.patient,
        "doctor_id": d.doctor,
        "center_id": d.center,
        "start": start,
        "duration_minutes": 30,
    })
}

/// The `hour`-th hour from now, on a whole minute, as RFC 3339.
fn slot(hour: i64) -> String {
    in_hours(hour).to_rfc3339()
}

async fn json_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patient_over_the_cap_of_future_bookings_gets_409_whoever_books() {
    let app = TestApp::spawn_with(Services::api_only(), |s| {
        s.api.max_future_bookings_per_patient = 3;
    })
    .await;
    let (d, patient) = patient_world(&app).await;

    // No processor: the bookings stay pending, and pending ones count.
    let mut first = None;
    for hour in 1..=3 {
        let (status, body) = json_of(
            app.post_as(&patient, "/bookings", &booking(&d, &slot(24 * hour)))
                .await,
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        first.get_or_insert(body["booking_id"].as_str().unwrap().to_owned());
    }
    let (status, body) = json_of(
        app.post_as(&patient, "/bookings", &booking(&d, &slot(24 * 4)))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "too_many_bookings");
    assert_eq!(body["error"]["details"]["limit"], 3);
    assert!(
        body["error"]["message"].as_str().unwrap().contains('3'),
        "{body}"
    );

    // Staff booking for the patient meet the same cap.
    let (status, body) = json_of(app.post("/bookings", &booking(&d, &slot(24 * 5))).await).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "too_many_bookings");

    // Moving a booking does not count the one it moves.
    let moved = app
        .post_as(
            &patient,
            &format!("/bookings/{}/reschedule", first.unwrap()),
            &json!({"start": slot(24 * 6)}),
        )
        .await;
    assert_eq!(moved.status(), StatusCode::ACCEPTED);

    // Another patient is not affected; and a burst of one patient's requests is counted one
    // by one: exactly the cap is accepted.
    let (other, other_token) = patient_world(&app).await;
    let burst = (0..40).map(|i| {
        let (app, other, token) = (&app, &other, &other_token);
        async move {
            app.post_as(token, "/bookings", &booking(other, &slot(24 * (10 + i))))
                .await
                .status()
        }
    });
    let statuses = join_all(burst).await;
    let accepted = statuses
        .iter()
        .filter(|s| **s == StatusCode::ACCEPTED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!((accepted, refused), (3, 37), "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn booking_commands_over_the_rate_get_429_with_retry_after() {
    let app = TestApp::spawn_with(Services::api_only(), |s| {
        s.api.booking_rate_per_sec = 1;
        s.api.booking_rate_burst = 3;
    })
    .await;
    let (d, patient) = patient_world(&app).await;

    let mut ids = Vec::new();
    for hour in 1..=3 {
        let (status, body) = json_of(
            app.post_as(&patient, "/bookings", &booking(&d, &slot(24 * hour)))
                .await,
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        ids.push(body["booking_id"].as_str().unwrap().to_owned());
    }
    // The burst is spent: creates, cancels and reschedules alike are refused.
    let refused = [
        app.post_as(&patient, "/bookings", &booking(&d, &slot(24 * 4)))
            .await,
        app.post_as(
            &patient,
            &format!("/bookings/{}/cancel", ids[0]),
            &json!({}),
        )
        .await,
        app.post_as(
            &patient,
            &format!("/bookings/{}/reschedule", ids[1]),
            &json!({"start": slot(24 * 7)}),
        )
        .await,
    ];
    for response in refused {
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry_after: u64 = response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=2).contains(&retry_after), "{retry_after}");
        let (_, body) = json_of(response).await;
        assert_eq!(body["error"]["code"], "too_many_requests");
    }

    // Admins are not limited, and the limit is per user.
    for hour in 10..20 {
        let response = app.post("/bookings", &booking(&d, &slot(24 * hour))).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
    }

    // After Retry-After the user may book again.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let again = app
        .post_as(&patient, "/bookings", &booking(&d, &slot(24 * 30)))
        .await;
    assert_eq!(again.status(), StatusCode::ACCEPTED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_request_over_the_item_cap_is_refused_naming_the_cap() {
    let app = TestApp::spawn_with(Services::api_only(), |_| {}).await;
    let cap = ingest_api::http::bulk::MAX_ITEMS;
    for path in [
        "/centers/bulk",
        "/doctors/bulk",
        "/patients/bulk",
        "/users/bulk",
    ] {
        let over = Value::Array(vec![json!({}); cap + 1]);
        let (status, body) = json_of(app.post(path, &over).await).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {body}");
        assert_eq!(body["error"]["code"], "validation_failed", "{path}");
        let message = body["error"]["details"][0]["message"].as_str().unwrap();
        assert!(message.contains(&cap.to_string()), "{path}: {message}");
    }
    // The cap itself is taken (each invalid item gets its own error; nothing is created).
    let at_cap = Value::Array(vec![json!({}); cap]);
    let (status, body) = json_of(app.post("/centers/bulk", &at_cap).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["failed"], cap);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_beyond_the_horizon_or_off_the_whole_minute_are_422() {
    let app = TestApp::spawn_with(Services::api_only(), |s| {
        s.api.booking_horizon_days = 30;
    })
    .await;
    let d = app.directory().await;
    let day = (chrono::Utc::now() + chrono::Duration::days(2)).format("%Y-%m-%d");
    let whole = slot(48);
    let refused = [
        ("9999-12-31T23:45:00Z".to_owned(), "days ahead"),
        (slot(24 * 31), "30 days ahead"),
        (format!("{day}T10:00:30Z"), "whole minute"),
        (format!("{day}T10:00:00.5Z"), "whole minute"),
        (format!("{day}T14:59:60Z"), "whole minute"),
    ];
    for (start, why) in &refused {
        let (status, body) = json_of(app.post("/bookings", &booking(&d, start)).await).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{start}: {body}");
        let details = body["error"]["details"].as_array().unwrap();
        assert!(
            details
                .iter()
                .any(|e| e["field"] == "start" && e["message"].as_str().unwrap().contains(why)),
            "{start}: {body}"
        );
    }
    let (status, body) = json_of(app.post("/bookings", &booking(&d, &whole)).await).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id = body["booking_id"].as_str().unwrap();
    for (start, why) in &refused {
        let (status, body) = json_of(
            app.post(
                &format!("/bookings/{id}/reschedule"),
                &json!({ "start": start }),
            )
            .await,
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{start}: {body}");
        assert!(body.to_string().contains(why), "{start}: {body}");
    }
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM appointments")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows, 1, "refused requests write nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_has_security_headers_and_metrics_are_only_on_the_ops_port() {
    let app = TestApp::spawn_with(Services::api_only(), |_| {}).await;
    let login = app
        .http
        .post(app.url("/auth/login"))
        .json(&json!({"username": "nobody", "password": "wrong-password-here"}))
        .send()
        .await
        .unwrap();
    let answers = [
        ("GET /centers", app.get("/centers").await),
        ("GET /nowhere", app.get("/nowhere").await),
        ("POST /auth/login", login),
        ("GET /health/ready", app.get("/health/ready").await),
        (
            "POST /bookings (401)",
            app.post_as("not-a-token", "/bookings", &json!({})).await,
        ),
    ];
    for (what, response) in &answers {
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{what}");
        assert_eq!(headers["cache-control"], "no-store", "{what}");
    }
    // The API's description holds no personal data: cacheable, still nosniff.
    let document = app.get("/openapi.json").await;
    assert_eq!(document.status(), StatusCode::OK);
    assert_eq!(document.headers()["x-content-type-options"], "nosniff");
    let cache = document.headers()["cache-control"].to_str().unwrap();
    assert!(cache.starts_with("public"), "{cache}");

    // /metrics is not on the API port; it is on the ops port.
    let public = app.get("/metrics").await;
    assert_eq!(public.status(), StatusCode::NOT_FOUND);
    let ops = reqwest::get(format!("{}/metrics", app.api_ops_url))
        .await
        .unwrap();
    assert_eq!(ops.status(), StatusCode::OK);
    assert_eq!(ops.headers()["x-content-type-options"], "nosniff");
    let metrics = ops.text().await.unwrap();
    assert!(
        metrics.contains("citaflow_http_requests_total"),
        "{metrics}"
    );
    let ops_ready = reqwest::get(format!("{}/health/ready", app.api_ops_url))
        .await
        .unwrap();
    assert_eq!(ops_ready.status(), StatusCode::OK);
}

/// A stranger who fails five logins for a username locks out only their own address: the
/// owner, from the address they signed in from before, gets in at once; a new device with the
/// right password gets in too, only slowed down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_cannot_lock_an_account_out() {
    let app = TestApp::spawn_with(Services::api_only(), |_| {}).await;
    let username = format!("sec-{}", uuid::Uuid::new_v4().simple());
    let password = "a-long-enough-password";
    let created = app
        .post(
            "/users",
            &json!({"username": username, "password": password, "role": "secretary"}),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    // Clients from three loopback addresses: the owner's usual one, a stranger's, a new device.
    let from = |address: &str| {
        reqwest::Client::builder()
            .local_address(Some(address.parse().unwrap()))
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap()
    };
    let (owner, stranger, new_device) = (from("127.0.0.1"), from("127.0.0.2"), from("127.0.0.3"));
    let login = |client: &reqwest::Client, password: &str| {
        client
            .post(app.url("/auth/login"))
            .json(&json!({"username": username, "password": password}))
            .send()
    };
    assert_eq!(
        login(&owner, password).await.unwrap().status(),
        StatusCode::OK
    );
    for _ in 0..5 {
        assert_eq!(
            login(&stranger, "wrong-password-x").await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let locked = login(&stranger, password).await.unwrap();
    assert_eq!(
        locked.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the guesser waits"
    );
    assert!(locked.headers().contains_key("retry-after"));

    let started = std::time::Instant::now();
    assert_eq!(
        login(&owner, password).await.unwrap().status(),
        StatusCode::OK
    );
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "a known device goes straight through"
    );
    let started = std::time::Instant::now();
    assert_eq!(
        login(&new_device, password).await.unwrap().status(),
        StatusCode::OK,
        "the right password from a new device still gets in"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "slowed down after failures elsewhere"
    );
}
