//! Sending the rows: the JSON item the API expects for a row, one chunk to the bulk endpoint
//! (or row by row), retried while the API is briefly unavailable, and each answer read back
//! as an outcome per row.

use std::time::Duration;

use anyhow::bail;
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::files::{Kind, Row};
use crate::api::{Api, Reply, error_reason, is_retryable_status};

/// Columns sent as JSON numbers (minutes).
const MINUTE_COLUMNS: [&str; 3] = [
    "duration_minutes",
    "buffer_before_minutes",
    "buffer_after_minutes",
];

/// The JSON item the API expects for a row of a file without references (the directory and
/// the services; see [`super::agenda`] for the others). Required cells are always sent (empty
/// when missing, so the API's own validation names them); empty optional cells are left out.
/// Minutes go as numbers when they are whole numbers, else as given, so the API's message
/// names the field (a missing one is left out for the same reason).
pub fn item(kind: Kind, row: &Row) -> Value {
    let mut item = Map::new();
    for column in kind.columns() {
        let value = row.get(column.name);
        match (column.name, value) {
            ("role", Some(role)) => {
                item.insert("role".into(), Value::String(role.to_lowercase()));
            }
            (name, value) if MINUTE_COLUMNS.contains(&name) => {
                if let Some(value) = value {
                    let number = value.parse::<i64>().map(Value::from);
                    item.insert(
                        name.into(),
                        number.unwrap_or_else(|_| Value::String(value.to_owned())),
                    );
                }
            }
            ("password", None) if kind == Kind::Users => {
                // Staff users need a password; one nobody knows keeps the account closed until
                // an admin sets a real one.
                let random = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
                item.insert("password".into(), Value::String(random));
            }
            (name, Some(value)) => {
                item.insert(name.into(), Value::String(value.to_owned()));
            }
            (name, None) if column.required => {
                item.insert(name.into(), Value::String(String::new()));
            }
            (_, None) => {}
        }
    }
    Value::Object(item)
}

/// What happened to one row.
#[derive(Debug, Clone)]
pub enum Outcome {
    Created,
    Present,
    Failed { code: String, reason: String },
}

/// Sends one chunk and answers an outcome per row, in order. `Err` only for failures that make
/// going on pointless (API unreachable, credentials refused).
pub async fn send_chunk(
    api: &Api,
    kind: Kind,
    items: Vec<Value>,
    one_by_one: bool,
) -> anyhow::Result<Vec<Outcome>> {
    if one_by_one {
        let mut outcomes = Vec::with_capacity(items.len());
        for item in &items {
            let reply = send_retrying(api, Method::POST, kind.resource(), item).await?;
            outcomes.push(match reply.status {
                StatusCode::CREATED | StatusCode::OK => Outcome::Created,
                _ if reply.code() == Some("duplicate") => Outcome::Present,
                _ => Outcome::Failed {
                    code: reply.code().unwrap_or("http_error").into(),
                    reason: reply.reason(),
                },
            });
        }
        return Ok(outcomes);
    }
    let count = items.len();
    let reply = send_retrying(
        api,
        Method::POST,
        &format!("{}/bulk", kind.resource()),
        &Value::Array(items),
    )
    .await?;
    if reply.status != StatusCode::OK {
        // The whole request was refused (e.g. too large): every row of the chunk failed so.
        let failed = Outcome::Failed {
            code: reply.code().unwrap_or("http_error").into(),
            reason: reply.reason(),
        };
        return Ok(vec![failed; count]);
    }
    let mut outcomes = vec![
        Outcome::Failed {
            code: "no_result".into(),
            reason: "the API's bulk answer has no result for this row".into()
        };
        count
    ];
    for result in reply.body["results"].as_array().into_iter().flatten() {
        let Some(index) = result["index"]
            .as_u64()
            .map(|i| i as usize)
            .filter(|i| *i < count)
        else {
            continue;
        };
        outcomes[index] = match result["status"].as_str() {
            Some("created") => Outcome::Created,
            _ if result["error"]["code"] == "duplicate" => Outcome::Present,
            _ => Outcome::Failed {
                code: result["error"]["code"].as_str().unwrap_or("error").into(),
                reason: error_reason(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &json!({ "error": result["error"] }),
                ),
            },
        };
    }
    Ok(outcomes)
}

/// Sends `body`, retrying a few times when the API is briefly unavailable. Resending is safe:
/// rows that did go in answer 409 `duplicate` (or `hours_overlap`, or are found by the
/// exceptions' check) the second time, and a PUT sets the same thing again.
pub async fn send_retrying(
    api: &Api,
    method: Method,
    path: &str,
    body: &Value,
) -> anyhow::Result<Reply> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = api.send(method.clone(), path, Some(body)).await;
        match result {
            Ok(reply) if reply.status == StatusCode::UNAUTHORIZED => {
                bail!("the API refused the credentials (401) while importing; log in again")
            }
            Ok(reply) if is_retryable_status(reply.status) && attempt < 4 => {}
            Ok(reply) => return Ok(reply),
            Err(e) if attempt < 4 && !e.to_string().starts_with("cannot reach") => {}
            Err(e) => return Err(e),
        }
        tokio::time::sleep(Duration::from_millis(500 * (1 << attempt))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_match_the_api_and_users_get_a_hidden_password() {
        let row = |cells: &[(&'static str, &str)]| Row {
            line: 2,
            cells: cells.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        };
        let user = item(
            Kind::Users,
            &row(&[("username", "ana"), ("role", "Secretary")]),
        );
        assert_eq!(user["role"], "secretary");
        assert!(user["password"].as_str().unwrap().len() >= 32);
        let doctor = item(Kind::Doctors, &row(&[("username", "dr.ana")]));
        assert_eq!(
            doctor,
            json!({"username": "dr.ana", "name": "", "specialty": ""}),
            "required cells are sent, empty"
        );
        let patient = item(
            Kind::Patients,
            &row(&[
                ("email", "a@example.com"),
                ("name", "Ana"),
                ("status", "INACTIVE"),
            ]),
        );
        assert_eq!(
            patient,
            json!({"email": "a@example.com", "name": "Ana", "status": "INACTIVE"})
        );
        let service = item(
            Kind::Services,
            &row(&[
                ("name", "Endodoncia"),
                ("duration_minutes", "90"),
                ("buffer_after_minutes", "quince"),
            ]),
        );
        assert_eq!(
            service,
            json!({"name": "Endodoncia", "duration_minutes": 90, "buffer_after_minutes": "quince"}),
            "whole minutes go as numbers, anything else as given for the API to name"
        );
        assert_eq!(
            item(Kind::Services, &row(&[("name", "Sin duración")])),
            json!({"name": "Sin duración"}),
            "a missing duration is left out, so the API says it is missing"
        );
    }
}
