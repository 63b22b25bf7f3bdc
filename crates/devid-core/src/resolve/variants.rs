//! One person's handle written two ways: with a slip of the hand (`cgholke`,
//! `cgohlke`), or cut at eight letters by an old account system (`argriffi`,
//! `argriffing`). Each is how one person's spellings drift, and each is also how two
//! strangers' could meet, so every link here is `review`: a person confirms it.

use super::blocks::text_key;
use super::{Blocks, Candidate, Facts, MAX_COMPARED, Mailboxes, Matched, NameWords, Rule, Seen, Tier};
use super::{NormalName, handle_spellings, normalize, one_typo_apart};

/// Two aliases whose time zones, where both are known, overlap: a reading that the
/// zones do not contradict rather than one they confirm.
fn zones_do_not_contradict(a: &Seen, b: &Seen) -> bool {
    a.utc_offsets.is_empty() || b.utc_offsets.is_empty() || a.shares_a_zone_with(b)
}

/// [`Rule::HandleWithASlip`]: one-word names of seven letters or more that are no word
/// of a full name here (and only where there are full names to tell a handle from a
/// name, see [`NameWords::unlike_any`]), one slip apart, written from the same time
/// zone. Each name is filed under itself and under each spelling one letter shorter, so
/// a letter added, dropped, changed, or two neighbours swapped meet in one block.
pub(super) fn slipped_handles<'a>(
    facts: &[Facts],
    name_words: &NameWords,
    seen_of: impl Fn(usize) -> &'a Seen,
    candidates: &mut Vec<Candidate>,
) {
    // Borrowed from the alias's facts: read again for each pair rather than held for
    // every alias (a million with zones known would be a million slots).
    let handle_of = |i: usize| -> Option<&str> {
        let f = &facts[i];
        let word = f.name.tokens().next().filter(|_| f.name.token_count() == 1)?;
        let usable = f.name_written_as_one_word
            && !f.github_app
            && word.chars().count() >= 7
            && name_words.unlike_any(word)
            && !normalize::is_role_word(word);
        usable.then_some(word)
    };
    // Each spelling hashed: the eight or so spellings of each handle are blocked on
    // 8-byte keys, and a pair is checked against the handles themselves.
    let spellings = (0..facts.len()).filter_map(|i| Some((handle_of(i)?, i))).flat_map(|(word, i)| {
        let chars: Vec<char> = word.chars().collect();
        let shorter = (0..chars.len()).map(move |skip| {
            let spelling: String = chars.iter().enumerate().filter(|(at, _)| *at != skip).map(|(_, c)| *c).collect();
            text_key(&[spelling.as_bytes()])
        });
        std::iter::once(text_key(&[word.as_bytes()])).chain(shorter).map(move |key| (key, i))
    });
    let by_spelling = Blocks::of(spellings);
    let mut pairs = Vec::new();
    for (_, members) in by_spelling.iter() {
        if members.len() > MAX_COMPARED {
            continue;
        }
        for (x, &a) in members.iter().enumerate() {
            for &b in &members[x + 1..] {
                if let (Some(ha), Some(hb)) = (handle_of(a), handle_of(b))
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

/// Does `start` begin the full name `name` written as a handle (`omarkami…`, `okami…`,
/// `kamiroomar`: see [`handle_spellings`])?
fn begins_a_spelling_of(start: &str, name: &NormalName) -> bool {
    let words: Vec<&str> = name.tokens().filter(|w| w.chars().count() > 1).collect();
    handle_spellings(&words).any(|spelled| spelled.starts_with(start))
}

/// The most letters an account name could hold on the systems that gave many people
/// their first address (Unix user names): `argriffi` is `argriffing` cut short.
const ACCOUNT_NAME_LIMIT: usize = 8;

/// [`Rule::TruncatedHandle`]: a mailbox of exactly eight letters that begins another's
/// handle (its mailbox, its login, or a name written as one word), when those eight
/// letters are no word of a full name here nor the start of one (`christop` begins
/// every Christopher's handle), nor the start of either alias's full name written as a
/// handle.
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
        (0..facts.len())
            .flat_map(|i| longer_handles(i).map(move |h| (text_key(&[&h.as_bytes()[..ACCOUNT_NAME_LIMIT]]), i))),
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
        let Some(members) = by_start.get(text_key(&[mailbox.as_bytes()])) else { continue };
        if name_words.overlaps(sorted_words.get_or_insert_with(|| name_words.sorted()), mailbox) {
            continue;
        }
        // A cut of a handle made from a full name (`omarkami`, of `omarkamiro`, Omar
        // Kamiro) is where every namesake's handle begins.
        if begins_a_spelling_of(mailbox, &f.name) {
            continue;
        }
        let mut others: Vec<usize> = members
            .iter()
            .copied()
            .filter(|&o| {
                o != i
                    && longer_handles(o).any(|h| h.starts_with(mailbox))
                    && !begins_a_spelling_of(mailbox, &facts[o].name)
            })
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
        assert!(cluster_seen(a, seen, Tier::Auto, Options::default()).links.is_empty(), "never at auto");
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
            // Five letters are too few to be a handle of one's own.
            ("annab", "a1@a.com"),
            ("annas", "a2@b.org"),
        ]);
        let seen = [zone(-8), zone(-7), zone(1), zone(-5), zone(1), zone(1), zone(1), zone(1), zone(1)];
        assert_eq!(review_links(&a, &seen), vec![(0, 1, Rule::HandleWithASlip)]);
        // Without zones nothing tells a slip from a stranger: no link.
        assert!(review_links(&a, &[]).is_empty());
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
            // Handles made from full names: namesakes' begin alike.
            ("Omar Kami", "omarkami@gmail.com"),
            ("Omar Kamiro", "omarkamiro@gmail.com"),
        ]);
        assert_eq!(review_links(&a, &[]), vec![(0, 1, Rule::TruncatedHandle)]);
    }
}
