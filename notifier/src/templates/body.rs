//! The two bodies of an email, plain text and HTML, made of the same greeting, paragraphs and
//! closing. Everything that goes into the HTML is escaped (patient and doctor names included).

/// The plain-text and the HTML body; `lang` is the HTML document's language code.
pub(super) fn bodies(
    lang: &str,
    subject: &str,
    greeting: &str,
    paragraphs: &[String],
    closing: &str,
) -> (String, String) {
    let text = format!("{greeting}\n\n{}\n\n{closing}\n", paragraphs.join("\n\n"));
    let html_paragraphs: String = paragraphs
        .iter()
        .map(|p| format!("<p>{}</p>", html_escape(p)))
        .collect();
    let html = format!(
        "<!DOCTYPE html><html lang=\"{lang}\"><head><meta charset=\"utf-8\"><title>{subject_html}</title></head>\
         <body><p>{greeting_html}</p>{html_paragraphs}<p>{closing_html}</p></body></html>",
        subject_html = html_escape(subject),
        greeting_html = html_escape(greeting),
        closing_html = html_escape(closing).replace('\n', "<br>"),
    );
    (text, html)
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
