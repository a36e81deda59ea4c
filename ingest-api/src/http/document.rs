//! Completes the OpenAPI document generated from the handlers with what follows from how each
//! operation is built rather than from what it does: the answers of its extractors (a token:
//! 401; path or query parameters: 400; a JSON body: 400, 413, 415), of an unavailable
//! dependency (503), and the configured limits. Handlers document their own 403, 404, 409 and
//! 422; this fills in only statuses they leave out.

use citaflow_platform::Settings;
use utoipa::openapi::{
    ContentBuilder, Object, OpenApi, Ref, RefOr, ResponseBuilder, Schema,
    header::Header,
    path::{Operation, ParameterIn},
    schema::Type,
};

/// One shared error response: its component name, status, description and header.
struct Shared {
    name: &'static str,
    status: &'static str,
    description: &'static str,
    header: Option<(&'static str, Type)>,
}

/// The shared error responses.
const SHARED: &[Shared] = &[
    Shared {
        name: "BadRequest",
        status: "400",
        description: "Malformed request: a body that is not JSON or not of the expected shape, or a path or query parameter of the wrong type",
        header: None,
    },
    Shared {
        name: "Unauthorized",
        status: "401",
        description: "Missing, invalid or expired token, or a deactivated user",
        header: Some(("WWW-Authenticate", Type::String)),
    },
    Shared {
        name: "NotFound",
        status: "404",
        description: "No such resource",
        header: None,
    },
    Shared {
        name: "PayloadTooLarge",
        status: "413",
        description: "The body is larger than the configured limit",
        header: None,
    },
    Shared {
        name: "UnsupportedMediaType",
        status: "415",
        description: "The body is not sent as `application/json`",
        header: None,
    },
    Shared {
        name: "ValidationFailed",
        status: "422",
        description: "Invalid values; `details` lists every invalid field",
        header: None,
    },
    Shared {
        name: "Unavailable",
        status: "503",
        description: "A dependency is unavailable; nothing was changed, retry after `Retry-After` seconds",
        header: Some(("Retry-After", Type::Integer)),
    },
];

/// Adds the shared error responses to every operation that can answer them, and the
/// configured booking duration bounds to the booking bodies.
pub fn complete(doc: &mut OpenApi, settings: &Settings) {
    let components = doc.components.get_or_insert_with(Default::default);
    for shared in SHARED {
        let mut response = ResponseBuilder::new()
            .description(shared.description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            );
        if let Some((header, ty)) = &shared.header {
            response = response.header(*header, Header::new(Object::with_type(ty.clone())));
        }
        components
            .responses
            .insert(shared.name.to_owned(), RefOr::T(response.build()));
    }

    for (path, item) in doc.paths.paths.iter_mut() {
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ];
        for operation in operations.into_iter().flatten() {
            add_shared(path, operation);
            describe(operation);
            retry_after_on_429(operation);
        }
    }

    let processor = &settings.processor;
    for body in ["NewBooking", "Reschedule", "NewService", "ServiceUpdate"] {
        if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(body)
            && let Some(RefOr::T(Schema::Object(duration))) =
                object.properties.get_mut("duration_minutes")
        {
            duration.minimum = Some((processor.min_duration_minutes as isize).into());
            duration.maximum = Some((processor.max_duration_minutes as isize).into());
        }
    }
}

/// Every 429 says when to come back: `Retry-After` in seconds (the login limiter and the
/// booking command limiter both send it).
fn retry_after_on_429(operation: &mut Operation) {
    if let Some(RefOr::T(response)) = operation.responses.responses.get_mut("429") {
        response
            .headers
            .entry("Retry-After".to_owned())
            .or_insert_with(|| {
                let mut header = Header::new(Object::with_type(Type::Integer));
                header.description = Some("Seconds to wait before trying again".to_owned());
                RefOr::T(header)
            });
    }
}

/// Every response has a description (OpenAPI requires one): the status's reason phrase where
/// the handler gives none.
fn describe(operation: &mut Operation) {
    for (status, response) in operation.responses.responses.iter_mut() {
        if let RefOr::T(response) = response
            && response.description.is_empty()
        {
            response.description = status
                .parse::<u16>()
                .ok()
                .and_then(|s| axum::http::StatusCode::from_u16(s).ok())
                .and_then(|s| s.canonical_reason())
                .unwrap_or("Response")
                .to_owned();
        }
    }
}

fn add_shared(path: &str, operation: &mut Operation) {
    let parameters = operation.parameters.as_deref().unwrap_or_default();
    let located = |place: ParameterIn| {
        parameters
            .iter()
            .any(|p| matches!(p, RefOr::T(p) if p.parameter_in == place))
    };
    let in_path = located(ParameterIn::Path);
    let in_query = located(ParameterIn::Query);
    let body = operation.request_body.is_some();
    let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());

    let mut shared = Vec::new();
    if body || in_path || in_query {
        shared.push("BadRequest");
    }
    if secured {
        shared.push("Unauthorized");
    }
    if path.contains('{') {
        shared.push("NotFound");
    }
    if body {
        shared.extend(["PayloadTooLarge", "UnsupportedMediaType"]);
    }
    if in_query {
        // Page bounds.
        shared.push("ValidationFailed");
    }
    shared.push("Unavailable");

    for name in shared {
        let shared = SHARED
            .iter()
            .find(|s| s.name == name)
            .expect("a shared response");
        operation
            .responses
            .responses
            .entry(shared.status.to_owned())
            .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document() -> serde_json::Value {
        let (_, mut doc) = super::super::api();
        complete(&mut doc, &Settings::default());
        serde_json::to_value(doc).unwrap()
    }

    #[test]
    fn every_operation_lists_its_extractors_answers_and_every_response_is_described() {
        let doc = document();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let responses = operation["responses"].as_object().unwrap();
                let has = |status: &str| responses.contains_key(status);
                assert!(has("503"), "{method} {path}");
                if operation.get("security").is_some() {
                    assert!(has("401"), "{method} {path}");
                }
                if operation.get("requestBody").is_some() {
                    for status in ["400", "413", "415"] {
                        assert!(has(status), "{method} {path} {status}");
                    }
                }
                if path.contains('{') {
                    assert!(has("400") && has("404"), "{method} {path}");
                }
                if has("429") {
                    assert!(
                        responses["429"]["headers"]["Retry-After"].is_object(),
                        "{method} {path}: a 429 documents Retry-After"
                    );
                }
                for (status, response) in responses {
                    assert!(
                        response.get("$ref").is_some()
                            || response["description"]
                                .as_str()
                                .is_some_and(|d| !d.is_empty()),
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }

    #[test]
    fn booking_commands_document_their_limits() {
        let doc = document();
        for (path, method) in [
            ("/bookings", "post"),
            ("/bookings/{id}/cancel", "post"),
            ("/bookings/{id}/reschedule", "post"),
        ] {
            let responses = &doc["paths"][path][method]["responses"];
            assert!(responses["429"].is_object(), "{method} {path}");
        }
        for (path, method) in [("/bookings", "post"), ("/bookings/{id}/reschedule", "post")] {
            let responses = &doc["paths"][path][method]["responses"];
            let conflict = responses["409"]["description"].as_str().unwrap();
            assert!(conflict.contains("too_many_bookings"), "{method} {path}");
            let invalid = responses["422"]["description"].as_str().unwrap();
            assert!(invalid.contains("horizon"), "{method} {path}");
        }
    }

    #[test]
    fn limits_come_from_the_code_and_the_settings() {
        let doc = document();
        let settings = Settings::default();
        let schemas = &doc["components"]["schemas"];
        for body in ["NewBooking", "Reschedule", "NewService", "ServiceUpdate"] {
            let duration = &schemas[body]["properties"]["duration_minutes"];
            assert_eq!(duration["minimum"], settings.processor.min_duration_minutes);
            assert_eq!(duration["maximum"], settings.processor.max_duration_minutes);
        }
        assert_eq!(
            schemas["BulkBody"]["maxItems"],
            super::super::bulk::MAX_ITEMS
        );
        let per_page = doc["paths"]["/bookings"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "per_page")
            .unwrap();
        assert_eq!(
            per_page["schema"]["maximum"],
            super::super::pagination::MAX_PER_PAGE
        );
        for object in [
            "NewUser",
            "NewCenter",
            "NewDoctor",
            "NewPatient",
            "NewBooking",
            "NewService",
            "NewWorkingHours",
            "NewAgendaException",
        ] {
            assert_eq!(schemas[object]["additionalProperties"], false, "{object}");
        }
    }
}
