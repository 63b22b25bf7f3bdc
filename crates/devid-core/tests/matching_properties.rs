//! Invariants of the matching engine, on generated aliases: strangers who share only a
//! first name, or only a placeholder address, are never linked at `auto`; no person grows
//! past the limit at `auto`; the same input always gives the same clusters; and any input
//! is grouped without a panic.

use devid_core::resolve::{Alias, Options, Seen, Tier, cluster, cluster_seen};
use proptest::prelude::*;

const FIRST: [&str; 6] = ["david", "maria", "wei", "john", "anna", "li"];
const PLACEHOLDERS: [&str; 5] = ["devnull@localhost", "root@localhost", "nobody@example.com", "me@host.(none)", "="];

/// Distinct people who may share a first name, each writing with their own address.
fn strangers() -> impl Strategy<Value = Vec<Alias>> {
    proptest::collection::vec((0..FIRST.len(), "[a-z]{3,8}", "[a-z]{2,6}", prop::bool::ANY), 2..40).prop_map(|people| {
        people
            .into_iter()
            .enumerate()
            .map(|(i, (first, last, domain, full))| {
                // A person's surname and mailbox are their own: `i` keeps them apart.
                let name = if full { format!("{} {last}{i}", FIRST[first]) } else { FIRST[first].to_string() };
                Alias { name, email: format!("{}.{last}{i}@{domain}{i}.org", FIRST[first]) }
            })
            .collect()
    })
}

const LONG_FIRST: [&str; 6] = ["christopher", "alexandra", "mohammed", "giovanni", "david", "maria"];

/// Strangers who share first names, written small, capitalised or in capitals, all
/// writing from one time zone in the same weeks, each one's commits committed by the
/// stranger before them (a maintainer applying a patch): what the zone-, time- and
/// commit-based rules read, with nothing but the first name shared.
fn strangers_in_one_zone() -> impl Strategy<Value = (Vec<Alias>, Vec<Seen>)> {
    proptest::collection::vec((0..LONG_FIRST.len(), 0..3usize, "[a-z]{3,8}", prop::bool::ANY), 2..30).prop_map(
        |people| {
            let (mut aliases, mut seen) = (Vec::new(), Vec::new());
            for (i, (first, casing, last, full)) in people.into_iter().enumerate() {
                let first = LONG_FIRST[first];
                let written = match casing {
                    0 => first.to_string(),
                    1 => first[..1].to_uppercase() + &first[1..],
                    _ => first.to_uppercase(),
                };
                let name = if full { format!("{written} {last}{i}") } else { written };
                let email = format!("{first}.{last}{i}@corp{i}.org");
                let committers = aliases.last().cloned().into_iter().collect();
                let active_days = Some((100, 100 + i as i32));
                seen.push(Seen { utc_offsets: vec![60], committers, active_days });
                aliases.push(Alias { name, email });
            }
            (aliases, seen)
        },
    )
}

proptest! {
    #[test]
    fn strangers_who_share_a_first_name_and_a_zone_are_never_linked_at_auto((aliases, seen) in strangers_in_one_zone()) {
        let c = cluster_seen(&aliases, &seen, Tier::Auto, Options::default());
        prop_assert!(c.links.is_empty(), "{:?}", c.links);
        // A person may be asked about two of them (one first name, one zone, one month),
        // never more than asked.
        let review = cluster_seen(&aliases, &seen, Tier::Review, Options::default());
        prop_assert!(review.links.iter().all(|l| l.tier == Tier::Review), "{:?}", review.links);
    }

    #[test]
    fn people_who_share_only_a_first_name_are_never_linked_at_auto(aliases in strangers()) {
        let c = cluster(&aliases, Tier::Auto, Options::default());
        prop_assert!(c.links.is_empty(), "{:?}", c.links);
    }

    #[test]
    fn a_full_name_alone_is_never_linked_at_auto(name in "[A-Z][a-z]{2,7} [A-Z][a-z]{2,9}", locals in proptest::collection::btree_set("[a-z]{3,10}", 2..8)) {
        // Namesakes at public mail providers: nothing but the name agrees.
        let providers = ["gmail.com", "yahoo.com", "outlook.com", "proton.me"];
        let aliases: Vec<Alias> = locals
            .iter()
            .enumerate()
            .map(|(i, local)| Alias { name: name.clone(), email: format!("{local}@{}", providers[i % providers.len()]) })
            .collect();
        let auto = cluster(&aliases, Tier::Auto, Options::default());
        prop_assert!(auto.links.is_empty(), "{:?}", auto.links);
        let review = cluster(&aliases, Tier::Review, Options::default());
        prop_assert!(review.links.iter().all(|l| l.tier == Tier::Review));
    }

    #[test]
    fn a_shared_placeholder_address_links_nobody(names in proptest::collection::vec("[A-Z][a-z]{2,7} [A-Z][a-z]{2,9}", 2..20), which in 0..PLACEHOLDERS.len()) {
        let mut distinct = names.clone();
        distinct.sort();
        distinct.dedup();
        let aliases: Vec<Alias> = distinct.iter().map(|n| Alias { name: n.clone(), email: PLACEHOLDERS[which].to_string() }).collect();
        let c = cluster(&aliases, Tier::Review, Options::default());
        prop_assert!(c.links.is_empty(), "{:?}", c.links);
    }

    #[test]
    fn no_person_grows_past_the_limit_at_auto(count in 2usize..60, limit in 1usize..12) {
        // One address for everyone: every pair has the strongest evidence there is.
        let aliases: Vec<Alias> = (0..count).map(|i| Alias { name: format!("Jane Doe{i}"), email: "jane@corp.com".into() }).collect();
        let c = cluster(&aliases, Tier::Auto, Options { max_aliases: limit });
        for p in 0..count {
            prop_assert!(c.person.iter().filter(|q| **q == p).count() <= limit);
        }
    }

    #[test]
    fn the_same_aliases_give_the_same_clusters(aliases in proptest::collection::vec(("[ -~]{0,12}", "[ -~]{0,16}"), 0..30)) {
        let aliases: Vec<Alias> = aliases.into_iter().map(|(name, email)| Alias { name, email }).collect();
        let a = cluster(&aliases, Tier::Review, Options::default());
        let b = cluster(&aliases, Tier::Review, Options::default());
        prop_assert_eq!(a.person, b.person);
        prop_assert_eq!(a.tier, b.tier);
    }
}

/// Accounts drawn from a few names and addresses, so that every rule fires somewhere,
/// some mapped to a few developers, with a few cannot-links.
fn accounts() -> impl Strategy<Value = devid_core::resolve::suggest::SuggestInput> {
    use devid_core::resolve::suggest::{ContributorFacts, DeveloperFacts, Party, SuggestInput};
    let names = ["Jane Doe", "Jane", "Doe Jane", "Bob Stone", "jdoe", "Wei Wang", ""];
    let emails = [
        "jane@corp.com",
        "jane.doe@gmail.com",
        "jdoe@users.noreply.github.com",
        "bob@corp.com",
        "bob.stone@corp.com",
        "wei.wang@alpha.com",
        "wei.wang@beta.org",
        "devnull@localhost",
    ];
    let contributor = (0..names.len(), proptest::collection::vec(0..emails.len(), 0..3), prop::bool::ANY, 0..5usize);
    (proptest::collection::vec(contributor, 1..24), proptest::collection::vec((0..24usize, 0..3usize), 0..4)).prop_map(
        move |(rows, rejected)| {
            let developers: Vec<DeveloperFacts> =
                ["jane@corp.com", "bob@corp.com"].iter().map(|e| DeveloperFacts { email: e.to_string() }).collect();
            let contributors: Vec<ContributorFacts> = rows
                .iter()
                .enumerate()
                .map(|(i, (name, picked, github, mapped))| ContributorFacts {
                    integration_id: if *github { "1".into() } else { "2".into() },
                    identity: format!("acc{i}"),
                    github: *github,
                    names: vec![names[*name].to_string()],
                    emails: picked.iter().map(|&e| emails[e].to_string()).collect(),
                    bot: false,
                    developer: (*mapped < developers.len()).then_some(*mapped),
                    activity: 1 + i as u64,
                    utc_offsets: Vec::new(),
                    active_days: None,
                })
                .collect();
            let cannot_link = rejected
                .iter()
                .filter(|(c, _)| *c < contributors.len())
                .map(|&(c, d)| {
                    let contributor = Party::Contributor {
                        integration_id: contributors[c].integration_id.clone(),
                        identity: contributors[c].identity.clone(),
                    };
                    let other = match d {
                        0 | 1 => Party::Developer { email: developers[d].email.clone() },
                        _ => Party::Contributor {
                            integration_id: contributors[0].integration_id.clone(),
                            identity: contributors[0].identity.clone(),
                        },
                    };
                    (contributor, other)
                })
                .collect();
            SuggestInput { contributors, developers, cannot_link }
        },
    )
}

proptest! {
    #[test]
    fn the_auto_suggestions_of_one_run_are_those_of_a_run_up_to_auto(input in accounts()) {
        use devid_core::resolve::suggest::{suggest, suggest_by_tier};
        let by_tier = suggest_by_tier(&input, Options::default());
        let auto: Vec<_> = by_tier.iter().filter(|s| s.tier == Tier::Auto).cloned().collect();
        prop_assert_eq!(auto, suggest(&input, Tier::Auto, Options::default()));
        // No contributor is in two suggestions.
        let mut seen = std::collections::HashSet::new();
        for s in &by_tier {
            for &c in s.proposal.contributors() {
                prop_assert!(seen.insert(c), "contributor {} twice", c);
            }
        }
    }
}
