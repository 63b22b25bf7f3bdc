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
    if trimmed.chars().count() > MAX_EMAIL_LEN {
        return Err(EmailProblem::Invalid("it is longer than 254 characters"));
    }
    if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(EmailProblem::Invalid("it contains whitespace or control characters"));
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
    if trimmed.chars().count() > MAX_IDENTITY_LEN {
        return Err(IdentityProblem::Invalid("it is longer than 255 characters"));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(IdentityProblem::Invalid("it contains control characters (tab, newline, NUL, ...)"));
    }
    Ok(trimmed)
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

/// Prefixes a formula-looking cell with `'` so spreadsheets show it as text.
pub fn guard_formula(cell: &str) -> std::borrow::Cow<'_, str> {
    if is_formula_after_quotes(cell) {
        std::borrow::Cow::Owned(format!("'{cell}"))
    } else {
        std::borrow::Cow::Borrowed(cell)
    }
}

/// Undoes [`guard_formula`], so a downloaded CSV uploads back unchanged.
pub fn strip_formula_guard(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if is_formula_after_quotes(rest) => rest,
        _ => cell,
    }
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
        assert_eq!(guard_formula("alice"), "alice");
    }
}
