//! Token revocation and admin safety: a password change or a deactivation by any route ends a
//! user's tokens for good (a re-activation does not revive them), the last active admin stays
//! active, and nobody deactivates themselves.

use citaflow_tests::{ADMIN_PASSWORD, ADMIN_USERNAME, Services, TestApp};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

const PASSWORD: &str = "a-long-enough-password";

/// Logs in, answering the token and the user's id.
async fn login(app: &TestApp, username: &str, password: &str) -> (String, Uuid) {
    let response = app
        .request_as(
            "",
            Method::POST,
            "/auth/login",
            Some(&json!({"username": username, "password": password})),
        )
        .await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "login as {username}: {body}");
    let user_id = Uuid::parse_str(body["user_id"].as_str().unwrap()).unwrap();
    (body["access_token"].as_str().unwrap().to_owned(), user_id)
}

/// The status a login answers.
async fn login_status(app: &TestApp, username: &str, password: &str) -> u16 {
    app.request_as(
        "",
        Method::POST,
        "/auth/login",
        Some(&json!({"username": username, "password": password})),
    )
    .await
    .status()
    .as_u16()
}

/// The status of an authenticated request any role may make.
async fn access(app: &TestApp, token: &str) -> u16 {
    app.get_as(token, "/centers").await.status().as_u16()
}

/// Sends `body` as the test's admin, expecting `expected`; answers the response body.
async fn send(app: &TestApp, method: Method, path: &str, body: Value, expected: u16) -> Value {
    let response = app
        .request_as(&app.admin_token, method.clone(), path, Some(&body))
        .await;
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    assert_eq!(status, expected, "{method} {path} {body}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// A new staff user of `role`, answering (username, user id).
async fn staff(app: &TestApp, role: &str) -> (String, Uuid) {
    let username = format!("{role}-{}", Uuid::new_v4().simple());
    let user = send(
        app,
        Method::POST,
        "/users",
        json!({"username": username, "password": PASSWORD, "role": role}),
        201,
    )
    .await;
    (
        username,
        Uuid::parse_str(user["id"].as_str().unwrap()).unwrap(),
    )
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_revokes_earlier_tokens() {
    let app = TestApp::spawn_with(Services::api_only(), |_| {}).await;
    let (username, id) = staff(&app, "secretary").await;
    let (old, _) = login(&app, &username, PASSWORD).await;
    let (other_old, _) = login(&app, &username, PASSWORD).await;
    assert_eq!(access(&app, &old).await, 200);

    let new_password = "another-long-enough-password";
    send(
        &app,
        Method::POST,
        &format!("/users/{id}/password"),
        json!({"password": new_password}),
        204,
    )
    .await;
    assert_eq!(
        access(&app, &old).await,
        401,
        "a token from before the change"
    );
    assert_eq!(
        access(&app, &other_old).await,
        401,
        "every token from before"
    );
    assert_eq!(login_status(&app, &username, PASSWORD).await, 401);
    let (fresh, _) = login(&app, &username, new_password).await;
    assert_eq!(
        access(&app, &fresh).await,
        200,
        "a token from after the change"
    );

    // Admins setting their own password end their own tokens too, and log in again.
    let (_, admin_id) = login(&app, ADMIN_USERNAME, ADMIN_PASSWORD).await;
    send(
        &app,
        Method::POST,
        &format!("/users/{admin_id}/password"),
        json!({"password": new_password}),
        204,
    )
    .await;
    assert_eq!(access(&app, &app.admin_token).await, 401);
    let (admin, _) = login(&app, ADMIN_USERNAME, new_password).await;
    assert_eq!(access(&app, &admin).await, 200);
}

/// A way to deactivate a user and one to activate them again.
struct Route {
    name: &'static str,
    deactivate: (Method, String, Value),
    reactivate: (Method, String, Value),
}

impl Route {
    /// The route `name` (`POST …/deactivate` or a `PATCH` of `field`) for the record at
    /// `path`, and the PATCH that re-activates it.
    fn of(name: &'static str, path: &str, field: &str, off: Value, on: Value) -> Self {
        let deactivate = if name.starts_with("POST") {
            (Method::POST, format!("{path}/deactivate"), json!({}))
        } else {
            (Method::PATCH, path.to_owned(), json!({ field: off }))
        };
        Route {
            name,
            deactivate,
            reactivate: (Method::PATCH, path.to_owned(), json!({ field: on })),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deactivation_by_any_route_revokes_tokens_for_good() {
    let app = TestApp::spawn_with(Services::api_only(), |_| {}).await;
    let mut cases: Vec<(String, Route)> = Vec::new();

    for name in [
        "POST /users/{id}/deactivate",
        "PATCH /users/{id} active:false",
    ] {
        let (username, id) = staff(&app, "secretary").await;
        let route = Route::of(
            name,
            &format!("/users/{id}"),
            "active",
            json!(false),
            json!(true),
        );
        cases.push((username, route));
    }
    for name in [
        "POST /patients/{id}/deactivate",
        "PATCH /patients/{id} status:INACTIVE",
    ] {
        let username = format!("patient-{}", Uuid::new_v4().simple());
        let patient = send(
            &app,
            Method::POST,
            "/patients",
            json!({"name": "Ana", "username": username, "password": PASSWORD}),
            201,
        )
        .await;
        let id = patient["id"].as_str().unwrap();
        let path = format!("/patients/{id}");
        let route = Route::of(name, &path, "status", json!("INACTIVE"), json!("ACTIVE"));
        cases.push((username, route));
    }
    for name in [
        "POST /doctors/{id}/deactivate",
        "PATCH /doctors/{id} active:false",
    ] {
        let username = format!("doctor-{}", Uuid::new_v4().simple());
        let doctor = send(
            &app,
            Method::POST,
            "/doctors",
            json!({"name": "Dr. Who", "specialty": "General", "username": username, "password": PASSWORD}),
            201,
        )
        .await;
        let id = doctor["id"].as_str().unwrap();
        let path = format!("/doctors/{id}");
        let route = Route::of(name, &path, "active", json!(false), json!(true));
        cases.push((username, route));
    }

    for (username, route) in cases {
        let name = route.name;
        let (old, _) = login(&app, &username, PASSWORD).await;
        assert_eq!(access(&app, &old).await, 200, "{name}: before");

        let (method, path, body) = route.deactivate;
        send(&app, method, &path, body, 200).await;
        assert_eq!(access(&app, &old).await, 401, "{name}: after deactivation");
        assert_eq!(
            login_status(&app, &username, PASSWORD).await,
            401,
            "{name}: a deactivated user cannot log in"
        );

        let (method, path, body) = route.reactivate;
        send(&app, method, &path, body, 200).await;
        assert_eq!(
            access(&app, &old).await,
            401,
            "{name}: a re-activation does not revive earlier tokens"
        );
        let (fresh, _) = login(&app, &username, PASSWORD).await;
        assert_eq!(
            access(&app, &fresh).await,
            200,
            "{name}: a fresh login works"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_admin_stays_and_nobody_deactivates_themselves() {
    let app = TestApp::spawn_with(Services::api_only(), |_| {}).await;
    let (_, admin_id) = login(&app, ADMIN_USERNAME, ADMIN_PASSWORD).await;
    let deactivations = |id: Uuid| {
        [
            (Method::POST, format!("/users/{id}/deactivate"), json!({})),
            (
                Method::PATCH,
                format!("/users/{id}"),
                json!({"active": false}),
            ),
        ]
    };

    // The only admin: neither route deactivates them.
    for (method, path, body) in deactivations(admin_id) {
        let error = send(&app, method, &path, body, 409).await;
        assert_eq!(error_code(&error), "last_admin", "{path}: {error}");
    }
    assert_eq!(access(&app, &app.admin_token).await, 200);

    // With another admin, deactivating oneself is still refused.
    let (other, other_id) = staff(&app, "admin").await;
    let (other_token, _) = login(&app, &other, PASSWORD).await;
    for (method, path, body) in deactivations(admin_id) {
        let error = send(&app, method, &path, body, 409).await;
        assert_eq!(error_code(&error), "self_deactivation", "{path}: {error}");
    }
    for (method, path, body) in deactivations(other_id) {
        let response = app
            .request_as(&other_token, method, &path, Some(&body))
            .await;
        assert_eq!(response.status(), 409, "{path}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error_code(&error), "self_deactivation", "{path}: {error}");
    }

    // Deactivating another admin works while one stays; then the survivor is the last again.
    send(
        &app,
        Method::POST,
        &format!("/users/{other_id}/deactivate"),
        json!({}),
        200,
    )
    .await;
    assert_eq!(access(&app, &other_token).await, 401);
    let error = send(
        &app,
        Method::PATCH,
        &format!("/users/{admin_id}"),
        json!({"active": false}),
        409,
    )
    .await;
    assert_eq!(error_code(&error), "last_admin", "{error}");

    // No route demotes an admin: a role is not among a user's changes.
    let response = app
        .request_as(
            &app.admin_token,
            Method::PATCH,
            &format!("/users/{admin_id}"),
            Some(&json!({"role": "secretary"})),
        )
        .await;
    assert!(
        matches!(response.status().as_u16(), 400 | 422),
        "a role change is refused: {}",
        response.status()
    );
    let me = send(
        &app,
        Method::GET,
        &format!("/users/{admin_id}"),
        json!(null),
        200,
    )
    .await;
    assert_eq!(
        (me["role"].as_str(), me["active"].as_bool()),
        (Some("admin"), Some(true))
    );
}

async fn deactivate(app: &TestApp, token: &str, id: Uuid) -> reqwest::Response {
    app.post_as(token, &format!("/users/{id}/deactivate"), &json!({}))
        .await
}

/// Two admins deactivating each other at the same moment: exactly one wins, the other is
/// refused (409 `last_admin`, or 401 when its token was already revoked), so the clinic always
/// keeps an active admin. Repeated, as a race shows only sometimes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_deactivating_each_other_at_once_leave_one_active() {
    let app = TestApp::spawn_with(Services::api_only(), |_| {}).await;
    let (mut survivor, mut survivor_id) = login(&app, ADMIN_USERNAME, ADMIN_PASSWORD).await;
    for round in 0..8 {
        let username = format!("admin-{}", Uuid::new_v4().simple());
        let response = app
            .post_as(
                &survivor,
                "/users",
                &json!({"username": username, "password": PASSWORD, "role": "admin"}),
            )
            .await;
        assert_eq!(response.status(), 201, "round {round}");
        let (other, other_id) = login(&app, &username, PASSWORD).await;

        let (a, b) = tokio::join!(
            deactivate(&app, &survivor, other_id),
            deactivate(&app, &other, survivor_id)
        );
        let statuses = [a.status().as_u16(), b.status().as_u16()];
        let active_admins: i64 =
            sqlx::query_scalar("SELECT count(*) FROM users WHERE role = 'admin' AND active")
                .fetch_one(&app.pool)
                .await
                .unwrap();
        assert_eq!(active_admins, 1, "round {round}: {statuses:?}");
        match statuses {
            [200, 409 | 401] => {}
            [409 | 401, 200] => (survivor, survivor_id) = (other, other_id),
            other => panic!("round {round}: exactly one deactivation succeeds: {other:?}"),
        }
        assert_eq!(access(&app, &survivor).await, 200, "round {round}");
    }
}
