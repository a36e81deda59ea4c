//! What the web app needs from ingest-api: the built app served beside unchanged API routes
//! (pages under `/app/`, the strict Content-Security-Policy, JSON errors everywhere else), a
//! patient search by name, email or phone, and a bookings list that answers 304 while it is
//! unchanged (the agenda polls it with `If-None-Match`).

use std::time::Duration;

use citaflow_tests::{Services, TestApp, in_hours};
use reqwest::{Method, header};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_is_served_beside_the_api_and_the_api_is_unchanged() {
    let dir = std::env::temp_dir().join(format!("citaflow-web-test-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(dir.join("assets")).unwrap();
    std::fs::write(
        dir.join("index.html"),
        "<!doctype html><title>Citaflow</title>",
    )
    .unwrap();
    std::fs::write(dir.join("assets/index-abc.js"), "export {}").unwrap();
    let web_dir = dir.to_string_lossy().into_owned();
    let app = TestApp::spawn_with(Services::api_only(), |s| s.api.web_dir = Some(web_dir)).await;

    for page in ["/", "/app/login", "/app/appointments/123"] {
        let r = app.request_as("", Method::GET, page, None).await;
        assert_eq!(r.status(), 200, "{page}");
        let csp = r.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-cache");
        assert!(r.text().await.unwrap().contains("<title>Citaflow</title>"));
    }
    let asset = app
        .request_as("", Method::GET, "/assets/index-abc.js", None)
        .await;
    assert_eq!(asset.status(), 200);
    assert!(
        asset.headers()[header::CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    // API routes and unknown paths answer as before: JSON, never the page.
    let api = app.request_as("", Method::GET, "/bookings", None).await;
    assert_eq!(api.status(), 401);
    let unknown = app.request_as("", Method::GET, "/nowhere", None).await;
    assert_eq!(unknown.status(), 404);
    let body: Value = unknown.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    let missing_asset = app
        .request_as("", Method::GET, "/assets/gone.js", None)
        .await;
    assert_eq!(missing_asset.status(), 404);
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bookings_answer_304_while_unchanged_and_patients_are_found_by_email_or_phone() {
    let app = TestApp::spawn_with(Services::no_email(), |_| {}).await;
    let d = app.directory().await;
    let list = format!("/bookings?doctor_id={}", d.doctor);
    let first = app.get(&list).await;
    assert_eq!(first.status(), 200);
    let tag = first.headers()[header::ETAG].to_str().unwrap().to_owned();
    let conditional = |tag: String| {
        let app = &app;
        let list = list.clone();
        async move {
            app.http
                .get(format!("{}{list}", app.api_url))
                .bearer_auth(&app.admin_token)
                .header(header::IF_NONE_MATCH, tag)
                .send()
                .await
                .unwrap()
        }
    };
    let unchanged = conditional(tag.clone()).await;
    assert_eq!(unchanged.status(), 304);
    assert_eq!(unchanged.headers()[header::ETAG].to_str().unwrap(), tag);
    assert!(unchanged.bytes().await.unwrap().is_empty());

    let booked = app.book(&d, in_hours(30), 30).await;
    assert_eq!(booked.status(), 202);
    let id = booked.json::<Value>().await.unwrap()["booking_id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.wait_for_decision(&id, Duration::from_secs(20)).await;
    let changed = conditional(tag.clone()).await;
    assert_eq!(changed.status(), 200);
    assert_ne!(changed.headers()[header::ETAG].to_str().unwrap(), tag);
    let page: Value = changed.json().await.unwrap();
    assert_eq!(page["total"], 1);

    let patient: Value = app
        .get(&format!("/patients/{}", d.patient))
        .await
        .json()
        .await
        .unwrap();
    let email = patient["email"].as_str().unwrap();
    for q in [&email[..12], "Luc", "600123"] {
        let found: Value = app
            .get(&format!("/patients?q={q}"))
            .await
            .json()
            .await
            .unwrap();
        let ids: Vec<&str> = found["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap())
            .collect();
        assert!(
            ids.contains(&d.patient.to_string().as_str()),
            "{q}: {found}"
        );
    }
}
