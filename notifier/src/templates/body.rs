//! The two bodies of an email, plain text and HTML, made of the same greeting, paragraphs and
//! closing. Everything that goes into the HTML is escaped (patient and doctor names included).

/// Where a message leads: a labelled link to the page in the web app.
pub(super) struct Action<'a> {
    pub label: &'a str,
    pub url: &'a str,
}

/// The plain-text and the HTML body; `lang` is the HTML document's language code, `clinic`
/// the name the message comes from (the center's), `footer` its address line.
#[allow(clippy::too_many_arguments)]
pub(super) fn bodies(
    lang: &str,
    clinic: &str,
    footer: &str,
    subject: &str,
    greeting: &str,
    paragraphs: &[String],
    action: Option<Action<'_>>,
    closing: &str,
) -> (String, String) {
    let mut text = format!("{greeting}\n\n{}\n\n", paragraphs.join("\n\n"));
    if let Some(a) = &action {
        text.push_str(&format!("{}: {}\n\n", a.label, a.url));
    }
    text.push_str(closing);
    text.push('\n');
    let html_paragraphs: String = paragraphs
        .iter()
        .map(|p| format!("<p style=\"margin:0 0 16px\">{}</p>", html_escape(p)))
        .collect();
    // One centred card, inline styles only (what email clients keep), a real link as the
    // button so it works without styles too.
    let button = action
        .map(|a| {
            format!(
                "<p style=\"margin:24px 0\"><a href=\"{url}\" style=\"background:#0b6e4f;color:#ffffff;\
                 text-decoration:none;padding:12px 20px;border-radius:6px;display:inline-block;\
                 font-weight:bold\">{label}</a></p>\
                 <p style=\"margin:0 0 16px;font-size:13px;color:#555555\">{url}</p>",
                url = html_escape(a.url),
                label = html_escape(a.label),
            )
        })
        .unwrap_or_default();
    let html = format!(
        "<!DOCTYPE html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{subject_html}</title></head>\
         <body style=\"margin:0;padding:0;background:#f3f5f4;font-family:Arial,Helvetica,sans-serif;\
         color:#1f2a26;line-height:1.5\">\
         <table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" style=\"background:#f3f5f4\">\
         <tr><td align=\"center\" style=\"padding:24px 12px\">\
         <table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" \
         style=\"max-width:560px;background:#ffffff;border-radius:8px;overflow:hidden\">\
         <tr><td style=\"background:#0b6e4f;color:#ffffff;padding:16px 24px;font-size:18px;\
         font-weight:bold\">{clinic_html}</td></tr>\
         <tr><td style=\"padding:24px\">\
         <h1 style=\"margin:0 0 16px;font-size:20px\">{subject_html}</h1>\
         <p style=\"margin:0 0 16px\">{greeting_html}</p>{html_paragraphs}{button}\
         <p style=\"margin:0\">{closing_html}</p></td></tr>\
         <tr><td style=\"padding:16px 24px;font-size:12px;color:#666666;border-top:1px solid #e3e8e6\">\
         {footer_html}</td></tr></table></td></tr></table></body></html>",
        subject_html = html_escape(subject),
        clinic_html = html_escape(clinic),
        footer_html = html_escape(footer),
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
