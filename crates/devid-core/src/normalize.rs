//! Normalisation of the values an upload carries: emails are the developer's key, and
//! identities must compare the way the source system compares them.

use crate::types::ApplicationType;

pub const MAX_EMAIL_LEN: usize = 254;
pub const MAX_IDENTITY_LEN: usize = 255;

/// Why an email was refused, in words a person can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailProblem {
    Missing,
    Invalid(&'static str),
}

/// Trims and lower-cases an email and checks a practical syntax: exactly one `@`, a
/// non-empty local part, a dotted domain without empty labels, no whitespace or control
/// characters, at most 254 characters. Full RFC 5322 is deliberately not the target:
/// quoted local parts and IP-literal domains do not occur in corporate directories, and
/// accepting them would let typos through.
pub fn normalize_email(raw: &str) -> Result<String, EmailProblem> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(EmailProblem::Missing);
    }
    // Counted as sent, spaces around included: the bound the API document states.
    if raw.chars().count() > MAX_EMAIL_LEN {
        return Err(EmailProblem::Invalid("it is longer than 254 characters"));
    }
    if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(EmailProblem::Invalid("it contains whitespace or control characters"));
    }
    if trimmed.chars().any(|c| is_bidi_control(c) || is_invisible(c) || is_joiner(c)) {
        return Err(EmailProblem::Invalid(
            "it contains an invisible or text-direction character (such as U+200B or U+202E) that would make it look like another address",
        ));
    }
    let mut parts = trimmed.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(EmailProblem::Invalid("it must contain exactly one `@`"));
    };
    if local.is_empty() {
        return Err(EmailProblem::Invalid("the part before `@` is empty"));
    }
    if !domain.contains('.') || domain.split('.').any(str::is_empty) {
        return Err(EmailProblem::Invalid("the domain must look like example.com"));
    }
    if domain.chars().any(|c| matches!(c, ',' | ';' | '<' | '>' | '(' | ')' | '[' | ']' | '"' | '\\')) {
        return Err(EmailProblem::Invalid("the domain contains characters a domain cannot hold"));
    }
    Ok(trimmed.to_lowercase())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityProblem {
    Missing,
    Invalid(&'static str),
}

/// Trims an identity and checks it is storable. Inner spaces are kept: GitLab display
/// names such as `adithya r` are identities.
pub fn normalize_identity(raw: &str) -> Result<&str, IdentityProblem> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(IdentityProblem::Missing);
    }
    // Counted as sent, spaces around included: the bound the API document states.
    if raw.chars().count() > MAX_IDENTITY_LEN {
        return Err(IdentityProblem::Invalid("it is longer than 255 characters"));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(IdentityProblem::Invalid("it contains control characters (tab, newline, NUL, ...)"));
    }
    if trimmed.chars().any(is_bidi_control) {
        return Err(IdentityProblem::Invalid(
            "it contains a text-direction control character (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F or U+061C) that makes it display as something else",
        ));
    }
    if trimmed.chars().any(is_invisible) {
        return Err(IdentityProblem::Invalid(
            "it contains an invisible character (zero-width space U+200B, word joiner U+2060, BOM U+FEFF or soft hyphen U+00AD) that would let it sit beside a lookalike",
        ));
    }
    Ok(trimmed)
}

/// True for characters that reorder text or display as nothing: refused in every label
/// a person reads (source labels, display names), as in identities.
pub fn is_hidden_char(c: char) -> bool {
    is_bidi_control(c) || is_invisible(c)
}

/// Characters that reorder how text is displayed (Trojan Source, CVE-2021-42574).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// Characters that display as nothing and have no use in a login or an address.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}' | '\u{180E}' | '\u{2061}'..='\u{2064}')
}

/// Zero-width (non-)joiners: invisible, but part of how Persian, Indic scripts and
/// emoji sequences are written, so display names and identities keep them; an email
/// address never needs them.
fn is_joiner(c: char) -> bool {
    matches!(c, '\u{200C}' | '\u{200D}')
}

/// The form an identity is compared and indexed by: lower-cased where the source system
/// treats names case-insensitively, exact otherwise. Returns `None` when the key equals
/// the display form, so callers need not store the same text twice.
pub fn identity_key(application_type: ApplicationType, identity: &str) -> Option<String> {
    if application_type.identity_is_case_insensitive() && identity.chars().any(char::is_uppercase) {
        Some(identity.to_lowercase())
    } else {
        None
    }
}

/// True for text a spreadsheet would run as a formula when it opens a CSV.
pub fn looks_like_formula(cell: &str) -> bool {
    matches!(cell.as_bytes().first(), Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r'))
}

/// A formula after any number of `'`: these cells get one more `'` on the way out and
/// lose one on the way in, which keeps the guard lossless even for values that
/// themselves start with `'`.
fn is_formula_after_quotes(cell: &str) -> bool {
    looks_like_formula(cell.trim_start_matches('\''))
}

/// Characters a spreadsheet may split a CSV line on instead of `,` (locales that use
/// `,` as the decimal mark open CSVs with `;`; tab-separated is the other common
/// choice). A segment after one of them is a cell of its own there, so it is guarded
/// like the start of a cell.
fn is_other_separator(c: char) -> bool {
    c == ';' || c == '\t'
}

/// The byte offsets where a spreadsheet may start a cell within `cell` (its start, and
/// just after each other separator) whose text satisfies `starts_cell`.
fn cell_starts<'a>(cell: &'a str, starts_cell: impl Fn(&str) -> bool + 'a) -> impl Iterator<Item = usize> + 'a {
    let after_separators = cell.char_indices().filter(|(_, c)| is_other_separator(*c)).map(|(at, c)| at + c.len_utf8());
    std::iter::once(0).chain(after_separators).filter(move |at| starts_cell(&cell[*at..]))
}

/// Where [`guard_formula`] puts a `'`: wherever a cell would start with a formula.
fn guard_points(cell: &str) -> impl Iterator<Item = usize> + '_ {
    cell_starts(cell, is_formula_after_quotes)
}

/// Prefixes every part of a cell that a spreadsheet would run as a formula with `'`, so
/// spreadsheets show it as text: the start of the cell, and what follows a `;` or tab
/// (`x;=1+1` becomes `x;'=1+1`).
pub fn guard_formula(cell: &str) -> std::borrow::Cow<'_, str> {
    let mut points = guard_points(cell).peekable();
    if points.peek().is_none() {
        return std::borrow::Cow::Borrowed(cell);
    }
    let mut out = String::with_capacity(cell.len() + 2);
    let mut copied = 0;
    for at in points {
        out.push_str(&cell[copied..at]);
        out.push('\'');
        copied = at;
    }
    out.push_str(&cell[copied..]);
    std::borrow::Cow::Owned(out)
}

/// Undoes [`guard_formula`], so a downloaded CSV uploads back unchanged: one `'` goes
/// from the start and from after every `;` or tab, where a formula follows it.
pub fn strip_formula_guard(cell: &str) -> std::borrow::Cow<'_, str> {
    let guarded = |rest: &str| rest.strip_prefix('\'').is_some_and(is_formula_after_quotes);
    let mut points = cell_starts(cell, guarded).peekable();
    if points.peek().is_none() {
        return std::borrow::Cow::Borrowed(cell);
    }
    let mut out = String::with_capacity(cell.len());
    let mut copied = 0;
    for at in points {
        out.push_str(&cell[copied..at]);
        copied = at + 1; // skip the guard's `'`
    }
    out.push_str(&cell[copied..]);
    std::borrow::Cow::Owned(out)
}

/// True when a `;`- or tab-splitting spreadsheet would find a formula in some part of
/// the cell once guarded cells are excluded; the export also quotes such cells.
pub fn holds_other_separator(cell: &str) -> bool {
    cell.chars().any(is_other_separator)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lowercased() {
        assert_eq!(normalize_email("  Jane.Doe@Company.COM "), Ok("jane.doe@company.com".into()));
        assert_eq!(
            normalize_email("19637339+8bitmp3@users.noreply.github.com"),
            Ok("19637339+8bitmp3@users.noreply.github.com".into())
        );
    }

    #[test]
    fn bad_emails_are_refused_with_a_reason() {
        for bad in ["bob@", "@example.com", "a@b", "a@@b.com", "a b@c.com", "a@b..com", "a@b.com\0", "=", "a@.com"] {
            assert!(matches!(normalize_email(bad), Err(EmailProblem::Invalid(_))), "{bad:?} accepted");
        }
        assert_eq!(normalize_email("   "), Err(EmailProblem::Missing));
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(normalize_email(&long).is_err());
    }

    #[test]
    fn lookalikes_made_of_invisible_characters_are_refused() {
        for bad in
            ["jane.doe\u{200b}@company.com", "jane\u{202e}moc@x.com", "a\u{200d}b@x.com", "\u{feff}a@x.com.\u{2060}x"]
        {
            assert!(matches!(normalize_email(bad), Err(EmailProblem::Invalid(_))), "{bad:?} accepted");
        }
        for bad in ["jdoe\u{200b}", "admin\u{202e}nimda", "x\u{2066}y", "soft\u{ad}hyphen"] {
            assert!(matches!(normalize_identity(bad), Err(IdentityProblem::Invalid(_))), "{bad:?} accepted");
        }
        assert_eq!(normalize_identity("می\u{200c}خواهم"), Ok("می\u{200c}خواهم"), "Persian keeps its ZWNJ");
        assert_eq!(normalize_identity("👩\u{200d}💻 dev"), Ok("👩\u{200d}💻 dev"), "emoji sequences keep ZWJ");
    }

    #[test]
    fn identities_keep_inner_spaces_but_not_control_characters() {
        assert_eq!(normalize_identity(" adithya r "), Ok("adithya r"));
        assert_eq!(normalize_identity(""), Err(IdentityProblem::Missing));
        assert!(normalize_identity("a\nb").is_err());
        assert!(normalize_identity("a\0b").is_err());
        assert!(normalize_identity(&"x".repeat(256)).is_err());
        assert!(normalize_identity(&"é".repeat(255)).is_ok());
    }

    #[test]
    fn identity_keys_follow_case_rules() {
        assert_eq!(identity_key(ApplicationType::Github, "JDoe"), Some("jdoe".into()));
        assert_eq!(identity_key(ApplicationType::Github, "jdoe"), None);
        assert_eq!(identity_key(ApplicationType::Jira, "JIRAUSER208441"), None);
    }

    #[test]
    fn formula_guard_round_trips() {
        for cell in ["=1+1", "+x", "-y", "@z", "\tt", "\rr", "plain", "'quoted", "'=x", "''=x", "'"] {
            assert_eq!(strip_formula_guard(&guard_formula(cell)), cell);
        }
        assert_eq!(guard_formula("=SUM(A1)"), "'=SUM(A1)");
        for cell in ["x;=1+1;", "a;'=b", ";;+", "x;y", "=a;=b", "é;@c", "a\t-1"] {
            assert_eq!(strip_formula_guard(&guard_formula(cell)), cell);
        }
        assert_eq!(guard_formula("x;=1+1;"), "x;'=1+1;");
        assert_eq!(guard_formula("=a;=b;c"), "'=a;'=b;c");
        assert_eq!(guard_formula("x;y"), "x;y");
        assert_eq!(guard_formula("alice"), "alice");
    }
}
