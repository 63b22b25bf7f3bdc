//! The frame every page shares: head, navigation, the signed-in key, notices.

use devid_core::errors::ErrorGroup;
use maud::{DOCTYPE, Markup, html};

use super::Notice;
use super::session::UiSession;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Overview,
    Review,
    Identities,
    Bots,
    Upload,
    Changes,
}

const SECTIONS: [(Section, &str, &str); 6] = [
    (Section::Overview, "/ui/", "Overview"),
    (Section::Review, "/ui/review", "Review queue"),
    (Section::Identities, "/ui/identities", "Identities"),
    (Section::Bots, "/ui/bots", "Bots"),
    (Section::Upload, "/ui/upload", "Upload"),
    (Section::Changes, "/ui/changes", "Changes"),
];

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · devid" }
            link rel="stylesheet" href="/ui/static/ui.css";
        }
    }
}

/// A page of a signed-in session.
pub fn page(session: &UiSession, current: Section, title: &str, notice: Option<&Notice>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    span.brand { "devid" }
                    nav aria-label="Main" {
                        ul {
                            @for (section, href, label) in SECTIONS {
                                li {
                                    @if section == current {
                                        a href=(href) aria-current="page" { (label) }
                                    } @else {
                                        a href=(href) { (label) }
                                    }
                                }
                            }
                        }
                    }
                    div.who {
                        span title=(format!("scopes: {}", session.scopes())) {
                            "Key " code { (session.auth.principal.key_id) } " · " (session.auth.principal.account_name)
                        }
                        form method="post" action="/ui/sign-out" {
                            (csrf(session))
                            button.link type="submit" { "Sign out" }
                        }
                    }
                }
                main #main {
                    (notice_box(notice))
                    (body)
                }
            }
        }
    }
}

/// A page outside a session: sign-in and errors.
pub fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header.top { span.brand { "devid" } }
                main #main { (body) }
            }
        }
    }
}

pub fn notice(notice: Option<&Notice>) -> Markup {
    notice_box(notice)
}

fn notice_box(notice: Option<&Notice>) -> Markup {
    html! {
        @if let Some(n) = notice {
            @if n.ok {
                p.notice.ok role="status" { (n.text) }
            } @else {
                p.notice.error role="alert" { (n.text) }
            }
        }
    }
}

/// The hidden field every state-changing form carries.
pub fn csrf(session: &UiSession) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// An upload's or a parameter's problems, grouped as the API groups them, with the
/// lines at fault.
pub fn error_groups(groups: &[ErrorGroup]) -> Markup {
    html! {
        @if !groups.is_empty() {
            section.errors aria-label="Problems found" {
                @for group in groups {
                    div.group {
                        h3 { (group.message) " (" (group.error_count) ")" }
                        ul {
                            @for sample in &group.samples {
                                li {
                                    @if let Some(line) = sample.line { strong { "Line " (line) ": " } }
                                    @else if let Some(index) = sample.index { strong { "Row " (index) ": " } }
                                    code { (sample.value) }
                                    @if let Some(reason) = &sample.reason { " — " (reason) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A whole number with thousands separated, for counts people compare at a glance.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn percent(share: Option<f64>) -> String {
    share.map_or_else(|| "–".to_string(), |s| format!("{:.1} %", s * 100.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
    }
}
