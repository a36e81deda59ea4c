//! Field rules of the directory: each parser returns the normalised value, or records why
//! the field is invalid so one answer lists every problem. Beside each rule, in [`schema`],
//! the JSON Schema that states it for the OpenAPI document, built from the same constants.

use crate::http::error::{ApiError, FieldError};

/// `Ok` when no field is invalid, else one 422 listing them all.
pub fn collect(errors: Vec<FieldError>) -> Result<(), ApiError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// An integer as JSON Schema reads one (`#[serde(deserialize_with = ..)]`): JSON has a single
/// number type, so `30.0` is 30.
pub fn whole_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    use serde::Deserialize;
    let number = serde_json::Number::deserialize(deserializer)?;
    number
        .as_i64()
        .or_else(|| {
            number
                .as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                .map(|f| f as i64)
        })
        .ok_or_else(|| serde::de::Error::custom(format!("expected a whole number, got {number}")))
}

/// [`whole_number`] for optional fields (`#[serde(default, deserialize_with = ..)]`).
pub fn optional_whole_number<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<i64>, D::Error> {
    use serde::Deserialize;
    #[derive(Deserialize)]
    struct Whole(#[serde(deserialize_with = "whole_number")] i64);
    Ok(Option::<Whole>::deserialize(deserializer)?.map(|Whole(n)| n))
}

/// Escapes `%`, `_` and `\` for a LIKE pattern.
pub fn like_escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// Longest name (people, centers), address and specialty, in characters once trimmed.
pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_ADDRESS_CHARS: usize = 300;
pub const MAX_SPECIALTY_CHARS: usize = 100;

/// Trimmed, non-empty text of at most `max` characters.
pub fn required_text(
    field: &str,
    value: &str,
    max: usize,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    let value = value.trim();
    if value.is_empty() {
        errors.push(FieldError::new(field, "is required"));
        return None;
    }
    if value.chars().count() > max {
        errors.push(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
        return None;
    }
    if value.chars().any(|c| c.is_control()) {
        errors.push(FieldError::new(
            field,
            "must not contain control characters",
        ));
        return None;
    }
    Some(value.to_owned())
}

/// A phone number in E.164 form: `+`, country code, up to 15 digits in all.
pub fn phone(field: &str, value: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    let compact: String = value
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')'))
        .collect();
    let digits = compact.strip_prefix('+').unwrap_or("");
    let valid = !digits.is_empty()
        && (8..=15).contains(&digits.len())
        && digits.chars().all(|c| c.is_ascii_digit())
        && !digits.starts_with('0');
    if valid {
        Some(compact)
    } else {
        errors.push(FieldError::new(
            field,
            "must be an E.164 phone number, e.g. +34600123456",
        ));
        None
    }
}

/// Longest email address, and its part before the `@`.
pub const MAX_EMAIL_CHARS: usize = 254;
pub const MAX_EMAIL_LOCAL_CHARS: usize = 64;

/// An email address (pragmatic check: one `@`, a dotted domain, no spaces), lower-cased.
pub fn email(field: &str, value: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    // Lengths in characters, the whole as sent (as JSON Schema's `maxLength` counts).
    let valid = value.chars().count() <= MAX_EMAIL_CHARS;
    let value = value.trim();
    let valid = valid
        && !value.chars().any(|c| c.is_whitespace() || c.is_control())
        && match value.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && local.chars().count() <= MAX_EMAIL_LOCAL_CHARS
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains("..")
            }
            None => false,
        };
    if valid {
        Some(value.to_lowercase())
    } else {
        errors.push(FieldError::new(field, "must be a valid email address"));
        None
    }
}

/// An IANA time zone name.
pub fn time_zone(field: &str, value: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    match value.trim().parse::<chrono_tz::Tz>() {
        Ok(tz) => Some(tz.name().to_owned()),
        Err(_) => {
            errors.push(FieldError::new(
                field,
                "must be an IANA time zone, e.g. Europe/Madrid",
            ));
            None
        }
    }
}

/// `es` or `en`, when given.
pub fn language(field: &str, value: Option<&str>, errors: &mut Vec<FieldError>) -> Option<String> {
    let value = value?.trim().to_ascii_lowercase();
    if matches!(value.as_str(), "es" | "en") {
        Some(value)
    } else {
        errors.push(FieldError::new(field, "must be `es` or `en`"));
        None
    }
}

/// `ACTIVE` (default) or `INACTIVE`.
pub fn patient_status(field: &str, value: Option<&str>, errors: &mut Vec<FieldError>) -> String {
    let value = value.unwrap_or("ACTIVE").trim().to_ascii_uppercase();
    if !matches!(value.as_str(), "ACTIVE" | "INACTIVE") {
        errors.push(FieldError::new(field, "must be ACTIVE or INACTIVE"));
    }
    value
}

/// The rules above as JSON Schemas for the OpenAPI document (`#[schema(schema_with = ..)]`).
///
/// Patterns use only what ECMA-262, Python's `re` and Rust's `regex` read alike (explicit
/// classes, no `\s`), and state the rules exactly, surrounding whitespace that is trimmed
/// included, so a client (or a fuzzer) generated from the document sends what is accepted.
pub mod schema {
    use utoipa::openapi::{
        Object, ObjectBuilder,
        schema::{SchemaType, Type},
    };

    /// Characters `str::trim` removes (Unicode `White_Space`).
    pub const TRIMMED: &str =
        r"[\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]";
    /// Not a control character (`char::is_control`, Unicode `Cc`).
    const NOT_CONTROL: &str = r"[^\u0000-\u001f\u007f-\u009f]";
    /// Neither a control character nor whitespace.
    const SOLID: &str =
        r"[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]";
    /// Neither `@`, `.`, whitespace nor a control character.
    const ADDRESS_CHAR: &str =
        r"[^@.\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]";
    /// Phone separators, dropped before checking the digits.
    const PHONE_SEPARATOR: &str = r"[ ()-]";

    /// A string schema, nullable or not.
    pub(crate) fn string(nullable: bool) -> ObjectBuilder {
        let ty = if nullable {
            SchemaType::from_iter([Type::String, Type::Null])
        } else {
            SchemaType::new(Type::String)
        };
        ObjectBuilder::new().schema_type(ty)
    }

    /// [`super::required_text`]: 1 to `max` characters once trimmed, no control characters.
    pub fn text(max: usize, nullable: bool) -> Object {
        string(nullable)
            .pattern(Some(format!(
                "^{TRIMMED}*{SOLID}(?:{NOT_CONTROL}{{0,{}}}{SOLID})?{TRIMMED}*$",
                max - 2
            )))
            .description(Some(format!(
                "1 to {max} characters once surrounding whitespace is trimmed; no control characters."
            )))
            .build()
    }

    /// Free text stored as sent once trimmed (at most `max` characters; blank means none):
    /// anything but NUL, which PostgreSQL cannot store.
    pub fn free_text(max: usize, nullable: bool) -> Object {
        let not_nul = r"[^\u0000]";
        let solid = r"[^\u0000\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]";
        string(nullable)
            .pattern(Some(format!(
                "^{TRIMMED}*(?:{solid}(?:{not_nul}{{0,{}}}{solid})?)?{TRIMMED}*$",
                max - 2
            )))
            .description(Some(format!(
                "At most {max} characters once surrounding whitespace is trimmed (blank means none); no NUL."
            )))
            .build()
    }

    /// A query text filter: anything but NUL.
    pub fn query_text() -> Object {
        string(false).pattern(Some(r"^[^\u0000]*$")).build()
    }

    /// [`crate::http::users::username`].
    pub fn username(nullable: bool) -> Object {
        string(nullable)
            .pattern(Some(format!(
                "^{TRIMMED}*[A-Za-z0-9._@+-]{{{},{}}}{TRIMMED}*$",
                crate::http::users::USERNAME_CHARS.start(),
                crate::http::users::USERNAME_CHARS.end()
            )))
            .description(Some(
                "3 to 100 letters, digits and `. _ - @ +` (surrounding whitespace is trimmed); stored lower-cased.",
            ))
            .build()
    }

    /// [`crate::passwords::weakness`].
    pub fn password(nullable: bool) -> Object {
        string(nullable)
            .min_length(Some(crate::passwords::MIN_LENGTH))
            .max_length(Some(crate::passwords::MAX_LENGTH))
            .build()
    }

    /// [`super::phone`].
    pub fn phone(nullable: bool) -> Object {
        let s = PHONE_SEPARATOR;
        string(nullable)
            .pattern(Some(format!(
                r"^{s}*\+{s}*[1-9](?:{s}*[0-9]){{7,14}}{s}*$"
            )))
            .description(Some(
                "E.164: `+`, then 8 to 15 digits, the first not 0; spaces, `-`, `(` and `)` are ignored.",
            ))
            .build()
    }

    /// [`super::email`].
    pub fn email(nullable: bool) -> Object {
        let c = ADDRESS_CHAR;
        string(nullable)
            .max_length(Some(super::MAX_EMAIL_CHARS))
            .pattern(Some(format!(
                r"^{TRIMMED}*(?:{c}|\.){{1,{}}}@{c}+(?:\.{c}+)+{TRIMMED}*$",
                super::MAX_EMAIL_LOCAL_CHARS
            )))
            .description(Some(
                "One `@`, at most 64 characters before it, a dotted domain after it; stored lower-cased.",
            ))
            .build()
    }

    /// [`super::time_zone`]: every IANA name chrono-tz knows.
    pub fn time_zone(nullable: bool) -> Object {
        let names: Vec<String> = chrono_tz::TZ_VARIANTS
            .iter()
            .map(|tz| escape(tz.name()))
            .collect();
        string(nullable)
            .pattern(Some(format!(
                "^{TRIMMED}*(?:{}){TRIMMED}*$",
                names.join("|")
            )))
            .description(Some("An IANA time zone, e.g. `Europe/Madrid`."))
            .build()
    }

    /// [`super::language`].
    pub fn language() -> Object {
        string(true)
            .pattern(Some(format!("^{TRIMMED}*[Ee][NnSs]{TRIMMED}*$")))
            .description(Some("`es` or `en` (any case)."))
            .build()
    }

    /// [`super::patient_status`].
    pub fn patient_status() -> Object {
        string(true)
            .pattern(Some(format!(
                "^{TRIMMED}*(?:[Ii][Nn])?[Aa][Cc][Tt][Ii][Vv][Ee]{TRIMMED}*$"
            )))
            .description(Some("`ACTIVE` (default) or `INACTIVE` (any case)."))
            .build()
    }

    /// One zero-argument function per field, for `#[schema(schema_with = ..)]`.
    macro_rules! fields {
        ($($name:ident => $schema:expr;)*) => {
            $(pub fn $name() -> Object { $schema })*
        };
    }
    use super::{MAX_ADDRESS_CHARS, MAX_NAME_CHARS, MAX_SPECIALTY_CHARS};
    fields! {
        name_field => text(MAX_NAME_CHARS, false);
        name_change => text(MAX_NAME_CHARS, true);
        address_field => text(MAX_ADDRESS_CHARS, false);
        address_change => text(MAX_ADDRESS_CHARS, true);
        specialty_field => text(MAX_SPECIALTY_CHARS, false);
        specialty_change => text(MAX_SPECIALTY_CHARS, true);
        username_field => username(false);
        username_change => username(true);
        password_field => password(false);
        password_change => password(true);
        phone_change => phone(true);
        email_change => email(true);
        time_zone_field => time_zone(false);
        time_zone_change => time_zone(true);
        language_change => language();
        patient_status_change => patient_status();
        booking_reason => free_text(crate::http::bookings::MAX_REASON_CHARS, true);
        query_filter => query_text();
    }

    fn escape(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            if r"\.+*?()|[]{}^$".contains(c) {
                out.push('\\');
            }
            out.push(c);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_must_be_e164() {
        let mut e = Vec::new();
        assert_eq!(
            phone("p", "+34 600-123-456", &mut e).as_deref(),
            Some("+34600123456")
        );
        assert!(e.is_empty());
        for bad in [
            "600123456",
            "+0123456789",
            "+34abc",
            "+123",
            "+1234567890123456",
        ] {
            let mut e = Vec::new();
            assert!(phone("p", bad, &mut e).is_none(), "{bad} accepted");
            assert_eq!(e.len(), 1);
        }
    }

    #[test]
    fn emails_are_checked_and_lowercased() {
        let mut e = Vec::new();
        assert_eq!(
            email("e", " Ana@Clinic.ES ", &mut e).as_deref(),
            Some("ana@clinic.es")
        );
        for bad in [
            "ana", "ana@", "@x.es", "ana@x", "a b@x.es", "a@x..es", "a@b@c.es",
        ] {
            let mut e = Vec::new();
            assert!(email("e", bad, &mut e).is_none(), "{bad} accepted");
        }
    }

    #[test]
    fn time_zones_and_languages() {
        let mut e = Vec::new();
        assert_eq!(
            time_zone("tz", "Europe/Madrid", &mut e).as_deref(),
            Some("Europe/Madrid")
        );
        assert!(time_zone("tz", "Mars/Olympus", &mut e).is_none());
        assert_eq!(language("l", Some("ES"), &mut e).as_deref(), Some("es"));
        assert!(language("l", Some("fr"), &mut e).is_none());
        assert_eq!(e.len(), 2);
    }

    /// The schema's pattern accepts exactly what the parser accepts, on the tricky cases.
    fn agree(pattern: &utoipa::openapi::Object, parses: impl Fn(&str) -> bool, samples: &[&str]) {
        let pattern = pattern.pattern.as_deref().unwrap();
        let regex = regex::Regex::new(pattern).unwrap();
        for sample in samples {
            assert_eq!(regex.is_match(sample), parses(sample), "{sample:?}");
        }
    }

    #[test]
    fn schemas_state_the_rules() {
        let text = |v: &str| required_text("n", v, 10, &mut Vec::new()).is_some();
        agree(
            &schema::text(10, false),
            text,
            &[
                "Ana",
                " Ana ",
                "\tAna\n",
                "a",
                "",
                "   ",
                "\u{3000}",
                "a\tb",
                "a\u{0}b",
                "0123456789",
                " 0123456789 ",
                "01234567890",
                "\u{85}x",
                "x\u{1}",
                "\u{feff}",
                "a b",
            ],
        );
        let phone = |v: &str| phone("p", v, &mut Vec::new()).is_some();
        agree(
            &schema::phone(false),
            phone,
            &[
                "+34600123456",
                "+34 600-123-456",
                "(+34) 600",
                "+0123456789",
                "600123456",
                "+1234567",
                "+12345678",
                "+123456789012345",
                "+1234567890123456",
                " +34600123456",
            ],
        );
        let email = |v: &str| email("e", v, &mut Vec::new()).is_some();
        agree(
            &schema::email(false),
            email,
            &[
                "ana@clinic.es",
                " Ana@Clinic.ES ",
                "ana",
                "a@b",
                "a@.b",
                "a@b.",
                "a@b..c",
                "a@b@c.es",
                "a b@c.es",
                ".a@b.c",
                "a.@b.c",
                "ñ@ü.es",
                "a@b.c\u{0}",
            ],
        );
        let user = |v: &str| crate::http::users::username(v, &mut Vec::new()).is_some();
        agree(
            &schema::username(false),
            user,
            &[
                "ana",
                " Ana.B ",
                "ab",
                "a b c",
                "ana!",
                "\u{212a}ab",
                "a+b@c-d_e",
            ],
        );
        let language = |v: &str| language("l", Some(v), &mut Vec::new()).is_some();
        agree(
            &schema::language(),
            language,
            &["es", " EN ", "fr", "e s", "ess"],
        );
        let status = |v: &str| {
            let mut e = Vec::new();
            patient_status("s", Some(v), &mut e);
            e.is_empty()
        };
        agree(
            &schema::patient_status(),
            status,
            &["ACTIVE", " inactive ", "ACTIV", "ınactıve", "NACTIVE"],
        );
        let zone = |v: &str| time_zone("tz", v, &mut Vec::new()).is_some();
        agree(
            &schema::time_zone(false),
            zone,
            &[
                "Europe/Madrid",
                " UTC ",
                "Etc/GMT+5",
                "Etc/GMT+",
                "europe/madrid",
                "Mars/Olympus",
            ],
        );
    }

    #[test]
    fn text_rules() {
        let mut e = Vec::new();
        assert_eq!(
            required_text("n", "  Ana  ", 10, &mut e).as_deref(),
            Some("Ana")
        );
        assert!(required_text("n", "   ", 10, &mut e).is_none());
        assert!(required_text("n", "abcdefghijk", 10, &mut e).is_none());
        assert!(required_text("n", "a\u{0}b", 10, &mut e).is_none());
        assert_eq!(e.len(), 3);
    }
}
