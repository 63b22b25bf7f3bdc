//! Which contributors are automation rather than people. Bots inflate activity and
//! would be matched to nobody, so they are flagged on ingest and left out of coverage
//! (and, later, of suggestions). Rules only ever flag; a person's manual decision
//! (kept by the store) overrides them both ways.

/// Why a contributor was taken for a bot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BotRule {
    /// `dependabot[bot]`, `49699333+dependabot[bot]@users.noreply.github.com`.
    BotSuffix,
    /// A `bot` word in the login, the name or the email's local part: `renovate-bot`,
    /// `StepSecurity Bot`, `ci_bot@company.com`.
    BotToken,
    /// A well-known service account: dependabot, renovate, github-actions, web-flow...
    ServiceAccount,
    /// The address a hosting service commits with on a person's behalf
    /// (`noreply@github.com`, `actions@github.com`).
    ServiceNoreply,
}

impl BotRule {
    pub const ALL: [BotRule; 4] =
        [BotRule::BotSuffix, BotRule::BotToken, BotRule::ServiceAccount, BotRule::ServiceNoreply];

    pub fn as_str(self) -> &'static str {
        match self {
            BotRule::BotSuffix => "bot-suffix",
            BotRule::BotToken => "bot-token",
            BotRule::ServiceAccount => "service-account",
            BotRule::ServiceNoreply => "service-noreply",
        }
    }

    pub fn parse(text: &str) -> Option<BotRule> {
        Self::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// Logins and names of service accounts that commit, review or comment on their own.
/// Compared with case, `[bot]` and a GitHub noreply id prefix removed.
const SERVICE_ACCOUNTS: &[&str] = &[
    "dependabot",
    "dependabot-preview",
    "renovate",
    "renovatebot",
    "renovate-bot",
    "github-actions",
    "github-action",
    "pre-commit-ci",
    "codecov",
    "codecov-io",
    "codecov-commenter",
    "web-flow",
    "greenkeeper",
    "greenkeeperio-bot",
    "snyk-bot",
    "mergify",
    "imgbot",
    "allcontributors",
    "all-contributors",
    "azure-pipelines",
    "copilot-swe-agent",
    "github-merge-queue",
    "semantic-release-bot",
    "sonarcloud",
    "gitlab-bot",
    "stale",
];

/// Addresses hosting services write commits with when a person acts in their web UI
/// or a workflow runs: not a person's address.
const SERVICE_ADDRESSES: &[&str] = &[
    "noreply@github.com",
    "actions@github.com",
    "action@github.com",
    "support@github.com",
    "noreply@gitlab.com",
    "bot@renovateapp.com",
    "support@dependabot.com",
];

/// The first rule that marks `identity`, one of its `names` or one of its `emails` as
/// a bot, or `None` for what looks like a person.
pub fn detect<'a>(
    identity: &str,
    names: impl IntoIterator<Item = &'a str>,
    emails: impl IntoIterator<Item = &'a str>,
) -> Option<BotRule> {
    let mut found: Option<BotRule> = None;
    let mut note = |rule: Option<BotRule>| {
        if let Some(rule) = rule
            && found.is_none_or(|f| rule_rank(rule) < rule_rank(f))
        {
            found = Some(rule);
        }
    };
    note(login_rule(identity));
    if identity.contains('@') {
        note(email_rule(identity));
    }
    for name in names {
        note(login_rule(name));
    }
    for email in emails {
        note(email_rule(email));
    }
    found
}

/// Rules in order of how certain they are, so the most telling one is reported.
fn rule_rank(rule: BotRule) -> u8 {
    match rule {
        BotRule::BotSuffix => 0,
        BotRule::ServiceAccount => 1,
        BotRule::ServiceNoreply => 2,
        BotRule::BotToken => 3,
    }
}

/// A login or display name.
fn login_rule(text: &str) -> Option<BotRule> {
    let lower = text.trim().to_lowercase();
    if lower.ends_with("[bot]") {
        return Some(BotRule::BotSuffix);
    }
    if SERVICE_ACCOUNTS.contains(&lower.as_str()) {
        return Some(BotRule::ServiceAccount);
    }
    if has_bot_word(&lower) {
        return Some(BotRule::BotToken);
    }
    None
}

fn email_rule(email: &str) -> Option<BotRule> {
    let lower = email.trim().to_lowercase();
    if SERVICE_ADDRESSES.contains(&lower.as_str()) {
        return Some(BotRule::ServiceNoreply);
    }
    let (local, _domain) = lower.rsplit_once('@')?;
    // GitHub's noreply form puts an account number before the login: `123+login`.
    let login = match local.split_once('+') {
        Some((digits, login)) if digits.bytes().all(|b| b.is_ascii_digit()) => login,
        _ => local,
    };
    if login.ends_with("[bot]") {
        return Some(BotRule::BotSuffix);
    }
    if SERVICE_ACCOUNTS.contains(&login) {
        return Some(BotRule::ServiceAccount);
    }
    if has_bot_word(login) {
        return Some(BotRule::BotToken);
    }
    None
}

/// `bot` as a whole word: `renovate-bot`, `ci_bot`, `Build Bot`; never inside a word,
/// so Sidebottom, Abbott and Talbot stay people.
fn has_bot_word(lower: &str) -> bool {
    lower.split(|c: char| !c.is_alphanumeric()).any(|word| word == "bot")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(identity: &str, name: &str, email: &str) -> Option<BotRule> {
        detect(identity, [name], [email])
    }

    #[test]
    fn github_app_accounts_are_bots_by_their_suffix() {
        assert_eq!(
            rule(
                "49699333+dependabot[bot]@users.noreply.github.com",
                "dependabot[bot]",
                "49699333+dependabot[bot]@users.noreply.github.com"
            ),
            Some(BotRule::BotSuffix)
        );
        assert_eq!(rule("github-actions[bot]", "", ""), Some(BotRule::BotSuffix));
    }

    #[test]
    fn well_known_services_are_bots_by_name() {
        assert_eq!(rule("renovate", "", ""), Some(BotRule::ServiceAccount));
        assert_eq!(rule("web-flow", "GitHub", ""), Some(BotRule::ServiceAccount));
        assert_eq!(rule("x", "pre-commit-ci", ""), Some(BotRule::ServiceAccount));
        assert_eq!(rule("noreply@github.com", "GitHub", "noreply@github.com"), Some(BotRule::ServiceNoreply));
        assert_eq!(rule("29139614+renovate@users.noreply.github.com", "", ""), Some(BotRule::ServiceAccount));
    }

    #[test]
    fn a_bot_word_flags_but_a_name_containing_bot_does_not() {
        assert_eq!(rule("bot@stepsecurity.io", "StepSecurity Bot", "bot@stepsecurity.io"), Some(BotRule::BotToken));
        assert_eq!(rule("ci-bot", "", ""), Some(BotRule::BotToken));
        assert_eq!(rule("chris.sidebottom@arm.com", "Chris Sidebottom", "chris.sidebottom@arm.com"), None);
        assert_eq!(rule("jtalbot", "Jane Talbot", "jane@abbott.com"), None);
        assert_eq!(rule("robot-wars", "Robert Bottle", ""), None);
    }

    #[test]
    fn placeholders_are_not_bots() {
        // Shared placeholders are a matching problem, not automation.
        assert_eq!(rule("nobody@localhost", "nobody", "nobody@localhost"), None);
        assert_eq!(rule("bugfix@localhost", "NumPy Bugfix", "bugfix@localhost"), None);
    }
}
