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

/// The shared error responses, by component name: status, description, header.
const SHARED: &[(&str, &str, &str, Option<(&str, Type)>)] = &[
    (
        "BadRequest",
        "400",
        "Malformed request: a body that is not JSON or not of the expected shape, or a path or query parameter of the wrong type",
        None,
    ),
    (
        "Unauthorized",
        "401",
        "Missing, invalid or expired token, or a deactivated user",
        Some(("WWW-Authenticate", Type::String)),
    ),
    ("NotFound", "404", "No such resource", None),
    (
        "PayloadTooLarge",
        "413",
        "The body is larger than the configured limit",
        None,
    ),
    (
        "UnsupportedMediaType",
        "415",
        "The body is not sent as `application/json`",
        None,
    ),
    (
        "ValidationFailed",
        "422",
        "Invalid values; `details` lists every invalid field",
        None,
    ),
    (
        "Unavailable",
        "503",
        "A dependency is unavailable; nothing was changed, retry after `Retry-After` seconds",
        Some(("Retry-After", Type::Integer)),
    ),
];

/// Adds the shared error responses to every operation that can answer them, and the
/// configured booking duration bounds to the booking bodies.
pub fn complete(doc: &mut OpenApi, settings: &Settings) {
    let components = doc.components.get_or_insert_with(Default::default);
    for (name, _, description, header) in SHARED {
        let mut response = ResponseBuilder::new().description(*description).content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        );
        if let Some((header, ty)) = header {
            response = response.header(*header, Header::new(Object::with_type(ty.clone())));
        }
        components
            .responses
            .insert((*name).to_owned(), RefOr::T(response.build()));
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
        }
    }

    let processor = &settings.processor;
    for body in ["NewBooking", "Reschedule"] {
        if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(body)
            && let Some(RefOr::T(Schema::Object(duration))) =
                object.properties.get_mut("duration_minutes")
        {
            duration.minimum = Some((processor.min_duration_minutes as isize).into());
            duration.maximum = Some((processor.max_duration_minutes as isize).into());
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
        let (_, status, _, _) = SHARED
            .iter()
            .find(|(n, ..)| *n == name)
            .expect("a shared response");
        operation
            .responses
            .responses
            .entry((*status).to_owned())
            .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
    }
}
