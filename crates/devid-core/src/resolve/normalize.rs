//! How matching sees emails and names: emails trimmed and lower-cased, GitHub noreply
//! addresses read as the login (and the numeric id that survives renames), names folded
//! (NFKD, accents and case dropped, punctuation to spaces, "Last, First" turned round),
//! and the values no link may ever rest on: placeholder addresses and generic names.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// An email as matching compares it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NormalEmail(pub String);

/// What an email says about who wrote with it. The parts are positions in the one
/// normalised string: the engine holds one of these per alias, a million at scale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailFacts {
    pub email: NormalEmail,
    /// Where the last `@` is, if there is one.
    at: Option<u32>,
    /// A GitHub noreply address: where its login starts (it ends at the `@`).
    login_start: Option<u32>,
    /// A GitHub noreply address of the `NNN+login` form: the account's number.
    pub github_id: Option<u64>,
    /// No link may rest on it: it is shared by design or says nothing (see
    /// [`is_placeholder_email`]).
    pub placeholder: bool,
}

impl EmailFacts {
    /// The part before the last `@`, lower-cased; empty when there is no `@`.
    pub fn local(&self) -> &str {
        self.at.map_or("", |at| &self.email.0[..at as usize])
    }

    /// The part after the last `@`; empty when there is no `@`.
    pub fn domain(&self) -> &str {
        self.at.map_or("", |at| &self.email.0[at as usize + 1..])
    }

    /// A GitHub noreply address: the login, lower-cased.
    pub fn github_login(&self) -> Option<&str> {
        let (start, at) = (self.login_start?, self.at?);
        Some(&self.email.0[start as usize..at as usize])
    }

    /// The mailbox's name as its owner chose it: the noreply login, or the local part
    /// without a `+tag` and without the dots, dashes and underscores people vary
    /// (`b.sipocz` and `bsipocz`, `kaistriega+github` and `kaistriega`).
    pub fn mailbox(&self) -> String {
        if let Some(login) = self.github_login() {
            return login.chars().filter(|c| !matches!(c, '.' | '-' | '_')).collect();
        }
        let local = self.local().split('+').next().unwrap_or_default();
        local.chars().filter(|c| !matches!(c, '.' | '-' | '_')).collect()
    }
}

pub const GITHUB_NOREPLY_DOMAIN: &str = "users.noreply.github.com";

pub fn email_facts(raw: &str) -> EmailFacts {
    let email = raw.trim().to_lowercase();
    // An address longer than 4 GiB is not an address: read it as having no `@`.
    let at = email.rfind('@').and_then(|at| u32::try_from(at).ok());
    let (local, domain) = match at {
        Some(at) => (&email[..at as usize], &email[at as usize + 1..]),
        None => ("", ""),
    };
    let (login_start, github_id) = if domain == GITHUB_NOREPLY_DOMAIN {
        match local.split_once('+') {
            Some((digits, _)) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
                (u32::try_from(digits.len() + 1).ok(), digits.parse().ok())
            }
            _ => (Some(0), None),
        }
    } else {
        (None, None)
    };
    let placeholder = is_placeholder_email(&email, local, domain);
    EmailFacts { email: NormalEmail(email), at, login_start, github_id, placeholder }
}

/// Local parts that name a role or nobody, whoever writes with them.
const PLACEHOLDER_LOCALS: &[&str] = &[
    "noreply",
    "no-reply",
    "do-not-reply",
    "donotreply",
    "nobody",
    "root",
    "devnull",
    "dev-null",
    "none",
    "null",
    "unknown",
    "user",
    "admin",
    "administrator",
    "test",
    "localhost",
    "anonymous",
    "invalid",
];

/// Addresses no link may rest on: none at all, no dotted domain (`me@localhost`,
/// `x@(none)`, `user@host.(none)`), machine-local domains, role and nobody addresses,
/// and the example domains.
pub fn is_placeholder_email(email: &str, local: &str, domain: &str) -> bool {
    if local.is_empty() || domain.is_empty() || !domain.contains('.') {
        return true;
    }
    let machine_local =
        ["localhost", "localdomain", "local", "(none)", "none", "invalid", "example", "test", "lan", "home"];
    if domain.split('.').next_back().is_some_and(|tld| machine_local.contains(&tld)) || domain.contains("(none)") {
        return true;
    }
    if ["example.com", "example.org", "example.net", "email.com", "domain.com"].contains(&domain) {
        return true;
    }
    PLACEHOLDER_LOCALS.contains(&local) || email.chars().any(char::is_whitespace)
}

/// A name as matching compares it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NormalName(pub String);

impl NormalName {
    pub fn tokens(&self) -> impl Iterator<Item = &str> {
        self.0.split(' ').filter(|t| !t.is_empty())
    }

    pub fn token_count(&self) -> usize {
        self.tokens().count()
    }

    /// The name as people are told apart by it: middle initials dropped (when two
    /// longer words remain) and the words in order, so "Erik M. Bray", "Bray, Erik"
    /// and "Erik Bray" meet. `None` for a generic name, which links nobody.
    pub fn key(&self) -> Option<String> {
        if name_is_generic(self) {
            return None;
        }
        let mut words: Vec<&str> = self.tokens().collect();
        if words.iter().filter(|w| w.chars().count() > 1).count() >= 2 {
            words.retain(|w| w.chars().count() > 1);
        }
        words.sort_unstable();
        Some(words.join(" "))
    }
}

/// NFKD, combining marks dropped, lower-cased, everything but letters and digits made
/// a space, spaces collapsed; "Doe, Jane" becomes "jane doe".
pub fn normalize_name(raw: &str) -> NormalName {
    let raw = raw.trim();
    let turned;
    let raw = match raw.split_once(',') {
        Some((last, first)) if !last.trim().is_empty() && !first.trim().is_empty() && !first.contains(',') => {
            // "Doe, Jane" but not "Jane Doe, Ph.D": a suffix after the comma is short
            // and has no space before its end.
            let first_trim = first.trim();
            if is_suffix(first_trim) {
                last
            } else {
                turned = format!("{first_trim} {}", last.trim());
                turned.as_str()
            }
        }
        _ => raw,
    };
    let raw = without_parentheses(raw);
    let folded: String = raw.nfkd().filter(|c| !is_combining_mark(*c)).flat_map(char::to_lowercase).collect();
    let spaced: String = folded.chars().map(|c| if c.is_alphanumeric() { c } else { ' ' }).collect();
    NormalName(spaced.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// "Daniel Hrisca (uidn3651)" is Daniel Hrisca: a bracketed note (an employee number, a
/// team, a nickname) is not part of the name. A name that is only a note keeps it.
fn without_parentheses(raw: &str) -> std::borrow::Cow<'_, str> {
    if !raw.contains('(') {
        return raw.into();
    }
    let mut kept = String::with_capacity(raw.len());
    let mut depth = 0usize;
    for c in raw.chars() {
        match c {
            '(' => depth += 1,
            ')' if depth > 0 => depth -= 1,
            _ if depth == 0 => kept.push(c),
            _ => {}
        }
    }
    if kept.trim().is_empty() { raw.into() } else { kept.into() }
}

/// The words of `name` run together in the order written, for names written as logins
/// ("Kader Miyanyedi" is "Kadermiyanyedi"). `None` for a role word, an address, or one
/// word shorter than six letters (a first name, not a handle).
pub fn squashed(raw: &str, name: &NormalName) -> Option<String> {
    if name_is_an_address(raw) || name.tokens().all(|t| GENERIC.contains(&t)) {
        return None;
    }
    let joined: String = name.tokens().collect();
    // One short word is anyone's first name; with a digit or a capital inside it
    // ("qiyu8", "HowJM") it is a handle someone chose.
    let shortest_word = if looks_like_a_handle(raw.trim()) { 5 } else { 6 };
    let long_enough =
        if name.token_count() == 1 { joined.chars().count() >= shortest_word } else { joined.chars().count() >= 5 };
    long_enough.then_some(joined)
}

/// One word written like a handle rather than a name: a digit in it, or a capital after
/// its first letter in a word that also has small letters ("abhilash42", "GalaxySnail",
/// "HowJMay"). A word in capitals only ("DAVID") is a name written loudly.
pub fn looks_like_a_handle(word: &str) -> bool {
    word.chars().any(|c| c.is_ascii_digit())
        || (word.chars().skip(1).any(char::is_uppercase) && word.chars().any(char::is_lowercase))
}

/// Titles and degrees written after a comma, never a first name.
fn is_suffix(text: &str) -> bool {
    let t = text.trim_end_matches('.').to_lowercase();
    ["jr", "sr", "ii", "iii", "iv", "phd", "ph.d", "ph. d", "md", "esq", "msc", "bsc"].contains(&t.as_str())
}

/// Names no link may rest on: empty, one token (a first name or a login is shared by
/// many people), or a word that names a role or nobody.
pub fn is_generic_name(name: &NormalName) -> bool {
    name_is_generic(name)
}

/// A word that names a role or a machine's user (`root`, `ubuntu`, `ec2`), nobody's own.
pub fn is_role_word(word: &str) -> bool {
    GENERIC.contains(&word)
}

/// True for a raw name that is really an address (`jane@corp.com` written as the name):
/// it names nobody and must not count as a different person's name.
pub fn name_is_an_address(raw: &str) -> bool {
    raw.contains('@')
}

const GENERIC: &[&str] = &[
    "root",
    "admin",
    "administrator",
    "unknown",
    "user",
    "nobody",
    "none",
    "null",
    "test",
    "anonymous",
    "ubuntu",
    "localhost",
    "git",
    "github",
    "developer",
    "dev",
    "build",
    "builder",
    "system",
    // What a machine or a CI job calls its user when git was never told a name: the
    // same on every stranger's cloud host or build box.
    "vagrant",
    "ec2",
    "pi",
    "jenkins",
    "runner",
    "docker",
    "deploy",
    "guest",
    "ci",
    "centos",
    "debian",
    "fedora",
    "gitlab",
    "bitbucket",
    "server",
    "default",
    "owner",
];

fn name_is_generic(name: &NormalName) -> bool {
    name.token_count() < 2 || name.tokens().all(|t| GENERIC.contains(&t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noreply_addresses_give_the_login_and_the_account_number() {
        let f = email_facts(" 19637339+8bitmp3@Users.NoReply.GitHub.com ");
        assert_eq!(f.github_login(), Some("8bitmp3"));
        assert_eq!(f.github_id, Some(19637339));
        assert!(!f.placeholder);
        let old = email_facts("RubenGarcia@users.noreply.github.com");
        assert_eq!((old.github_login(), old.github_id), (Some("rubengarcia"), None));
        let plain = email_facts("Jane@Corp.com");
        assert_eq!((plain.local(), plain.domain(), plain.github_login()), ("jane", "corp.com", None));
        let bare = email_facts("nobody");
        assert_eq!((bare.local(), bare.domain()), ("", ""));
    }

    #[test]
    fn placeholders_are_recognised_whoever_uses_them() {
        for email in [
            "cookedm@localhost",
            "steve@steve-Inspiron14z.(none)",
            "=",
            "nobody@localhost",
            "root@company.com",
            "noreply@github.com",
            "muellner@localhost.localdomain",
            "alan.mcintyre@local",
            "fboulogne sciunto org",
            "wfspotz@sandia.gov@localhost",
        ] {
            assert!(email_facts(email).placeholder, "{email}");
        }
        for email in ["jane.doe@company.com", "cgohlke@uci.edu", "8bitmp3@users.noreply.github.com"] {
            assert!(!email_facts(email).placeholder, "{email}");
        }
    }

    #[test]
    fn names_fold_accents_case_punctuation_and_order() {
        assert_eq!(normalize_name("Zè  Vinícius").0, "ze vinicius");
        assert_eq!(normalize_name("Zé Vinícius"), normalize_name("ze vinicius"));
        assert_eq!(normalize_name("Doe, Jane").0, "jane doe");
        assert_eq!(normalize_name("Michael Hirsch, Ph.D").0, "michael hirsch");
        assert_eq!(normalize_name("Francis T. O'Donovan").0, "francis t o donovan");
        assert_eq!(normalize_name("Ｊａｎｅ").0, "jane");
        assert_eq!(normalize_name("Hrisca Daniel (uidn3651)").0, "hrisca daniel");
        assert_eq!(normalize_name("(bot)").0, "bot");
    }

    #[test]
    fn name_keys_drop_middle_initials_and_word_order() {
        let key = |n: &str| normalize_name(n).key();
        assert_eq!(key("Erik M. Bray"), key("Bray, Erik"));
        assert_eq!(key("Daniel G. A. Smith"), key("Daniel Smith"));
        assert_eq!(key("Hrisca Daniel (uidn3651)"), key("Daniel Hrisca"));
        assert_eq!(key("T. Yamada").as_deref(), Some("t yamada"), "an initial stays when it is all there is");
        assert_eq!(key("Jane"), None);
        assert_ne!(key("Jane Doe"), key("John Doe"));
    }

    #[test]
    fn mailboxes_ignore_tags_and_separators() {
        assert_eq!(email_facts("b.sipocz@gmail.com").mailbox(), "bsipocz");
        assert_eq!(email_facts("kaistriega+github@gmail.com").mailbox(), "kaistriega");
        assert_eq!(email_facts("1+Kai-Striega@users.noreply.github.com").mailbox(), "kaistriega");
    }

    #[test]
    fn single_tokens_and_role_words_are_generic() {
        for name in ["=", "root", "skip", "Jane", "unknown user", "Root Admin", "", "ec2-user", "Jenkins CI", "pi"] {
            assert!(is_generic_name(&normalize_name(name)), "{name}");
        }
        for name in ["Jane Doe", "Chris Sidebottom", "T. Yamada"] {
            assert!(!is_generic_name(&normalize_name(name)), "{name}");
        }
    }
}
