//! Patients sign up themselves (`POST /auth/signup`): a patient and its user, signed in at
//! once, a welcome email sent once by the email notifier, duplicates and bad input refused in
//! words, and the attempts of one address limited.

use std::time::Duration;

use citaflow_tests::{Services, TestApp, mailpit};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

fn new_patient(email: &str) -> Value {
    json!({"name": "Lucía Pérez", "email": email, "phone": "+34600123456", "language": "es", "password": "a-long-password"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patient_signs_up_is_signed_in_and_gets_one_welcome_email() {
    let app = TestApp::spawn_with(
        Services {
            processor: false,
            ..Services::default()
        },
        |_| {},
    )
    .await;
    let email = format!("signup-{}@example.test", Uuid::new_v4().simple());
    let r = app
        .request_as("", Method::POST, "/auth/signup", Some(&new_patient(&email)))
        .await;
    assert_eq!(r.status(), 201);
    let token: Value = r.json().await.unwrap();
    assert_eq!(token["role"], "patient");
    let patient_id = token["patient_id"].as_str().unwrap().to_owned();
    // The token reads the patient's own record, and the email and password sign in.
    let access = token["access_token"].as_str().unwrap();
    let own: Value = app
        .get_as(access, &format!("/patients/{patient_id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(own["email"], email.as_str());
    assert_eq!(own["language"], "es");
    let login = app
        .request_as(
            "",
            Method::POST,
            "/auth/login",
            Some(&json!({"username": email, "password": "a-long-password"})),
        )
        .await;
    assert_eq!(login.status(), 200);

    let mails = mailpit::wait_for_messages(&email, 1, Duration::from_secs(30)).await;
    assert_eq!(mails[0].subject, "Bienvenida a Citaflow");
    assert!(
        mails[0].text.starts_with("Hola, Lucía Pérez:"),
        "{}",
        mails[0].text
    );
    let (status, attempts): (String, i32) =
        sqlx::query_as("SELECT status, attempts FROM welcome_emails WHERE patient_id = $1::uuid")
            .bind(&patient_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!((status.as_str(), attempts), ("sent", 1));
    // Sweeps after it send nothing more.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(mailpit::messages_to(&email).await.len(), 1);

    // The same email again is a conflict; staff-made patients get no welcome email.
    let again = app
        .request_as("", Method::POST, "/auth/signup", Some(&new_patient(&email)))
        .await;
    assert_eq!(again.status(), 409);
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["error"]["code"], "duplicate");
    let staff_made = format!("desk-{}@example.test", Uuid::new_v4().simple());
    let r = app
        .post("/patients", &json!({"name": "Desk", "email": staff_made}))
        .await;
    assert_eq!(r.status(), 201);
    let outbox: i64 = sqlx::query_scalar("SELECT count(*) FROM welcome_emails")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(outbox, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sign_ups_are_refused_in_words_and_an_address_is_limited() {
    let app = TestApp::spawn_with(Services::api_only(), |s| {
        s.api.signups_per_address_per_hour = 3;
    })
    .await;
    let bad = app
        .request_as(
            "",
            Method::POST,
            "/auth/signup",
            Some(&json!({"name": "", "email": "not-an-email", "password": "short"})),
        )
        .await;
    assert_eq!(bad.status(), 422);
    let body: Value = bad.json().await.unwrap();
    let fields: Vec<&str> = body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&"email"), "{body}");
    let no_password = app
        .request_as(
            "",
            Method::POST,
            "/auth/signup",
            Some(&json!({"name": "Ann", "email": "ann@example.test"})),
        )
        .await;
    assert_eq!(no_password.status(), 400);
    // Every attempt read counts (the malformed body was refused before): two more sign-ups,
    // then 429 with Retry-After, even for a valid one.
    for _ in 0..2 {
        let ok = app
            .request_as(
                "",
                Method::POST,
                "/auth/signup",
                Some(&new_patient(&format!(
                    "a-{}@example.test",
                    Uuid::new_v4().simple()
                ))),
            )
            .await;
        assert_eq!(ok.status(), 201);
    }
    let limited = app
        .request_as(
            "",
            Method::POST,
            "/auth/signup",
            Some(&new_patient(&format!(
                "b-{}@example.test",
                Uuid::new_v4().simple()
            ))),
        )
        .await;
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
}
