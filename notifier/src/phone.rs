//! Phone numbers the SMS channel may write to: E.164 only (`+`, country code, 8 to 15 digits
//! in all, no leading zero). The API validates numbers on the way in; rows written before that
//! check or imported in bulk are checked again here, because an SMS provider given a national
//! number either refuses it or, worse, guesses the country.

use std::fmt;

/// A phone number in E.164 form, e.g. `+34600123456`.
#[derive(Clone, PartialEq, Eq)]
pub struct Phone(String);

/// Why a stored number cannot be used. Carries no digits: it ends up in logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPhone {
    #[error("the phone number is empty")]
    Empty,
    #[error("the phone number has no international prefix (+ and country code)")]
    NoPrefix,
    #[error("the phone number contains characters other than digits")]
    NotDigits,
    #[error("the phone number has {0} digits; E.164 allows 8 to 15")]
    Length(usize),
    #[error("a country code cannot start with 0")]
    LeadingZero,
}

impl TryFrom<&str> for Phone {
    type Error = InvalidPhone;

    /// Accepts the usual separators (spaces, `-`, `.`, parentheses) and the `00` international
    /// prefix, and answers the compact form.
    fn try_from(value: &str) -> Result<Self, Self::Error> {
        let compact: String = value
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')' | '\u{a0}'))
            .collect();
        if compact.is_empty() {
            return Err(InvalidPhone::Empty);
        }
        let digits = match (compact.strip_prefix('+'), compact.strip_prefix("00")) {
            (Some(digits), _) | (None, Some(digits)) => digits,
            (None, None) => return Err(InvalidPhone::NoPrefix),
        };
        if !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(InvalidPhone::NotDigits);
        }
        if !(8..=15).contains(&digits.len()) {
            return Err(InvalidPhone::Length(digits.len()));
        }
        if digits.starts_with('0') {
            return Err(InvalidPhone::LeadingZero);
        }
        Ok(Phone(format!("+{digits}")))
    }
}

impl Phone {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Only the country code and the last two digits, so a stray `{:?}` never leaks a number.
impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tail = &self.0[self.0.len() - 2..];
        write!(f, "Phone({}…{tail})", &self.0[..3])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_e164_with_common_separators() {
        for (input, expected) in [
            ("+34600123456", "+34600123456"),
            ("+34 600 123 456", "+34600123456"),
            ("+34-600-123-456", "+34600123456"),
            ("+1 (415) 555.0100", "+14155550100"),
            ("0034600123456", "+34600123456"),
        ] {
            assert_eq!(
                Phone::try_from(input).unwrap().as_str(),
                expected,
                "{input}"
            );
        }
    }

    #[test]
    fn refuses_what_is_not_e164() {
        assert_eq!(Phone::try_from(""), Err(InvalidPhone::Empty));
        assert_eq!(Phone::try_from("600123456"), Err(InvalidPhone::NoPrefix));
        assert_eq!(
            Phone::try_from("+34 600 12x 456"),
            Err(InvalidPhone::NotDigits)
        );
        assert_eq!(Phone::try_from("+3460"), Err(InvalidPhone::Length(4)));
        assert_eq!(
            Phone::try_from("+3460012345678901"),
            Err(InvalidPhone::Length(16))
        );
        assert_eq!(
            Phone::try_from("+034600123456"),
            Err(InvalidPhone::LeadingZero)
        );
        assert_eq!(
            Phone::try_from("++34600123456"),
            Err(InvalidPhone::NotDigits)
        );
    }

    #[test]
    fn errors_and_debug_never_show_the_number() {
        let phone = Phone::try_from("+34600123456").unwrap();
        assert_eq!(format!("{phone:?}"), "Phone(+34…56)");
        let error = Phone::try_from("600123456").unwrap_err().to_string();
        assert!(!error.contains("600"), "{error}");
    }
}
