//! A handle that spells a full name: `dhuard` is how David Huard writes himself as a
//! login or mailbox, `eguesnet` Etienne Guesnet, `aelhag` Al-Baraa El-Hag, `aniketsy`
//! Aniket Singh Yadav, `jeffyancey` Jeffrey Yancey. People make handles this way; so
//! does every namesake, so this is `review` evidence only, and a handle that spells
//! more than one full name in the data links to none.
//!
//! Each full name is indexed under the spellings people use (its first letter, the
//! start of its first word, or all of its first word, followed by a surname: the last
//! word or the last words run together; and the first word followed by the initials of
//! the rest) as hashed keys, 16 bytes an entry. A handle (the mailbox or login, or a name
//! written without a space, of an alias that has no full name) is split at every
//! position and looked up; a match is then checked against the name itself, so a hash
//! collision cannot link.

use super::blocks::text_key;
use super::{Candidate, Facts, Matched, Rule, Tier};

/// Full names are indexed by at most this much of their first word, and a handle must
/// give at least this much of it unless it gives only the initial.
const FIRST_WORD_START: usize = 3;

/// Aliases one spelling may stand for and still be read through (see `handle_links`).
const MAX_SPELLED_BY: usize = 32;

#[derive(Clone, Copy)]
enum Spelling {
    /// The first word's initial, then a surname.
    InitialSurname,
    /// The first word or its start (three letters or more), then a surname.
    FirstSurname,
    /// The first word, then the initials of the others.
    FirstInitials,
}

fn key(spelling: Spelling, head: &str, tail: &str) -> u64 {
    text_key(&[&[spelling as u8], head.as_bytes(), tail.as_bytes()])
}

/// The full name's words, when it has two or more and is ASCII once folded (a split
/// by bytes is a split by letters). An alias without a full name whose mailbox is one
/// written as `first.last` (`magdalena.proszewska`, the commonest form an employer or a
/// person gives an address) offers the mailbox's words instead.
fn words(f: &Facts) -> Option<Vec<&str>> {
    if f.github_app {
        return None;
    }
    if f.name_key.is_none() {
        return mailbox_words(f);
    }
    let words: Vec<&str> = f.name.tokens().collect();
    (words.len() >= 2 && words.iter().all(|w| w.is_ascii())).then_some(words)
}

/// `first.last`, `first_last`, `first-middle-last`: two or three words of two letters
/// or more, letters only (a number at the end aside), no role mailbox (placeholders are
/// none), of an alias whose name is one word (`mpro`): it wrote a nickname, so its
/// address is where its full name is. An alias with no name at all is left out, as it
/// was before this reading.
fn mailbox_words(f: &Facts) -> Option<Vec<&str>> {
    if f.email.placeholder || f.email.github_login().is_some() || !f.name_written_as_one_word {
        return None;
    }
    // A number after the name (`matthew.ord1`) is how a provider told this Matthew Ord
    // from the first one: the words are before it.
    let local = f.email.local().split('+').next().unwrap_or_default().trim_end_matches(|c: char| c.is_ascii_digit());
    let words: Vec<&str> = local.split(['.', '_', '-']).collect();
    let name_like = |w: &&str| w.len() >= 2 && w.bytes().all(|b| b.is_ascii_lowercase());
    ((2..=3).contains(&words.len()) && words.iter().all(name_like)).then_some(words)
}

/// What tells two spelled names apart: the full name's key, or the mailbox that gave
/// the words (borrowed: this runs for every match of every handle).
fn spelled_key(f: &Facts) -> &str {
    match &f.name_key {
        Some(key) => key,
        None => f.email.local().split('+').next().unwrap_or_default(),
    }
}

fn spellings(words: &[&str]) -> Vec<u64> {
    let first = words[0];
    let mut keys = Vec::new();
    for k in 1..words.len() {
        let surname: String = words[k..].concat();
        if surname.len() < 2 {
            continue;
        }
        keys.push(key(Spelling::InitialSurname, &first[..1], &surname));
        if first.len() >= FIRST_WORD_START {
            keys.push(key(Spelling::FirstSurname, &first[..FIRST_WORD_START], &surname));
        }
    }
    let initials: String = words[1..].iter().filter_map(|w| w.get(..1)).collect();
    keys.push(key(Spelling::FirstInitials, first, &initials));
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// Does `handle` spell the name of `words` in the way `spelling` says, split at `at`?
fn spells(words: &[&str], handle: &str, at: usize, spelling: Spelling) -> bool {
    let (head, tail) = handle.split_at(at);
    let first = words[0];
    let surname_matches = || (1..words.len()).any(|k| words[k..].concat() == tail);
    match spelling {
        Spelling::InitialSurname => first.starts_with(head) && head.len() == 1 && surname_matches(),
        Spelling::FirstSurname => {
            // The first word or its start, or all of it and a middle initial the name
            // leaves out (`abhishek.r.kumar`, Abhishek Kumar).
            let with_middle_initial = head.len() == first.len() + 1 && head.starts_with(first);
            head.len() >= FIRST_WORD_START && (first.starts_with(head) || with_middle_initial) && surname_matches()
        }
        Spelling::FirstInitials => {
            first == head && words[1..].iter().filter_map(|w| w.get(..1)).collect::<String>() == tail
        }
    }
}

/// What an alias without a full name offers as its handle: its mailbox (digits at the
/// end dropped: `jeffyancey1987` is still Jeff Yancey's), or the name it wrote without
/// a space.
fn handles(f: &Facts, mailbox: &str) -> Vec<String> {
    let mut out = Vec::new();
    if !f.email.placeholder {
        out.push(mailbox.trim_end_matches(|c: char| c.is_ascii_digit()).to_string());
    }
    if f.name_written_as_one_word {
        out.push(f.name.tokens().collect());
    }
    out.retain(|h| h.len() >= 4 && h.is_ascii());
    out.sort_unstable();
    out.dedup();
    out
}

/// A one-word name that is a plain first name ("Matt", "Kasia") beside a mailbox
/// handle must be the start of the full name's first word, or begin with it: a Kasia
/// is not Kate Leszek because her mailbox happens to spell `kleszek`. A name that is
/// the handle itself (`dhuard`) has nothing else to agree with.
fn first_names_agree(handle_owner: &Facts, handle: &str, words: &[&str]) -> bool {
    if !handle_owner.plain_first_name {
        return true;
    }
    let Some(name) = handle_owner.name.tokens().next() else { return true };
    name == handle || words[0].starts_with(name) || name.starts_with(words[0])
}

pub(super) fn handle_links(facts: &[Facts], mailbox: impl Fn(usize) -> String) -> Vec<Candidate> {
    let mut index: Vec<(u64, usize)> = Vec::new();
    for (i, f) in facts.iter().enumerate() {
        if let Some(words) = words(f) {
            index.extend(spellings(&words).into_iter().map(|k| (k, i)));
        }
    }
    index.sort_unstable();
    // A spelling dozens of aliases share (`jsmith`, `janed` in a large account) names
    // several people, so it links nobody: it is not read through.
    let lookup = |k: u64| {
        let start = index.partition_point(|e| e.0 < k);
        let end = start + index[start..].partition_point(|e| e.0 == k);
        if end - start > MAX_SPELLED_BY { &index[..0] } else { &index[start..end] }
    };
    let mut links = Vec::new();
    for (i, f) in facts.iter().enumerate() {
        if f.github_app || !(f.name_written_as_one_word || f.name.token_count() == 0) {
            continue;
        }
        let mailbox = mailbox(i);
        // The full names the handles spell, as (name key, first alias with it).
        let mut spelled: Vec<(&str, usize, bool)> = Vec::new();
        for handle in handles(f, &mailbox) {
            let from_mailbox = mailbox.starts_with(&handle);
            // A tail of two letters at least: a first name and one initial (`amritk`,
            // `priyai`) is what every Priya I. may take, and on generated accounts half
            // such links were namesakes'.
            for at in 1..handle.len().saturating_sub(1) {
                let (head, tail) = handle.split_at(at);
                let mut tries = vec![(Spelling::FirstInitials, key(Spelling::FirstInitials, head, tail))];
                if at == 1 {
                    tries.push((Spelling::InitialSurname, key(Spelling::InitialSurname, head, tail)));
                }
                if at >= FIRST_WORD_START {
                    let start = &head[..FIRST_WORD_START];
                    tries.push((Spelling::FirstSurname, key(Spelling::FirstSurname, start, tail)));
                }
                for (spelling, k) in tries {
                    for &(_, j) in lookup(k) {
                        let Some(words) = words(&facts[j]) else { continue };
                        let own_name = j == i || (facts[j].name_key.is_some() && facts[j].name_key == f.name_key);
                        if !own_name && spells(&words, &handle, at, spelling) && first_names_agree(f, &handle, &words) {
                            spelled.push((spelled_key(&facts[j]), j, from_mailbox));
                        }
                    }
                }
            }
        }
        spelled.sort_unstable();
        spelled.dedup_by_key(|s| s.0);
        // Two spellings of one person's name ("Amrit K", "Amrit Krishnan") written with
        // one address are one name to spell, not two people to choose between.
        let one_address = |x: &Facts, y: &Facts| !x.email.placeholder && x.email.email.0 == y.email.email.0;
        if spelled.windows(2).all(|w| one_address(&facts[w[0].1], &facts[w[1].1])) {
            spelled.truncate(1);
        }
        if let [(_, j, from_mailbox)] = spelled[..] {
            let matched = if from_mailbox { Matched::Mailbox } else { Matched::Name };
            links.push(Candidate::between(i, j, Rule::HandleSpellsName, Tier::Review, matched));
        }
    }
    links
}

#[cfg(test)]
mod tests {
    use crate::resolve::{Alias, Options, Rule, Tier, cluster};

    fn aliases(list: &[(&str, &str)]) -> Vec<Alias> {
        list.iter().map(|(n, e)| Alias { name: n.to_string(), email: e.to_string() }).collect()
    }

    #[test]
    fn a_handle_that_spells_one_full_name_is_offered_for_review_only() {
        let a = aliases(&[
            ("David Huard", "david.huard@gmail.com"),
            ("dhuard", "dhuard@localhost"),
            ("Aniket Singh Yadav", "singhyadavaniket43@gmail.com"),
            ("Aniket", "148300120+Aniketsy@users.noreply.github.com"),
            ("Al-Baraa El-Hag", "a.elhag01@gmail.com"),
            ("a-elhag", "48454648+a-elhag@users.noreply.github.com"),
            ("Jeff", "3820914+jeffyancey@users.noreply.github.com"),
            ("Jeffrey Yancey", "jeffrey@octane5.com"),
            // A middle initial the name leaves out.
            ("abhishek-fujitsu", "abhishek.r.kumar@fujitsu.com"),
            ("Abhishek Kumar", "142383124+abhishek-iitmadras@users.noreply.github.com"),
        ]);
        assert_eq!(cluster(&a, Tier::Auto, Options::default()).person, vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        let review = cluster(&a, Tier::Review, Options::default());
        assert_eq!(review.person, vec![0, 0, 2, 2, 4, 4, 6, 6, 8, 8]);
        assert!(review.links.iter().all(|l| l.rule == Rule::HandleSpellsName && l.tier == Tier::Review));
        assert!(review.links.iter().any(|l| l.value == "dhuard"), "{:?}", review.links);
    }

    #[test]
    fn two_spellings_of_a_name_at_one_address_are_one_name_to_spell() {
        let a = aliases(&[
            ("Jan Doerr", "jd1987@gmail.com"),
            ("Janelle Doerr", "jd1987@gmail.com"),
            ("jdoerr", "jdoerr@lab.example.org"),
            // Two names at two addresses are two people the handle may be: nobody.
            ("Wei Zhang", "wz@a.com"),
            ("Wendy Zhang", "wendy@b.com"),
            ("wzhang", "wzhang@c.org"),
        ]);
        let review = cluster(&a, Tier::Review, Options::default());
        assert_eq!(review.person, vec![0, 0, 0, 3, 4, 5], "{:?}", review.links);
        let spelled = review.links.iter().find(|l| l.b == 2 || l.a == 2).map(|l| (l.rule, l.tier));
        assert_eq!(spelled, Some((Rule::HandleSpellsName, Tier::Review)));
    }

    #[test]
    fn a_first_dot_last_mailbox_is_a_name_a_handle_can_spell() {
        let a = aliases(&[
            ("mpro", "magdalena.proszewska@gmail.com"),
            ("mproszewska", "38814059+mproszewska@users.noreply.github.com"),
            // A mailbox of one word, or with a digit, is no name.
            ("kb", "kbroadwell@a.com"),
            ("kbroadwell", "k.broadwell2@b.com"),
        ]);
        let review = cluster(&a, Tier::Review, Options::default());
        assert_eq!(review.person, vec![0, 0, 2, 3], "{:?}", review.links);
        assert_eq!((review.links[0].rule, review.links[0].tier), (Rule::HandleSpellsName, Tier::Review));
    }

    #[test]
    fn a_handle_every_namesake_shares_links_nobody() {
        // `jdoe` spells Jane Doe and John Doe alike; Kasia is not Kate Leszek because
        // her mailbox happens to spell `kleszek`.
        let a = aliases(&[
            ("Jane Doe", "jane@a.com"),
            ("John Doe", "john@b.com"),
            ("jdoe", "jdoe@c.org"),
            ("Kate Leszek", "kate@d.com"),
            ("Kasia", "kleszek@e.com"),
        ]);
        assert_eq!(cluster(&a, Tier::Review, Options::default()).person, vec![0, 1, 2, 3, 4]);
    }
}
