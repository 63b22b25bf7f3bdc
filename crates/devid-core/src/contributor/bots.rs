//! Which contributors are automation rather than people. Bots inflate activity and
//! would be matched to nobody, so they are flagged on ingest and left out of coverage
//! (and, later, of suggestions). Rules only ever flag; a person's manual decision
//! (kept by the store) overrides them both ways.

use foldhash::HashMap;

use crate::errors::{ErrorType, Position, Problems};
use crate::normalize::identity_key;
use crate::plan::{IntegrationInfo, IntegrationRef, RawValue, check_identity, check_integration_id};
use crate::types::IntegrationId;

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

/// A login or display name. Compared without allocating, ignoring ASCII case: every
/// word the rules look for is ASCII, and this runs for every contributor of an upload.
fn login_rule(text: &str) -> Option<BotRule> {
    let text = text.trim();
    if ends_with_ignore_case(text, "[bot]") {
        return Some(BotRule::BotSuffix);
    }
    if is_service_account(text) {
        return Some(BotRule::ServiceAccount);
    }
    if has_bot_word(text) {
        return Some(BotRule::BotToken);
    }
    None
}

fn email_rule(email: &str) -> Option<BotRule> {
    let email = email.trim();
    if SERVICE_ADDRESSES.iter().any(|a| a.eq_ignore_ascii_case(email)) {
        return Some(BotRule::ServiceNoreply);
    }
    let (local, _domain) = email.rsplit_once('@')?;
    // GitHub's noreply form puts an account number before the login: `123+login`.
    let login = match local.split_once('+') {
        Some((digits, login)) if digits.bytes().all(|b| b.is_ascii_digit()) => login,
        _ => local,
    };
    if ends_with_ignore_case(login, "[bot]") {
        return Some(BotRule::BotSuffix);
    }
    if is_service_account(login) {
        return Some(BotRule::ServiceAccount);
    }
    if has_bot_word(login) {
        return Some(BotRule::BotToken);
    }
    None
}

fn ends_with_ignore_case(text: &str, suffix: &str) -> bool {
    text.len() >= suffix.len() && text.as_bytes()[text.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
}

fn is_service_account(text: &str) -> bool {
    SERVICE_ACCOUNTS.iter().any(|a| a.eq_ignore_ascii_case(text))
}

/// `bot` as a whole word: `renovate-bot`, `ci_bot`, `Build Bot`; never inside a word,
/// so Sidebottom, Abbott and Talbot stay people.
fn has_bot_word(text: &str) -> bool {
    text.split(|c: char| !c.is_alphanumeric()).any(|word| word.eq_ignore_ascii_case("bot"))
}

/// A person's decision about one account: `Some(true)` a bot, `Some(false)` a person
/// whatever the rules say, `None` back to the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotDecision {
    pub integration_id: IntegrationId,
    /// As sent, trimmed.
    pub identity: String,
    /// What it is matched on, by the integration's case rules.
    pub identity_key: String,
    pub bot: Option<bool>,
}

/// Most decisions one request may carry.
pub const MAX_BOT_DECISIONS: usize = 10_000;

const BOT_DECISION_FIELDS: [&str; 3] = ["integrationId", "identity", "bot"];
const BOT_DECISION_SHAPE: &str = r#"a JSON array such as [{"integrationId":1,"identity":"ci-runner","bot":true}] ("bot": false marks a person, null hands the account back to the rules)"#;

/// Reads and validates a body of bot decisions: every problem is reported with its
/// index, and nothing is decided unless all are valid.
pub fn plan_bot_decisions(body: &[u8], integrations: &[IntegrationInfo]) -> Result<Vec<BotDecision>, Problems> {
    let whole = |error_type: ErrorType, reason: String| {
        let mut p = Problems::new();
        p.add_with_reason(error_type, "body", Position::Whole, "", Some(reason));
        p
    };
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        if e.is_eof() && body.iter().all(u8::is_ascii_whitespace) {
            whole(ErrorType::EmptyPayload, format!("the request body is empty; send {BOT_DECISION_SHAPE}."))
        } else {
            whole(ErrorType::InvalidJson, format!("{e}; expected {BOT_DECISION_SHAPE}."))
        }
    })?;
    let serde_json::Value::Array(items) = value else {
        return Err(whole(ErrorType::InvalidJson, format!("the body is not an array; send {BOT_DECISION_SHAPE}.")));
    };
    if items.is_empty() {
        return Err(whole(ErrorType::EmptyPayload, format!("the array is empty; send {BOT_DECISION_SHAPE}.")));
    }
    if items.len() > MAX_BOT_DECISIONS {
        return Err(whole(
            ErrorType::TooManyRows,
            format!("the body holds {} decisions; at most {MAX_BOT_DECISIONS} are taken at once.", items.len()),
        ));
    }
    let known: HashMap<IntegrationId, crate::types::ApplicationType> =
        integrations.iter().map(|i| (i.id, i.application_type)).collect();
    let mut problems = Problems::new();
    let mut decisions = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let position = Position::Index(index as u64);
        let serde_json::Value::Object(map) = item else {
            problems.add_with_reason(
                ErrorType::InvalidJson,
                "body",
                position,
                &item.to_string(),
                Some(format!("each element must be an object with the fields {}", BOT_DECISION_FIELDS.join(", "))),
            );
            continue;
        };
        let mut integration = RawValue::Absent;
        let mut identity = RawValue::Absent;
        let mut bot: Option<Option<bool>> = None;
        for (key, value) in map {
            match BOT_DECISION_FIELDS.iter().position(|f| f.eq_ignore_ascii_case(&key)) {
                Some(0) => integration = raw_of(value),
                Some(1) => identity = raw_of(value),
                Some(_) => match value {
                    serde_json::Value::Bool(b) => bot = Some(Some(b)),
                    serde_json::Value::Null => bot = Some(None),
                    other => problems.add_with_reason(
                        ErrorType::InvalidParameter,
                        "bot",
                        position,
                        &other.to_string(),
                        Some("`bot` must be true, false or null".into()),
                    ),
                },
                None => problems.add_with_reason(
                    ErrorType::UnknownField,
                    &key,
                    position,
                    &key,
                    Some(format!("accepted fields are {}", BOT_DECISION_FIELDS.join(", "))),
                ),
            }
        }
        let checked_integration = check_integration_id(&integration, position, &known, &mut problems);
        let checked_identity = check_identity(identity, "identity", position, &mut problems);
        if bot.is_none() {
            problems.add_with_reason(
                ErrorType::RequiredFieldMissing,
                "bot",
                position,
                "",
                Some("the field `bot` is absent; send true, false or null".into()),
            );
        }
        if let (Some((IntegrationRef::Existing(id), application_type)), Some(identity), Some(bot)) =
            (checked_integration, checked_identity, bot)
        {
            let key = identity_key(application_type, &identity).unwrap_or_else(|| identity.clone());
            decisions.push(BotDecision { integration_id: id, identity, identity_key: key, bot });
        }
    }
    if problems.is_empty() { Ok(decisions) } else { Err(problems) }
}

fn raw_of(value: serde_json::Value) -> RawValue {
    match value {
        serde_json::Value::Null => RawValue::Null,
        serde_json::Value::String(s) => RawValue::Text(s),
        serde_json::Value::Number(n) => RawValue::Number(n.to_string()),
        serde_json::Value::Bool(_) => RawValue::WrongKind("a boolean"),
        serde_json::Value::Array(_) => RawValue::WrongKind("an array"),
        serde_json::Value::Object(_) => RawValue::WrongKind("an object"),
    }
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
    fn bot_decisions_are_validated_row_by_row() {
        let infos = [IntegrationInfo { id: 1, application_type: crate::types::ApplicationType::Git }];
        let ok = plan_bot_decisions(
            br#"[{"integrationId":1,"identity":"CI@Example.com","bot":true},{"integrationId":"1","identity":"x","bot":null}]"#,
            &infos,
        )
        .expect("valid");
        assert_eq!(ok[0].identity_key, "ci@example.com");
        assert_eq!(ok[0].bot, Some(true));
        assert_eq!(ok[1].bot, None);
        let problems = plan_bot_decisions(
            br#"[{"integrationId":2,"identity":"a","bot":true},{"integrationId":1,"identity":"a"},{"integrationId":1,"identity":"a","bot":"yes","extra":1}]"#,
            &infos,
        )
        .expect_err("invalid");
        for t in [
            ErrorType::UnknownIntegration,
            ErrorType::RequiredFieldMissing,
            ErrorType::InvalidParameter,
            ErrorType::UnknownField,
        ] {
            assert!(problems.has(t), "{t:?}");
        }
        assert!(plan_bot_decisions(b"{}", &infos).is_err());
        assert!(plan_bot_decisions(b"[]", &infos).is_err());
    }

    #[test]
    fn placeholders_are_not_bots() {
        // Shared placeholders are a matching problem, not automation.
        assert_eq!(rule("nobody@localhost", "nobody", "nobody@localhost"), None);
        assert_eq!(rule("bugfix@localhost", "NumPy Bugfix", "bugfix@localhost"), None);
    }
}
