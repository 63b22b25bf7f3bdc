//! Error groups (the `errors` of devid's error answers, or of the same checks run
//! offline) as a table a person reads top to bottom: one line per sample, in file
//! order, then what the samples leave out.

use serde_json::Value;

/// Widest a value is shown; longer ones end with `…`.
const VALUE_WIDTH: usize = 40;

/// The table for `groups` (a JSON array of `{errorType, fieldName, errorCount, message,
/// samples}`). `place` says where a sample's line is in words the reader knows (`line
/// 12` of their file, or which row when the body sent was built from it).
pub fn error_table(groups: &Value, place: &dyn Fn(u64) -> String) -> String {
    let groups = groups.as_array().map(Vec::as_slice).unwrap_or_default();
    let mut rows: Vec<(u8, u64, [String; 5])> = Vec::new();
    let mut notes = Vec::new();
    for group in groups {
        let text = |key: &str| group.get(key).and_then(Value::as_str).unwrap_or_default().to_string();
        let samples = group.get("samples").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        for sample in samples {
            let (order, at, place) =
                match (sample.get("line").and_then(Value::as_u64), sample.get("index").and_then(Value::as_u64)) {
                    (Some(n), _) => (1, n, place(n)),
                    (None, Some(i)) => (1, i, format!("index {i}")),
                    (None, None) => (0, 0, "file".to_string()),
                };
            let value = match sample.get("value") {
                Some(Value::String(s)) => shorten(s),
                Some(Value::Null) | None => String::new(),
                Some(other) => shorten(&other.to_string()),
            };
            let reason = sample
                .get("reason")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| plain_message(&text("errorType"), &text("message")));
            rows.push((order, at, [place, text("errorType"), text("fieldName"), value, reason]));
        }
        let count = group.get("errorCount").and_then(Value::as_u64).unwrap_or(samples.len() as u64);
        if count > samples.len() as u64 {
            notes.push(format!("{}: {count} in all, {} shown. {}", text("errorType"), samples.len(), text("message")));
        } else if samples.is_empty() {
            notes.push(format!("{}: {}", text("errorType"), text("message")));
        }
    }
    rows.sort_by_key(|(order, at, _)| (*order, *at));
    let header = ["WHERE", "ERROR", "FIELD", "VALUE", "PROBLEM"].map(String::from);
    let mut widths = header.clone().map(|h| h.chars().count());
    for (_, _, cells) in &rows {
        for (width, cell) in widths.iter_mut().zip(cells) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    if !rows.is_empty() {
        for cells in std::iter::once(&header).chain(rows.iter().map(|(_, _, c)| c)) {
            let mut line = String::new();
            for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
                if i + 1 == cells.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    line.extend(std::iter::repeat_n(' ', width - cell.chars().count() + 2));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    for note in notes {
        out.push_str(&note);
        out.push('\n');
    }
    out
}

/// A group's message without what the table already shows: its leading error type
/// and its trailing count (`INVALID_X: what is wrong (3 occurrences).` → `what is wrong.`).
fn plain_message(error_type: &str, message: &str) -> String {
    let message = message.strip_prefix(error_type).and_then(|m| m.strip_prefix(": ")).unwrap_or(message);
    match message.rfind(" (") {
        Some(at) if message.ends_with("occurrence).") || message.ends_with("occurrences).") => {
            format!("{}.", &message[..at])
        }
        _ => message.to_string(),
    }
}

fn shorten(value: &str) -> String {
    let shown: String = value.chars().map(|c| if c.is_control() { '·' } else { c }).collect();
    if shown.chars().count() <= VALUE_WIDTH {
        return shown;
    }
    let mut cut: String = shown.chars().take(VALUE_WIDTH - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_rows_in_file_order_and_the_rest_is_counted() {
        let groups: Value = serde_json::from_str(
            r#"[{"errorType":"INVALID_EMAIL","fieldName":"email","errorCount":3,"message":"Emails must look like name@domain.",
                 "samples":[{"line":9,"value":"bob"},{"line":3,"value":"al@","reason":"nothing after the @"}]},
                {"errorType":"UNKNOWN_INTEGRATION","fieldName":"integrationId","errorCount":1,"message":"No such integration.",
                 "samples":[{"line":5,"value":"77"}]}]"#,
        )
        .expect("json");
        let table = error_table(&groups, &|n| format!("line {n}"));
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines,
            [
                "WHERE   ERROR                FIELD          VALUE  PROBLEM",
                "line 3  INVALID_EMAIL        email          al@    nothing after the @",
                "line 5  UNKNOWN_INTEGRATION  integrationId  77     No such integration.",
                "line 9  INVALID_EMAIL        email          bob    Emails must look like name@domain.",
                "INVALID_EMAIL: 3 in all, 2 shown. Emails must look like name@domain.",
            ]
        );
    }

    #[test]
    fn a_sample_without_a_reason_shows_the_plain_message() {
        assert_eq!(
            plain_message(
                "REQUIRED_VALUE_MISSING",
                "REQUIRED_VALUE_MISSING: a required value is empty (1 occurrence)."
            ),
            "a required value is empty."
        );
        assert_eq!(plain_message("X", "Something (else)."), "Something (else).");
    }

    #[test]
    fn lines_are_translated_and_long_values_cut() {
        let groups: Value = serde_json::from_str(&format!(
            r#"[{{"errorType":"INVALID_IDENTITY","fieldName":"identity","errorCount":1,"message":"m","samples":[{{"line":2,"value":"{}"}}]}}]"#,
            "x".repeat(300)
        ))
        .expect("json");
        let table = error_table(&groups, &|n| format!("line {}", n + 100));
        assert!(table.contains("line 102"), "{table}");
        assert!(table.contains(&format!("{}…", "x".repeat(VALUE_WIDTH - 1))), "{table}");
        assert!(!table.contains(&"x".repeat(VALUE_WIDTH + 1)));
    }
}
