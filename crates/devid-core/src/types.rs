use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A positive integer naming an integration inside one account.
pub type IntegrationId = i64;

/// Largest integration id one may choose: 2^53 − 1, the largest whole number JSON clients
/// in JavaScript keep exactly. It also leaves room above it for ids devid assigns
/// (the largest in the account plus one), which at i64::MAX would overflow.
pub const MAX_INTEGRATION_ID: IntegrationId = (1 << 53) - 1;

/// The kind of source system an integration connects to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE", try_from = "String")]
pub enum ApplicationType {
    Github,
    GithubEnterprise,
    GitlabCloud,
    GitlabServer,
    BitbucketCloud,
    BitbucketServer,
    AzureDevops,
    Jira,
    HarnessCode,
    Custom,
    /// devid's addition: commit authors, keyed by the author email as recorded.
    Git,
}

impl ApplicationType {
    pub const ALL: [ApplicationType; 11] = [
        ApplicationType::Github,
        ApplicationType::GithubEnterprise,
        ApplicationType::GitlabCloud,
        ApplicationType::GitlabServer,
        ApplicationType::BitbucketCloud,
        ApplicationType::BitbucketServer,
        ApplicationType::AzureDevops,
        ApplicationType::Jira,
        ApplicationType::HarnessCode,
        ApplicationType::Custom,
        ApplicationType::Git,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ApplicationType::Github => "GITHUB",
            ApplicationType::GithubEnterprise => "GITHUB_ENTERPRISE",
            ApplicationType::GitlabCloud => "GITLAB_CLOUD",
            ApplicationType::GitlabServer => "GITLAB_SERVER",
            ApplicationType::BitbucketCloud => "BITBUCKET_CLOUD",
            ApplicationType::BitbucketServer => "BITBUCKET_SERVER",
            ApplicationType::AzureDevops => "AZURE_DEVOPS",
            ApplicationType::Jira => "JIRA",
            ApplicationType::HarnessCode => "HARNESS_CODE",
            ApplicationType::Custom => "CUSTOM",
            ApplicationType::Git => "GIT",
        }
    }

    /// Usernames and emails in these systems are case-insensitive, so `JDoe` and `jdoe`
    /// are one account (a `GIT` identity is an author email, compared the same way).
    /// Jira and custom IDs are opaque account IDs and compared exactly.
    pub fn identity_is_case_insensitive(self) -> bool {
        !matches!(self, ApplicationType::Jira | ApplicationType::Custom)
    }

    /// The comma-separated list used in error messages.
    pub fn allowed_values() -> String {
        Self::ALL.map(|t| t.as_str()).join(", ")
    }
}

impl fmt::Display for ApplicationType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown application type `{0}`")]
pub struct UnknownApplicationType(pub String);

impl FromStr for ApplicationType {
    type Err = UnknownApplicationType;

    /// Matches case-insensitively and accepts `-` or space for `_`, because scripts
    /// written by hand send `github` or `bitbucket-cloud` as often as `GITHUB`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_uppercase().replace(['-', ' '], "_");
        Self::ALL.into_iter().find(|t| t.as_str() == wanted).ok_or_else(|| UnknownApplicationType(s.to_string()))
    }
}

impl TryFrom<String> for ApplicationType {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse().map_err(|_| format!("unknown application type `{s}`; expected one of {}", Self::allowed_values()))
    }
}

/// What an API key may do. `Admin` implies the other two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String")]
pub enum Scope {
    #[serde(rename = "developer_records:read")]
    DeveloperRecordsRead,
    #[serde(rename = "developer_records:write")]
    DeveloperRecordsWrite,
    #[serde(rename = "admin")]
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::DeveloperRecordsRead, Scope::DeveloperRecordsWrite, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::DeveloperRecordsRead => "developer_records:read",
            Scope::DeveloperRecordsWrite => "developer_records:write",
            Scope::Admin => "admin",
        }
    }

    pub fn allowed_values() -> String {
        Self::ALL.map(|s| s.as_str()).join(", ")
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope `{0}`; expected one of {allowed}", allowed = Scope::allowed_values())]
pub struct UnknownScope(pub String);

impl FromStr for Scope {
    type Err = UnknownScope;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        Self::ALL
            .into_iter()
            .find(|scope| scope.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| UnknownScope(s.to_string()))
    }
}

impl TryFrom<String> for Scope {
    type Error = UnknownScope;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// Whether a key holding `held` may do what `required` guards.
pub fn scopes_grant(held: &[Scope], required: Scope) -> bool {
    held.iter().any(|s| *s == required || *s == Scope::Admin)
}

/// Encodes scopes for storage and display as a comma-separated list.
pub fn scopes_to_string(scopes: &[Scope]) -> String {
    scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",")
}

pub fn scopes_from_string(s: &str) -> Result<Vec<Scope>, UnknownScope> {
    s.split(',').filter(|p| !p.trim().is_empty()).map(str::parse).collect()
}

/// Account names appear inside API keys (`pat.<account>.<keyId>.<secret>`), so they may
/// not contain the separator and must stay short and printable.
pub fn validate_account_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err("an account name must be 1 to 64 characters long".into());
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(format!("account name `{name}` may only contain letters, digits, `-` and `_`"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn application_type_parses_leniently_and_round_trips() {
        for t in ApplicationType::ALL {
            assert_eq!(t.as_str().parse::<ApplicationType>(), Ok(t));
            assert_eq!(t.as_str().to_lowercase().parse::<ApplicationType>(), Ok(t));
        }
        assert_eq!("bitbucket-cloud".parse(), Ok(ApplicationType::BitbucketCloud));
        assert!("GITHUBB".parse::<ApplicationType>().is_err());
    }

    #[test]
    fn case_sensitivity_follows_the_source_system() {
        assert!(ApplicationType::Github.identity_is_case_insensitive());
        assert!(ApplicationType::GitlabServer.identity_is_case_insensitive());
        assert!(ApplicationType::Git.identity_is_case_insensitive());
        assert!(!ApplicationType::Jira.identity_is_case_insensitive());
        assert!(!ApplicationType::Custom.identity_is_case_insensitive());
    }

    #[test]
    fn admin_implies_other_scopes() {
        assert!(scopes_grant(&[Scope::Admin], Scope::DeveloperRecordsWrite));
        assert!(scopes_grant(&[Scope::DeveloperRecordsRead], Scope::DeveloperRecordsRead));
        assert!(!scopes_grant(&[Scope::DeveloperRecordsRead], Scope::DeveloperRecordsWrite));
        assert!(!scopes_grant(&[Scope::DeveloperRecordsWrite], Scope::Admin));
    }

    #[test]
    fn scopes_round_trip_through_storage_form() {
        let scopes = vec![Scope::DeveloperRecordsRead, Scope::Admin];
        assert_eq!(scopes_from_string(&scopes_to_string(&scopes)), Ok(scopes));
        assert!(scopes_from_string("admin,root").is_err());
    }

    #[test]
    fn account_names_cannot_break_the_key_format() {
        assert!(validate_account_name("default").is_ok());
        assert!(validate_account_name("acme-eu_1").is_ok());
        assert!(validate_account_name("a.b").is_err());
        assert!(validate_account_name("").is_err());
    }
}
