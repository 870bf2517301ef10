//! Text for messages: durations as people read them, and user input quoted short.

use std::time::Duration;

/// How much of a text argument an error message repeats: the message stays short (and memory
/// bounded) however long the argument is.
pub const SHOWN_BYTES: usize = 80;

/// `raw` as error messages quote it: whole when short, else its first [`SHOWN_BYTES`] bytes
/// (cut at a character boundary) and `...`.
pub fn shown(raw: &str) -> String {
    if raw.len() <= SHOWN_BYTES {
        return raw.to_string();
    }
    let cut = (0..=SHOWN_BYTES).rev().find(|&i| raw.is_char_boundary(i)).unwrap_or(0);
    format!("{}...", &raw[..cut])
}

/// The characters that are invisible, or change how the text around them is shown, so that
/// one name could pass for another in the `leases` view and in error messages (owner names
/// refuse them; path names are shown with them escaped) (`"job-1\u{202E}2-boj"` shows as `"job-1job-2"`).
/// `None` for every other character.
pub fn invisible_kind(c: char) -> Option<&'static str> {
    match c {
        // Bidirectional embeddings, overrides, isolates and marks.
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}' => {
            Some("a bidirectional control character")
        }
        // Zero width space, non-joiner and joiner; word joiner; zero width no-break space (BOM).
        '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' => Some("a zero-width character"),
        '\u{2028}' | '\u{2029}' => Some("a line or paragraph separator"),
        _ => None,
    }
}

/// Short, human durations for messages: `250 ms`, `3.1 s`, `2 min 5 s`, `1 h 3 min`.
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if d < Duration::from_millis(1) {
        "less than 1 ms".to_string()
    } else if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else if secs < 60 {
        format!("{:.1} s", d.as_secs_f64())
    } else if secs < 3600 {
        two_units(secs / 60, "min", secs % 60, "s")
    } else if secs < 86_400 {
        two_units(secs / 3600, "h", secs % 3600 / 60, "min")
    } else {
        two_units(secs / 86_400, "d", secs % 86_400 / 3600, "h")
    }
}

/// `2 min 5 s`, or `3 min` when the smaller unit is zero.
fn two_units(large: u64, large_unit: &str, small: u64, small_unit: &str) -> String {
    if small == 0 {
        format!("{large} {large_unit}")
    } else {
        format!("{large} {large_unit} {small} {small_unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::class::{ClassError, ClassProblem, Classes};
    use crate::request::{Mode, UnknownMode};
    use crate::row_mode::{RowMode, UnknownRowMode};

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(Duration::from_micros(300)), "less than 1 ms");
        assert_eq!(human_duration(Duration::from_millis(250)), "250 ms");
        assert_eq!(human_duration(Duration::from_millis(3140)), "3.1 s");
        assert_eq!(human_duration(Duration::from_secs(125)), "2 min 5 s");
        assert_eq!(human_duration(Duration::from_secs(3780)), "1 h 3 min");
        assert_eq!(human_duration(Duration::from_secs(90_000)), "1 d 1 h");
        assert_eq!(human_duration(Duration::from_secs(180)), "3 min");
        assert_eq!(human_duration(Duration::from_secs(7200)), "2 h");
    }

    #[test]
    fn long_arguments_are_quoted_short() {
        assert_eq!(shown("share"), "share");
        let long = "é".repeat(1_000_000);
        let quoted = shown(&long);
        assert!(quoted.len() <= SHOWN_BYTES + 3 && quoted.ends_with("..."), "{}", quoted.len());
        match Classes::parse_one(&"x".repeat(10_000_000)) {
            Err(ClassError::Invalid { class, reason: ClassProblem::TooLong }) => {
                assert_eq!(class, format!("{}...", "x".repeat(SHOWN_BYTES)))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(Mode::parse(&long), Err(UnknownMode(m)) if m == quoted));
        assert!(matches!(RowMode::parse(&long), Err(UnknownRowMode(m)) if m == quoted));
    }
}
