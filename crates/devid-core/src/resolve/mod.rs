//! Who is who: links between aliases (a name and an email as seen together) that rest
//! on evidence, grouped into people. Pure and deterministic: the same aliases in the
//! same order give the same clusters, links and evidence.
//!
//! Work grows with the number of aliases, not its square: aliases are only compared
//! inside blocks that share a normalised email, a normalised full name or a GitHub
//! account. Links never rest on placeholder addresses, addresses several clearly
//! different people wrote with, or generic names; a name alone is at most `review`;
//! and a link that would grow a person past `max_aliases` is held at `review`.

mod blocks;
mod cluster;
mod handles;
pub mod normalize;
pub mod suggest;
mod variants;

use blocks::Blocks;
pub use cluster::Constraints;
use cluster::apply;

use normalize::{EmailFacts, NormalName, email_facts, is_generic_name, normalize_name};

/// A name and an email as seen together, exactly as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Alias {
    pub name: String,
    pub email: String,
}

/// What the engine reads of an alias; borrowed, so callers need not copy their names
/// and emails into [`Alias`] values (a million contributors' copies were most of the
/// engine's memory).
pub trait AliasText {
    fn name(&self) -> &str;
    fn email(&self) -> &str;
}

impl AliasText for Alias {
    fn name(&self) -> &str {
        &self.name
    }

    fn email(&self) -> &str {
        &self.email
    }
}

/// How sure a link is: `auto` may be applied without a person; `review` waits for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tier {
    Auto,
    Review,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Auto => "auto",
            Tier::Review => "review",
        }
    }

    pub fn parse(text: &str) -> Option<Tier> {
        match text.trim().to_ascii_lowercase().as_str() {
            "auto" => Some(Tier::Auto),
            "review" => Some(Tier::Review),
            _ => None,
        }
    }
}

/// Why two aliases are linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// The same address, not a placeholder and not shared by different people.
    SameEmail,
    /// Two GitHub noreply addresses of one account: one account number (a renamed
    /// login), or one login where an address carries no number.
    SameGithubAccount,
    /// The same full name, and the addresses agree too (the same local part, a noreply
    /// login equal to the other's local part, or the same organisation's domain).
    SameNameCorroborated,
    /// The same full name, written from the same time zones (commit dates' UTC offsets
    /// within an hour of each other): a namesake would have to live there too.
    SameNameSameTimezone,
    /// The same full name and nothing else: a namesake is possible.
    SameNameOnly,
    /// A noreply login equal to the other address's mailbox (auto when the login is
    /// distinctive and the names agree).
    LoginMatchesLocalPart,
    /// A name that is another alias's GitHub login, written as the name (auto when the
    /// login is distinctive).
    NameIsLogin,
    /// The same one-word name shaped like a handle ("GalaxySnail"): auto when the
    /// handle is distinctive and written from the same time zones.
    SameHandle,
    /// One's commit committed under the same name from the other's address: a person
    /// amending or rebasing their own work on another machine.
    CommittedBySameName,
    /// A handle (a login, a mailbox, a name written as one word) that spells one full
    /// name the way people make handles (`dhuard`, David Huard): review only.
    HandleSpellsName,
    /// One mailbox its owner chose (`rosengreenpedersen`) at two providers: review only,
    /// since the names may differ.
    SameMailbox,
    /// The same one-word name, and handles (logins or mailboxes) that begin with the same
    /// six letters or more (`Mukulikaa`, `mukulikapahari`), or are one slip apart
    /// (`katleszek`, `kati.leszek`): review only.
    HandlesBeginAlike,
    /// One address and one full name, each written once with a typo (`Derek Homeir` at
    /// `astro.phsik…`): review only.
    OneTypoApart,
    /// The same one-word name (a number aside: `ixgbe`, `ixgbe00`), no first name of a
    /// full name here, written from the same time zone within six months: one person
    /// who set only a first name or a handle on two machines. Review only: the name
    /// alone is never the evidence, the place and the time are.
    OneWordNameSameTime,
    /// A one-word handle written once with a slip (`cgholke` beside `cgohlke`), seven
    /// letters or more and no word of a full name here (so only where full names are
    /// there to tell a handle from a name), from the same time zone: review only.
    HandleWithASlip,
    /// A mailbox of eight letters that begins the other's handle (`argriffi`,
    /// `argriffing`): an account name cut at the length old systems allowed. Review
    /// only.
    TruncatedHandle,
    /// A name written as an address (`wfspotz@sandia.gov`) that is the other's address,
    /// neither a placeholder nor shared: the same email, written in the name field. Auto
    /// when the alias's own address says nothing else (a placeholder, or git's made-up
    /// `wfspotz@sandia.gov@localhost`); review when it is another real address.
    NameIsAddress,
    /// Two addresses or names of one account, as its source reported them.
    SameAccount,
    /// Identities already mapped to one developer.
    SameDeveloper,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::SameEmail => "same-email",
            Rule::SameGithubAccount => "same-github-account",
            Rule::SameNameCorroborated => "same-name-corroborated",
            Rule::SameNameSameTimezone => "same-name-same-timezone",
            Rule::SameNameOnly => "same-name-only",
            Rule::LoginMatchesLocalPart => "login-matches-local-part",
            Rule::NameIsLogin => "name-is-login",
            Rule::SameHandle => "same-handle",
            Rule::CommittedBySameName => "committed-by-same-name",
            Rule::HandleSpellsName => "handle-spells-name",
            Rule::SameMailbox => "same-mailbox",
            Rule::HandlesBeginAlike => "handles-begin-alike",
            Rule::OneTypoApart => "one-typo-apart",
            Rule::OneWordNameSameTime => "one-word-name-same-time",
            Rule::HandleWithASlip => "handle-with-a-slip",
            Rule::TruncatedHandle => "truncated-handle",
            Rule::NameIsAddress => "name-is-address",
            Rule::SameAccount => "same-account",
            Rule::SameDeveloper => "same-developer",
        }
    }

    pub const ALL: [Rule; 19] = [
        Rule::SameEmail,
        Rule::SameGithubAccount,
        Rule::SameNameCorroborated,
        Rule::SameNameSameTimezone,
        Rule::SameNameOnly,
        Rule::LoginMatchesLocalPart,
        Rule::NameIsLogin,
        Rule::SameHandle,
        Rule::CommittedBySameName,
        Rule::HandleSpellsName,
        Rule::SameMailbox,
        Rule::HandlesBeginAlike,
        Rule::OneTypoApart,
        Rule::OneWordNameSameTime,
        Rule::HandleWithASlip,
        Rule::TruncatedHandle,
        Rule::NameIsAddress,
        Rule::SameAccount,
        Rule::SameDeveloper,
    ];

    /// The rule named as the API names it.
    pub fn parse(name: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// The evidence as a reviewer reads it, `value` being the value the rule matched
    /// on: "the same email jane@x.com".
    pub fn in_plain_words(self, value: &str) -> String {
        match self {
            Rule::SameEmail => format!("the same email {value}"),
            Rule::SameGithubAccount => format!("the same GitHub account ({value})"),
            Rule::SameNameCorroborated => format!("the same name {value}, and their addresses agree"),
            Rule::SameNameSameTimezone => format!("the same name {value}, written from the same time zones"),
            Rule::SameNameOnly => format!("only the same name {value}; a namesake is possible"),
            Rule::LoginMatchesLocalPart => format!("a GitHub login that is the other address's mailbox ({value})"),
            Rule::NameIsLogin => format!("a name that is the other's GitHub login ({value})"),
            Rule::SameHandle => format!("the same handle {value}"),
            Rule::CommittedBySameName => {
                format!("a commit by one was committed under the same name from the other's address ({value})")
            }
            Rule::HandleSpellsName => format!("a handle that spells the name ({value})"),
            Rule::SameMailbox => format!("the same mailbox {value} at two providers"),
            Rule::HandlesBeginAlike => format!("the same one-word name, and handles that begin alike ({value})"),
            Rule::OneTypoApart => format!("one address and one name, each written once with a typo ({value})"),
            Rule::OneWordNameSameTime => {
                format!("the same one-word name {value}, written from the same time zone within six months")
            }
            Rule::HandleWithASlip => format!("one handle, written once with a slip ({value})"),
            Rule::TruncatedHandle => format!("a mailbox that is the other's handle cut at eight letters ({value})"),
            Rule::NameIsAddress => format!("a name written as the other's address ({value})"),
            Rule::SameAccount => format!("one account of its source ({value})"),
            Rule::SameDeveloper => format!("already mapped to one developer ({value})"),
        }
    }
}

/// What else is known of an alias beyond its name and email, from its commits: the UTC
/// offsets (minutes) they were written in, and who committed them where that is
/// another address. Empty when the input has neither.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen {
    pub utc_offsets: Vec<i16>,
    /// The committers (name and email as written) of its commits whose address is not
    /// the author's own.
    pub committers: Vec<Alias>,
    /// The first and last day it was active (days since 1970-01-01), when known.
    pub active_days: Option<(i32, i32)>,
}

impl Seen {
    /// Offsets within an hour of each other agree: daylight saving moves one person's
    /// clock by an hour twice a year.
    fn shares_a_zone_with(&self, other: &Seen) -> bool {
        self.utc_offsets.iter().any(|a| other.utc_offsets.iter().any(|b| (a - b).abs() <= 60))
    }

    /// Were both active within `days` of each other (their periods overlapping or that
    /// close)? False when either period is unknown.
    fn active_within(&self, other: &Seen, days: i32) -> bool {
        match (self.active_days, other.active_days) {
            (Some((a_first, a_last)), Some((b_first, b_last))) => {
                a_first <= b_last.saturating_add(days) && b_first <= a_last.saturating_add(days)
            }
            _ => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub a: usize,
    pub b: usize,
    pub rule: Rule,
    pub tier: Tier,
    /// The value the rule matched on (the email, the name, the login).
    pub value: String,
}

/// A link found but not yet applied. Its value is named, not copied (which fact of
/// which alias it is): there are millions of candidates at scale, 24 bytes each, and
/// only the applied few need the text.
struct Candidate {
    a: usize,
    b: usize,
    rule: Rule,
    tier: Tier,
    matched: Matched,
    /// The value is `b`'s fact rather than `a`'s.
    of_b: bool,
}

/// Which of an alias's facts a link matched on.
#[derive(Clone, Copy)]
enum Matched {
    Email,
    GithubLogin,
    GithubAccount,
    NameKey,
    Squashed,
    Mailbox,
    Name,
}

impl Candidate {
    fn of_a(a: usize, b: usize, rule: Rule, tier: Tier, matched: Matched) -> Self {
        Candidate { a, b, rule, tier, matched, of_b: false }
    }

    /// A link between `from` and `other` on `from`'s fact, stored with the smaller
    /// index first.
    fn between(from: usize, other: usize, rule: Rule, tier: Tier, matched: Matched) -> Self {
        Candidate { a: from.min(other), b: from.max(other), rule, tier, matched, of_b: other < from }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// A link that would give one person more aliases than this is held at `review`.
    pub max_aliases: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self { max_aliases: 10 }
    }
}

/// Aliases grouped into people.
#[derive(Debug, Clone)]
pub struct Clustering {
    /// For each alias, its person: the smallest alias index in it.
    pub person: Vec<usize>,
    /// For each alias, the weakest tier of the links that joined it; `None` alone.
    pub tier: Vec<Option<Tier>>,
    /// The links applied, in the order they were applied.
    pub links: Vec<Link>,
}

/// Mail providers anyone can sign up with: the same domain there says nothing.
const PUBLIC_DOMAINS: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "yahoo.com",
    "hotmail.com",
    "outlook.com",
    "live.com",
    "msn.com",
    "aol.com",
    "icloud.com",
    "me.com",
    "mac.com",
    "protonmail.com",
    "proton.me",
    "pm.me",
    "gmx.de",
    "gmx.net",
    "gmx.com",
    "web.de",
    "mail.ru",
    "yandex.ru",
    "qq.com",
    "163.com",
    "126.com",
    "users.noreply.github.com",
    "users.sourceforge.net",
    "fastmail.com",
    "zoho.com",
    "hey.com",
    "posteo.de",
    "tutanota.com",
    "free.fr",
    "orange.fr",
    "laposte.net",
];

fn is_public_domain(domain: &str) -> bool {
    PUBLIC_DOMAINS.contains(&domain)
        || ["yahoo.", "hotmail.", "outlook.", "live.", "gmx.", "yandex."].iter().any(|p| domain.starts_with(p))
}

struct Facts {
    email: EmailFacts,
    name: NormalName,
    generic_name: bool,
    /// [`NormalName::key`], unless the raw name is really an address.
    name_key: Option<Box<str>>,
    /// The name's words run together in the order written ("Kader Miyanyedi" →
    /// "kadermiyanyedi"), as people write a name as a login; `None` for role words, an
    /// address, or a single word shorter than six letters.
    squashed: Option<Box<str>>,
    /// A one-word name shaped like a handle (a digit, or a capital inside it:
    /// "abhilash42", "GalaxySnail"), not a first name.
    handle_like: bool,
    /// The raw name has no space in it (`dhuard`, `a-elhag`, `Matt`), and is not an
    /// address: a handle or a first name, not a full name.
    name_written_as_one_word: bool,
    /// One word of letters only, not shaped like a handle: a first name ("Matt").
    plain_first_name: bool,
    /// A GitHub app's name (`dependabot[bot]`): not a person's handle or name.
    github_app: bool,
}

/// Groups `aliases` into people, applying links up to `max_tier`.
pub fn cluster<A: AliasText>(aliases: &[A], max_tier: Tier, options: Options) -> Clustering {
    cluster_seen(aliases, &[], max_tier, options)
}

/// [`cluster`], with what is known of each alias's habits (`seen[i]` for `aliases[i]`;
/// shorter or empty when unknown).
pub fn cluster_seen<A: AliasText>(aliases: &[A], seen: &[Seen], max_tier: Tier, options: Options) -> Clustering {
    cluster_constrained(aliases, seen, &Constraints::default(), max_tier, options)
}

/// [`cluster_seen`] under `constraints`: aliases that must stay together or apart, and
/// what each counts towards the blast-radius limit.
pub fn cluster_constrained<A: AliasText>(
    aliases: &[A],
    seen: &[Seen],
    constraints: &Constraints,
    max_tier: Tier,
    options: Options,
) -> Clustering {
    let nothing_seen = Seen::default();
    let seen_of = |i: usize| seen.get(i).unwrap_or(&nothing_seen);
    let facts: Vec<Facts> = aliases
        .iter()
        .map(|a| {
            let name = normalize_name(a.name());
            let generic_name = is_generic_name(&name) || normalize::name_is_an_address(a.name());
            let name_key = if generic_name { None } else { name.key().map(String::into_boxed_str) };
            let squashed = normalize::squashed(a.name(), &name).map(String::into_boxed_str);
            let raw = a.name().trim();
            let handle_like = name.token_count() == 1 && normalize::looks_like_a_handle(raw);
            let name_written_as_one_word =
                !raw.is_empty() && !raw.contains(char::is_whitespace) && !normalize::name_is_an_address(raw);
            let plain_first_name = name_written_as_one_word && !handle_like && raw.chars().all(char::is_alphabetic);
            Facts {
                email: email_facts(a.email()),
                generic_name,
                name,
                name_key,
                squashed,
                handle_like,
                name_written_as_one_word,
                plain_first_name,
                github_app: raw.to_ascii_lowercase().ends_with("[bot]"),
            }
        })
        .collect();
    let shared = shared_emails(&facts);
    let name_words = NameWords::of(&facts);
    let zones_known = seen.iter().any(|s| !s.utc_offsets.is_empty());
    // A handle few could have chosen alike, and no word of a full name here (a login
    // `christopher` is anyone's first name once a Christopher Lee is in the data).
    let owners_handle = |handle: &str| distinctive_login(handle) && !name_words.contains(handle);
    // Where zones are known, also six letters or more that no full name here uses,
    // written from the same zones as the other alias: a stranger would need to have
    // chosen it too, and live there.
    let owners_handle_in_one_zone = |handle: &str, a: usize, b: usize| {
        (owners_handle(handle) || (zones_known && name_words.unlike_any(handle)))
            && seen_of(a).shares_a_zone_with(seen_of(b))
    };
    let mailboxes = Mailboxes::of(&facts);
    // First, while nothing else is held: its index is the largest of the blocks.
    let mut candidates = handles::handle_links(&facts, |i| mailboxes.get(i).to_string());

    // Block 1: one address.
    let by_email = Blocks::of(facts.iter().enumerate().filter_map(|(i, f)| {
        (!f.email.placeholder && !shared.contains(f.email.email.0.as_str())).then_some((f.email.email.0.as_str(), i))
    }));
    for (_, members) in by_email.iter() {
        for &other in &members[1..] {
            candidates.push(Candidate::of_a(members[0], other, Rule::SameEmail, Tier::Auto, Matched::Email));
        }
    }
    // A name that is an address (`wfspotz@sandia.gov`, git's name field given the
    // address, often beside the `user@host` git made up for the email): that address.
    for (i, alias) in aliases.iter().enumerate() {
        if !normalize::name_is_an_address(alias.name()) {
            continue;
        }
        let written = email_facts(alias.name());
        if written.placeholder || shared.contains(written.email.0.as_str()) {
            continue;
        }
        // Its own address, if it is a real one and not the written one, is another
        // person's as much as this one's: a person looks before the two are joined.
        let own = &facts[i].email;
        let says_nothing_else = own.placeholder || own.email.0.starts_with(written.email.0.as_str());
        let tier = if says_nothing_else { Tier::Auto } else { Tier::Review };
        if let Some(members) = by_email.get(written.email.0.as_str()) {
            for &other in members.iter().filter(|&&o| o != i).take(MAX_COMPARED) {
                candidates.push(Candidate::between(other, i, Rule::NameIsAddress, tier, Matched::Email));
            }
        }
    }
    drop(by_email);

    // Block 2: one GitHub account, by number, or by login where an address has none
    // (`login@users.noreply.github.com`, the older form of the same account's address).
    let by_login = Blocks::of(facts.iter().enumerate().filter_map(|(i, f)| Some((f.email.github_login()?, i))));
    for (_, members) in by_login.iter() {
        // Numbered addresses of different accounts with one login are a rename's
        // leftovers, not one person: only a number-less address joins by login.
        let numbered: std::collections::BTreeSet<u64> =
            members.iter().filter_map(|&i| facts[i].email.github_id).collect();
        if numbered.len() > 1 {
            continue;
        }
        for &other in &members[1..] {
            candidates.push(Candidate::of_a(
                members[0],
                other,
                Rule::SameGithubAccount,
                Tier::Auto,
                Matched::GithubLogin,
            ));
        }
    }
    drop(by_login);
    let by_account = Blocks::of(facts.iter().enumerate().filter_map(|(i, f)| Some((f.email.github_id?, i))));
    for (_, members) in by_account.iter() {
        for &other in &members[1..] {
            candidates.push(Candidate::of_a(
                members[0],
                other,
                Rule::SameGithubAccount,
                Tier::Auto,
                Matched::GithubAccount,
            ));
        }
    }
    drop(by_account);

    // Block 3: one full name. Each alias is compared with every other of its block,
    // which stays small: a name many aliases share is common, and only reviewed.
    let by_name = Blocks::of(facts.iter().enumerate().filter_map(|(i, f)| Some((f.name_key.as_deref()?, i))));
    for (_, members) in by_name.iter() {
        if members.len() > MAX_COMPARED {
            for &other in &members[1..] {
                candidates.push(Candidate::of_a(members[0], other, Rule::SameNameOnly, Tier::Review, Matched::NameKey));
            }
            continue;
        }
        for (x, &a) in members.iter().enumerate() {
            for &b in &members[x + 1..] {
                let (rule, tier) = if corroborated(&facts[a], &facts[b]) {
                    (Rule::SameNameCorroborated, Tier::Auto)
                } else if seen_of(a).shares_a_zone_with(seen_of(b)) {
                    (Rule::SameNameSameTimezone, Tier::Auto)
                } else {
                    (Rule::SameNameOnly, Tier::Review)
                };
                candidates.push(Candidate::of_a(a, b, rule, tier, Matched::NameKey));
            }
        }
    }
    drop(by_name);

    // Block 4: one name with its spaces gone ("Kader Miyanyedi" and "Kadermiyanyedi"),
    // and a name that is another alias's GitHub login.
    let by_squashed = Blocks::of(facts.iter().enumerate().filter_map(|(i, f)| Some((f.squashed.as_deref()?, i))));
    for (_, members) in by_squashed.iter() {
        if members.len() > MAX_COMPARED {
            continue;
        }
        for (x, &a) in members.iter().enumerate() {
            for &b in &members[x + 1..] {
                let (fa, fb) = (&facts[a], &facts[b]);
                let one_word = fa.name.token_count() == 1 || fb.name.token_count() == 1;
                if !one_word {
                    // Two full names: block 3 compared them already.
                    continue;
                }
                let full_name = fa.name.token_count() > 1 || fb.name.token_count() > 1;
                let (rule, tier) = if !full_name {
                    // One of them wrote it as a handle ("MelissaWM"), the other the same
                    // letters ("melissawm"); two plain first names are not a handle.
                    if !(fa.handle_like || fb.handle_like) {
                        continue;
                    }
                    // A handle few could have chosen alike, written from the same time
                    // zones: a stranger would need both (as for a full name).
                    if fa.squashed.as_deref().is_some_and(|h| owners_handle_in_one_zone(h, a, b)) {
                        (Rule::SameHandle, Tier::Auto)
                    } else {
                        (Rule::SameHandle, Tier::Review)
                    }
                } else if corroborated(fa, fb) {
                    (Rule::SameNameCorroborated, Tier::Auto)
                } else if seen_of(a).shares_a_zone_with(seen_of(b)) {
                    (Rule::SameNameSameTimezone, Tier::Auto)
                } else {
                    (Rule::SameNameOnly, Tier::Review)
                };
                candidates.push(Candidate::of_a(a, b, rule, tier, Matched::Squashed));
            }
        }
    }
    for (i, f) in facts.iter().enumerate() {
        if f.email.github_login().is_none() {
            continue;
        }
        let login = mailboxes.get(i);
        if let Some(members) = by_squashed.get(login) {
            for &other in members.iter().filter(|&&o| o != i).take(MAX_COMPARED) {
                let tier = if owners_handle(login) || owners_handle_in_one_zone(login, i, other) {
                    Tier::Auto
                } else {
                    Tier::Review
                };
                candidates.push(Candidate::between(i, other, Rule::NameIsLogin, tier, Matched::Mailbox));
            }
        }
    }
    drop(by_squashed);

    // Block 5: a noreply login equal to another address's mailbox.
    let by_mailbox = Blocks::of(facts.iter().enumerate().filter_map(|(i, f)| {
        (f.email.github_login().is_none() && !f.email.placeholder && mailboxes.get(i).len() >= 4)
            .then_some((mailboxes.get(i), i))
    }));
    for (i, f) in facts.iter().enumerate() {
        if f.email.github_login().is_some()
            && let Some(members) = by_mailbox.get(mailboxes.get(i))
        {
            for &other in members.iter().take(MAX_COMPARED) {
                let login = mailboxes.get(i);
                let chosen = owners_handle(login) || owners_handle_in_one_zone(login, i, other);
                let tier = if chosen && names_agree(&facts[i], &facts[other]) { Tier::Auto } else { Tier::Review };
                candidates.push(Candidate::between(i, other, Rule::LoginMatchesLocalPart, tier, Matched::Mailbox));
            }
        }
    }

    // One mailbox its owner chose, at two providers (`rosengreenpedersen@gmail.com`,
    // `rosengreenpedersen@proton.me`), whatever the names: a stranger would have had to
    // choose it too. And one mailbox at two domains one typo apart, under two full names
    // one typo apart (`Derek Homeier` at `astro.physik…`, `Derek Homeir` at
    // `astro.phsik…`): one hand slipping twice, not two people. Both review only.
    for (mailbox, members) in by_mailbox.iter() {
        if members.len() > MAX_COMPARED {
            continue;
        }
        let chosen = owners_handle(mailbox) && !spells_a_name(mailbox, members, &facts);
        for (x, &a) in members.iter().enumerate() {
            for &b in &members[x + 1..] {
                let (fa, fb) = (&facts[a], &facts[b]);
                if fa.email.domain() == fb.email.domain() {
                    continue;
                }
                if chosen {
                    candidates.push(Candidate::of_a(a, b, Rule::SameMailbox, Tier::Review, Matched::Mailbox));
                } else if let (Some(na), Some(nb)) = (fa.name_key.as_deref(), fb.name_key.as_deref())
                    && na != nb
                    && fa.name.token_count() >= 2
                    && one_typo_apart(na, nb)
                    && one_typo_apart(fa.email.domain(), fb.email.domain())
                    && digits(fa.email.domain()) == digits(fb.email.domain())
                {
                    candidates.push(Candidate::of_a(a, b, Rule::OneTypoApart, Tier::Review, Matched::Email));
                }
            }
        }
    }
    drop(by_mailbox);

    // Block 6: one one-word name ("Mukulika"), never evidence alone, and handles that
    // begin with the same six letters or more (`Mukulikaa`, `mukulikapahari`) that are
    // no word of a full name here: the account names one person made on two sites. A
    // one-word name that starts a full name here ("David", beside a David Smith) is a
    // first name, and `davids…` begins every David S.'s handles alike: left out.
    let first_names: std::collections::HashSet<&str> = facts
        .iter()
        .filter(|f| f.name_key.is_some() && f.name.token_count() >= 2)
        .filter_map(|f| f.name.tokens().next())
        .collect();
    // A number after the name is how a handle is told from one already taken (`ixgbe`,
    // `ixgbe00`): the name without it is the block.
    let by_one_word = Blocks::of(facts.iter().enumerate().filter_map(|(i, f)| {
        let word = f.name.tokens().next().filter(|_| f.name.token_count() == 1)?;
        let word = word.trim_end_matches(|c: char| c.is_ascii_digit());
        let usable = !word.is_empty() && !first_names.contains(word) && !normalize::is_role_word(word);
        (usable && f.name_written_as_one_word && !f.github_app).then_some((word, i))
    }));
    let mut sorted_words: Option<Vec<&str>> = None;
    for (_, members) in by_one_word.iter() {
        if members.len() > MAX_COMPARED {
            continue;
        }
        for (x, &a) in members.iter().enumerate() {
            for &b in &members[x + 1..] {
                let (ha, hb) =
                    (handle_letters(&facts[a], mailboxes.get(a)), handle_letters(&facts[b], mailboxes.get(b)));
                let common = ha.bytes().zip(hb.bytes()).take_while(|(x, y)| x == y).count();
                let begin_alike = common >= 6
                    && !name_words.overlaps(sorted_words.get_or_insert_with(|| name_words.sorted()), &ha[..common]);
                // Or one handle of eight letters and more written once with a slip
                // (`katleszek`, `kati.leszek`).
                let slipped = ha.len().min(hb.len()) >= 8 && one_typo_apart(&ha, &hb);
                if begin_alike || slipped {
                    candidates.push(Candidate::of_a(a, b, Rule::HandlesBeginAlike, Tier::Review, Matched::Mailbox));
                } else if seen_of(a).shares_a_zone_with(seen_of(b))
                    && seen_of(a).active_within(seen_of(b), SAME_TIME_DAYS)
                {
                    // One person who set only a first name or a handle on two machines
                    // (`Bram` at work and at home, the same week): a stranger would need
                    // the name, the zone and the months. A person confirms it.
                    candidates.push(Candidate::of_a(a, b, Rule::OneWordNameSameTime, Tier::Review, Matched::Name));
                }
            }
        }
    }
    drop(by_one_word);
    drop(first_names);

    // Block 6b: a one-word handle written once with a slip (`cgholke` beside `cgohlke`),
    // and a mailbox cut at eight letters (`argriffi`, `argriffing`). A slip is read only
    // where zones are known, and only from one zone: seven letters is a short handle.
    if zones_known {
        variants::slipped_handles(&facts, &name_words, seen_of, &mut candidates);
    }
    variants::truncated_handles(&facts, &mailboxes, &name_words, seen_of, &mut candidates);

    // Block 7: an alias's commit committed under its own name from another address.
    if seen.iter().any(|s| !s.committers.is_empty()) {
        committed_by_same_name(&facts, seen, &mailboxes, &mut candidates);
    }

    let describe = |found: &Candidate| {
        let i = if found.of_b { found.b } else { found.a };
        let f = &facts[i];
        match found.matched {
            Matched::Email => f.email.email.0.clone(),
            Matched::GithubLogin => f.email.github_login().unwrap_or_default().to_string(),
            Matched::GithubAccount => f.email.github_id.map(|id| id.to_string()).unwrap_or_default(),
            Matched::NameKey => f.name_key.as_deref().unwrap_or_default().to_string(),
            Matched::Squashed => f.squashed.as_deref().unwrap_or_default().to_string(),
            Matched::Mailbox => mailboxes.get(i).to_string(),
            Matched::Name => f.name.0.clone(),
        }
    };
    apply(aliases.len(), candidates, describe, constraints, max_tier, options)
}

/// Aliases active this many days apart or closer were active "at the same time": about
/// six months, a semester or a contract, long enough for a move between two machines.
const SAME_TIME_DAYS: i32 = 183;

/// Links an alias to the aliases of the addresses its commits were committed from under
/// the same name. Git records who committed a commit beside who wrote it; the same name
/// on both, from two addresses, is one person on two machines (a maintainer applying a
/// namesake's patch is the rare exception, so a plain first name needs the name to be
/// one of the two mailboxes as well).
fn committed_by_same_name(facts: &[Facts], seen: &[Seen], mailboxes: &Mailboxes, candidates: &mut Vec<Candidate>) {
    let by_email = Blocks::of(
        facts.iter().enumerate().filter(|(_, f)| !f.email.placeholder).map(|(i, f)| (f.email.email.0.as_str(), i)),
    );
    let written_alike = |a: (Option<&str>, Option<&str>), b: (Option<&str>, Option<&str>)| match (a.0, b.0) {
        (Some(x), Some(y)) => x == y,
        _ => a.1.is_some() && a.1 == b.1,
    };
    fn names_of(f: &Facts) -> (Option<&str>, Option<&str>) {
        (f.name_key.as_deref(), f.squashed.as_deref())
    }
    for (i, author) in facts.iter().enumerate() {
        let Some(committers) = seen.get(i).map(|s| &s.committers) else { break };
        if author.email.placeholder || author.github_app {
            continue;
        }
        for committer in committers {
            let address = email_facts(&committer.email);
            if address.placeholder || address.email.0 == author.email.email.0 {
                continue;
            }
            let name = normalize_name(&committer.name);
            let generic = is_generic_name(&name) || normalize::name_is_an_address(&committer.name);
            let key = if generic { None } else { name.key() };
            let squashed = normalize::squashed(&committer.name, &name);
            if !written_alike(names_of(author), (key.as_deref(), squashed.as_deref())) {
                continue;
            }
            let Some(members) = by_email.get(address.email.0.as_str()) else { continue };
            for &other in members.iter().take(MAX_COMPARED) {
                let f = &facts[other];
                if other == i || !written_alike(names_of(author), names_of(f)) {
                    continue;
                }
                let is_a_mailbox = |s: &str| mailboxes.get(i) == s || mailboxes.get(other) == s;
                if author.name_key.is_none()
                    && author.plain_first_name
                    && !author.squashed.as_deref().is_some_and(is_a_mailbox)
                {
                    continue;
                }
                candidates.push(Candidate::between(other, i, Rule::CommittedBySameName, Tier::Auto, Matched::Email));
            }
        }
    }
}

/// The digits of a text, in order: `corp238.com` and `corp338.com` are two numbered
/// hosts or organisations, not one domain mistyped.
fn digits(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).collect()
}

/// One letter added, dropped, changed, or two neighbours swapped: how a hand slips. Both
/// at least five characters long, so `ann` and `anna` are not one slip.
fn one_typo_apart(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.len().min(b.len()) < 5 || a.len().abs_diff(b.len()) > 1 || a == b {
        return false;
    }
    let start = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let (ra, rb) = (&a[start..], &b[start..]);
    match ra.len().cmp(&rb.len()) {
        std::cmp::Ordering::Less => ra == &rb[1..],
        std::cmp::Ordering::Greater => &ra[1..] == rb,
        std::cmp::Ordering::Equal => {
            ra[1..] == rb[1..] || (ra.len() >= 2 && ra[0] == rb[1] && ra[1] == rb[0] && ra[2..] == rb[2..])
        }
    }
}

/// The letters of an alias's handle (its GitHub login, or its mailbox unless that is a
/// placeholder), digits and marks dropped: `unes.sandi1` is `unessandi`.
fn handle_letters(f: &Facts, mailbox: &str) -> String {
    if f.email.placeholder && f.email.github_login().is_none() {
        return String::new();
    }
    mailbox.chars().filter(char::is_ascii_alphabetic).collect()
}

/// Does `mailbox` only spell the name of one of `members` (`janedoe` beside Jane Doe),
/// a number aside (`janedoe2`: what a provider offers the second Jane Doe to ask)? Then
/// each namesake may have it at another provider, and it is no evidence.
fn spells_a_name(mailbox: &str, members: &[usize], facts: &[Facts]) -> bool {
    let letters = mailbox.trim_end_matches(|c: char| c.is_ascii_digit());
    members.iter().any(|&m| spells_the_name(letters, &facts[m].name))
}

/// Aliases compared pair by pair inside one block at most; a larger block is a common
/// name, or a shared value, and is only reviewed.
const MAX_COMPARED: usize = 32;

/// Every alias's [`EmailFacts::mailbox`], written end to end in one string: a million
/// small strings cost several times their text.
struct Mailboxes {
    text: String,
    ends: Vec<usize>,
}

impl Mailboxes {
    fn of(facts: &[Facts]) -> Self {
        let mut text = String::new();
        let mut ends = Vec::with_capacity(facts.len());
        for f in facts {
            text.push_str(&f.email.mailbox());
            ends.push(text.len());
        }
        Mailboxes { text, ends }
    }

    fn get(&self, alias: usize) -> &str {
        let start = if alias == 0 { 0 } else { self.ends[alias - 1] };
        &self.text[start..self.ends[alias]]
    }
}

/// The words of six letters or more of the full names in the data: a handle spelled
/// like one of them ("christopher", "nguyen") may be anyone's name, however long.
struct NameWords<'a> {
    words: std::collections::HashSet<&'a str>,
}

impl<'a> NameWords<'a> {
    fn of(facts: &'a [Facts]) -> Self {
        let words = facts
            .iter()
            .filter(|f| f.name_key.is_some() && f.name.token_count() >= 2)
            .flat_map(|f| f.name.tokens())
            .filter(|w| w.chars().count() >= 6)
            .collect();
        NameWords { words }
    }

    fn contains(&self, word: &str) -> bool {
        self.words.contains(word)
    }

    /// Is `start` (six letters or more) a word of a full name here, or the start of one
    /// (`christ`, of Christopher), or does it begin with one (`davidson7`)? Then it may
    /// be anyone's name. `sorted` is [`NameWords::sorted`].
    fn overlaps(&self, sorted: &[&str], start: &str) -> bool {
        let first_at_or_after = sorted.partition_point(|w| *w < start);
        (6..=start.len()).any(|k| start.is_char_boundary(k) && self.words.contains(&start[..k]))
            || sorted.get(first_at_or_after).is_some_and(|w| w.starts_with(start))
    }

    /// The words in order, for [`NameWords::overlaps`]: built only where a block needs it.
    fn sorted(&self) -> Vec<&'a str> {
        let mut words: Vec<&str> = self.words.iter().copied().collect();
        words.sort_unstable();
        words
    }

    /// Six letters or more, and no word of a full name here. False when there is no
    /// full name to tell a handle from a name.
    fn unlike_any(&self, handle: &str) -> bool {
        !self.words.is_empty() && handle.chars().count() >= 6 && !self.words.contains(handle)
    }
}

/// A login few people could have chosen alike: with a digit in it, or eight letters
/// and more. "kasia" or "michael" may be anyone's first name.
fn distinctive_login(login: &str) -> bool {
    login.bytes().any(|b| b.is_ascii_digit()) || login.chars().count() >= 8
}

/// Two aliases whose names do not contradict each other: a word in common (of three
/// letters or more), or one name written as the other's login or mailbox.
fn names_agree(a: &Facts, b: &Facts) -> bool {
    // A name in another script ("枫落秋舞" beside "fengluo") cannot be compared with it,
    // so it does not contradict it either.
    let latin = |f: &Facts| f.name.tokens().all(|t| t.is_ascii());
    if a.name.token_count() > 0 && b.name.token_count() > 0 && latin(a) != latin(b) {
        return true;
    }
    if a.name.tokens().any(|t| t.chars().count() >= 3 && b.name.tokens().any(|u| u == t)) {
        return true;
    }
    let named = |f: &Facts, other: &Facts| f.squashed.as_deref().is_some_and(|s| s == other.email.mailbox());
    named(a, b) || named(b, a)
}

/// Two addresses that agree beyond a name: the same local part, a noreply login that is
/// the other's local part, or the same organisation's (not a public provider's) domain.
fn corroborated(fa: &Facts, fb: &Facts) -> bool {
    let (a, b) = (&fa.email, &fb.email);
    if a.placeholder || b.placeholder {
        return false;
    }
    let (la, lb) = (a.mailbox(), b.mailbox());
    // A GitHub login beside the same mailbox at a public provider is one person's
    // handle, kept where they chose it (`jdoe` and `jdoe@gmail.com`). Otherwise a
    // mailbox that only spells the name is what every namesake gets: an organisation
    // assigns it, and each provider gives it to the first to ask.
    let login_and_public = |x: &EmailFacts, y: &EmailFacts| x.github_login().is_some() && is_public_domain(y.domain());
    let assigned_from_name = !(login_and_public(a, b) || login_and_public(b, a))
        && (spells_the_name(&la, &fa.name) || spells_the_name(&la, &fb.name));
    if la.len() >= 3 && la == lb && !assigned_from_name {
        return true;
    }
    // One organisation hands namesakes `jane.doe` and `jane.doe2`: a number added to
    // the other's mailbox marks a second person, not a second address.
    let numbered =
        |x: &str, y: &str| x.len() > y.len() && x.starts_with(y) && x[y.len()..].bytes().all(|c| c.is_ascii_digit());
    a.domain() == b.domain() && !is_public_domain(a.domain()) && !numbered(&la, &lb) && !numbered(&lb, &la)
}

/// A mailbox that is only the name written out (`jane.doe`, `janedoe`, `jdoe`, `doej`,
/// `jane`) says nothing the name did not: two namesakes at two employers, or at two
/// mail providers, get the same one. A mailbox with something of its owner's choosing
/// (`jdoe1987`, `rossbar`, `anirudh2290`) does.
fn spells_the_name(mailbox: &str, name: &NormalName) -> bool {
    let words: Vec<&str> = name.tokens().filter(|w| w.chars().count() > 1).collect();
    words.contains(&mailbox) || handle_spellings(&words).any(|spelled| spelled == mailbox)
}

/// A full name's words run together as people make handles of them: a first word (or
/// its initial) and a surname, in either order, or a first word and a surname's
/// initial (`janedoe`, `jdoe`, `doejane`, `janed`). None for a single word.
fn handle_spellings<'w>(words: &'w [&'w str]) -> impl Iterator<Item = String> + 'w {
    let initial = |w: &str| w.chars().next().map(String::from).unwrap_or_default();
    words.iter().enumerate().flat_map(move |(i, first)| {
        words.iter().enumerate().filter(move |(j, _)| *j != i).flat_map(move |(_, last)| {
            [format!("{first}{last}"), format!("{}{last}", initial(first)), format!("{first}{}", initial(last))]
        })
    })
}

/// Addresses that clearly different people wrote with (two names without a common
/// word): shared mailboxes, team addresses, copy-pasted configurations.
fn shared_emails(facts: &[Facts]) -> std::collections::HashSet<&str> {
    // An alias without an address shares none with anyone.
    let by_email = Blocks::of(
        facts
            .iter()
            .enumerate()
            .filter(|(_, f)| !f.generic_name && !f.email.email.0.is_empty())
            .map(|(i, f)| (f.email.email.0.as_str(), i)),
    );
    by_email
        .iter()
        .filter(|(_, list)| {
            // Each spelling once: a person's thousand commits under one name are one name.
            let mut names: Vec<&NormalName> = list.iter().map(|&a| &facts[a].name).collect();
            names.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            names.dedup_by(|a, b| a.0 == b.0);
            // Nobody writes their own name this many ways: the address is a team's or a
            // placeholder. It also keeps the pairwise check below bounded.
            if names.len() > MAX_NAMES_OF_ONE_PERSON {
                return true;
            }
            names.iter().enumerate().any(|(i, a)| names[i + 1..].iter().any(|b| clearly_different(a, b)))
        })
        .map(|(email, _)| email)
        .collect()
}

/// Distinct spellings of a name beyond which an address is taken to be shared.
const MAX_NAMES_OF_ONE_PERSON: usize = 64;

/// Two names with no word in common, neither written inside the other once spaces are
/// gone ("hangenuit" is "Han Genuit"), not one abbreviating the other, and written in
/// one script: not one person's spellings.
fn clearly_different(a: &NormalName, b: &NormalName) -> bool {
    if a.tokens().any(|t| b.tokens().any(|u| u == t)) {
        return false;
    }
    let (x, y): (String, String) = (a.tokens().collect(), b.tokens().collect());
    if x.contains(&y) || y.contains(&x) {
        return false;
    }
    // A name in its own script beside its Latin transliteration ("ਗਗਨਦੀਪ ਸਿੰਘ" and
    // "Gagandeep Singh", "Иван Петров" and "Ivan Petrov") shares no letter with it, and
    // is the one person writing it both ways. Accents are folded away already, so what
    // is not ASCII here is another script: the two cannot be compared.
    if x.is_ascii() != y.is_ascii() {
        return false;
    }
    !abbreviates(a, b)
}

/// One name written short for the other: the same initials in the same order, and a
/// word that is the start of the other's ("Chris Vavaliaris" and "christos val"). Two
/// people whose first names merely begin alike differ in another initial.
fn abbreviates(a: &NormalName, b: &NormalName) -> bool {
    let initials = |n: &NormalName| n.tokens().filter_map(|t| t.chars().next()).collect::<String>();
    if a.token_count() < 2 || initials(a) != initials(b) {
        return false;
    }
    a.tokens().zip(b.tokens()).any(|(t, u)| {
        let (short, long) = if t.len() <= u.len() { (t, u) } else { (u, t) };
        short.chars().count() >= 3 && long.starts_with(short)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aliases(list: &[(&str, &str)]) -> Vec<Alias> {
        list.iter().map(|(n, e)| Alias { name: n.to_string(), email: e.to_string() }).collect()
    }

    #[test]
    fn every_rule_is_found_by_its_name() {
        for rule in Rule::ALL {
            assert_eq!(Rule::parse(rule.as_str()), Some(rule));
            assert!(rule.in_plain_words("x@y.z").contains("x@y.z"));
        }
        assert_eq!(Rule::parse("no-such-rule"), None);
    }

    #[test]
    fn the_same_address_links_at_auto() {
        let a = aliases(&[("Jane Doe", "jane@corp.com"), ("J. Doe", "Jane@Corp.com"), ("Bob", "bob@corp.com")]);
        let c = cluster(&a, Tier::Auto, Options::default());
        assert_eq!(c.person, vec![0, 0, 2]);
        assert_eq!(c.tier[0], Some(Tier::Auto));
        assert_eq!(c.tier[2], None);
    }

    #[test]
    fn a_mailbox_that_only_spells_the_name_does_not_corroborate_it() {
        // Two namesakes at two employers, each with the company's first.last address.
        let a = aliases(&[("Wei Wang", "wei.wang@alpha.com"), ("Wei Wang", "wei.wang@beta.org")]);
        assert_eq!(cluster(&a, Tier::Auto, Options::default()).person, vec![0, 1]);
        assert_eq!(cluster(&a, Tier::Review, Options::default()).person, vec![0, 0]);
        for mailbox in ["wangwei", "wwang", "weiw", "wang"] {
            assert!(spells_the_name(mailbox, &normalize_name("Wei Wang")), "{mailbox}");
        }
        // A mailbox of the owner's own choosing, kept across employers, is evidence.
        let b = aliases(&[("Ross Barnowski", "rossbar@alpha.edu"), ("Ross Barnowski", "rossbar@beta.org")]);
        assert_eq!(cluster(&b, Tier::Auto, Options::default()).person, vec![0, 0]);
        assert!(!spells_the_name("wei1987", &normalize_name("Wei Wang")));
        // One company's two Wei Wangs.
        let c = aliases(&[("Wei Wang", "wei.wang@alpha.com"), ("Wei Wang", "wei.wang2@alpha.com")]);
        assert_eq!(cluster(&c, Tier::Auto, Options::default()).person, vec![0, 1]);
        // Two providers' `weiwang`: whoever asked first at each.
        let d = aliases(&[("Wei Wang", "weiwang@gmail.com"), ("Wei Wang", "weiwang@outlook.com")]);
        assert_eq!(cluster(&d, Tier::Auto, Options::default()).person, vec![0, 1]);
    }

    #[test]
    fn one_persons_transliterated_or_shortened_names_do_not_make_an_address_shared() {
        let a = aliases(&[
            ("Gagandeep Singh", "gdp@mail.com"),
            ("ਗਗਨਦੀਪ ਸਿੰਘ", "gdp@mail.com"),
            ("Chris Vavaliaris", "cv@unh.edu"),
            ("christos val", "cv@unh.edu"),
            // Two people on a team address: first names alike, other initials not.
            ("Alex Smith", "team@corp.com"),
            ("Alexandra Jones", "team@corp.com"),
            ("Иван Петров", "desk@corp.com"),
            ("Пётр Сидоров", "desk@corp.com"),
        ]);
        let c = cluster(&a, Tier::Auto, Options::default());
        assert_eq!(c.person, vec![0, 0, 2, 2, 4, 5, 6, 7]);
    }

    #[test]
    fn an_address_written_under_many_names_is_shared_even_when_the_names_overlap() {
        // "Person 1" … "Person 80": every pair shares a word, so no two are clearly
        // different, but no one person writes their name eighty ways.
        let names: Vec<String> = (1..=80).map(|i| format!("Person {i}")).collect();
        let mut list: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "ci@corp.com")).collect();
        list.push(("Person 1", "person1@corp.com"));
        let c = cluster(&aliases(&list), Tier::Review, Options::default());
        assert_ne!(c.person[0], c.person[1], "the shared address links nobody");
        assert_eq!(c.person[80], c.person[0], "the name with its own address still finds its alias");
    }

    #[test]
    fn aliases_without_an_address_share_none() {
        let a = aliases(&[("Ann Lee", ""), ("Bob Stone", ""), ("Ann Lee", "ann@corp.com")]);
        let c = cluster(&a, Tier::Review, Options::default());
        assert_ne!(c.person[0], c.person[1], "two people without an address are not one");
    }

    #[test]
    fn placeholders_and_shared_addresses_link_nobody() {
        let a = aliases(&[
            ("Alice Smith", "devnull@localhost"),
            ("Bob Jones", "devnull@localhost"),
            ("Carol White", "team@corp.com"),
            ("Dan Brown", "team@corp.com"),
        ]);
        let c = cluster(&a, Tier::Review, Options::default());
        assert_eq!(c.person, vec![0, 1, 2, 3]);
    }

    #[test]
    fn a_first_name_alone_never_links_and_a_full_name_alone_only_for_review() {
        let a = aliases(&[
            ("David", "david@a.com"),
            ("David", "david@b.org"),
            ("Jane Doe", "jd@a.com"),
            ("Jane Doe", "doe@b.org"),
        ]);
        let auto = cluster(&a, Tier::Auto, Options::default());
        assert_eq!(auto.person, vec![0, 1, 2, 3]);
        let review = cluster(&a, Tier::Review, Options::default());
        assert_eq!(review.person, vec![0, 1, 2, 2]);
        assert_eq!(review.tier[2], Some(Tier::Review));
    }

    #[test]
    fn a_full_name_with_agreeing_addresses_links_at_auto() {
        let a = aliases(&[
            ("Jane Doe", "19637339+jdoe@users.noreply.github.com"),
            ("Jane Doe", "jdoe@gmail.com"),
            ("Wei Wang", "wwang@gmail.com"),
            ("Wei Wang", "wei@yahoo.com"),
            ("Ana Lima", "ana@corp.io"),
            ("Ana Lima", "alima@corp.io"),
        ]);
        let c = cluster(&a, Tier::Auto, Options::default());
        assert_eq!(c.person, vec![0, 0, 2, 3, 4, 4], "namesakes at public providers stay apart");
    }

    #[test]
    fn both_forms_of_one_github_noreply_address_link_at_auto() {
        let a = aliases(&[
            ("Felix", "4403130+felixdivo@users.noreply.github.com"),
            ("Felix Divo", "felixdivo@users.noreply.github.com"),
            ("someone", "111+reused@users.noreply.github.com"),
            ("other", "222+reused@users.noreply.github.com"),
        ]);
        let c = cluster(&a, Tier::Auto, Options::default());
        assert_eq!(c.person, vec![0, 0, 2, 3], "two numbered accounts with one login stay apart");
        assert_eq!(c.links[0].rule, Rule::SameGithubAccount);
    }

    fn zones(hours: &[i16]) -> Seen {
        Seen { utc_offsets: hours.iter().map(|h| h * 60).collect(), ..Seen::default() }
    }

    fn committed_by(name: &str, email: &str) -> Seen {
        Seen { committers: vec![Alias { name: name.into(), email: email.into() }], ..Seen::default() }
    }

    #[test]
    fn a_full_name_written_from_the_same_zone_links_at_auto_and_from_another_only_for_review() {
        let a = aliases(&[("Jane Doe", "jd@a.com"), ("Jane Doe", "doe@b.org"), ("Jane Doe", "jane@c.net")]);
        // Daylight saving moves one clock by an hour: +1 and +2 are one zone.
        let seen = [zones(&[1]), zones(&[2]), zones(&[-5])];
        let auto = cluster_seen(&a, &seen, Tier::Auto, Options::default());
        assert_eq!(auto.person, vec![0, 0, 2]);
        assert_eq!(auto.links[0].rule, Rule::SameNameSameTimezone);
        assert_eq!(cluster_seen(&a, &seen, Tier::Review, Options::default()).person, vec![0, 0, 0]);
    }

    #[test]
    fn one_distinctive_handle_written_from_one_zone_links_at_auto() {
        let a = aliases(&[
            // Written as a handle by one, in small letters by the other.
            ("MelissaWM", "melissawm@gmail.com"),
            ("melissawm", "melissawm.github@gmail.com"),
            ("qiyu8", "qiyu8@foxmail.com"),
            ("Qiyu8", "fangchunlin@corp.com"),
            ("HowJMay", "yy@gmail.com"),
            ("HowJMay", "hj@corp.com"),
            ("GalaxySnail", "me@glxys.nl"),
            ("GalaxySnail", "ylc991@163.com"),
        ]);
        let seen =
            [zones(&[-3]), zones(&[-3]), zones(&[8]), zones(&[8]), zones(&[8]), zones(&[8]), zones(&[8]), zones(&[-5])];
        let auto = cluster_seen(&a, &seen, Tier::Auto, Options::default());
        assert_eq!(auto.person[1], 0);
        assert_eq!(auto.person[3], 2, "a digit makes five letters a handle");
        assert_eq!(auto.person[5], 5, "seven letters, no digit, and no full name here to tell it from a name");
        assert_eq!(auto.person[7], 7, "another zone: review");
        assert!(auto.links.iter().all(|l| l.rule == Rule::SameHandle && l.tier == Tier::Auto));
        let review = cluster_seen(&a, &seen, Tier::Review, Options::default());
        assert_eq!((review.person[5], review.person[7]), (4, 6));
        // Without dates (contributors carry none) a handle is only reviewed.
        assert_eq!(cluster(&a, Tier::Auto, Options::default()).person[1], 1);
        // With full names beside it, a seven-letter handle none of them uses is one
        // person's; one they use ("Marlene Dietrich") may be anyone's.
        let b = aliases(&[
            ("HowJMay", "yy@gmail.com"),
            ("HowJMay", "hj@corp.com"),
            ("Yang Hau", "yh@gmail.com"),
            ("MarLene", "ml@gmail.com"),
            ("marlene", "marlene@corp.com"),
            ("Marlene Dietrich", "md@corp.com"),
        ]);
        let seen = [zones(&[8]), zones(&[8]), zones(&[8]), zones(&[1]), zones(&[1]), zones(&[1])];
        let auto = cluster_seen(&b, &seen, Tier::Auto, Options::default());
        assert_eq!(auto.person, vec![0, 0, 2, 3, 4, 5]);
    }

    #[test]
    fn first_names_are_not_handles_however_they_are_written() {
        let a = aliases(&[
            ("Christopher", "chris@a.com"),
            ("christopher", "christopher@b.org"),
            ("DAVID", "david@a.com"),
            ("David", "dave@b.org"),
        ]);
        let seen = [zones(&[1]), zones(&[1]), zones(&[1]), zones(&[1])];
        assert!(!normalize::looks_like_a_handle("DAVID"));
        assert!(normalize::looks_like_a_handle("HowJMay"));
        assert_eq!(cluster_seen(&a, &seen, Tier::Review, Options::default()).person, vec![0, 1, 2, 3]);
    }

    #[test]
    fn a_machines_default_user_name_links_nobody_from_one_zone() {
        // Cloud hosts and build boxes name their user the same for every stranger.
        let a = aliases(&[
            ("ec2-user", "ec2-user@ip-10-0-0-1.example-cloud.net"),
            ("ec2-user", "ec2-user@ip-10-0-0-2.example-cloud.net"),
            ("Jenkins CI", "builds@alpha.com"),
            ("Jenkins CI", "ci@beta.org"),
        ]);
        let seen = [zones(&[1]), zones(&[1]), zones(&[1]), zones(&[1])];
        assert_eq!(cluster_seen(&a, &seen, Tier::Review, Options::default()).person, vec![0, 1, 2, 3]);
    }

    #[test]
    fn a_mailbox_its_owner_chose_at_two_providers_is_offered_for_review() {
        let a = aliases(&[
            ("Kristoffer Pedersen", "rosengreenpedersen@gmail.com"),
            ("krisrosengreen", "rosengreenpedersen@proton.me"),
            // A mailbox that only spells the name is every namesake's.
            ("Jane Doe", "janedoe@gmail.com"),
            ("Jane Doe", "janedoe@yahoo.com"),
            // A short one is anyone's.
            ("Ann", "annl@a.com"),
            ("Bo", "annl@b.org"),
        ]);
        assert_eq!(cluster(&a, Tier::Auto, Options::default()).person, vec![0, 1, 2, 3, 4, 5]);
        let review = cluster(&a, Tier::Review, Options::default());
        assert_eq!(review.person, vec![0, 0, 2, 2, 4, 5]);
        let rules: Vec<(Rule, Tier)> = review.links.iter().map(|l| (l.rule, l.tier)).collect();
        assert_eq!(rules, [(Rule::SameNameOnly, Tier::Review), (Rule::SameMailbox, Tier::Review)]);
    }

    #[test]
    fn one_address_and_one_name_each_with_a_typo_are_offered_for_review() {
        let a = aliases(&[
            ("Derek Homeier", "derek@astro.physik.uni-goettingen.de"),
            ("Derek Homeir", "derek@astro.phsik.uni-goettingen.de"),
            // Two names, or two domains, that differ by more than a slip, or two numbered
            // domains: nobody.
            ("Omar Andersson", "omar.andersson@corp238.com"),
            ("Oma Andersson", "omar.andersson@corp338.com"),
            ("Maria Lopez", "maria@alpha-labs.com"),
            ("Mario Lopes", "maria@alpha-labs.org"),
            ("Anna Berg", "anna@berg-family.net"),
            ("Anne Borg", "anna@borg-family.net"),
        ]);
        assert_eq!(cluster(&a, Tier::Auto, Options::default()).person, vec![0, 1, 2, 3, 4, 5, 6, 7]);
        let review = cluster(&a, Tier::Review, Options::default());
        assert_eq!(review.person, vec![0, 0, 2, 3, 4, 5, 6, 7], "{:?}", review.links);
        assert_eq!((review.links[0].rule, review.links[0].tier), (Rule::OneTypoApart, Tier::Review));
    }

    #[test]
    fn slips_of_the_hand_are_one_edit() {
        for (a, b) in
            [("homeier", "homeir"), ("physik", "phsik"), ("gohlke", "gholke"), ("smith", "smyth"), ("jones", "joness")]
        {
            assert!(one_typo_apart(a, b) && one_typo_apart(b, a), "{a} {b}");
        }
        for (a, b) in
            [("homeier", "homeier"), ("smith", "smythe"), ("ann", "anna"), ("berg", "borg"), ("abcde", "edcba")]
        {
            assert!(!one_typo_apart(a, b), "{a} {b}");
        }
    }

    #[test]
    fn one_word_names_link_only_through_handles_that_begin_alike() {
        let a = aliases(&[
            ("Mukulika", "60316606+Mukulikaa@users.noreply.github.com"),
            ("Mukulika", "mukulikapahari@gmail.com"),
            // A first name of a full name here: `davids` begins every David S.'s handles.
            ("David", "davidsmith1@a.com"),
            ("David", "davidson.k@b.org"),
            ("David Stone", "ds@c.net"),
            // Handles that share less than six letters.
            ("Pax", "13646646+paxcodes@users.noreply.github.com"),
            ("Pax", "pax.margret@tutanota.com"),
            // One handle written once with a slip.
            ("Kasia", "39829548+katleszek@users.noreply.github.com"),
            ("Kasia", "kati.leszek@gmail.com"),
        ]);
        assert_eq!(cluster(&a, Tier::Auto, Options::default()).person, vec![0, 1, 2, 3, 4, 5, 6, 7, 8]);
        let review = cluster(&a, Tier::Review, Options::default());
        assert_eq!(review.person, vec![0, 0, 2, 3, 4, 5, 6, 7, 7], "{:?}", review.links);
        assert_eq!((review.links[0].rule, review.links[0].tier), (Rule::HandlesBeginAlike, Tier::Review));
    }

    fn zone_and_days(hours: i16, first: i32, last: i32) -> Seen {
        Seen { utc_offsets: vec![hours * 60], active_days: Some((first, last)), ..Seen::default() }
    }

    #[test]
    fn one_word_names_from_one_zone_in_the_same_months_are_offered_for_review() {
        let a = aliases(&[
            // One person's first name on a work and a home machine, the same week.
            ("Bram", "b.t.ton@saxion.nl"),
            ("Bram", "bram@cbbg.nl"),
            // A handle and the same handle with a number, three months apart.
            ("ixgbe", "1113177880@qq.com"),
            ("ixgbe00", "yangwang@iscas.ac.cn"),
            // The same first name in another zone, or two years later: strangers.
            ("Jules", "jules@alpha.com"),
            ("Jules", "jules@beta.org"),
            ("Jules", "jules@gamma.net"),
            // A first name of a full name here is anyone's.
            ("Daniel", "dm@stanford.edu"),
            ("Daniel", "daniel@localhost.localdomain"),
            ("Daniel Smith", "ds@corp.com"),
            // A machine's user name is nobody's.
            ("ubuntu", "ubuntu@ip-1.compute.internal"),
            ("ubuntu", "ubuntu@ip-2.compute.internal"),
        ]);
        let seen = [
            zone_and_days(2, 100, 110),
            zone_and_days(2, 98, 98),
            zone_and_days(8, 1000, 1200),
            zone_and_days(8, 900, 905),
            zone_and_days(1, 500, 510),
            zone_and_days(-5, 500, 510),
            zone_and_days(1, 1240, 1250),
            zone_and_days(-7, 300, 300),
            zone_and_days(-7, 301, 301),
            zone_and_days(-7, 300, 300),
            zone_and_days(0, 50, 50),
            zone_and_days(0, 51, 51),
        ];
        let auto = cluster_seen(&a, &seen, Tier::Auto, Options::default());
        assert_eq!(auto.person, (0..12).collect::<Vec<_>>(), "never at auto");
        let review = cluster_seen(&a, &seen, Tier::Review, Options::default());
        assert_eq!(review.person, vec![0, 0, 2, 2, 4, 5, 6, 7, 8, 9, 10, 11], "{:?}", review.links);
        assert!(review.links.iter().all(|l| (l.rule, l.tier) == (Rule::OneWordNameSameTime, Tier::Review)));
        // When the aliases were active is unknown (no dates): nothing to go on.
        let undated: Vec<Seen> = seen.iter().map(|s| Seen { active_days: None, ..s.clone() }).collect();
        assert!(cluster_seen(&a, &undated, Tier::Review, Options::default()).links.is_empty());
    }

    #[test]
    fn a_name_written_as_an_address_links_to_that_address_at_auto() {
        let a = aliases(&[
            ("Bill Spotz", "wfspotz@sandia.gov"),
            // git's made-up `user@host` beside a name that is the address.
            ("wfspotz@sandia.gov", "wfspotz@sandia.gov@localhost"),
            // A placeholder written as the name is nobody's.
            ("noreply@github.com", "x@corp.com"),
            ("GitHub", "noreply@github.com"),
            // Alice's address as the name of an alias with Bob's address: a person looks.
            ("Alice Jones", "alice@corp.com"),
            ("alice@corp.com", "bob@other.org"),
            ("Bob Smith", "bob@other.org"),
        ]);
        let auto = cluster(&a, Tier::Auto, Options::default());
        assert_eq!(auto.person, vec![0, 0, 2, 3, 4, 5, 5], "{:?}", auto.links);
        let review = cluster(&a, Tier::Review, Options::default());
        assert_eq!(review.person[4..], [4, 4, 4], "{:?}", review.links);
        let by_address: Vec<_> = auto.links.iter().filter(|l| l.rule == Rule::NameIsAddress).collect();
        assert_eq!(by_address.len(), 1, "{:?}", auto.links);
        assert_eq!((by_address[0].tier, by_address[0].value.as_str()), (Tier::Auto, "wfspotz@sandia.gov"));
    }

    #[test]
    fn the_same_name_committing_ones_commit_from_another_address_links_at_auto() {
        let a = aliases(&[
            ("Erik M. Bray", "embray@stsci.edu"),
            ("Erik M. Bray", "erik.bray@lri.fr"),
            // A maintainer applying someone else's patch: another name, no link.
            ("Ann Lee", "ann@corp.com"),
            ("Bob Stone", "bob@corp.com"),
            // One-word names: a handle that is one of the mailboxes links, a first
            // name two maintainers may share does not.
            ("gfyoung", "gfyoung17@gmail.com"),
            ("gfyoung", "gfyoung@mit.edu"),
            ("David", "dave@a.com"),
            ("David", "d.smith@b.org"),
        ]);
        let seen = [
            committed_by("Erik M. Bray", "Erik.Bray@lri.fr"),
            Seen::default(),
            committed_by("Bob Stone", "bob@corp.com"),
            Seen::default(),
            committed_by("gfyoung", "gfyoung@mit.edu"),
            Seen::default(),
            committed_by("David", "d.smith@b.org"),
            Seen::default(),
        ];
        let c = cluster_seen(&a, &seen, Tier::Review, Options::default());
        assert_eq!(c.person, vec![0, 0, 2, 3, 4, 4, 6, 7]);
        let rules: Vec<(Rule, Tier, &str)> = c.links.iter().map(|l| (l.rule, l.tier, l.value.as_str())).collect();
        assert_eq!(
            rules,
            vec![
                (Rule::CommittedBySameName, Tier::Auto, "erik.bray@lri.fr"),
                (Rule::CommittedBySameName, Tier::Auto, "gfyoung@mit.edu")
            ]
        );
    }

    #[test]
    fn a_login_that_no_full_name_here_uses_links_at_auto_from_its_zone() {
        let a = aliases(&[
            ("Brian Soto", "1+Iamsoto@users.noreply.github.com"),
            ("iamsoto", "iambriansoto@gmail.com"),
            // "daniel" is a word of a full name here: anyone's first name.
            ("Daniel Smith", "2+daniel@users.noreply.github.com"),
            ("daniel", "dan@corp.com"),
            // Another zone: only reviewed.
            ("Keewis", "keewis@users.noreply.github.com"),
            ("keewis", "keewis@posteo.de"),
        ]);
        let seen = [zones(&[-7]), zones(&[-8]), zones(&[1]), zones(&[1]), zones(&[1]), zones(&[-5])];
        let auto = cluster_seen(&a, &seen, Tier::Auto, Options::default());
        assert_eq!(auto.person, vec![0, 0, 2, 3, 4, 5]);
        assert_eq!((auto.links[0].rule, auto.links[0].value.as_str()), (Rule::NameIsLogin, "iamsoto"));
        let review = cluster_seen(&a, &seen, Tier::Review, Options::default());
        assert_eq!(review.person, vec![0, 0, 2, 2, 4, 4]);
        // Without dates, seven letters may be anyone's: review.
        assert_eq!(cluster(&a, Tier::Auto, Options::default()).person[1], 1);
    }

    #[test]
    fn a_login_that_is_a_first_name_here_is_not_distinctive_however_long() {
        let login = ("Chris Okafor", "9+christopher@users.noreply.github.com");
        let stranger = ("Christopher", "chris@corp.com");
        // Nothing here says "christopher" is a name: eleven letters, the owner's.
        let alone = aliases(&[login, stranger]);
        assert_eq!(cluster(&alone, Tier::Auto, Options::default()).person, vec![0, 0]);
        // A Christopher Lee in the data says it is anyone's first name: review.
        let named = aliases(&[login, stranger, ("Christopher Lee", "clee@other.org")]);
        assert_eq!(cluster(&named, Tier::Auto, Options::default()).person, vec![0, 1, 2]);
        let review = cluster(&named, Tier::Review, Options::default());
        assert_eq!(review.person[1], 0);
        assert_eq!(review.links.iter().find(|l| l.b == 1).map(|l| l.rule), Some(Rule::NameIsLogin));
    }

    #[test]
    fn a_name_in_another_script_does_not_contradict_a_login_that_is_the_mailbox() {
        let a = aliases(&[
            ("枫落秋舞", "163119756+fengluoqiuwu@users.noreply.github.com"),
            ("fengluo", "fengluoqiuwu@gmail.com"),
            // Two Latin names without a word in common do contradict it.
            ("Ann Lee", "1+annlee1234@users.noreply.github.com"),
            ("Bob Stone", "annlee1234@gmail.com"),
        ]);
        let c = cluster(&a, Tier::Auto, Options::default());
        assert_eq!(c.person, vec![0, 0, 2, 3]);
        assert_eq!(c.links[0].rule, Rule::LoginMatchesLocalPart);
    }

    #[test]
    fn no_person_grows_past_the_limit_at_auto() {
        let list: Vec<(String, String)> =
            (0..15).map(|i| ("Jane Doe".to_string(), format!("jdoe@corp{i}.com"))).collect();
        let mut a: Vec<Alias> = list.iter().map(|(n, e)| Alias { name: n.clone(), email: e.clone() }).collect();
        // Same local part everywhere: every pair corroborates.
        a.push(Alias { name: "Jane Doe".into(), email: "jdoe@corp0.com".into() });
        let c = cluster(&a, Tier::Auto, Options { max_aliases: 10 });
        let biggest = (0..a.len()).map(|p| c.person.iter().filter(|q| **q == p).count()).max().unwrap_or(0);
        assert!(biggest <= 10, "{biggest}");
    }
}
