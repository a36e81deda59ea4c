//! SMS texts that stay in the GSM-7 alphabet and within two concatenated segments.

/// Longest SMS text kept: two concatenated GSM-7 segments of 153 characters.
pub const SMS_MAX_CHARS: usize = 306;

/// Maps characters outside the GSM-7 basic set to close ones (so a Spanish text stays in the
/// 7-bit alphabet and two segments hold 306 characters) and cuts to [`SMS_MAX_CHARS`].
pub fn fit_sms(text: &str) -> String {
    const GSM7: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
    let mapped: String = text
        .chars()
        .map(|c| match c {
            c if GSM7.contains(c) => c,
            'á' => 'a',
            'í' => 'i',
            'ó' => 'o',
            'ú' => 'u',
            'Á' => 'A',
            'Í' => 'I',
            'Ó' => 'O',
            'Ú' => 'U',
            'È' | 'Ê' | 'Ë' => 'E',
            'ê' | 'ë' => 'e',
            'ç' => 'c',
            'ï' | 'î' => 'i',
            'ô' => 'o',
            'û' => 'u',
            'â' => 'a',
            '–' | '—' => '-',
            '‘' | '’' => '\'',
            '“' | '”' => '"',
            _ => '?',
        })
        .collect();
    if mapped.chars().count() <= SMS_MAX_CHARS {
        return mapped;
    }
    let cut: String = mapped.chars().take(SMS_MAX_CHARS - 3).collect();
    format!("{cut}...")
}

/// `text` fitted like [`fit_sms`] with `tail` (a link) kept whole after it: the text is cut
/// to leave room for the tail, never the tail.
pub fn fit_sms_keeping(text: &str, tail: &str) -> String {
    let tail = fit_sms(tail);
    let room = SMS_MAX_CHARS.saturating_sub(tail.chars().count() + 1);
    let mapped = fit_sms(text);
    let head: String = if mapped.chars().count() <= room {
        mapped
    } else {
        let cut: String = mapped.chars().take(room.saturating_sub(3)).collect();
        format!("{cut}...")
    };
    format!("{head} {tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sms_text_stays_in_gsm7_and_two_segments() {
        let s = fit_sms("Cita confirmada con el Dr. Núñez en Clínica Óptima, día miércoles");
        assert_eq!(
            s,
            "Cita confirmada con el Dr. Nuñez en Clinica Optima, dia miércoles"
        );
        let long = fit_sms(&"a".repeat(500));
        assert_eq!(long.chars().count(), SMS_MAX_CHARS);
        assert!(long.ends_with("..."));
    }

    #[test]
    fn a_link_survives_the_fitting_whole() {
        let link =
            "https://citas.example.test/app/appointments/4b1d2c9e-5f8a-4e6b-9c1d-7a2b3c4d5e6f";
        let short = fit_sms_keeping("Cita confirmada.", link);
        assert_eq!(short, format!("Cita confirmada. {link}"));
        let long = fit_sms_keeping(&"a".repeat(500), link);
        assert_eq!(long.chars().count(), SMS_MAX_CHARS);
        assert!(long.ends_with(&format!("... {link}")), "{long}");
    }
}
