//! Matching: accuracy on a real history (numpy's, scored against its mailmap by the
//! shared scorer) and speed and accuracy on generated accounts whose owners are known.
//!
//! `devid-bench match --dataset ../shared/data/numpy` runs `devid match` per tier and
//! scores it under both person keys; `--synthetic 100000,1000000` generates that many
//! contributors, runs the engine the API runs, and reports time, peak memory and
//! pairwise precision and recall of the `auto` tier against the generated truth.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use devid_core::resolve::suggest::{ContributorFacts, SuggestInput, suggest_by_tier};
use devid_core::resolve::{Options, Tier};

use crate::data::Rng;

#[derive(Debug, clap::Args)]
pub struct MatchArgs {
    /// A directory with `commits.csv` and a mailmap (../shared/data/numpy): scored with
    /// ../shared/tools/score-matching.py.
    #[arg(long)]
    dataset: Option<PathBuf>,
    /// The scorer; by default `tools/score-matching.py` beside the dataset's parent.
    #[arg(long)]
    scorer: Option<PathBuf>,
    /// Generated contributors to match (comma-separated sizes).
    #[arg(long, value_delimiter = ',')]
    synthetic: Vec<usize>,
    /// The devid binary for --dataset; built with `cargo build --release -p devid` when left out.
    #[arg(long)]
    devid_bin: Option<PathBuf>,
    /// A Python with gambit installed (`pip install gambit-disambig`): gambit is then
    /// scored on the same data in the same run.
    #[arg(long)]
    gambit_python: Option<PathBuf>,
    /// Through the API: this many people, each a GitHub and a Jira account with one
    /// address, so one `auto` suggestion each; times the first listing (computed), the
    /// next (from memory) and accepting them all in one batch.
    #[arg(long)]
    accept: Option<usize>,
    /// Seed of the generated accounts.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

pub async fn run(args: MatchArgs) -> Result<()> {
    if args.dataset.is_none() && args.synthetic.is_empty() && args.accept.is_none() {
        bail!(
            "say what to measure: --dataset DIR (a history with its mailmap), --synthetic 100000,1000000 and/or --accept 10000"
        );
    }
    let bin = match (&args.devid_bin, args.dataset.is_some() || args.accept.is_some()) {
        (Some(bin), _) => bin.clone(),
        (None, true) => crate::server::build_release_binary()?,
        (None, false) => PathBuf::new(),
    };
    if let Some(people) = args.accept {
        accept_run(&bin, people).await?;
    }
    if let Some(dataset) = &args.dataset {
        let scorer = match &args.scorer {
            Some(s) => s.clone(),
            None => dataset.join("../../tools/score-matching.py"),
        };
        score_dataset(&bin, dataset, &scorer, args.gambit_python.as_deref()).await?;
    }
    for &size in &args.synthetic {
        synthetic_run(size, args.seed);
    }
    Ok(())
}

/// gambit over the distinct (name, email) pairs of the authors file, written as the
/// scorer reads predictions.
const GAMBIT_SCRIPT: &str = r#"
import csv, sys
import pandas as pd
from gambit import disambiguate_aliases
authors, out = sys.argv[1], sys.argv[2]
seen, rows = set(), []
with open(authors, newline="", encoding="utf-8") as f:
    for r in csv.DictReader(f):
        key = (r["author_name"], r["author_email"])
        if key not in seen:
            seen.add(key)
            rows.append({"alias_name": key[0], "alias_email": key[1]})
result = disambiguate_aliases(pd.DataFrame(rows), method="gambit")
with open(out, "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    w.writerow(["raw_name", "raw_email", "cluster_id"])
    for _, r in result.iterrows():
        w.writerow([r["alias_name"], r["alias_email"], r["author_id"]])
"#;

/// Prints one scored row per person key for the predictions in `out`.
fn print_scores(scorer: &Path, dataset: &Path, out: &Path, label: &str, elapsed_ms: f64) -> Result<()> {
    for key in ["name+email", "email"] {
        let scored = Command::new("python3")
            .arg(scorer)
            .arg(out)
            .arg(dataset)
            .args(["--json", "--person-key", key])
            .output()
            .with_context(|| format!("running {}", scorer.display()))?;
        if !scored.status.success() {
            bail!("the scorer failed: {}", String::from_utf8_lossy(&scored.stderr));
        }
        let s: serde_json::Value = serde_json::from_slice(&scored.stdout).context("the scorer's JSON")?;
        println!(
            "{:<14} {:<11} {:>9.3} {:>7.3} {:>7.3} {:>8} {:>9.0}",
            label,
            key,
            s["precision"].as_f64().unwrap_or(0.0),
            s["recall"].as_f64().unwrap_or(0.0),
            s["f1"].as_f64().unwrap_or(0.0),
            s["predicted_links"],
            elapsed_ms
        );
    }
    Ok(())
}

async fn score_dataset(bin: &Path, dataset: &Path, scorer: &Path, gambit_python: Option<&Path>) -> Result<()> {
    let commits = dataset.join("commits.csv");
    let work = tempfile::tempdir().context("temp dir")?;
    println!(
        "{:<14} {:<11} {:>9} {:>7} {:>7} {:>8} {:>9}",
        "matcher", "key", "precision", "recall", "F1", "links", "time ms"
    );
    if let Some(python) = gambit_python {
        let script = work.path().join("gambit_run.py");
        std::fs::write(&script, GAMBIT_SCRIPT).context("writing the gambit script")?;
        let out = work.path().join("gambit.csv");
        eprintln!("  gambit compares every pair of aliases: this takes minutes");
        let started = Instant::now();
        let status = Command::new(python)
            .arg(&script)
            .arg(dataset.join("authors-mailmapped.csv"))
            .arg(&out)
            .stderr(std::process::Stdio::null())
            .status()
            .with_context(|| format!("running gambit with {}", python.display()))?;
        if !status.success() {
            bail!("gambit failed ({status}); is gambit-disambig installed for {}?", python.display());
        }
        print_scores(scorer, dataset, &out, "gambit", started.elapsed().as_secs_f64() * 1000.0)?;
    }
    let links = work.path().join("links.csv");
    for tier in ["auto", "review"] {
        let out = work.path().join(format!("{tier}.csv"));
        let started = Instant::now();
        let status = Command::new(bin)
            .args(["match", "--commits"])
            .arg(&commits)
            .args(["--tier", tier, "--out"])
            .arg(&out)
            .arg("--links")
            .arg(&links)
            .stderr(std::process::Stdio::null())
            .status()
            .with_context(|| format!("running {}", bin.display()))?;
        let elapsed = started.elapsed().as_secs_f64() * 1000.0;
        if !status.success() {
            bail!("devid match --tier {tier} failed: {status}");
        }
        let label = if tier == "auto" { "devid auto" } else { "devid review" };
        print_scores(scorer, dataset, &out, label, elapsed)?;
    }
    api_dataset_run(bin, dataset, scorer, work.path()).await?;
    print_links_by_rule(&links, &dataset.join("authors-mailmapped.csv"))
}

/// The same history through the product: `devid discover` reads the commits (names,
/// emails, time zones), the server ingests them, and `GET /v2/suggestions` is read as a
/// clustering: one contributor per email, joined by the suggestions listed (`auto` only,
/// then every one). Scored like `devid match`, so the two can be compared row by row.
async fn api_dataset_run(bin: &Path, dataset: &Path, scorer: &Path, work: &Path) -> Result<()> {
    const GIT_INTEGRATION: i64 = 9;
    let ndjson = work.join("numpy.ndjson");
    let status = Command::new(bin)
        .args(["discover", "--commits-csv"])
        .arg(dataset.join("commits.csv"))
        .args(["--integration", &GIT_INTEGRATION.to_string(), "--out"])
        .arg(&ndjson)
        .stderr(std::process::Stdio::null())
        .status()
        .with_context(|| format!("running {} discover", bin.display()))?;
    if !status.success() {
        bail!("devid discover failed: {status}");
    }
    let database = work.join("api.db").to_string_lossy().into_owned();
    let server = crate::server::Server::start(bin, &database, None, &work.join("first-admin-key"))?;
    let client = reqwest::Client::new();
    let integration = serde_json::json!({"id": GIT_INTEGRATION, "applicationType": "GIT", "name": "numpy"});
    server.post_body(&client, "/v2/integrations", "application/json", serde_json::to_vec(&integration)?).await?;
    let body = std::fs::read(&ndjson).with_context(|| format!("reading {}", ndjson.display()))?;
    server.post_body(&client, "/v2/contributors?source=git:numpy", "application/x-ndjson", body).await?;
    let started = Instant::now();
    let mut suggestions = Vec::new();
    for page in 0.. {
        let listed = server.get_path(&client, &format!("/v2/suggestions?pageSize=1000&pageIndex={page}")).await?;
        suggestions.extend(listed["records"].as_array().cloned().unwrap_or_default());
        if listed["_metadata"]["hasNext"] != true {
            break;
        }
    }
    let elapsed = started.elapsed().as_secs_f64() * 1000.0;
    server.stop();
    for (label, tiers) in [("API auto", &["auto"][..]), ("API review", &["auto", "review"][..])] {
        let mut cluster: HashMap<String, String> = HashMap::new();
        for s in suggestions.iter().filter(|s| tiers.iter().any(|t| s["tier"] == *t)) {
            for c in s["contributors"].as_array().into_iter().flatten() {
                let email = c["identity"].as_str().unwrap_or_default().to_lowercase();
                cluster.insert(email, s["id"].as_str().unwrap_or_default().to_string());
            }
        }
        let out = work.join(format!("{}.csv", label.replace(' ', "-")));
        let mut writer = csv::Writer::from_path(&out).with_context(|| format!("writing {}", out.display()))?;
        writer.write_record(["raw_name", "raw_email", "cluster_id"])?;
        let mut reader = csv::Reader::from_path(dataset.join("authors-mailmapped.csv"))?;
        let headers = reader.headers()?.clone();
        let column = |name: &str| headers.iter().position(|h| h == name).context("authors-mailmapped.csv columns");
        let (name_at, email_at) = (column("author_name")?, column("author_email")?);
        for record in reader.records() {
            let record = record?;
            let email = record[email_at].trim().to_lowercase();
            let id = cluster.get(&email).cloned().unwrap_or_else(|| format!("contributor {email}"));
            writer.write_record([&record[name_at], &record[email_at], id.as_str()])?;
        }
        writer.flush()?;
        print_scores(scorer, dataset, &out, label, elapsed)?;
    }
    Ok(())
}

/// The links of the `review` run (which applies the `auto` ones first) counted by rule
/// and tier, with how many of them join two pairs the mailmap gives different emails:
/// which rule makes the false merges there are to read, not only how many.
fn print_links_by_rule(links: &Path, truth: &Path) -> Result<()> {
    let mut canonical: std::collections::HashMap<(String, String), String> = std::collections::HashMap::new();
    let mut reader = csv::Reader::from_path(truth).with_context(|| format!("reading {}", truth.display()))?;
    for row in reader.records() {
        let row = row.with_context(|| format!("reading {}", truth.display()))?;
        if let (Some(name), Some(email), Some(person)) = (row.get(0), row.get(1), row.get(3)) {
            canonical.insert((name.to_string(), email.to_string()), person.to_lowercase());
        }
    }
    let mut counts: std::collections::BTreeMap<(String, String), (usize, usize)> = std::collections::BTreeMap::new();
    let mut reader = csv::Reader::from_path(links).with_context(|| format!("reading {}", links.display()))?;
    for row in reader.records() {
        let row = row.with_context(|| format!("reading {}", links.display()))?;
        let field = |i: usize| row.get(i).unwrap_or_default().to_string();
        let person = |name: usize, email: usize| canonical.get(&(field(name), field(email)));
        let apart = matches!((person(0, 1), person(2, 3)), (Some(a), Some(b)) if a != b);
        let entry = counts.entry((field(5), field(4))).or_default();
        entry.0 += 1;
        entry.1 += usize::from(apart);
    }
    println!("\nlinks applied up to review, by rule (\"apart\": the mailmap gives the two pairs different emails)");
    println!("{:<8} {:<26} {:>6} {:>6}", "tier", "rule", "links", "apart");
    for ((tier, rule), (applied, apart)) in &counts {
        println!("{tier:<8} {rule:<26} {applied:>6} {apart:>6}");
    }
    Ok(())
}

const FIRST: [&str; 48] = [
    "James",
    "Mary",
    "John",
    "Patricia",
    "Robert",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Wei",
    "Li",
    "Priya",
    "Rahul",
    "Anil",
    "Sunita",
    "Hiroshi",
    "Yuki",
    "Olga",
    "Dmitri",
    "Ana",
    "Jose",
    "Maria",
    "Luis",
    "Fatima",
    "Ahmed",
    "Omar",
    "Aisha",
    "Lars",
    "Ingrid",
    "Pierre",
    "Camille",
    "Hans",
    "Greta",
    "Kwame",
    "Amara",
    "Chen",
    "Min",
    "Sofia",
    "Mateo",
];
const LAST: [&str; 64] = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Wang",
    "Li",
    "Zhang",
    "Liu",
    "Chen",
    "Kumar",
    "Sharma",
    "Patel",
    "Singh",
    "Gupta",
    "Tanaka",
    "Suzuki",
    "Sato",
    "Ivanov",
    "Petrov",
    "Silva",
    "Santos",
    "Oliveira",
    "Nguyen",
    "Tran",
    "Kim",
    "Park",
    "Lee",
    "Muller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Dubois",
    "Martin",
    "Bernard",
    "Rossi",
    "Russo",
    "Ferrari",
    "Jensen",
    "Nielsen",
    "Hansen",
    "Andersson",
    "Johansson",
    "Okafor",
    "Mensah",
    "Haddad",
    "Khan",
    "Ali",
    "Hussain",
    "Cohen",
    "Levi",
    "Novak",
    "Kowalski",
    "Nowak",
    "Horvat",
    "Popescu",
    "Yilmaz",
    "Demir",
];
/// Syllables of the less common surnames.
const SYLLABLES: [&str; 26] = [
    "ka", "ro", "mi", "len", "dor", "vic", "ash", "ber", "ton", "sel", "mar", "qui", "zan", "tel", "fen", "gor", "hal",
    "jin", "lun", "nor", "pet", "ris", "sun", "var", "wex", "yor",
];

/// A surname: one in six from the common list (so namesakes recur, as they do), the
/// others from two or three syllables (about 18,000 of them).
fn surname(rng: &mut Rng) -> String {
    if rng.chance(16) {
        return LAST[rng.below(LAST.len())].to_string();
    }
    let parts = 2 + rng.below(2);
    let mut name: String = (0..parts).map(|_| SYLLABLES[rng.below(SYLLABLES.len())]).collect();
    if let Some(first) = name.get_mut(..1) {
        first.make_ascii_uppercase();
    }
    name
}

const PUBLIC_DOMAINS: [&str; 4] = ["gmail.com", "outlook.com", "yahoo.com", "proton.me"];
const PLACEHOLDERS: [&str; 3] = ["devnull@localhost", "root@localhost", "you@example.com"];

/// One generated account and the person (or bot, or placeholder) it belongs to.
struct Account {
    facts: ContributorFacts,
    owner: usize,
}

/// Integrations as the generator numbers them.
const GIT: &str = "1";
const GITHUB: &str = "2";
const JIRA: &str = "3";

/// About `size` contributors: people with a work address (and often a personal one) in
/// git, a GitHub account (login, sometimes a name, often the noreply address) and a Jira
/// account (name, usually the work address). First names recur, and one surname in
/// six is a common one, so namesakes occur at every size; names are written reordered,
/// lower-cased or with a letter missing; a few authors commit with a shared placeholder address; one account
/// in 200 is a bot.
fn generate(size: usize, seed: u64) -> Vec<Account> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut accounts = Vec::with_capacity(size + 8);
    let mut taken: HashMap<String, u32> = HashMap::new();
    // Shared placeholder addresses: each one git identity whose owner is nobody in
    // particular (any link to one is a false merge).
    for (i, placeholder) in PLACEHOLDERS.iter().enumerate() {
        let name = format!("{} {}", FIRST[i], LAST[i]);
        accounts.push(account(GIT, placeholder, false, &[name], &[placeholder.to_string()], usize::MAX - i));
    }
    let mut person = 0usize;
    while accounts.len() < size {
        person += 1;
        let owner = person;
        if rng.chance(1) {
            let bot = format!("ci-helper-{person}[bot]");
            accounts.push(account(GITHUB, &bot, true, &[], &[], owner));
            continue;
        }
        let first = FIRST[rng.below(FIRST.len())];
        let last = surname(&mut rng);
        let last = last.as_str();
        let name = format!("{first} {last}");
        let company = format!("corp{}.com", rng.below(400));
        let mut unique = |local: String, domain: &str| {
            let n = taken.entry(format!("{local}@{domain}")).or_insert(0);
            *n += 1;
            if *n == 1 { format!("{local}@{domain}") } else { format!("{local}{n}@{domain}") }
        };
        let work = unique(format!("{}.{}", first.to_lowercase(), last.to_lowercase()), &company);
        let personal = rng.chance(50).then(|| {
            let domain = PUBLIC_DOMAINS[rng.below(PUBLIC_DOMAINS.len())];
            unique(format!("{}{}", first.to_lowercase(), last.to_lowercase()), domain)
        });
        let written = |rng: &mut Rng| match rng.below(20) {
            0 => format!("{last} {first}"),
            1 => name.to_lowercase(),
            2 if first.len() > 3 => format!("{} {last}", &first[..first.len() - 1]),
            _ => name.clone(),
        };
        // One author in a hundred commits with a placeholder instead of the work address.
        if !rng.chance(1) {
            accounts.push(account(GIT, &work, false, &[written(&mut rng)], std::slice::from_ref(&work), owner));
        }
        if let Some(personal) = &personal {
            accounts.push(account(GIT, personal, false, &[written(&mut rng)], std::slice::from_ref(personal), owner));
        }
        if rng.chance(70) {
            let login = unique(format!("{}{}", first.to_lowercase(), &last[..1].to_lowercase()), "github")
                .replace("@github", "");
            let noreply = format!("{}+{login}@users.noreply.github.com", 1000 + person);
            let names = if rng.chance(60) { vec![written(&mut rng)] } else { Vec::new() };
            let emails = if rng.chance(50) { vec![noreply] } else { Vec::new() };
            accounts.push(account(GITHUB, &login, false, &names, &emails, owner));
        }
        if rng.chance(50) {
            let id = format!("{:012x}", rng.next() & 0xffff_ffff_ffff);
            let emails = if rng.chance(80) { vec![work.clone()] } else { Vec::new() };
            accounts.push(account(JIRA, &id, false, &[written(&mut rng)], &emails, owner));
        }
    }
    accounts.truncate(size);
    accounts
}

fn account(integration: &str, identity: &str, bot: bool, names: &[String], emails: &[String], owner: usize) -> Account {
    Account {
        facts: ContributorFacts {
            integration_id: integration.to_string(),
            identity: identity.to_string(),
            github: integration == GITHUB,
            names: names.to_vec(),
            emails: emails.to_vec(),
            bot,
            developer: None,
            activity: 1,
            utc_offsets: Vec::new(),
            active_days: None,
        },
        owner,
    }
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<f64>().ok()? / 1024.0)
}

/// The `review` suggestions' evidence by rule, with how many of its links join two
/// different generated people: what a reviewer would be asked, and how often wrongly.
fn print_review_links_by_rule(
    input: &SuggestInput,
    owners: &[usize],
    suggestions: &[devid_core::resolve::suggest::Suggestion],
) {
    use devid_core::resolve::suggest::Party;
    let index: HashMap<(&str, &str), usize> = input
        .contributors
        .iter()
        .enumerate()
        .map(|(i, c)| ((c.integration_id.as_str(), c.identity.as_str()), i))
        .collect();
    let owner = |p: &Party| match p {
        Party::Contributor { integration_id, identity } => {
            index.get(&(integration_id.as_str(), identity.as_str())).map(|&i| owners[i])
        }
        Party::Developer { .. } => None,
    };
    let show = std::env::var_os("DEVID_BENCH_SHOW").is_some();
    let mut by_rule: std::collections::BTreeMap<&str, (u64, u64)> = std::collections::BTreeMap::new();
    for s in suggestions.iter().filter(|s| s.tier == Tier::Review) {
        for e in &s.evidence {
            let entry = by_rule.entry(e.rule.as_str()).or_default();
            entry.0 += 1;
            if owner(&e.between.0) != owner(&e.between.1) {
                entry.1 += 1;
                if show && e.rule != devid_core::resolve::Rule::SameNameOnly {
                    let describe = |p: &Party| match p {
                        Party::Contributor { integration_id, identity } => index
                            .get(&(integration_id.as_str(), identity.as_str()))
                            .map(|&i| format!("{:?} {:?}", input.contributors[i].names, input.contributors[i].emails))
                            .unwrap_or_default(),
                        Party::Developer { email } => email.clone(),
                    };
                    println!(
                        "  wrong {} ({}): {} / {}",
                        e.rule.as_str(),
                        e.value,
                        describe(&e.between.0),
                        describe(&e.between.1)
                    );
                }
            }
        }
    }
    let listed: Vec<String> = by_rule.iter().map(|(rule, (n, wrong))| format!("{rule} {n} ({wrong} wrong)")).collect();
    println!("  review evidence by rule: {}", listed.join(", "));
}

fn synthetic_run(size: usize, seed: u64) {
    let accounts = generate(size, seed);
    let owners: Vec<usize> = accounts.iter().map(|a| a.owner).collect();
    let input = SuggestInput {
        contributors: accounts.into_iter().map(|a| a.facts).collect(),
        developers: Vec::new(),
        cannot_link: Vec::new(),
    };
    let before = peak_rss_mib();
    // Peak memory of the engine alone: the window starts after generation.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let started = Instant::now();
    let suggestions = suggest_by_tier(&input, Options::default());
    let elapsed = started.elapsed().as_secs_f64();
    let peak = peak_rss_mib();

    let mut truth: HashMap<usize, u64> = HashMap::new();
    for &o in &owners {
        *truth.entry(o).or_default() += 1;
    }
    let true_pairs: u64 = truth.values().map(|n| n * (n - 1) / 2).sum();
    let (mut predicted, mut correct, mut namesakes, mut strangers) = (0u64, 0u64, 0u64, 0u64);
    let mut auto = 0;
    for s in suggestions.iter().filter(|s| s.tier == Tier::Auto) {
        auto += 1;
        let members = s.proposal.contributors();
        for (x, &a) in members.iter().enumerate() {
            for &b in &members[x + 1..] {
                predicted += 1;
                if owners[a] == owners[b] {
                    correct += 1;
                } else {
                    let name = |c: usize| input.contributors[c].names.first().map(|n| n.to_lowercase());
                    if name(a).is_some() && name(a) == name(b) {
                        namesakes += 1;
                    } else {
                        strangers += 1;
                    }
                }
            }
        }
    }
    if std::env::var_os("DEVID_BENCH_SHOW").is_some() {
        show_samples(&input, &owners, &suggestions);
    }
    print_review_links_by_rule(&input, &owners, &suggestions);
    let precision = if predicted == 0 { 1.0 } else { correct as f64 / predicted as f64 };
    let recall = if true_pairs == 0 { 1.0 } else { correct as f64 / true_pairs as f64 };
    println!(
        "synthetic {size} contributors: suggestions in {elapsed:.2} s ({} in all, {auto} auto); peak RSS {} MiB (data alone {} MiB); auto pairwise P {precision:.4} R {recall:.3}; false merges: {namesakes} of namesakes, {strangers} of differently named people",
        suggestions.len(),
        peak.map_or("?".into(), |p| format!("{p:.0}")),
        before.map_or("?".into(), |p| format!("{p:.0}")),
    );
}

/// Prints a few false merges and missed pairs, to read what the rules did.
fn show_samples(input: &SuggestInput, owners: &[usize], suggestions: &[devid_core::resolve::suggest::Suggestion]) {
    let describe = |c: usize| {
        let f = &input.contributors[c];
        format!("[{} {} {:?} {:?}]", f.integration_id, f.identity, f.names, f.emails)
    };
    let mut grouped = vec![usize::MAX; owners.len()];
    for (i, s) in suggestions.iter().enumerate().filter(|(_, s)| s.tier == Tier::Auto) {
        for &c in s.proposal.contributors() {
            grouped[c] = i;
        }
        if s.proposal.contributors().iter().any(|&c| owners[c] != owners[s.proposal.contributors()[0]]) {
            eprintln!("FALSE MERGE:");
            for &c in s.proposal.contributors() {
                eprintln!("  owner {} {}", owners[c], describe(c));
            }
            for e in &s.evidence {
                eprintln!("  evidence {} {}", e.rule.as_str(), e.value);
            }
        }
    }
    let mut by_owner: HashMap<usize, Vec<usize>> = HashMap::new();
    for (c, &o) in owners.iter().enumerate() {
        by_owner.entry(o).or_default().push(c);
    }
    let mut shown = 0;
    for members in by_owner.values().filter(|m| m.len() > 1) {
        if members.iter().all(|&c| grouped[c] != usize::MAX && grouped[c] == grouped[members[0]]) {
            continue;
        }
        eprintln!("MISSED:");
        for &c in members {
            eprintln!("  group {:?} {}", (grouped[c] != usize::MAX).then_some(grouped[c]), describe(c));
        }
        shown += 1;
        if shown > 8 {
            break;
        }
    }
}

async fn accept_run(bin: &Path, people: usize) -> Result<()> {
    let work = tempfile::tempdir().context("temp dir")?;
    let database = work.path().join("devid.db").to_string_lossy().into_owned();
    let server = crate::server::Server::start(bin, &database, None, &work.path().join("first-admin-key"))?;
    let client = reqwest::Client::new();
    server.create_integrations(&client).await?;
    let mut csv = String::from("integrationId,identity,email,kind,count\n");
    for i in 0..people {
        csv.push_str(&format!(
            "1,login{i},person{i}@benchcorp.com,pr,3\n2,acc-{i:08x},person{i}@benchcorp.com,issue,2\n"
        ));
    }
    server.post_body(&client, "/v2/contributors?source=bench", "text/csv", csv.into_bytes()).await?;
    server.reset_peak_rss();
    let started = Instant::now();
    let first = server.get_path(&client, "/v2/suggestions?tier=auto&pageSize=1").await?;
    let computed = started.elapsed().as_secs_f64();
    let started = Instant::now();
    server.get_path(&client, "/v2/suggestions?tier=auto&pageSize=1&pageIndex=1").await?;
    let cached = started.elapsed().as_secs_f64();
    let (accept_seconds, answer) =
        server.post_body(&client, "/v2/suggestions/accept", "application/json", br#"{"tier":"auto"}"#.to_vec()).await?;
    let accepted = answer["accepted"].as_array().map_or(0, Vec::len);
    if first["_metadata"]["autoCount"] != people as u64 || accepted != people {
        bail!(
            "expected {people} auto suggestions accepted; listed {}, accepted {accepted}",
            first["_metadata"]["autoCount"]
        );
    }
    println!(
        "API, {people} people ({} contributors): suggestions computed in {computed:.2} s, listed again in {:.1} ms, {accepted} accepted in one batch in {accept_seconds:.2} s ({} identities); server peak RSS {} MiB",
        people * 2,
        cached * 1000.0,
        answer["summary"]["created"],
        server.peak_rss_mib().map_or("?".into(), |p| format!("{p:.0}")),
    );
    server.stop();
    Ok(())
}
