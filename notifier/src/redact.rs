//! Masks personal data in free text that comes from outside (SMTP replies, SMS provider
//! errors) before it is logged or stored in the delivery log: providers like to echo the
//! recipient (`550 5.1.1 <ana@example.com>: user unknown`, `The 'To' number +34600123456 is
//! not a valid phone number`). Over-masking (a date, a long reference) is the accepted cost.

/// Replaces anything that looks like an email address with `[email]` and any run of 7 or more
/// digits (separators allowed, as phone numbers are written) with `[phone]`.
pub fn redact(text: &str) -> String {
    let masked_emails = mask_emails(text);
    mask_digit_runs(&masked_emails)
}

fn is_email_boundary(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '<' | '>' | '"' | '\'' | ',' | ';' | '(' | ')' | '[' | ']' | '{' | '}'
        )
}

fn mask_emails(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut token = String::new();
    let flush = |token: &mut String, out: &mut String| {
        let looks_like_email = token
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty());
        if looks_like_email {
            out.push_str("[email]");
        } else {
            out.push_str(token);
        }
        token.clear();
    };
    for c in text.chars() {
        if is_email_boundary(c) {
            flush(&mut token, &mut out);
            out.push(c);
        } else {
            token.push(c);
        }
    }
    flush(&mut token, &mut out);
    out
}

fn mask_digit_runs(text: &str) -> String {
    const MIN_DIGITS: usize = 7;
    let is_separator = |c: char| matches!(c, ' ' | '-' | '.' | '(' | ')');
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let plus_digit = c == '+' && chars.get(i + 1).is_some_and(char::is_ascii_digit);
        if !c.is_ascii_digit() && !plus_digit {
            out.push(c);
            i += 1;
            continue;
        }
        // A run of digits and the separators people write numbers with; it ends on a digit.
        let mut j = if plus_digit { i + 1 } else { i };
        let (mut digits, mut last_digit) = (0, j);
        while j < chars.len() && (chars[j].is_ascii_digit() || is_separator(chars[j])) {
            if chars[j].is_ascii_digit() {
                digits += 1;
                last_digit = j;
            }
            j += 1;
        }
        if digits >= MIN_DIGITS {
            out.push_str("[phone]");
        } else {
            out.extend(&chars[i..=last_digit]);
        }
        i = last_digit + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_addresses_echoed_by_smtp_servers() {
        assert_eq!(
            redact("550 5.1.1 <ana.garcia@example.com>: Recipient address rejected"),
            "550 5.1.1 <[email]>: Recipient address rejected"
        );
        assert_eq!(redact("to ana@example.com, bcc"), "to [email], bcc");
    }

    #[test]
    fn masks_phone_numbers_however_written() {
        assert_eq!(
            redact("The 'To' number +34600123456 is not a valid phone number."),
            "The 'To' number [phone] is not a valid phone number."
        );
        assert_eq!(redact("call +34 600 123 456 now"), "call [phone] now");
        assert_eq!(redact("(+1) 415-555-0100"), "([phone]");
    }

    #[test]
    fn keeps_status_codes_and_short_numbers() {
        let text = "SMS provider answered 400 Bad Request (code 21211), 2 segments, 4.2.0 retry";
        assert_eq!(redact(text), text);
        assert_eq!(
            redact("450 4.2.1 try again in 30 s"),
            "450 4.2.1 try again in 30 s"
        );
    }
}
