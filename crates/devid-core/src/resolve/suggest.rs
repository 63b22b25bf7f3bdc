//! Suggestions over an account: which unmapped contributors belong to an existing
//! developer (*link*), and which groups of unmapped contributors are one new person
//! (*new developer*). The store loads the input and saves the output; nothing here
//! reads or writes anything.
//!
//! Every contributor becomes aliases (each name it was seen under with each of its
//! emails, and a GitHub account's login as its noreply address), tied together; every developer
//! becomes an anchor alias holding its email, tied to its mapped contributors. The
//! engine then links them under the account's cannot-links, and each person with
//! unmapped contributors in it is one suggestion.

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::normalize::{GITHUB_NOREPLY_DOMAIN, email_facts};
use super::{AliasText, Clustering, Constraints, Link, Options, Rule, Seen, Tier, cluster_constrained};

/// An account as a source reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContributorFacts {
    pub integration_id: String,
    pub identity: String,
    /// A GitHub account (its identity is the login).
    pub github: bool,
    /// Names, most seen first.
    pub names: Vec<String>,
    /// Emails, most seen first.
    pub emails: Vec<String>,
    pub bot: bool,
    /// The developer (index into [`SuggestInput::developers`]) it is mapped to.
    pub developer: Option<usize>,
    /// Activity counted over every kind: orders suggestions and picks emails.
    pub activity: u64,
    /// The UTC offsets its activity was recorded in (minutes; empty when unknown).
    pub utc_offsets: Vec<i16>,
    /// The first and last day it was active (days since 1970-01-01), when known.
    pub active_days: Option<(i32, i32)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeveloperFacts {
    pub email: String,
}

/// Who a cannot-link names: a contributor by its key, or a developer by its email.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Party {
    Contributor { integration_id: String, identity: String },
    Developer { email: String },
}

#[derive(Debug, Clone, Default)]
pub struct SuggestInput {
    pub contributors: Vec<ContributorFacts>,
    pub developers: Vec<DeveloperFacts>,
    /// Pairings a person rejected: never suggested again, whatever the rules say.
    pub cannot_link: Vec<(Party, Party)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proposal {
    /// Map these unmapped contributors to an existing developer.
    Link { contributors: Vec<usize>, developer: usize },
    /// Create a developer with `email` and map these contributors to it.
    NewDeveloper { contributors: Vec<usize>, email: String },
}

impl Proposal {
    pub fn contributors(&self) -> &[usize] {
        match self {
            Proposal::Link { contributors, .. } | Proposal::NewDeveloper { contributors, .. } => contributors,
        }
    }
}

/// One link that holds a suggestion together, between two parties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    pub rule: Rule,
    /// The value the rule matched on (an email, a name, a login).
    pub value: String,
    pub between: (Party, Party),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Suggestion {
    /// Stable: the same proposal on the same evidence has the same id on every run, so
    /// a skipped suggestion stays hidden until its evidence changes.
    pub id: String,
    pub proposal: Proposal,
    pub tier: Tier,
    pub confidence: f64,
    pub evidence: Vec<Evidence>,
}

/// How much a rule alone says, for ordering and display; the tier decides what may be
/// applied without a person.
pub fn confidence(rule: Rule, tier: Tier) -> f64 {
    match (rule, tier) {
        (Rule::SameEmail, _) => 0.99,
        (Rule::SameGithubAccount, _) => 0.98,
        (Rule::SameNameCorroborated, _) | (Rule::CommittedBySameName, _) => 0.92,
        (Rule::SameNameSameTimezone, _) | (Rule::NameIsLogin, Tier::Auto) => 0.88,
        (Rule::LoginMatchesLocalPart, Tier::Auto) => 0.85,
        (Rule::NameIsLogin, Tier::Review) | (Rule::LoginMatchesLocalPart, Tier::Review) => 0.6,
        (Rule::SameNameOnly, _) => 0.5,
        (Rule::HandleSpellsName, _) => 0.55,
        (Rule::SameMailbox, _) => 0.5,
        (Rule::HandlesBeginAlike, _) => 0.4,
        (Rule::OneTypoApart, _) => 0.5,
        (Rule::OneWordNameSameTime, _) => 0.35,
        (Rule::HandleWithASlip, _) => 0.45,
        (Rule::TruncatedHandle, _) => 0.4,
        (Rule::NameIsAddress, _) => 0.95,
        (Rule::SameHandle, Tier::Auto) => 0.85,
        (Rule::SameHandle, Tier::Review) => 0.45,
        (Rule::SameAccount | Rule::SameDeveloper, _) => 1.0,
    }
}

/// What a person reviews: every `auto` suggestion, and the `review` suggestions that
/// do not overlap one. A group held together by strong links plus one weak link would
/// otherwise be offered only whole, at `review`, hiding its safe part; here the safe
/// part is offered at `auto`, and once it is accepted the weak link returns as a
/// suggestion to link to the developer it made.
///
/// One clustering serves both tiers: links are applied auto first, so the people the
/// auto links alone make are exactly what a run up to `auto` would make.
pub fn suggest_by_tier(input: &SuggestInput, options: Options) -> Vec<Suggestion> {
    let graph = AliasGraph::of(input);
    let clustering = cluster_constrained(&graph.aliases, &graph.seen, &graph.constraints, Tier::Review, options);
    let auto = only_auto(&clustering);
    let mut suggestions = graph.proposals(input, &auto);
    let mut taken = vec![false; input.contributors.len()];
    for s in &suggestions {
        for &c in s.proposal.contributors() {
            taken[c] = true;
        }
    }
    suggestions.extend(
        graph
            .proposals(input, &clustering)
            .into_iter()
            .filter(|s| s.tier == Tier::Review && s.proposal.contributors().iter().all(|&c| !taken[c])),
    );
    suggestions
}

/// The people of `clustering` as its `auto` links alone make them (ties included).
fn only_auto(clustering: &Clustering) -> Clustering {
    let count = clustering.person.len();
    let mut parent: Vec<usize> = (0..count).collect();
    fn root(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    let links: Vec<Link> = clustering.links.iter().filter(|l| l.tier == Tier::Auto).cloned().collect();
    for link in &links {
        let (ra, rb) = (root(&mut parent, link.a), root(&mut parent, link.b));
        if ra != rb {
            // The smaller index stays the root, as in the clustering itself.
            let (keep, gone) = if ra < rb { (ra, rb) } else { (rb, ra) };
            parent[gone] = keep;
        }
    }
    let person: Vec<usize> = (0..count).map(|i| root(&mut parent, i)).collect();
    let mut tier = vec![None; count];
    for link in links.iter().filter(|l| !matches!(l.rule, Rule::SameAccount | Rule::SameDeveloper)) {
        tier[person[link.a]] = Some(Tier::Auto);
    }
    let tier = (0..count).map(|i| tier[person[i]]).collect();
    Clustering { person, tier, links }
}

enum Owner {
    Contributor(usize),
    Developer(usize),
}

/// The suggestions for `input`, strongest first (tier, then activity), up to `max_tier`.
pub fn suggest(input: &SuggestInput, max_tier: Tier, options: Options) -> Vec<Suggestion> {
    let graph = AliasGraph::of(input);
    let clustering = cluster_constrained(&graph.aliases, &graph.seen, &graph.constraints, max_tier, options);
    graph.proposals(input, &clustering)
}

/// The names of one contributor the engine reads, most seen first: every spelling an
/// account is seen under is evidence ("Jane Doe" and "jdoe" on one address), but a feed
/// that renamed an account every day must not multiply the work.
const MAX_NAMES_MATCHED: usize = 8;

/// A contributor's name with one of its emails, borrowed from the input (only a GitHub
/// account's noreply address is made here).
struct GraphAlias<'a> {
    name: &'a str,
    email: Cow<'a, str>,
}

impl AliasText for GraphAlias<'_> {
    fn name(&self) -> &str {
        self.name
    }

    fn email(&self) -> &str {
        &self.email
    }
}

/// An account as the engine sees it: aliases, who owns each, and the constraints.
struct AliasGraph<'a> {
    aliases: Vec<GraphAlias<'a>>,
    owners: Vec<Owner>,
    first_alias: Vec<usize>,
    constraints: Constraints,
    /// What each alias's contributor was seen doing (its time zones); empty when no
    /// contributor's zones are known, so the engine runs as on names and emails alone.
    seen: Vec<Seen>,
}

impl<'a> AliasGraph<'a> {
    fn of(input: &'a SuggestInput) -> Self {
        let mut aliases = Vec::new();
        let mut owners = Vec::new();
        let mut constraints = Constraints::default();
        let mut developer_alias = vec![usize::MAX; input.developers.len()];
        for (d, developer) in input.developers.iter().enumerate() {
            developer_alias[d] = aliases.len();
            constraints.anchors.push(aliases.len());
            constraints.weights.push(0);
            aliases.push(GraphAlias { name: "", email: Cow::Borrowed(&developer.email) });
            owners.push(Owner::Developer(d));
        }
        let mut first_alias = vec![usize::MAX; input.contributors.len()];
        for (c, contributor) in input.contributors.iter().enumerate() {
            if contributor.bot {
                continue;
            }
            let mut names: Vec<&str> = contributor.names.iter().take(MAX_NAMES_MATCHED).map(String::as_str).collect();
            if names.is_empty() {
                names.push("");
            }
            let mut emails: Vec<Cow<'a, str>> = contributor.emails.iter().map(|e| Cow::Borrowed(e.as_str())).collect();
            if contributor.github {
                emails.push(Cow::Owned(format!("{}@{GITHUB_NOREPLY_DOMAIN}", contributor.identity)));
            }
            if emails.is_empty() {
                emails.push(Cow::Borrowed(""));
            }
            first_alias[c] = aliases.len();
            for name in names {
                for email in &emails {
                    let at = aliases.len();
                    if at > first_alias[c] {
                        constraints.tied.push((first_alias[c], at, Rule::SameAccount));
                    }
                    constraints.weights.push(usize::from(at == first_alias[c]));
                    aliases.push(GraphAlias { name, email: email.clone() });
                    owners.push(Owner::Contributor(c));
                }
            }
            if let Some(d) = contributor.developer.filter(|d| *d < input.developers.len()) {
                constraints.tied.push((developer_alias[d], first_alias[c], Rule::SameDeveloper));
            }
        }
        let party_alias = party_aliases(input, &first_alias, &developer_alias);
        for (a, b) in &input.cannot_link {
            if let (Some(&x), Some(&y)) = (party_alias.get(a), party_alias.get(b)) {
                constraints.cannot_link.push((x, y));
            }
        }
        let seen = if input.contributors.iter().any(|c| !c.utc_offsets.is_empty()) {
            owners
                .iter()
                .map(|owner| match owner {
                    Owner::Contributor(c) => Seen {
                        utc_offsets: input.contributors[*c].utc_offsets.clone(),
                        active_days: input.contributors[*c].active_days,
                        ..Seen::default()
                    },
                    Owner::Developer(_) => Seen::default(),
                })
                .collect()
        } else {
            Vec::new()
        };
        AliasGraph { aliases, owners, first_alias, constraints, seen }
    }

    /// One suggestion per person of `clustering` with unmapped contributors in it.
    fn proposals(&self, input: &SuggestInput, clustering: &Clustering) -> Vec<Suggestion> {
        let (owners, first_alias) = (&self.owners, &self.first_alias);
        let mut people: BTreeMap<usize, Vec<&Link>> = BTreeMap::new();
        for link in &clustering.links {
            people.entry(clustering.person[link.a]).or_default().push(link);
        }
        let party = |alias: usize| match owners[alias] {
            Owner::Contributor(c) => contributor_party(&input.contributors[c]),
            Owner::Developer(d) => Party::Developer { email: input.developers[d].email.clone() },
        };
        // Each linked person's aliases, gathered in one pass (a scan per person was
        // quadratic: minutes at a million contributors).
        let mut members_of: BTreeMap<usize, Vec<usize>> = people.keys().map(|&p| (p, Vec::new())).collect();
        for (i, person) in clustering.person.iter().enumerate() {
            if let Some(members) = members_of.get_mut(person) {
                members.push(i);
            }
        }
        let mut suggestions = Vec::new();
        for (person, links) in people {
            let Some(tier) = clustering.tier[person] else { continue };
            let members = members_of.remove(&person).unwrap_or_default();
            let mut unmapped = Vec::new();
            let mut developer = None;
            for i in members {
                match owners[i] {
                    Owner::Developer(d) => developer = Some(d),
                    Owner::Contributor(c) if first_alias[c] == i && input.contributors[c].developer.is_none() => {
                        unmapped.push(c)
                    }
                    Owner::Contributor(_) => {}
                }
            }
            let proposal = match developer {
                Some(developer) if !unmapped.is_empty() => Proposal::Link { contributors: unmapped, developer },
                None if unmapped.len() >= 2 => match new_developer_email(input, &unmapped) {
                    Some(email) => Proposal::NewDeveloper { contributors: unmapped, email },
                    None => continue,
                },
                _ => continue,
            };
            let evidence: Vec<Evidence> = links
                .iter()
                .filter(|l| !matches!(l.rule, Rule::SameAccount | Rule::SameDeveloper))
                .map(|l| Evidence { rule: l.rule, value: l.value.clone(), between: (party(l.a), party(l.b)) })
                .collect();
            let confidence = links
                .iter()
                .filter(|l| !matches!(l.rule, Rule::SameAccount | Rule::SameDeveloper))
                .map(|l| confidence(l.rule, l.tier))
                .fold(1.0, f64::min);
            let id = suggestion_id(input, &proposal, &evidence);
            suggestions.push(Suggestion { id, proposal, tier, confidence, evidence });
        }
        let activity =
            |s: &Suggestion| -> u64 { s.proposal.contributors().iter().map(|&c| input.contributors[c].activity).sum() };
        suggestions.sort_by(|a, b| a.tier.cmp(&b.tier).then(activity(b).cmp(&activity(a))).then(a.id.cmp(&b.id)));
        suggestions
    }
}

fn contributor_party(c: &ContributorFacts) -> Party {
    Party::Contributor { integration_id: c.integration_id.clone(), identity: c.identity.clone() }
}

fn party_aliases(
    input: &SuggestInput,
    first_alias: &[usize],
    developer_alias: &[usize],
) -> std::collections::HashMap<Party, usize> {
    let mut map = std::collections::HashMap::new();
    for (c, contributor) in input.contributors.iter().enumerate() {
        if first_alias[c] != usize::MAX {
            map.insert(contributor_party(contributor), first_alias[c]);
        }
    }
    for (d, developer) in input.developers.iter().enumerate() {
        map.insert(Party::Developer { email: developer.email.clone() }, developer_alias[d]);
    }
    map
}

/// The new developer's email: an organisation's address before a public provider's,
/// then the more active contributor's, then the first in order; never a placeholder or
/// a GitHub noreply address.
fn new_developer_email(input: &SuggestInput, contributors: &[usize]) -> Option<String> {
    let mut best: Option<(bool, u64, String)> = None;
    for &c in contributors {
        let contributor = &input.contributors[c];
        for email in &contributor.emails {
            let facts = email_facts(email);
            if facts.placeholder || facts.github_login().is_some() {
                continue;
            }
            let candidate = (!super::is_public_domain(facts.domain()), contributor.activity, facts.email.0.clone());
            let better = match &best {
                None => true,
                Some(b) => (candidate.0, candidate.1) > (b.0, b.1),
            };
            if better {
                best = Some(candidate);
            }
        }
    }
    best.map(|(_, _, email)| email)
}

/// A stable id: FNV-1a over the proposal and its evidence, so the same suggestion keeps
/// its id across runs and a changed one gets a new id.
fn suggestion_id(input: &SuggestInput, proposal: &Proposal, evidence: &[Evidence]) -> String {
    let mut text = String::new();
    let mut keys: Vec<String> = proposal
        .contributors()
        .iter()
        .map(|&c| format!("{}\u{1f}{}", input.contributors[c].integration_id, input.contributors[c].identity))
        .collect();
    keys.sort();
    match proposal {
        Proposal::Link { developer, .. } => {
            text.push_str("link\u{1e}");
            text.push_str(&input.developers[*developer].email);
        }
        Proposal::NewDeveloper { email, .. } => {
            text.push_str("new\u{1e}");
            text.push_str(email);
        }
    }
    for key in keys {
        text.push('\u{1e}');
        text.push_str(&key);
    }
    let mut rules: Vec<String> = evidence.iter().map(|e| format!("{}\u{1f}{}", e.rule.as_str(), e.value)).collect();
    rules.sort();
    for rule in rules {
        text.push('\u{1d}');
        text.push_str(&rule);
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contributor(integration: &str, identity: &str, name: &str, emails: &[&str]) -> ContributorFacts {
        ContributorFacts {
            integration_id: integration.into(),
            identity: identity.into(),
            github: false,
            names: vec![name.into()],
            emails: emails.iter().map(|e| e.to_string()).collect(),
            bot: false,
            developer: None,
            activity: 1,
            utc_offsets: Vec::new(),
            active_days: None,
        }
    }

    fn party(integration: &str, identity: &str) -> Party {
        Party::Contributor { integration_id: integration.into(), identity: identity.into() }
    }

    #[test]
    fn every_name_an_address_was_seen_under_is_evidence() {
        // One address written as a full name and, on a laptop, as a handle; a GitHub
        // account whose login is that handle.
        let mut git = contributor("1", "jane@home.org", "Jane Q. Public", &["jane@home.org"]);
        git.names.push("janeqp42".into());
        let mut github = contributor("2", "janeqp42", "", &[]);
        github.github = true;
        github.names.clear();
        let input = SuggestInput { contributors: vec![git.clone(), github.clone()], ..Default::default() };
        let found = suggest(&input, Tier::Auto, Options::default());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].proposal.contributors(), [0, 1]);
        assert_eq!(found[0].evidence[0].rule, Rule::NameIsLogin, "{found:?}");
        assert_eq!(found[0].evidence[0].value, "janeqp42");

        git.names.truncate(1);
        let input = SuggestInput { contributors: vec![git, github], ..Default::default() };
        assert!(suggest(&input, Tier::Auto, Options::default()).is_empty(), "the most-seen name alone says nothing");
    }

    #[test]
    fn the_auto_part_of_one_run_is_what_a_run_up_to_auto_makes() {
        let input = SuggestInput {
            contributors: vec![
                contributor("1", "jane@corp.com", "Jane Doe", &["jane@corp.com"]),
                contributor("2", "acc-1", "Jane Doe", &["jane@corp.com"]),
                contributor("1", "jane.doe@gmail.com", "Jane Doe", &["jane.doe@gmail.com"]),
                contributor("1", "bob@corp.com", "Bob Stone", &["bob@corp.com"]),
                contributor("2", "acc-2", "Bob Stone", &["bob@corp.com"]),
                contributor("1", "bob.stone@corp.com", "Bob Stone", &["bob.stone@corp.com"]),
                contributor("1", "ann@x.org", "Ann Lee", &["ann@x.org"]),
                contributor("1", "ann.lee@y.net", "Ann Lee", &["ann.lee@y.net"]),
            ],
            developers: vec![DeveloperFacts { email: "bob@corp.com".into() }],
            cannot_link: vec![(party("1", "bob.stone@corp.com"), Party::Developer { email: "bob@corp.com".into() })],
        };
        let by_tier = suggest_by_tier(&input, Options::default());
        let auto: Vec<&Suggestion> = by_tier.iter().filter(|s| s.tier == Tier::Auto).collect();
        let alone = suggest(&input, Tier::Auto, Options::default());
        assert_eq!(auto.len(), alone.len());
        for (a, b) in auto.iter().zip(&alone) {
            assert_eq!(*a, b);
        }
        // Jane's two accounts of one address at auto; her personal address, a name
        // alone, is not hidden inside a review group with them.
        assert!(alone.iter().any(|s| s.proposal.contributors() == [0, 1]));
        let review: Vec<&Suggestion> = by_tier.iter().filter(|s| s.tier == Tier::Review).collect();
        assert!(review.iter().all(|s| !s.proposal.contributors().contains(&0)), "{review:?}");
        assert!(review.iter().any(|s| s.proposal.contributors() == [6, 7]), "Ann's namesake pair for review");
    }

    #[test]
    fn an_unmapped_account_with_a_developers_email_is_linked_to_that_developer() {
        let mut mapped = contributor("1", "jane@corp.com", "Jane Doe", &["jane@corp.com"]);
        mapped.developer = Some(0);
        let input = SuggestInput {
            contributors: vec![mapped, contributor("2", "acc-77", "Jane Doe", &["jane@corp.com"])],
            developers: vec![DeveloperFacts { email: "jane@corp.com".into() }],
            cannot_link: vec![],
        };
        let found = suggest(&input, Tier::Review, Options::default());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].proposal, Proposal::Link { contributors: vec![1], developer: 0 });
        assert_eq!(found[0].tier, Tier::Auto);
        assert!(found[0].evidence.iter().any(|e| e.rule == Rule::SameEmail && e.value == "jane@corp.com"));
        let again = suggest(&input, Tier::Review, Options::default());
        assert_eq!(again[0].id, found[0].id, "ids are stable");
    }

    #[test]
    fn a_github_login_meets_the_same_login_in_git_history() {
        let mut github = contributor("gh", "jdoe-dev", "", &[]);
        github.github = true;
        github.names.clear();
        let git = contributor(
            "git",
            "123+jdoe-dev@users.noreply.github.com",
            "Jane Doe",
            &["123+jdoe-dev@users.noreply.github.com"],
        );
        let work = contributor("git", "jane.doe@corp.com", "Jane Doe", &["jane.doe@corp.com"]);
        let input = SuggestInput { contributors: vec![github, git, work], ..Default::default() };
        let found = suggest(&input, Tier::Review, Options::default());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            found[0].proposal,
            Proposal::NewDeveloper { contributors: vec![0, 1, 2], email: "jane.doe@corp.com".into() },
            "the work address is chosen"
        );
    }

    #[test]
    fn a_rejected_pairing_never_returns_and_two_developers_never_merge() {
        let input = SuggestInput {
            contributors: vec![contributor("2", "acc-77", "Jane Doe", &["jane@corp.com"])],
            developers: vec![DeveloperFacts { email: "jane@corp.com".into() }],
            cannot_link: vec![(party("2", "acc-77"), Party::Developer { email: "jane@corp.com".into() })],
        };
        assert!(suggest(&input, Tier::Review, Options::default()).is_empty());

        let mut a = contributor("1", "a", "Jane Doe", &["jane@a.com"]);
        a.developer = Some(0);
        let mut b = contributor("1", "b", "Jane Doe", &["jane@a.com"]);
        b.developer = Some(1);
        let two = SuggestInput {
            contributors: vec![a, b, contributor("2", "c", "Jane Doe", &["jane@a.com"])],
            developers: vec![DeveloperFacts { email: "x@a.com".into() }, DeveloperFacts { email: "y@a.com".into() }],
            cannot_link: vec![],
        };
        let found = suggest(&two, Tier::Review, Options::default());
        assert!(found.iter().all(|s| matches!(s.proposal, Proposal::Link { .. })), "{found:?}");
        assert!(found.len() <= 1);
    }

    #[test]
    fn bots_and_lone_accounts_get_no_suggestion() {
        let mut bot = contributor("1", "dependabot[bot]", "dependabot[bot]", &["bot@corp.com"]);
        bot.bot = true;
        let input = SuggestInput {
            contributors: vec![bot, contributor("1", "human", "Bob Stone", &["bot@corp.com"])],
            ..Default::default()
        };
        assert!(suggest(&input, Tier::Review, Options::default()).is_empty());
    }
}
