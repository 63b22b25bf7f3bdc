//! One person's handle or name written two ways: a handle with a slip of the hand
//! (`cgholke`, `cgohlke`), a first name and its short form under one surname (`Matt
//! Ord`, `Matthew Ord`), a handle cut at eight letters by an old account system
//! (`argriffi`, `argriffing`). Each is how one person's spellings drift, and each is
//! also how two strangers' could meet, so every link here is `review`: a person
//! confirms it.

use super::{Blocks, Candidate, Facts, MAX_COMPARED, Mailboxes, Matched, NameWords, Rule, Seen, Tier};
use super::{handles, normalize, one_typo_apart};

/// Two aliases whose time zones, where both are known, overlap: a reading that the
/// zones do not contradict rather than one they confirm.
fn zones_do_not_contradict(a: &Seen, b: &Seen) -> bool {
    a.utc_offsets.is_empty() || b.utc_offsets.is_empty() || a.shares_a_zone_with(b)
}

/// [`Rule::HandleWithASlip`]: one-word names of seven letters or more that are no word
/// of a full name here, one slip apart, written from the same time zone. Each name is
/// filed under itself and under each spelling one letter shorter, so a letter added,
/// dropped, changed, or two neighbours swapped meet in one block.
pub(super) fn slipped_handles<'a>(
    facts: &[Facts],
    name_words: &NameWords,
    seen_of: impl Fn(usize) -> &'a Seen,
    candidates: &mut Vec<Candidate>,
) {
    let handle_of = |f: &Facts| -> Option<String> {
        let word = f.name.tokens().next().filter(|_| f.name.token_count() == 1)?;
        let usable = f.name_written_as_one_word
            && !f.github_app
            && word.chars().count() >= 7
            && name_words.unlike_any(word)
            && !normalize::is_role_word(word);
        usable.then(|| word.to_string())
    };
    let handles: Vec<Option<String>> = facts.iter().map(handle_of).collect();
    let spellings: Vec<(String, usize)> = handles
        .iter()
        .enumerate()
        .filter_map(|(i, h)| Some((h.as_deref()?, i)))
        .flat_map(|(word, i)| {
            let chars: Vec<char> = word.chars().collect();
            let shorter = (0..chars.len()).map(move |skip| {
                chars.iter().enumerate().filter(|(at, _)| *at != skip).map(|(_, c)| *c).collect::<String>()
            });
            std::iter::once(word.to_string()).chain(shorter).map(move |spelling| (spelling, i))
        })
        .collect();
    let by_spelling = Blocks::of(spellings.iter().map(|(spelling, i)| (spelling.as_str(), *i)));
    let mut pairs = Vec::new();
    for (_, members) in by_spelling.iter() {
        if members.len() > MAX_COMPARED {
            continue;
        }
        for (x, &a) in members.iter().enumerate() {
            for &b in &members[x + 1..] {
                if let (Some(ha), Some(hb)) = (&handles[a], &handles[b])
                    && one_typo_apart(ha, hb)
                    && seen_of(a).shares_a_zone_with(seen_of(b))
                {
                    pairs.push((a.min(b), a.max(b)));
                }
            }
        }
    }
    // Two neighbours swapped meet under two spellings: one link each.
    pairs.sort_unstable();
    pairs.dedup();
    for (a, b) in pairs {
        candidates.push(Candidate::of_a(a, b, Rule::HandleWithASlip, Tier::Review, Matched::Name));
    }
}

/// The words a person's full name gives: the name's, or for an alias that wrote a
/// one-word name, a `first.last` mailbox's (see [`handles::mailbox_words`]).
fn full_name_words(f: &Facts) -> Option<Vec<&str>> {
    if f.github_app {
        return None;
    }
    if f.name_key.is_some() {
        let words: Vec<&str> = f.name.tokens().collect();
        return (words.len() >= 2).then_some(words);
    }
    handles::mailbox_words(f)
}

/// A block key for text: a hash, 8 bytes, where a million aliases' strings would cost
/// tens of MiB at the engine's peak. A collision only compares two aliases more: each
/// pair is checked against the text itself.
fn text_key(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in parts.iter().flat_map(|p| p.bytes().chain([0x1f])) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// The first name (three letters or more) and the surname of an alias's full name.
fn first_and_surname(f: &Facts) -> Option<(&str, &str)> {
    let words = full_name_words(f)?;
    let (first, surname) = (*words.first()?, *words.last()?);
    (first.len() >= 3 && first.is_ascii() && surname.chars().count() >= 2).then_some((first, surname))
}

/// [`Rule::ShortFirstName`]: one surname, and first names of which one is the start of
/// the other, three letters or more and two fewer at least (`Matt` and `Matthew`,
/// `Chris` and `Christopher`, `Will` and `William`): how people shorten their own first
/// name. Blocked by the
/// first name's first three letters and the surname, so only such pairs meet.
pub(super) fn short_first_names<'a>(
    facts: &[Facts],
    seen_of: impl Fn(usize) -> &'a Seen,
    candidates: &mut Vec<Candidate>,
) {
    let by_key = Blocks::of(facts.iter().enumerate().filter_map(|(i, f)| {
        let (first, surname) = first_and_surname(f)?;
        Some((text_key(&[&first[..3], surname]), i))
    }));
    for (_, members) in by_key.iter() {
        if members.len() < 2 || members.len() > MAX_COMPARED {
            continue;
        }
        for (x, &a) in members.iter().enumerate() {
            for &b in &members[x + 1..] {
                let (Some((fa, sa)), Some((fb, sb))) = (first_and_surname(&facts[a]), first_and_surname(&facts[b]))
                else {
                    continue;
                };
                let (short, long) = if fa.len() < fb.len() { (fa, fb) } else { (fb, fa) };
                // Two letters more at least: one more is how many names are told from
                // another person's (Jan and Jane, Ann and Anna, Daniel and Daniela).
                let shortened = long.len() >= short.len() + 2 && long.starts_with(short);
                if shortened && sa == sb && zones_do_not_contradict(seen_of(a), seen_of(b)) {
                    candidates.push(Candidate::of_a(a, b, Rule::ShortFirstName, Tier::Review, Matched::Name));
                }
            }
        }
    }
}

/// The most letters an account name could hold on the systems that gave many people
/// their first address (Unix user names): `argriffi` is `argriffing` cut short.
const ACCOUNT_NAME_LIMIT: usize = 8;

/// [`Rule::TruncatedHandle`]: a mailbox of exactly eight letters that begins another's
/// handle (its mailbox, its login, or a name written as one word), when those eight
/// letters are no word of a full name here nor the start of one (`christop` begins
/// every Christopher's handle).
pub(super) fn truncated_handles<'a>(
    facts: &[Facts],
    mailboxes: &Mailboxes,
    name_words: &NameWords,
    seen_of: impl Fn(usize) -> &'a Seen,
    candidates: &mut Vec<Candidate>,
) {
    let letters_only = |h: &str| h.bytes().all(|b| b.is_ascii_lowercase());
    // An alias's handles longer than the limit: its mailbox (or login), and a name
    // written as one word.
    let longer_handles = |i: usize| {
        let f = &facts[i];
        let mailbox = (!f.email.placeholder || f.email.github_login().is_some()).then(|| mailboxes.get(i));
        let name =
            (f.name_written_as_one_word && f.name.token_count() == 1 && !f.github_app).then_some(f.name.0.as_str());
        [mailbox, name].into_iter().flatten().filter(move |h| h.len() > ACCOUNT_NAME_LIMIT && letters_only(h))
    };
    let by_start = Blocks::of(
        (0..facts.len()).flat_map(|i| longer_handles(i).map(move |h| (text_key(&[&h[..ACCOUNT_NAME_LIMIT]]), i))),
    );
    let mut sorted_words: Option<Vec<&str>> = None;
    for (i, f) in facts.iter().enumerate() {
        let mailbox = mailboxes.get(i);
        if f.email.placeholder
            || f.email.github_login().is_some()
            || mailbox.len() != ACCOUNT_NAME_LIMIT
            || !letters_only(mailbox)
        {
            continue;
        }
        let Some(members) = by_start.get(text_key(&[mailbox])) else { continue };
        if name_words.overlaps(sorted_words.get_or_insert_with(|| name_words.sorted()), mailbox) {
            continue;
        }
        let mut others: Vec<usize> = members
            .iter()
            .copied()
            .filter(|&o| o != i && longer_handles(o).any(|h| h.starts_with(mailbox)))
            .take(MAX_COMPARED)
            .collect();
        others.dedup();
        for other in others {
            if zones_do_not_contradict(seen_of(i), seen_of(other)) {
                candidates.push(Candidate::between(i, other, Rule::TruncatedHandle, Tier::Review, Matched::Mailbox));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Alias, Options, Rule, Seen, Tier, cluster_seen};

    fn aliases(list: &[(&str, &str)]) -> Vec<Alias> {
        list.iter().map(|(n, e)| Alias { name: n.to_string(), email: e.to_string() }).collect()
    }

    fn zone(hours: i16) -> Seen {
        Seen { utc_offsets: vec![hours * 60], ..Seen::default() }
    }

    fn review_links(a: &[Alias], seen: &[Seen]) -> Vec<(usize, usize, Rule)> {
        assert!(cluster_seen(a, seen, super::Tier::Auto, Options::default()).links.is_empty(), "never at auto");
        let review = cluster_seen(a, seen, Tier::Review, Options::default());
        review.links.iter().map(|l| (l.a, l.b, l.rule)).collect()
    }

    #[test]
    fn a_handle_written_once_with_a_slip_is_offered_for_review_from_its_zone() {
        let a = aliases(&[
            ("cgohlke", "cgohlke@uci.edu"),
            ("cgholke", "?@?"),
            // The same slip from another zone: somebody else.
            ("wbarnowski", "wb@a.com"),
            ("wbarnowsk", "wb@b.org"),
            // A word of a full name here, however long, may be anyone's.
            ("fernandez", "f1@a.com"),
            ("fernandes", "f2@b.org"),
            ("Maria Fernandez", "mf@c.net"),
            // Short words: `ann` and `anna` are two names.
            ("annab", "a1@a.com"),
            ("annas", "a2@b.org"),
        ]);
        let seen = [zone(-8), zone(-7), zone(1), zone(-5), zone(1), zone(1), zone(1), zone(1), zone(1)];
        assert_eq!(review_links(&a, &seen), vec![(0, 1, Rule::HandleWithASlip)]);
        // Without zones nothing tells a slip from a stranger: no link.
        assert!(review_links(&a, &[]).is_empty());
    }

    #[test]
    fn a_first_name_written_in_full_and_short_under_one_surname_is_offered_for_review() {
        let a = aliases(&[
            ("Matt-Ord", "55235095+Matt-Ord@users.noreply.github.com"),
            // A one-word name, and the full name in a first.last mailbox with a number.
            ("Matt", "Matthew.ord1@gmail.com"),
            ("Chris Lee", "cl@a.com"),
            ("Christopher Lee", "clee@b.org"),
            // Another surname, or two names one letter apart.
            ("Chris Leeds", "leeds@c.net"),
            ("Jan Berg", "jan@d.org"),
            ("Jane Berg", "jane@e.org"),
        ]);
        let links = review_links(&a, &[]);
        assert!(links.contains(&(2, 3, Rule::ShortFirstName)), "{links:?}");
        let review = cluster_seen(&a, &[], Tier::Review, Options::default());
        assert_eq!(review.person[1], review.person[0], "{:?}", review.links);
        assert_eq!(review.person[2], review.person[3]);
        assert_ne!(review.person[4], review.person[2]);
        assert_ne!(review.person[5], review.person[6], "Jan and Jane: one letter tells two names apart");
        // Two zones apart: no link.
        let seen = [zone(0), zone(0), zone(1), zone(-8), zone(1), zone(1), zone(1)];
        let review = cluster_seen(&a, &seen, Tier::Review, Options::default());
        assert_ne!(review.person[2], review.person[3]);
    }

    #[test]
    fn a_mailbox_cut_at_eight_letters_is_offered_for_review() {
        let a = aliases(&[
            ("alex", "argriffi@ncsu.edu"),
            ("argriffing", "argriffing@gmail.com"),
            // Eight letters that begin a name here begin every namesake's handle.
            ("chris", "christop@uni.edu"),
            ("christopherson", "christophersonk@gmail.com"),
            ("Christopher Lee", "cl@corp.com"),
            // Seven letters are not cut.
            ("bob", "argriff@other.edu"),
        ]);
        assert_eq!(review_links(&a, &[]), vec![(0, 1, Rule::TruncatedHandle)]);
    }
}
