//! The agenda's directory through the API: services and who offers them, weekly working hours
//! in each center's time zone, exceptions, the overlap rule (also under concurrency) and who
//! may read and change what.

use citaflow_tests::{Services, TestApp};
use futures_util::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

const PASSWORD: &str = "a-long-enough-password";

async fn app() -> TestApp {
    TestApp::spawn_with(Services::api_only(), |_| {}).await
}

async fn answer(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn created(response: reqwest::Response) -> Value {
    let (status, body) = answer(response).await;
    assert_eq!(status, 201, "{body}");
    body
}

fn id(body: &Value) -> String {
    body["id"].as_str().unwrap().to_owned()
}

/// The fields a 422 names.
fn invalid_fields(body: &Value) -> Vec<String> {
    assert_eq!(body["error"]["code"], "validation_failed", "{body}");
    body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap().to_owned())
        .collect()
}

/// A center in `timezone`, answering (id, name).
async fn center_in(app: &TestApp, timezone: &str) -> (String, String) {
    let name = format!("Clínica {timezone} {}", Uuid::new_v4().simple());
    let body = json!({"name": name, "address": "Calle Mayor 1", "timezone": timezone});
    (id(&created(app.post("/centers", &body).await).await), name)
}

fn hours(doctor: &str, center: &str, weekday: &str, start: &str, end: &str) -> Value {
    json!({"doctor_id": doctor, "center_id": center, "weekday": weekday, "start": start, "end": end})
}

/// A doctor who can log in, answering (id, token).
async fn doctor_who_logs_in(app: &TestApp) -> (String, String) {
    let username = format!("doc-{}", Uuid::new_v4().simple());
    let doctor = created(
        app.post(
            "/doctors",
            &json!({"name": "Dra. Ruiz", "specialty": "General", "username": username, "password": PASSWORD}),
        )
        .await,
    )
    .await;
    (id(&doctor), app.login(&username, PASSWORD).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_is_created_with_its_doctors_and_names_are_unique() {
    let app = app().await;
    let (a, b) = (
        app.create_doctor().await.to_string(),
        app.create_doctor().await.to_string(),
    );
    let name = format!("Limpieza {}", Uuid::new_v4().simple());
    let service = created(
        app.post(
            "/services",
            &json!({"name": name, "duration_minutes": 30, "buffer_after_minutes": 10,
                    "doctor_ids": [a, b, a]}),
        )
        .await,
    )
    .await;
    assert_eq!(service["name"], name.as_str());
    assert_eq!(service["duration_minutes"], 30);
    assert_eq!(service["buffer_before_minutes"], 0);
    assert_eq!(service["buffer_after_minutes"], 10);
    assert_eq!(service["active"], true);
    let mut both = vec![a.clone(), b.clone()];
    both.sort();
    assert_eq!(service["doctor_ids"], json!(both));
    let path = format!("/services/{}", id(&service));
    let (status, read) = answer(app.get(&path).await).await;
    assert_eq!(status, 200);
    assert_eq!(read, service);

    // Who offers it: the list filters by doctor, and PUT replaces the doctors.
    let offered: Value = app
        .get(&format!("/services?doctor_id={b}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(offered["total"], 1, "{offered}");
    let (status, replaced) = answer(
        app.request_as(
            &app.admin_token,
            Method::PUT,
            &format!("{path}/doctors"),
            Some(&json!({"doctor_ids": [a]})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(replaced["doctor_ids"], json!([a]));
    let offered: Value = app
        .get(&format!("/services?doctor_id={b}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(offered["total"], 0, "{offered}");

    // The same name in another case is taken.
    let (status, body) = answer(
        app.post(
            "/services",
            &json!({"name": name.to_uppercase(), "duration_minutes": 20}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "duplicate");
    // An unknown doctor and a duration out of bounds are the fields' errors.
    let (status, body) = answer(
        app.post(
            "/services",
            &json!({"name": "Otra", "duration_minutes": 1, "doctor_ids": [Uuid::new_v4()]}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(invalid_fields(&body), ["duration_minutes"]);
    let (status, body) = answer(
        app.post(
            "/services",
            &json!({"name": "Otra", "duration_minutes": 15, "doctor_ids": [Uuid::new_v4()]}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(invalid_fields(&body), ["doctor_ids"]);
    // PATCH changes what it names.
    let (status, patched) = answer(
        app.request_as(
            &app.admin_token,
            Method::PATCH,
            &path,
            Some(&json!({"duration_minutes": 45, "active": false})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["duration_minutes"], 45);
    assert_eq!(patched["active"], false);
    assert_eq!(patched["name"], name.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hours_are_listed_and_a_doctor_is_never_due_at_two_centers_at_once() {
    let app = app().await;
    let doctor = app.create_doctor().await.to_string();
    let (madrid, madrid_name) = center_in(&app, "Europe/Madrid").await;
    let (canary, _) = center_in(&app, "Atlantic/Canary").await;

    let first = created(
        app.post(
            "/working-hours",
            &hours(&doctor, &madrid, "monday", "09:00", "14:00"),
        )
        .await,
    )
    .await;
    assert_eq!(first["weekday"], "monday");
    assert_eq!(first["start"], "09:00");
    assert_eq!(first["end"], "14:00");
    assert_eq!(first["valid_from"], Value::Null);

    // 13:00 in the Canaries is 14:00 in Madrid: it starts as Madrid ends.
    created(
        app.post(
            "/working-hours",
            &hours(&doctor, &canary, "monday", "13:00", "15:00"),
        )
        .await,
    )
    .await;
    // 12:00 there is 13:00 in Madrid: it meets (and meets 13:00 there too).
    let (status, body) = answer(
        app.post(
            "/working-hours",
            &hours(&doctor, &canary, "monday", "12:00", "14:00"),
        )
        .await,
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "hours_overlap");
    // 11:00–13:00 there meets only Madrid's range, which the refusal names.
    let (status, body) = answer(
        app.post(
            "/working-hours",
            &hours(&doctor, &canary, "monday", "11:00", "13:00"),
        )
        .await,
    )
    .await;
    assert_eq!(status, 409, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&madrid_name) && message.contains("monday") && message.contains("09:00"),
        "{message}"
    );
    // The same center too, and a whole day meets everything that day.
    for (center, start, end) in [(&madrid, "13:30", "16:00"), (&madrid, "00:00", "24:00")] {
        let (status, body) = answer(
            app.post(
                "/working-hours",
                &hours(&doctor, center, "monday", start, end),
            )
            .await,
        )
        .await;
        assert_eq!(status, 409, "{start}-{end}: {body}");
    }
    // Ranges whose validity never meets do not overlap.
    let mut later = hours(&doctor, &madrid, "tuesday", "09:00", "14:00");
    later["valid_until"] = json!("2030-01-31");
    created(app.post("/working-hours", &later).await).await;
    let mut after = hours(&doctor, &canary, "tuesday", "09:00", "14:00");
    after["valid_from"] = json!("2030-02-01");
    let after = created(app.post("/working-hours", &after).await).await;
    assert_eq!(after["valid_from"], "2030-02-01");

    let list: Value = app
        .get(&format!("/working-hours?doctor_id={doctor}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["total"], 4, "{list}");
    let days: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["weekday"].as_str().unwrap())
        .collect();
    assert_eq!(days, ["monday", "monday", "tuesday", "tuesday"]);
    let at_canary: Value = app
        .get(&format!(
            "/working-hours?doctor_id={doctor}&center_id={canary}"
        ))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(at_canary["total"], 2, "{at_canary}");

    // Invalid ranges and references are the fields' errors.
    for (body, fields) in [
        (
            hours(&doctor, &madrid, "lunes", "14:00", "09:00"),
            vec!["weekday", "end"],
        ),
        (
            hours(&doctor, &madrid, "friday", "9:00", "24:30"),
            vec!["start", "end"],
        ),
        (
            hours(
                &Uuid::new_v4().to_string(),
                &Uuid::new_v4().to_string(),
                "friday",
                "09:00",
                "10:00",
            ),
            vec!["doctor_id", "center_id"],
        ),
    ] {
        let (status, answer) = answer(app.post("/working-hours", &body).await).await;
        assert_eq!(status, 422, "{body} -> {answer}");
        assert_eq!(invalid_fields(&answer), fields, "{body}");
    }

    // Removing a range frees its time.
    let (status, _) = answer(
        app.request_as(
            &app.admin_token,
            Method::DELETE,
            &format!("/working-hours/{}", id(&first)),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(status, 204);
    created(
        app.post(
            "/working-hours",
            &hours(&doctor, &madrid, "monday", "00:00", "12:00"),
        )
        .await,
    )
    .await;
    let again = app
        .request_as(
            &app.admin_token,
            Method::DELETE,
            &format!("/working-hours/{}", id(&first)),
            None,
        )
        .await;
    assert_eq!(again.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_overlapping_ranges_sent_at_once_exactly_one_lands() {
    let app = app().await;
    let doctor = app.create_doctor().await.to_string();
    let mut centers = Vec::new();
    for _ in 0..6 {
        centers.push(center_in(&app, "Europe/Madrid").await.0);
    }
    let attempts = centers.iter().enumerate().map(|(i, center)| {
        let body = hours(
            &doctor,
            center,
            "wednesday",
            &format!("{:02}:00", 9 + i),
            "18:00",
        );
        let app = &app;
        async move { app.post("/working-hours", &body).await.status().as_u16() }
    });
    let statuses = join_all(attempts).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "{statuses:?}"
    );
    let list: Value = app
        .get(&format!("/working-hours?doctor_id={doctor}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["total"], 1, "{list}");

    // Through the create-many route too: the later overlapping item is refused.
    let response = app
        .post(
            "/working-hours/bulk",
            &json!([
                hours(&doctor, &centers[0], "thursday", "09:00", "12:00"),
                hours(&doctor, &centers[1], "thursday", "11:00", "13:00"),
                hours(&doctor, &centers[1], "thursday", "12:00", "13:00"),
            ]),
        )
        .await;
    let (status, result) = answer(response).await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["created"], 2, "{result}");
    assert_eq!(result["results"][1]["error"]["code"], "hours_overlap");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exceptions_are_checked_listed_and_extras_elsewhere_cannot_meet_the_hours() {
    let app = app().await;
    let doctor = app.create_doctor().await.to_string();
    let (madrid, _) = center_in(&app, "Europe/Madrid").await;
    let (canary, canary_name) = center_in(&app, "Atlantic/Canary").await;
    created(
        app.post(
            "/working-hours",
            &hours(&doctor, &canary, "friday", "09:00", "13:00"),
        )
        .await,
    )
    .await;
    let friday = "2030-03-01"; // a Friday
    let exception = |body: Value| {
        let app = &app;
        async move { answer(app.post("/agenda-exceptions", &body).await).await }
    };

    // Validation.
    for (body, fields) in [
        (
            json!({"doctor_id": doctor, "kind": "extra", "date": friday, "start": "16:00", "end": "18:00"}),
            vec!["center_id"],
        ),
        (
            json!({"doctor_id": doctor, "kind": "time_off", "date": friday, "start": "10:00"}),
            vec!["end"],
        ),
        (
            json!({"doctor_id": doctor, "kind": "extra", "date": friday, "center_id": madrid}),
            vec!["start"],
        ),
        (
            json!({"doctor_id": doctor, "kind": "holiday", "date": "2030-02-30"}),
            vec!["kind", "date"],
        ),
    ] {
        let (status, answer) = exception(body.clone()).await;
        assert_eq!(status, 422, "{body} -> {answer}");
        assert_eq!(invalid_fields(&answer), fields, "{body}");
    }

    // Time off everywhere for the whole day, and for an hour at one center.
    let off = {
        let (status, body) = exception(
            json!({"doctor_id": doctor, "kind": "time_off", "date": "2030-03-08", "note": "  Congreso "}),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        body
    };
    assert_eq!(off["center_id"], Value::Null);
    assert_eq!(off["start"], Value::Null);
    assert_eq!(off["note"], "Congreso");
    let (status, _) = exception(
        json!({"doctor_id": doctor, "kind": "time_off", "date": friday,
        "center_id": canary, "start": "09:00", "end": "10:00"}),
    )
    .await;
    assert_eq!(status, 201);

    // Madrid 11:00–12:00 is 10:00–11:00 in the Canaries, where the doctor works then.
    let (status, body) = exception(json!({"doctor_id": doctor, "kind": "extra", "date": friday,
        "center_id": madrid, "start": "11:00", "end": "12:00"}))
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "hours_overlap");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&canary_name),
        "{body}"
    );
    // Madrid 10:00–11:00 is Canary 09:00–10:00, when the doctor is off there: allowed. So is
    // the afternoon.
    for (start, end) in [("10:00", "11:00"), ("15:00", "19:00")] {
        let (status, body) =
            exception(json!({"doctor_id": doctor, "kind": "extra", "date": friday,
            "center_id": madrid, "start": start, "end": end}))
            .await;
        assert_eq!(status, 201, "{start}: {body}");
        assert_eq!(body["kind"], "extra");
        assert_eq!(body["start"], start);
    }
    // And weekly hours elsewhere that would meet an extra opening are refused too.
    let (status, body) = answer(
        app.post(
            "/working-hours",
            &hours(&doctor, &canary, "friday", "14:00", "16:00"),
        )
        .await,
    )
    .await;
    assert_eq!(status, 409, "{body}");

    let list: Value = app
        .get(&format!(
            "/agenda-exceptions?doctor_id={doctor}&from={friday}&to={friday}"
        ))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["total"], 3, "{list}");
    let at_madrid: Value = app
        .get(&format!(
            "/agenda-exceptions?doctor_id={doctor}&center_id={madrid}"
        ))
        .await
        .json()
        .await
        .unwrap();
    // The two extras there and the time off at every center.
    assert_eq!(at_madrid["total"], 3, "{at_madrid}");
    assert_eq!(
        app.get("/agenda-exceptions?from=2030-13-01").await.status(),
        422
    );
    let gone = app
        .request_as(
            &app.admin_token,
            Method::DELETE,
            &format!("/agenda-exceptions/{}", id(&off)),
            None,
        )
        .await;
    assert_eq!(gone.status(), 204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_manage_the_agenda_doctors_read_their_own_and_patients_none() {
    let app = app().await;
    let suffix = Uuid::new_v4().simple().to_string();
    created(app.post("/users", &json!({"username": format!("sec-{suffix}"), "password": PASSWORD, "role": "secretary"})).await).await;
    let secretary = app.login(&format!("sec-{suffix}"), PASSWORD).await;
    created(app.post("/patients", &json!({"name": "Ana", "email": format!("ana-{suffix}@example.test"), "password": PASSWORD})).await).await;
    let patient = app
        .login(&format!("ana-{suffix}@example.test"), PASSWORD)
        .await;
    let (doctor, doctor_token) = doctor_who_logs_in(&app).await;
    let other = app.create_doctor().await.to_string();
    let (center, _) = center_in(&app, "Europe/Madrid").await;

    // A secretary manages hours but not services.
    let (status, body) = answer(
        app.post_as(
            &secretary,
            "/working-hours",
            &hours(&doctor, &center, "monday", "09:00", "14:00"),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    created(
        app.post(
            "/working-hours",
            &hours(&other, &center, "monday", "09:00", "14:00"),
        )
        .await,
    )
    .await;
    let service = json!({"name": format!("Revisión {suffix}"), "duration_minutes": 30});
    assert_eq!(
        app.post_as(&secretary, "/services", &service)
            .await
            .status(),
        403
    );
    assert_eq!(app.get_as(&secretary, "/services").await.status(), 200);

    // A patient neither writes nor reads the agenda.
    let mine = hours(&doctor, &center, "tuesday", "09:00", "14:00");
    assert_eq!(
        app.post_as(&patient, "/working-hours", &mine)
            .await
            .status(),
        403
    );
    for path in ["/working-hours", "/agenda-exceptions"] {
        assert_eq!(app.get_as(&patient, path).await.status(), 403, "{path}");
    }
    assert_eq!(app.get_as(&patient, "/services").await.status(), 200);

    // A doctor reads their own hours, only theirs, and changes nothing.
    let (status, own) = answer(app.get_as(&doctor_token, "/working-hours").await).await;
    assert_eq!(status, 200);
    assert_eq!(own["total"], 1, "{own}");
    assert_eq!(own["items"][0]["doctor_id"], doctor.as_str());
    let (status, _) = answer(
        app.get_as(&doctor_token, &format!("/working-hours?doctor_id={doctor}"))
            .await,
    )
    .await;
    assert_eq!(status, 200);
    for path in [
        format!("/working-hours?doctor_id={other}"),
        format!("/agenda-exceptions?doctor_id={other}"),
    ] {
        assert_eq!(
            app.get_as(&doctor_token, &path).await.status(),
            403,
            "{path}"
        );
    }
    assert_eq!(
        app.post_as(&doctor_token, "/working-hours", &mine)
            .await
            .status(),
        403
    );
    let delete = app
        .request_as(
            &doctor_token,
            Method::DELETE,
            &format!("/working-hours/{}", id(&body)),
            None,
        )
        .await;
    assert_eq!(delete.status(), 403);
    let delete = app
        .request_as(
            &secretary,
            Method::DELETE,
            &format!("/working-hours/{}", id(&body)),
            None,
        )
        .await;
    assert_eq!(delete.status(), 204);
}
