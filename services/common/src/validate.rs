//! Field validation shared by the services; each rule returns the reason a value fails.

use crate::error::FieldError;

/// Collects field errors; `finish` turns them into `Err` when there are any.
#[derive(Debug, Default)]
pub struct Validator {
    errors: Vec<FieldError>,
}

impl Validator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the failure of `result` under `field`; returns the value on success.
    pub fn field<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(reason) => {
                self.errors.push(FieldError::new(field, reason));
                None
            }
        }
    }

    pub fn finish(self) -> Result<(), Vec<FieldError>> {
        if self.errors.is_empty() { Ok(()) } else { Err(self.errors) }
    }
}

/// A required value.
pub fn required<T>(value: Option<T>) -> Result<T, String> {
    value.ok_or_else(|| "is required".to_string())
}

/// Trimmed, non-empty text of at most `max` characters.
pub fn text(value: Option<String>, max: usize) -> Result<String, String> {
    let value = required(value)?.trim().to_string();
    if value.is_empty() {
        return Err("must not be blank".into());
    }
    if value.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    plain(&value)?;
    Ok(value)
}

/// Refuses control characters (NUL, which Postgres cannot store in text, among them)
/// and the invisible format characters that reorder or hide text (bidirectional
/// overrides such as U+202E, zero-width characters, the byte-order mark).
pub fn plain(value: &str) -> Result<(), String> {
    if value.chars().any(|c| c.is_control() || is_format(c)) {
        return Err("must not contain control or format characters".into());
    }
    Ok(())
}

/// Unicode's format characters (category Cf) that occur in text: soft hyphen, Arabic
/// and Syriac marks, zero-width and joiner characters, bidirectional marks, embeddings,
/// overrides and isolates, invisible operators, the byte-order mark, interlinear
/// annotation and the tag characters. One table, read by [`plain`] and by the OpenAPI
/// patterns ([`forbidden_class`]), so that the documents say exactly what is refused.
pub const FORMAT_RANGES: [(char, char); 16] = [
    ('\u{AD}', '\u{AD}'),
    ('\u{600}', '\u{605}'),
    ('\u{61C}', '\u{61C}'),
    ('\u{6DD}', '\u{6DD}'),
    ('\u{70F}', '\u{70F}'),
    ('\u{180E}', '\u{180E}'),
    ('\u{200B}', '\u{200F}'),
    ('\u{202A}', '\u{202E}'),
    ('\u{2060}', '\u{2064}'),
    ('\u{2066}', '\u{206F}'),
    ('\u{FEFF}', '\u{FEFF}'),
    ('\u{FFF9}', '\u{FFFB}'),
    ('\u{E0001}', '\u{E0001}'),
    ('\u{E0020}', '\u{E007F}'),
    // Control characters (category Cc), which `char::is_control` also finds.
    ('\u{0}', '\u{1F}'),
    ('\u{7F}', '\u{9F}'),
];

fn is_format(c: char) -> bool {
    FORMAT_RANGES.iter().any(|(from, to)| (*from..=*to).contains(&c))
}

/// The characters [`plain`] refuses, as the body of a regular-expression character
/// class (`\uXXXX` escapes, as ECMA-262 and Python read them). Characters beyond the
/// Basic Multilingual Plane (the tag characters) cannot be written so portably and
/// are left out of the class; the service still refuses them.
pub fn forbidden_class() -> String {
    FORMAT_RANGES
        .iter()
        .filter(|(_, to)| u32::from(*to) <= 0xFFFF)
        .map(|(from, to)| {
            if from == to {
                format!("\\u{:04x}", u32::from(*from))
            } else {
                format!("\\u{:04x}-\\u{:04x}", u32::from(*from), u32::from(*to))
            }
        })
        .collect()
}

/// An email address, trimmed and lower-cased so that uniqueness ignores case.
pub fn email(value: Option<String>) -> Result<String, String> {
    let value = required(value)?.trim().to_lowercase();
    const REASON: &str = "must be a valid email address";
    if value.is_empty() || value.len() > 254 {
        return Err(REASON.into());
    }
    let Some((local, domain)) = value.split_once('@') else {
        return Err(REASON.into());
    };
    let domain_ok = domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && domain.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local.chars().all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
    if domain_ok && local_ok { Ok(value) } else { Err(REASON.into()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(email(Some(" Ada@Example.COM ".into())), Ok("ada@example.com".into()));
        // Non-ASCII is refused: the address travels in HTTP headers (X-User-Email).
        for bad in ["", "plain", "a@b", "a@@b.c", "a b@c.d", "@b.c", "a@.b.c", "a@b..c", "jos\u{e9}@b.co"] {
            assert!(email(Some(bad.into())).is_err(), "{bad} should be rejected");
        }
        assert_eq!(email(None), Err("is required".into()));
    }

    #[test]
    fn text_is_trimmed_and_bounded() {
        assert_eq!(text(Some("  x ".into()), 5), Ok("x".into()));
        assert!(text(Some("   ".into()), 5).is_err());
        assert!(text(Some("abcdef".into()), 5).is_err());
        assert!(text(Some("a\u{0}b".into()), 5).is_err());
    }

    #[test]
    fn control_and_format_characters_are_refused_and_other_scripts_are_not() {
        for bad in ["a\u{0}b", "tab\there", "Ada\u{202E}gnp.exe", "zero\u{200B}width", "\u{FEFF}bom", "iso\u{2066}late"]
        {
            assert_eq!(plain(bad), Err("must not contain control or format characters".into()), "{bad:?}");
        }
        for good in ["Zo\u{eb} \u{d8}stergaard", "\u{5e9}\u{5dc}\u{5d5}\u{5dd}", "\u{674e}\u{534e}", "O'Brien-Smith"] {
            assert_eq!(plain(good), Ok(()), "{good:?}");
        }
    }

    #[test]
    fn the_pattern_class_lists_every_refused_character_of_the_basic_plane() {
        let class = forbidden_class();
        assert!(class.starts_with("\\u00ad\\u0600-\\u0605"), "{class}");
        assert!(class.ends_with("\\u0000-\\u001f\\u007f-\\u009f"), "{class}");
        // The class as a regular expression reads it: `\uXXXX` or `\uXXXX-\uXXXX` items.
        let code = |hex: &str| u32::from_str_radix(hex, 16).expect("four hex digits");
        let mut items: Vec<(u32, u32)> = Vec::new();
        let mut open_range = None;
        for item in class.split("\\u").filter(|item| !item.is_empty()) {
            match (open_range.take(), item.strip_suffix('-')) {
                (None, Some(from)) => open_range = Some(code(from)),
                (None, None) => items.push((code(item), code(item))),
                (Some(from), None) => items.push((from, code(item))),
                (Some(_), Some(_)) => panic!("a range ends in a range: {class}"),
            }
        }
        assert!(open_range.is_none(), "an unfinished range: {class}");
        // Every character of the Basic Multilingual Plane: in the class exactly when
        // the validator refuses it.
        for c in (0..=0xFFFFu32).filter_map(char::from_u32) {
            let in_class = items.iter().any(|(from, to)| (*from..=*to).contains(&u32::from(c)));
            assert_eq!(in_class, plain(&c.to_string()).is_err(), "{c:?}");
        }
    }

    #[test]
    fn validator_collects_every_failure() {
        let mut v = Validator::new();
        assert_eq!(v.field("a", text(None, 3)), None);
        assert_eq!(v.field("b", text(Some("ok".into()), 3)), Some("ok".to_string()));
        assert_eq!(v.field("c", email(Some("nope".into()))), None);
        let errors = v.finish().unwrap_err();
        assert_eq!(errors.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(), ["a", "c"]);
    }
}
