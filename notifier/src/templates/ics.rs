//! The calendar file: a single-event iCalendar object (RFC 5545) with an iTIP method
//! (RFC 5546), its text escaped and its lines folded at 75 octets.

use chrono::{DateTime, Utc};

use super::CalendarRef;

/// `METHOD` of an iCalendar object (RFC 5546).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcsMethod {
    /// A new or updated appointment.
    Publish,
    /// The appointment no longer happens.
    Cancel,
}

impl IcsMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            IcsMethod::Publish => "PUBLISH",
            IcsMethod::Cancel => "CANCEL",
        }
    }
}

/// An iCalendar attachment.
#[derive(Debug, Clone)]
pub struct Ics {
    pub method: IcsMethod,
    pub file_name: &'static str,
    /// CRLF line ends, folded at 75 octets.
    pub content: String,
}

/// What goes into a calendar file.
pub struct IcsEvent<'a> {
    pub method: IcsMethod,
    pub calendar: &'a CalendarRef,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// `DTSTAMP`: when this version of the appointment came to be.
    pub stamp: DateTime<Utc>,
    pub summary: &'a str,
    pub description: &'a str,
    pub location: &'a str,
    /// Common name and email address of the organizer.
    pub organizer: Option<(&'a str, &'a str)>,
}

/// A single-event iCalendar object (RFC 5545) with an iTIP method (RFC 5546): `PUBLISH` for a
/// new or moved appointment, `CANCEL` (same `UID`, higher `SEQUENCE`) to take it off the
/// calendar. Times are UTC, so no `VTIMEZONE` is needed.
pub fn ics(e: &IcsEvent<'_>) -> String {
    let stamp = |t: DateTime<Utc>| t.format("%Y%m%dT%H%M%SZ").to_string();
    let (status, sequence) = match e.method {
        IcsMethod::Publish => ("CONFIRMED", e.calendar.sequence),
        IcsMethod::Cancel => ("CANCELLED", e.calendar.sequence + 1),
    };
    let mut lines = vec![
        "BEGIN:VCALENDAR".to_string(),
        "VERSION:2.0".to_string(),
        "PRODID:-//Citaflow//Bookings//EN".to_string(),
        "CALSCALE:GREGORIAN".to_string(),
        format!("METHOD:{}", e.method.as_str()),
        "BEGIN:VEVENT".to_string(),
        format!("UID:{}@citaflow", e.calendar.uid),
        format!("SEQUENCE:{sequence}"),
        format!("DTSTAMP:{}", stamp(e.stamp)),
        format!("DTSTART:{}", stamp(e.starts_at)),
        format!(
            "DTEND:{}",
            stamp(e.ends_at.max(e.starts_at + chrono::Duration::minutes(1)))
        ),
        format!("SUMMARY:{}", ics_escape(e.summary)),
        format!("DESCRIPTION:{}", ics_escape(e.description)),
    ];
    if !e.location.is_empty() {
        lines.push(format!("LOCATION:{}", ics_escape(e.location)));
    }
    if let Some((name, email)) = e.organizer {
        lines.push(format!("ORGANIZER;CN={}:mailto:{email}", ics_param(name)));
    }
    lines.extend([
        format!("STATUS:{status}"),
        "TRANSP:OPAQUE".to_string(),
        "END:VEVENT".to_string(),
        "END:VCALENDAR".to_string(),
    ]);
    lines.iter().map(|l| fold(l) + "\r\n").collect()
}

/// TEXT value escaping (RFC 5545 §3.3.11).
fn ics_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace(';', "\\;")
        .replace(',', "\\,")
        .replace("\r\n", "\\n")
        .replace(['\n', '\r'], "\\n")
}

/// A parameter value (RFC 5545 §3.1): quoted, without the characters a quoted value cannot hold.
fn ics_param(s: &str) -> String {
    let clean: String = s.chars().filter(|c| *c != '"' && !c.is_control()).collect();
    format!("\"{clean}\"")
}

/// Folds a content line at 75 octets (RFC 5545 §3.1), never inside a UTF-8 character.
fn fold(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + 8);
    let mut width = 0;
    for c in line.chars() {
        let len = c.len_utf8();
        if width + len > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += len;
    }
    out
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use chrono::Utc;

    /// Unfolded content lines of an iCalendar object, checking the line rules on the way.
    pub(in crate::templates) fn content_lines(ics: &str) -> Vec<String> {
        assert!(ics.ends_with("\r\n"), "ends with CRLF");
        assert!(!ics.replace("\r\n", "").contains('\n'), "no bare LF");
        assert!(!ics.replace("\r\n", "").contains('\r'), "no bare CR");
        let mut lines: Vec<String> = Vec::new();
        for raw in ics.split("\r\n").filter(|l| !l.is_empty()) {
            assert!(raw.len() <= 75, "line longer than 75 octets: {raw}");
            match raw.strip_prefix(' ') {
                Some(rest) => lines
                    .last_mut()
                    .expect("a continuation follows a line")
                    .push_str(rest),
                None => lines.push(raw.to_string()),
            }
        }
        lines
    }

    #[test]
    fn ics_lines_are_folded_at_75_octets_and_text_is_escaped() {
        let long = "ñ".repeat(100);
        let calendar = CalendarRef {
            uid: "id".into(),
            sequence: 0,
        };
        let ics = ics(&IcsEvent {
            method: IcsMethod::Publish,
            calendar: &calendar,
            starts_at: Utc::now(),
            ends_at: Utc::now(),
            stamp: Utc::now(),
            summary: &long,
            description: "a;b,c\\d\ne",
            location: "",
            organizer: Some(("Clínica \"Sur\"", "a@b.c")),
        });
        assert!(ics.split("\r\n").all(|line| line.len() <= 75));
        assert!(ics.contains("\r\n ñ"), "folded between characters");
        let lines = content_lines(&ics);
        assert!(lines.contains(&format!("SUMMARY:{long}")));
        assert!(lines.contains(&"DESCRIPTION:a\\;b\\,c\\\\d\\ne".to_string()));
        assert!(lines.contains(&"ORGANIZER;CN=\"Clínica Sur\":mailto:a@b.c".to_string()));
        assert!(
            !lines.iter().any(|l| l.starts_with("LOCATION")),
            "no empty LOCATION"
        );
    }
}
