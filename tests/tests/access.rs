//! Authentication, roles and the directory, through the API as each kind of user meets it.

use std::time::Duration;

use base64::Engine as _;
use citaflow_tests::{Services, TestApp, in_hours};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

const PASSWORD: &str = "a-long-enough-password";
const WEEKDAYS: [&str; 5] = ["monday", "tuesday", "wednesday", "thursday", "friday"];

/// One user of each role, logged in, plus a second patient and bookings to poke at.
struct World {
    app: TestApp,
    secretary: String,
    doctor: String,
    doctor_id: Uuid,
    patient: String,
    patient_id: Uuid,
    other_patient_id: Uuid,
    center_id: Uuid,
    /// The patient's booking with the doctor.
    own_booking: String,
    /// Another patient's booking with another doctor.
    other_booking: String,
}

async fn created(response: reqwest::Response) -> Value {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    body
}

async fn world() -> World {
    let app = TestApp::spawn_with(Services::no_email(), |_| {}).await;
    let suffix = Uuid::new_v4().simple().to_string();
    created(app.post("/users", &json!({"username": format!("sec-{suffix}"), "password": PASSWORD, "role": "secretary"})).await).await;
    let doctor = created(app.post("/doctors", &json!({"name": "Dr. Who", "specialty": "General", "username": format!("doc-{suffix}"), "password": PASSWORD})).await).await;
    let patient = created(app.post("/patients", &json!({"name": "Ana", "email": format!("ana-{suffix}@example.test"), "password": PASSWORD})).await).await;
    let other_patient = created(
        app.post(
            "/patients",
            &json!({"name": "Luis", "email": format!("luis-{suffix}@example.test")}),
        )
        .await,
    )
    .await;
    let other_doctor = created(
        app.post(
            "/doctors",
            &json!({"name": "Dr. No", "specialty": "General"}),
        )
        .await,
    )
    .await;
    let center = created(app.post("/centers", &json!({"name": format!("C {suffix}"), "address": "Calle 1", "timezone": "Europe/Madrid"})).await).await;
    let id = |v: &Value| Uuid::parse_str(v["id"].as_str().unwrap()).unwrap();
    let (doctor_id, patient_id, other_patient_id, center_id) =
        (id(&doctor), id(&patient), id(&other_patient), id(&center));

    let book = |patient: Uuid, doctor: Uuid, hours: i64| {
        let app = &app;
        async move {
            let response = app
                .post(
                    "/bookings",
                    &json!({"patient_id": patient, "doctor_id": doctor, "center_id": center_id,
                    "start": in_hours(hours).to_rfc3339(), "duration_minutes": 30}),
                )
                .await;
            assert_eq!(response.status(), 202);
            response.json::<Value>().await.unwrap()["booking_id"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let own_booking = book(patient_id, doctor_id, 30).await;
    let other_booking = book(other_patient_id, id(&other_doctor), 31).await;
    app.wait_for_decision(&own_booking, Duration::from_secs(10))
        .await;
    app.wait_for_decision(&other_booking, Duration::from_secs(10))
        .await;

    World {
        secretary: app.login(&format!("sec-{suffix}"), PASSWORD).await,
        doctor: app.login(&format!("doc-{suffix}"), PASSWORD).await,
        patient: app
            .login(&format!("ana-{suffix}@example.test"), PASSWORD)
            .await,
        app,
        doctor_id,
        patient_id,
        other_patient_id,
        center_id,
        own_booking,
        other_booking,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_gets_exactly_what_it_may() {
    let w = world().await;
    let app = &w.app;
    let admin = app.admin_token.clone();
    let u = || Uuid::new_v4().simple().to_string();
    let booking = |patient: Uuid, hours: i64| {
        json!({"patient_id": patient, "doctor_id": w.doctor_id, "center_id": w.center_id,
               "start": in_hours(hours).to_rfc3339(), "duration_minutes": 30})
    };
    let own = &w.own_booking;
    let other = &w.other_booking;
    let service = app
        .post(
            "/services",
            &json!({"name": format!("Revisión {}", u()), "duration_minutes": 30,
                    "doctor_ids": [w.doctor_id]}),
        )
        .await
        .json::<Value>()
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // (method, path, body, [admin, secretary, doctor, patient, anonymous])
    type Case = (Method, String, Option<Value>, [u16; 5]);
    let cases: Vec<Case> = vec![
        (
            Method::POST,
            "/users".into(),
            Some(
                json!({"username": format!("u{}", u()), "password": PASSWORD, "role": "secretary"}),
            ),
            [201, 403, 403, 403, 401],
        ),
        (
            Method::GET,
            "/users".into(),
            None,
            [200, 403, 403, 403, 401],
        ),
        (
            Method::POST,
            "/centers".into(),
            Some(json!({"name": format!("c{}", u()), "address": "x", "timezone": "UTC"})),
            [201, 403, 403, 403, 401],
        ),
        (
            Method::GET,
            "/centers".into(),
            None,
            [200, 200, 200, 200, 401],
        ),
        (
            Method::GET,
            format!("/centers/{}", w.center_id),
            None,
            [200, 200, 200, 200, 401],
        ),
        (
            Method::POST,
            "/doctors".into(),
            Some(json!({"name": "D", "specialty": "S"})),
            [201, 403, 403, 403, 401],
        ),
        (
            Method::GET,
            "/doctors".into(),
            None,
            [200, 200, 200, 200, 401],
        ),
        (
            Method::POST,
            "/patients".into(),
            Some(json!({"name": "P"})),
            [201, 201, 403, 403, 401],
        ),
        (
            Method::GET,
            "/patients".into(),
            None,
            [200, 200, 403, 403, 401],
        ),
        (
            Method::GET,
            format!("/patients/{}", w.patient_id),
            None,
            [200, 200, 403, 200, 401],
        ),
        (
            Method::GET,
            format!("/patients/{}", w.other_patient_id),
            None,
            [200, 200, 403, 404, 401],
        ),
        (
            Method::POST,
            "/bookings".into(),
            Some(booking(w.patient_id, 50)),
            [202, 202, 403, 202, 401],
        ),
        (
            Method::POST,
            "/bookings".into(),
            Some(booking(w.other_patient_id, 60)),
            [202, 202, 403, 403, 401],
        ),
        (
            Method::GET,
            format!(
                "/availability?service_id={service}&doctor_id={}",
                w.doctor_id
            ),
            None,
            [200, 200, 200, 200, 401],
        ),
        (
            Method::GET,
            "/bookings".into(),
            None,
            [200, 200, 200, 200, 401],
        ),
        (
            Method::GET,
            format!("/bookings/{own}"),
            None,
            [200, 200, 200, 200, 401],
        ),
        (
            Method::GET,
            format!("/bookings/{other}"),
            None,
            [200, 200, 404, 404, 401],
        ),
        (
            Method::GET,
            format!("/bookings?doctor_id={}", Uuid::new_v4()),
            None,
            [200, 200, 403, 200, 401],
        ),
        (
            Method::GET,
            format!("/bookings?patient_id={}", w.other_patient_id),
            None,
            [200, 200, 200, 403, 401],
        ),
        (
            Method::POST,
            "/services".into(),
            Some(json!({"name": format!("s{}", u()), "duration_minutes": 30})),
            [201, 403, 403, 403, 401],
        ),
        (
            Method::GET,
            "/services".into(),
            None,
            [200, 200, 200, 200, 401],
        ),
        (
            Method::PUT,
            format!("/services/{}/doctors", Uuid::new_v4()),
            Some(json!({"doctor_ids": []})),
            [404, 403, 403, 403, 401],
        ),
        (
            Method::POST,
            "/working-hours".into(),
            Some(json!({"doctor_id": w.doctor_id, "center_id": w.center_id,
                        "weekday": "monday", "start": "09:00", "end": "10:00"})),
            [201, 201, 403, 403, 401],
        ),
        (
            Method::GET,
            "/working-hours".into(),
            None,
            [200, 200, 200, 403, 401],
        ),
        (
            Method::GET,
            format!("/working-hours?doctor_id={}", Uuid::new_v4()),
            None,
            [200, 200, 403, 403, 401],
        ),
        (
            Method::DELETE,
            format!("/working-hours/{}", Uuid::new_v4()),
            None,
            [404, 404, 403, 403, 401],
        ),
        (
            Method::POST,
            "/agenda-exceptions".into(),
            Some(json!({"doctor_id": w.doctor_id, "kind": "time_off", "date": "2030-01-07"})),
            [201, 201, 403, 403, 401],
        ),
        (
            Method::GET,
            "/agenda-exceptions".into(),
            None,
            [200, 200, 200, 403, 401],
        ),
        (
            Method::GET,
            format!("/agenda-exceptions?doctor_id={}", Uuid::new_v4()),
            None,
            [200, 200, 403, 403, 401],
        ),
        (
            Method::POST,
            format!("/bookings/{other}/cancel"),
            Some(json!({})),
            [0, 0, 403, 404, 401],
        ),
        (
            Method::POST,
            format!("/bookings/{other}/reschedule"),
            Some(json!({"start": in_hours(70).to_rfc3339()})),
            [0, 0, 403, 404, 401],
        ),
        // Attendance: staff and the booking's doctor, once it has started (these start in 30
        // and 31 hours: 409 not_started); patients never; another doctor's booking is 404.
        (
            Method::POST,
            format!("/bookings/{own}/attendance"),
            Some(json!({"outcome": "attended"})),
            [409, 409, 409, 403, 401],
        ),
        (
            Method::POST,
            format!("/bookings/{other}/attendance"),
            Some(json!({"outcome": "no_show"})),
            [409, 409, 404, 403, 401],
        ),
        // History: as the booking itself.
        (
            Method::GET,
            format!("/bookings/{own}/history"),
            None,
            [200, 200, 200, 200, 401],
        ),
        (
            Method::GET,
            format!("/bookings/{other}/history"),
            None,
            [200, 200, 404, 404, 401],
        ),
    ];
    let tokens = [
        admin.as_str(),
        w.secretary.as_str(),
        w.doctor.as_str(),
        w.patient.as_str(),
        "",
    ];
    let roles = ["admin", "secretary", "doctor", "patient", "anonymous"];
    let mut failures = Vec::new();
    for (method, path, body, expected) in &cases {
        for (i, token) in tokens.iter().enumerate() {
            if expected[i] == 0 {
                continue; // staff changes to others' bookings are covered in the workflow tests
            }
            // Fresh unique bodies per caller where uniqueness matters.
            let body = body.clone().map(|mut b| {
                if let Some(name) = b.get("username").and_then(Value::as_str) {
                    b["username"] = json!(format!("{name}{i}"));
                }
                if let Some(name) = b.get("name").and_then(Value::as_str) {
                    b["name"] = json!(format!("{name}{i}"));
                }
                // A weekday per caller, so one caller's hours never overlap another's.
                if b.get("weekday").is_some() {
                    b["weekday"] = json!(WEEKDAYS[i]);
                }
                b
            });
            let response = app
                .request_as(token, method.clone(), path, body.as_ref())
                .await;
            let status = response.status().as_u16();
            if status != expected[i] {
                failures.push(format!(
                    "{method} {path} as {}: expected {}, got {status}",
                    roles[i], expected[i]
                ));
            }
            let body: Value = response.json().await.unwrap_or(Value::Null);
            if status >= 400 {
                assert!(
                    body["error"]["code"].is_string(),
                    "{method} {path}: error shape: {body}"
                );
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");

    // Lists are filtered by who asks.
    let doctor_view: Value = app
        .get_as(&w.doctor, "/bookings")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        doctor_view["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["doctor_id"] == w.doctor_id.to_string())
    );
    let patient_view: Value = app
        .get_as(&w.patient, "/bookings")
        .await
        .json()
        .await
        .unwrap();
    assert!(patient_view["total"].as_i64().unwrap() >= 1);
    assert!(
        patient_view["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["patient_id"] == w.patient_id.to_string())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patient_cannot_touch_another_patients_appointment() {
    let w = world().await;
    let app = &w.app;
    let other = &w.other_booking;
    assert_eq!(
        app.get_as(&w.patient, &format!("/bookings/{other}"))
            .await
            .status(),
        404
    );
    assert_eq!(
        app.post_as(&w.patient, &format!("/bookings/{other}/cancel"), &json!({}))
            .await
            .status(),
        404
    );
    let moved = app
        .post_as(
            &w.patient,
            &format!("/bookings/{other}/reschedule"),
            &json!({"start": in_hours(80).to_rfc3339()}),
        )
        .await;
    assert_eq!(moved.status(), 404);
    assert_eq!(
        app.get_as(&w.patient, &format!("/bookings/{other}/history"))
            .await
            .status(),
        404
    );
    assert_eq!(
        app.post_as(
            &w.patient,
            &format!("/bookings/{other}/attendance"),
            &json!({"outcome": "no_show"})
        )
        .await
        .status(),
        403
    );
    // Nothing happened to it.
    let b: Value = app
        .get(&format!("/bookings/{other}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(b["status"], "confirmed");
    // And a random id looks exactly like someone else's.
    let random = app
        .get_as(&w.patient, &format!("/bookings/{}", Uuid::new_v4()))
        .await;
    assert_eq!(random.status(), 404);
    // The patient can cancel their own.
    let own = app
        .post_as(
            &w.patient,
            &format!("/bookings/{}/cancel", w.own_booking),
            &json!({}),
        )
        .await;
    assert_eq!(own.status(), 202);
}

fn forge(header: &Value, claims: &Value, key: &[u8]) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let signing_input = format!(
        "{}.{}",
        b64.encode(header.to_string()),
        b64.encode(claims.to_string())
    );
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(signing_input.as_bytes());
    format!(
        "{signing_input}.{}",
        b64.encode(mac.finalize().into_bytes())
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_expired_and_tampered_tokens_get_one_uniform_401() {
    let w = world().await;
    let app = &w.app;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let claims_of = |token: &str| -> Value {
        serde_json::from_slice(&b64.decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap()
    };
    let patient_claims = claims_of(&w.patient);
    let secret =
        secrecy::ExposeSecret::expose_secret(app.settings.auth.jwt_secret.as_ref().unwrap())
            .as_bytes()
            .to_vec();
    let hs256 = json!({"alg": "HS256", "typ": "JWT"});

    // Sanity: a correctly forged token with the real key works (so the attacks below are
    // refused for their flaw, not for a mistake in forging).
    let genuine = forge(&hs256, &patient_claims, &secret);
    assert_eq!(app.get_as(&genuine, "/bookings").await.status(), 200);

    let mut admin_claims = patient_claims.clone();
    admin_claims["role"] = json!("admin");
    let mut expired = patient_claims.clone();
    expired["exp"] = json!(chrono::Utc::now().timestamp() - 3600);
    let mut wrong_audience = patient_claims.clone();
    wrong_audience["aud"] = json!("someone-else");
    let unsigned = format!(
        "{}.{}.",
        b64.encode(json!({"alg": "none", "typ": "JWT"}).to_string()),
        b64.encode(admin_claims.to_string())
    );
    let tampered = {
        let parts: Vec<&str> = w.patient.split('.').collect();
        format!(
            "{}.{}.{}",
            parts[0],
            b64.encode(admin_claims.to_string()),
            parts[2]
        )
    };
    let attacks = [
        ("alg none", unsigned),
        (
            "wrong key",
            forge(
                &hs256,
                &admin_claims,
                b"not-the-key-not-the-key-not-the-key!",
            ),
        ),
        ("expired", forge(&hs256, &expired, &secret)),
        ("wrong audience", forge(&hs256, &wrong_audience, &secret)),
        ("tampered role claim", tampered),
        ("garbage", "not.a.token".to_string()),
    ];
    let mut bodies = Vec::new();
    for (name, token) in attacks {
        let response = app.get_as(&token, "/users").await;
        assert_eq!(response.status(), 401, "{name}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        bodies.push(response.text().await.unwrap());
    }
    let missing = app.request_as("", Method::GET, "/users", None).await;
    assert_eq!(missing.status(), 401);
    bodies.push(missing.text().await.unwrap());
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "one uniform 401: {bodies:#?}"
    );

    // A deactivated user's token stops working at once.
    let patient_user = patient_claims["sub"].as_str().unwrap();
    assert_eq!(
        app.post(&format!("/users/{patient_user}/deactivate"), &json!({}))
            .await
            .status(),
        200
    );
    assert_eq!(app.get_as(&w.patient, "/bookings").await.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_are_limited_after_repeated_failures() {
    let app = TestApp::spawn_with(Services::api_only(), |_| {}).await;
    let suffix = Uuid::new_v4().simple().to_string();
    created(app.post("/users", &json!({"username": format!("sec-{suffix}"), "password": PASSWORD, "role": "secretary"})).await).await;
    let attempt = |password: &'static str| {
        let app = &app;
        let username = format!("sec-{suffix}");
        async move {
            app.request_as(
                "",
                Method::POST,
                "/auth/login",
                Some(&json!({"username": username, "password": password})),
            )
            .await
        }
    };
    for _ in 0..5 {
        assert_eq!(attempt("wrong-password-x").await.status(), 401);
    }
    let limited = attempt(PASSWORD).await;
    assert_eq!(limited.status(), 429, "even the right password waits");
    assert!(limited.headers().contains_key("retry-after"));
    // Unknown users and odd input answer like any failure, never 500.
    for username in ["nobody", "\u{0}\u{94}", &"x".repeat(5000)] {
        let r = app
            .request_as(
                "",
                Method::POST,
                "/auth/login",
                Some(&json!({"username": username, "password": "p"})),
            )
            .await;
        assert!(
            r.status() == 401 || r.status() == 400,
            "{username:?}: {}",
            r.status()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_create_reports_each_bad_row_and_creates_the_rest() {
    let app = TestApp::spawn_with(Services::api_only(), |_| {}).await;
    let suffix = Uuid::new_v4().simple().to_string();
    let mut items: Vec<Value> = (0..1000)
        .map(|i| json!({"name": format!("Paciente {i}"), "email": format!("p{i}-{suffix}@example.test"), "phone": format!("+3460{:07}", i)}))
        .collect();
    let bad = [7, 100, 101, 250, 333, 500, 612, 777, 901, 999];
    let breakages = [
        json!({"name": ""}),
        json!({"name": "X", "phone": "12345"}),
        json!({"name": "X", "email": "not-an-email"}),
        json!({"name": "X", "status": "MAYBE"}),
        json!({"name": "X", "language": "fr"}),
        json!({"email": "missing-name@example.test"}),
        json!({"name": "X", "salary": 1}),
        json!({"name": 42}),
        json!({"name": "Dup", "email": format!("p0-{suffix}@example.test")}),
        json!("not an object"),
    ];
    for (i, index) in bad.iter().enumerate() {
        items[*index] = breakages[i].clone();
    }
    let response = app.post("/patients/bulk", &Value::Array(items)).await;
    assert_eq!(response.status(), 200);
    let result: Value = response.json().await.unwrap();
    assert_eq!(result["created"], 990);
    assert_eq!(result["failed"], 10);
    let failed: Vec<u64> = result["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "error")
        .map(|r| {
            assert!(
                r["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty()),
                "{r}"
            );
            r["index"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(failed, bad.iter().map(|i| *i as u64).collect::<Vec<_>>());
    let dup = result["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["index"] == 901)
        .unwrap();
    assert_eq!(dup["error"]["code"], "duplicate");

    let page: Value = app.get("/patients?per_page=1").await.json().await.unwrap();
    assert_eq!(page["total"], 990);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_are_409_and_lists_paginate_and_filter() {
    let app = TestApp::spawn_with(Services::no_email(), |_| {}).await;
    let center = json!({"name": "Clínica Norte", "address": "x", "timezone": "Europe/Madrid"});
    assert_eq!(app.post("/centers", &center).await.status(), 201);
    let again = app
        .post(
            "/centers",
            &json!({"name": "clínica norte", "address": "y", "timezone": "UTC"}),
        )
        .await;
    assert_eq!(again.status(), 409);
    assert_eq!(
        again.json::<Value>().await.unwrap()["error"]["code"],
        "duplicate"
    );
    assert_eq!(
        app.post(
            "/users",
            &json!({"username": "admin", "password": PASSWORD, "role": "admin"})
        )
        .await
        .status(),
        409
    );

    let d = app.directory().await;
    for h in 0..7 {
        app.book(&d, in_hours(100 + h), 30).await;
    }
    app.wait_until_none_pending(Duration::from_secs(15)).await;
    let page1: Value = app
        .get(&format!(
            "/bookings?doctor_id={}&per_page=3&page=1",
            d.doctor
        ))
        .await
        .json()
        .await
        .unwrap();
    let page3: Value = app
        .get(&format!(
            "/bookings?doctor_id={}&per_page=3&page=3",
            d.doctor
        ))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page1["total"], 7);
    assert_eq!(page1["items"].as_array().unwrap().len(), 3);
    assert_eq!(page3["items"].as_array().unwrap().len(), 1);
    let starts: Vec<&str> = page1["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["starts_at"].as_str().unwrap())
        .collect();
    assert!(
        starts.windows(2).all(|w| w[0] < w[1]),
        "sorted by start time"
    );
    let day = in_hours(100).format("%Y-%m-%d").to_string();
    let filtered: Value = app
        .get(&format!(
            "/bookings?center_id={}&status=confirmed&from={}&to={}",
            d.center,
            in_hours(100).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            in_hours(103).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(filtered["total"], 3, "{filtered}");
    assert_eq!(
        app.get(&format!("/bookings?from={day}&status=maybe"))
            .await
            .status(),
        422
    );
    assert_eq!(app.get("/bookings?per_page=100000").await.status(), 422);
    assert_eq!(app.get("/bookings?page=abc").await.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_matches_the_routes() {
    let app = TestApp::spawn_with(Services::api_only(), |_| {}).await;
    let doc: Value = app
        .request_as("", Method::GET, "/openapi.json", None)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "OpenAPI 3.1"
    );
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 15, "{}", paths.len());
    for (path, operations) in paths {
        let concrete = path.replace("{id}", &Uuid::new_v4().to_string());
        for method in operations.as_object().unwrap().keys() {
            let method: Method = method.to_uppercase().parse().unwrap();
            let response = app
                .request_as("", method.clone(), &concrete, Some(&json!({})))
                .await;
            let status = response.status().as_u16();
            assert!(
                status != 404 && status != 405,
                "{method} {path} is documented but not routed ({status})"
            );
            // Signing in and signing up are the two doors without a token.
            if path != "/auth/login" && path != "/auth/signup" {
                assert_eq!(status, 401, "{method} {path} must require a token");
            }
            let documented = &operations[method.as_str().to_lowercase()]["responses"];
            assert!(
                documented.get(status.to_string()).is_some(),
                "{method} {path} answers {status}, which its document does not list"
            );
        }
    }
    // And the interactive page is served.
    assert_eq!(
        app.request_as("", Method::GET, "/docs/", None)
            .await
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_bodies_must_be_objects_and_errors_speak_the_requests_terms() {
    let app = TestApp::spawn_with(Services::api_only(), |_| {}).await;
    let user = created(app.post("/users", &json!({"username": format!("u-{}", Uuid::new_v4().simple()), "password": PASSWORD, "role": "secretary"})).await).await;
    let path = format!("/users/{}", user["id"].as_str().unwrap());
    // A derived `Deserialize` would take an array as the struct's fields in order.
    for body in [
        json!([null, null]),
        json!(["x", true]),
        json!("active"),
        json!(null),
    ] {
        let response = app
            .request_as(&app.admin_token, Method::PATCH, &path, Some(&body))
            .await;
        let status = response.status().as_u16();
        let error: Value = response.json().await.unwrap();
        assert_eq!(status, 400, "{body} -> {error}");
        assert_eq!(error["error"]["code"], "invalid_body", "{error}");
        let reason = error["error"]["details"]["reason"].as_str().unwrap();
        assert!(reason.starts_with("expected a JSON object"), "{reason}");
    }
    // Field errors name the field, not the Rust type.
    let response = app
        .post("/bookings", &json!({"patient_id": "nope", "doctor_id": Uuid::new_v4(), "center_id": Uuid::new_v4(), "start": in_hours(5).to_rfc3339(), "duration_minutes": 30}))
        .await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    let reason = error["error"]["details"]["reason"].as_str().unwrap();
    assert!(reason.starts_with("`patient_id`: "), "{reason}");
    for leak in ["struct", "NewBooking", "line 1", "i64"] {
        assert!(!error.to_string().contains(leak), "{leak} in {error}");
    }
    // A bulk item that is not an object is that item's error, in the same terms.
    let response = app
        .post(
            "/centers/bulk",
            &json!([["Clínica", "Calle 1", "Europe/Madrid"]]),
        )
        .await;
    assert_eq!(response.status(), 200);
    let result: Value = response.json().await.unwrap();
    assert_eq!(result["results"][0]["status"], "error", "{result}");
    assert_eq!(result["results"][0]["error"]["code"], "invalid_body");
    // And the whole body of a create-many must be an array.
    let response = app.post("/centers/bulk", &json!({"name": "x"})).await;
    assert_eq!(response.status(), 400);
}

/// Schemathesis over the whole document, every check (status codes, response schemas, content
/// types, headers, negative data rejected, positive data accepted), with a token of each role
/// in turn; any failure or error fails the test. Login is fuzzed apart (hammering it trips the
/// per-address limiter). The roles go from the least to the most privileged, so what one run
/// deactivates (an admin can deactivate every other user) cannot blunt an earlier run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_does_what_its_openapi_document_says_for_every_role() {
    let st = std::env::var("CITAFLOW_DEV_SCHEMATHESIS")
        .ok()
        .or_else(|| {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../.cache/schemathesis/bin/st");
            std::path::Path::new(path)
                .exists()
                .then(|| path.to_string())
        })
        .expect("schemathesis is missing: `./dev test` installs it into .cache/schemathesis");
    // Operation-specific expectations (rules no schema can state) live beside the document.
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../schemathesis.toml");
    let w = world().await;
    // (role, token, operations filter, whether the token must still work after the run)
    let none: &[&str] = &[];
    let password = ["POST /users/{id}/password"];
    let runs = [
        ("patient", w.patient.clone(), none, true),
        ("doctor", w.doctor.clone(), none, true),
        ("secretary", w.secretary.clone(), none, true),
        // A password change revokes the user's tokens, the caller's own included, and the
        // admin's run can find its own id: the password route gets a run of its own, last,
        // where a revoked token's 401 (documented) is a fair answer.
        (
            "admin",
            w.app.admin_token.clone(),
            &["--exclude-name", password[0]][..],
            true,
        ),
        (
            "admin (password)",
            w.app.admin_token.clone(),
            &["--include-name", password[0]][..],
            false,
        ),
    ];
    for (role, token, filter, token_survives) in runs {
        let started = std::time::Instant::now();
        let run = tokio::process::Command::new(&st)
            .args(["--config-file", config, "--no-color"])
            .args(["run", &format!("{}/openapi.json", w.app.api_url)])
            .args(["--header", &format!("Authorization: Bearer {token}")])
            .args(["--checks", "all"])
            .args(["--exclude-path", "/auth/login"])
            // Sign-up is limited per address (429 after a few): tests/tests/signup.rs.
            .args(["--exclude-path", "/auth/signup"])
            .args(filter)
            .args(["--max-examples", "15"])
            // One worker: with more, Hypothesis's source inspection trips over CPython 3.11's
            // parser in threads ("AST constructor recursion depth mismatch").
            .args(["--workers", "1", "--request-timeout", "20"])
            .env("NO_PROXY", "127.0.0.1,localhost")
            .current_dir(std::env::temp_dir())
            .kill_on_drop(true)
            .output();
        // A guard against a hung run, not a speed target: a run on a busy machine takes minutes.
        let output = tokio::time::timeout(Duration::from_secs(600), run)
            .await
            .unwrap_or_else(|_| panic!("schemathesis as {role} took more than 600 s"))
            .expect("run schemathesis");
        // Reproductions can carry megabytes of generated body: keep each line readable.
        let clip = |bytes: &[u8]| -> String {
            String::from_utf8_lossy(bytes)
                .lines()
                .map(|l| match l.char_indices().nth(400) {
                    Some((at, _)) => format!("{}…", &l[..at]),
                    None => l.to_owned(),
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        let (stdout, stderr) = (clip(&output.stdout), clip(&output.stderr));
        assert!(
            stdout.contains("Tested:"),
            "schemathesis as {role} did not complete:\n{stdout}\n{stderr}"
        );
        assert!(
            output.status.success(),
            "schemathesis as {role} found failures or errors:\n{stdout}\n{stderr}"
        );
        eprintln!(
            "schemathesis as {role}: no failures in {:.0?}",
            started.elapsed()
        );
        // The run reached the API as this role to the end (the token still works), so its
        // passes are not 401s.
        if token_survives {
            assert_eq!(
                w.app.get_as(&token, "/centers").await.status(),
                200,
                "{role}"
            );
        }
    }
}
