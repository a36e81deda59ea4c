//! Field rules of the directory: each parser returns the normalised value, or records why
//! the field is invalid so one answer lists every problem.

use crate::http::error::{ApiError, FieldError};

/// `Ok` when no field is invalid, else one 422 listing them all.
pub fn collect(errors: Vec<FieldError>) -> Result<(), ApiError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// Escapes `%`, `_` and `\` for a LIKE pattern.
pub fn like_escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

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

/// An email address (pragmatic check: one `@`, a dotted domain, no spaces), lower-cased.
pub fn email(field: &str, value: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    let value = value.trim();
    let valid = value.len() <= 254
        && !value.chars().any(|c| c.is_whitespace() || c.is_control())
        && match value.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && local.len() <= 64
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
    let value = value?.trim().to_lowercase();
    if matches!(value.as_str(), "es" | "en") {
        Some(value)
    } else {
        errors.push(FieldError::new(field, "must be `es` or `en`"));
        None
    }
}

/// `ACTIVE` (default) or `INACTIVE`.
pub fn patient_status(field: &str, value: Option<&str>, errors: &mut Vec<FieldError>) -> String {
    let value = value.unwrap_or("ACTIVE").trim().to_uppercase();
    if !matches!(value.as_str(), "ACTIVE" | "INACTIVE") {
        errors.push(FieldError::new(field, "must be ACTIVE or INACTIVE"));
    }
    value
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
