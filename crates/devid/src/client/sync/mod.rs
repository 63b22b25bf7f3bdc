//! `devid sync --source FILE`: make the server hold what the source says, sending only
//! the difference. The source is checked with the server's rules, the server's
//! identities are read as one CSV download, [`diff::diff`] compares them, the plan is
//! printed, and then one upload (creates and reassignments) and, with `--prune`, one
//! delete are sent. Each request is atomic on the server, so an interrupted sync leaves
//! it as before or after its upload, never half-way through one.
//!
//! Pruning is scoped: it only deletes identities of the integrations the source names
//! (or `--integration-ids`), so an HR export of GitHub users never wipes Jira's; and
//! never more than `--max-deletes` without `--force`. Locked identities are reported
//! and left alone.

pub mod diff;

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Args;
use devid_core::normalize::{identity_key, strip_formula_guard};
use devid_core::plan::{Addressing, IntegrationInfo, UploadPlan};
use devid_core::types::ApplicationType;
use serde_json::{Value, json};

use self::diff::{Differ, MaxDeletes, SyncPlan};
use super::doctor::{Integrations, check, named_integrations, read_input, refusal};
use super::{Client, Exit, Failure, ServerArgs, progress, rejected, summary_lines, unavailable, usage};

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// The desired state: a CSV (`email,integrationId,identity`) or JSON array, as
    /// `devid import` takes, such as a nightly HR or IdP export. Read again on every run.
    #[arg(long)]
    pub source: PathBuf,
    /// Also delete the identities absent from the source, in the integrations the
    /// source names (or --integration-ids). Without it nothing is deleted.
    #[arg(long)]
    pub prune: bool,
    /// Most deletions a run may make without --force: a number, or a share of the
    /// identities held in those integrations such as 5%. A truncated export would
    /// otherwise wipe the account.
    #[arg(long, default_value = "5%")]
    pub max_deletes: MaxDeletes,
    /// Delete beyond --max-deletes.
    #[arg(long)]
    pub force: bool,
    /// Print the plan and send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The integrations the source is the truth for (comma-separated ids); default:
    /// those its rows name. A row of another integration is an error.
    #[arg(long, value_delimiter = ',')]
    pub integration_ids: Vec<i64>,
    /// Run again after this long (such as 1h, 30m, 90s), with ±10% jitter, until
    /// stopped; one log line per run. A server that is down is retried with backoff.
    #[arg(long, value_parser = parse_every)]
    pub every: Option<Duration>,
    #[command(flatten)]
    pub server: ServerArgs,
}

fn parse_every(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().map_err(|_| format!("`{text}` is not a duration such as 1h, 30m or 90s"))?;
    let seconds = match unit.trim() {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3_600,
        "d" => n * 86_400,
        _ => return Err(format!("`{text}`: the unit must be s, m, h or d")),
    };
    if seconds < 10 {
        return Err("--every must be at least 10s".into());
    }
    Ok(Duration::from_secs(seconds))
}

/// What one run did.
#[derive(Debug, Default)]
struct RunReport {
    created: u64,
    reassigned: u64,
    deleted: u64,
    unchanged: u64,
    locked_left_alone: u64,
    absent_kept: u64,
}

pub async fn sync(args: SyncArgs) -> Result<()> {
    let client = Client::new(&args.server)?;
    let Some(every) = args.every else {
        let report = run_once(&client, &args, true).await?;
        let verb = if args.dry_run { "Dry run, nothing sent" } else { "Synced" };
        println!("{verb}: {}", report.line());
        return Ok(());
    };
    // Periodic: a failed run is logged and retried; only a usage error (a wrong key or
    // URL, which no retry fixes) ends the loop.
    let mut backoff = Duration::from_secs(5);
    loop {
        let started = Instant::now();
        let wait = match run_once(&client, &args, false).await {
            Ok(report) => {
                log(&format!("sync: {} ({:.1} s)", report.line(), started.elapsed().as_secs_f64()));
                backoff = Duration::from_secs(5);
                jitter(every)
            }
            Err(e) => match super::exit_code(&e) {
                code if code == Exit::Usage as u8 => return Err(e),
                code if code == Exit::Unavailable as u8 => {
                    let wait = jitter(backoff.min(every));
                    log(&format!("sync failed, retrying in {:.0} s: {}", wait.as_secs_f64(), first_line(&e)));
                    backoff = (backoff * 2).min(Duration::from_secs(600));
                    wait
                }
                _ => {
                    log(&format!("sync refused, next run as scheduled: {e:#}"));
                    jitter(every)
                }
            },
        };
        tokio::time::sleep(wait).await;
    }
}

fn first_line(e: &anyhow::Error) -> String {
    format!("{e:#}").lines().next().unwrap_or_default().to_string()
}

fn log(line: &str) {
    let now = time::OffsetDateTime::now_utc();
    let stamp = now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    eprintln!("{stamp} {line}");
}

/// `base` ± 10%, so that many clients started together do not stay in step.
fn jitter(base: Duration) -> Duration {
    base.mul_f64(0.9 + rand::random::<f64>() * 0.2)
}

impl RunReport {
    fn line(&self) -> String {
        format!(
            "{} created, {} reassigned, {} deleted, {} unchanged, {} locked left alone, {} absent kept",
            self.created, self.reassigned, self.deleted, self.unchanged, self.locked_left_alone, self.absent_kept
        )
    }
}

async fn run_once(client: &Client, args: &SyncArgs, verbose: bool) -> Result<RunReport> {
    let file = args.source.display().to_string();
    let bytes = read_input(&file)?;
    let named = named_integrations(&bytes);
    let scope: Vec<i64> = if args.integration_ids.is_empty() { named.clone() } else { args.integration_ids.clone() };
    if let Some(outside) = named.iter().find(|id| !scope.contains(id)) {
        return Err(usage(format!(
            "{file} has rows of integration {outside}, which --integration-ids leaves out; add it, or remove those rows."
        )));
    }
    let integrations = match known_integrations(client).await? {
        Some(known) => known,
        None => types_of(client, &named).await?,
    };
    let checked = check(&bytes, &Integrations::Known(integrations)).map_err(|problems| refusal(&file, problems))?;
    if checked.addressing == Addressing::ApplicationType {
        return Err(usage(format!(
            "{file} names integrations by applicationType; sync compares by integration id. Use the columns email,integrationId,identity."
        )));
    }
    drop(bytes);
    let plan = compare(client, &checked.plan, &scope).await?;
    drop(checked);
    if verbose {
        print_plan(&plan, args, &scope);
    }
    let limit = args.max_deletes.limit(plan.current_total);
    if args.prune && plan.absent.len() as u64 > limit && !args.force {
        return Err(rejected(format!(
            "Nothing was sent: the source would delete {} of the {} identities held in integrations {}, more than --max-deletes {} allows ({limit}). A truncated or partial export looks like this; check {file}, then raise --max-deletes or pass --force.",
            plan.absent.len(),
            plan.current_total,
            join(&scope),
            args.max_deletes.describe(),
        )));
    }
    let mut report = RunReport {
        unchanged: plan.unchanged,
        locked_left_alone: (plan.locked_moves.len() + plan.locked_absent.len()) as u64,
        absent_kept: if args.prune { 0 } else { plan.absent.len() as u64 },
        ..RunReport::default()
    };
    if args.dry_run {
        report.created = plan.creates;
        report.reassigned = plan.reassigns;
        report.deleted = if args.prune { plan.absent.len() as u64 } else { 0 };
        return Ok(report);
    }
    if !plan.upserts.is_empty() {
        let answer = upload(client, &plan).await?;
        let summary = answer.get("summary").unwrap_or(&Value::Null);
        report.created = summary.get("created").and_then(Value::as_u64).unwrap_or(0);
        report.reassigned = summary.get("reassigned").and_then(Value::as_u64).unwrap_or(0);
        if verbose {
            println!("Upload applied:");
            for line in summary_lines(summary) {
                println!("  {line}");
            }
        }
    }
    if args.prune && !plan.absent.is_empty() {
        let answer = delete(client, &plan).await?;
        let summary = answer.get("summary").unwrap_or(&Value::Null);
        report.deleted = summary.get("deleted").and_then(Value::as_u64).unwrap_or(plan.absent.len() as u64);
        if verbose {
            println!("Delete applied:");
            for line in summary_lines(summary) {
                println!("  {line}");
            }
        }
    }
    Ok(report)
}

fn join(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
}

/// Rows of each kind a plan shows before "and N more".
const PLAN_SAMPLES: usize = 10;

fn print_plan(plan: &SyncPlan, args: &SyncArgs, scope: &[i64]) {
    println!("Plan for integrations {} ({} identities on the server):", join(scope), plan.current_total);
    println!("  create:    {}", plan.creates);
    println!("  reassign:  {}", plan.reassigns);
    if args.prune {
        println!("  delete:    {}", plan.absent.len());
    } else {
        println!("  delete:    0 ({} absent from the source are kept; --prune deletes them)", plan.absent.len());
    }
    println!("  unchanged: {}", plan.unchanged);
    if !plan.locked_moves.is_empty() || !plan.locked_absent.is_empty() {
        println!(
            "  locked, left alone: {} the source maps elsewhere, {} absent from it (unlock them to let sync change them)",
            plan.locked_moves.len(),
            plan.locked_absent.len()
        );
    }
    let upserts = plan.upserts.iter().map(|u| match &u.from {
        None => format!("create    {} {} → {}", u.integration, u.identity, u.email),
        Some(from) => format!("reassign  {} {}: {from} → {}", u.integration, u.identity, u.email),
    });
    print_samples(upserts, plan.upserts.len());
    if args.prune {
        let deletes = plan.absent.iter().map(|a| format!("delete    {} {} ({})", a.integration, a.identity, a.email));
        print_samples(deletes, plan.absent.len());
    }
    let locked = plan
        .locked_moves
        .iter()
        .map(|u| {
            format!(
                "locked    {} {}: stays with {}, source says {}",
                u.integration,
                u.identity,
                u.from.as_deref().unwrap_or(""),
                u.email
            )
        })
        .chain(plan.locked_absent.iter().map(|a| {
            format!("locked    {} {}: stays with {}, absent from the source", a.integration, a.identity, a.email)
        }));
    print_samples(locked, plan.locked_moves.len() + plan.locked_absent.len());
}

fn print_samples(lines: impl Iterator<Item = String>, total: usize) {
    for line in lines.take(PLAN_SAMPLES) {
        println!("    {line}");
    }
    if total > PLAN_SAMPLES {
        println!("    … and {} more", total - PLAN_SAMPLES);
    }
}

/// The account's integrations when the key may list them (admin); `None` otherwise,
/// and the types seen in the download stand in.
async fn known_integrations(client: &Client) -> Result<Option<Vec<IntegrationInfo>>> {
    let answer = match client.send_json(client.get("/v2/integrations"), &|_| None).await {
        Ok(answer) => answer,
        Err(e) if super::exit_code(&e) == Exit::Usage as u8 => return Ok(None),
        Err(e) => return Err(e),
    };
    let list = answer.get("integrations").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let mut known = Vec::with_capacity(list.len());
    for integration in list {
        let id = integration.get("id").and_then(Value::as_i64);
        let kind = integration.get("applicationType").and_then(Value::as_str).and_then(|t| t.parse().ok());
        if let (Some(id), Some(application_type)) = (id, kind) {
            known.push(IntegrationInfo { id, application_type });
        }
    }
    Ok(Some(known))
}

/// The type of each integration the source names, read from one of its identities (a
/// key that may not list integrations can still read identities); one with none yet is
/// compared exactly, as CUSTOM is, and the server checks that it exists.
async fn types_of(client: &Client, ids: &[i64]) -> Result<Vec<IntegrationInfo>> {
    let mut out = Vec::with_capacity(ids.len());
    for &id in ids {
        let query = [("integrationIds", id.to_string()), ("pageSize", "1".to_string())];
        let page = client.send_json(client.get("/v2/developers/identities").query(&query), &|_| None).await?;
        let application_type = page
            .pointer("/records/0/applicationType")
            .and_then(Value::as_str)
            .and_then(|t| t.parse().ok())
            .unwrap_or(ApplicationType::Custom);
        out.push(IntegrationInfo { id, application_type });
    }
    Ok(out)
}

/// Compares the server's identities in `scope` with `desired`, reading its CSV
/// download as the bytes arrive: each row is compared and dropped, so the client holds
/// the source's plan and the differences, never the server's whole state.
async fn compare(client: &Client, desired: &UploadPlan, scope: &[i64]) -> Result<SyncPlan> {
    let query = [
        ("format", "csv".to_string()),
        ("provenance", "true".to_string()),
        ("integrationIds", scope.iter().map(i64::to_string).collect::<Vec<_>>().join(",")),
    ];
    let mut response = client.send(client.get("/v2/developers/identities").query(&query)).await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(16);
    let feeder = tokio::spawn(async move {
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if tx.send(chunk).await.is_err() {
                        return Ok(()); // the reader stopped: its error says why
                    }
                }
                Ok(None) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    });
    let bar = progress(None, "{spinner} Comparing with the server's identities: {human_pos} [{elapsed}]");
    let mut differ = Differ::new(desired);
    // On this thread, so the comparison can borrow the plan; the download keeps
    // arriving on the runtime's other threads.
    let read = tokio::task::block_in_place(|| {
        read_held(ChunkReader { rx, chunk: bytes::Bytes::new() }, &mut |integration, key, identity, email, locked| {
            differ.held(integration, key, identity, email, locked);
            bar.inc(1);
        })
    });
    bar.finish_and_clear();
    let fed = feeder.await.map_err(|e| unavailable(format!("the download of the server's identities failed: {e}")))?;
    if let Err(e) = fed {
        return Err(unavailable(format!(
            "The download of the server's identities from {} broke off: {e}. Nothing was sent.",
            client.base()
        )));
    }
    read?;
    Ok(differ.finish())
}

/// A `Read` over the chunks a download hands over a channel.
struct ChunkReader {
    rx: tokio::sync::mpsc::Receiver<bytes::Bytes>,
    chunk: bytes::Bytes,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.chunk = chunk,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        bytes::Buf::advance(&mut self.chunk, n);
        Ok(n)
    }
}

/// Reads devid's CSV download with provenance and hands each row to `held` as
/// (integration, identity key, identity, email, locked), the key as the server compares.
fn read_held(reader: impl Read, held: &mut dyn FnMut(i64, &str, &str, &str, bool)) -> Result<()> {
    let not_devid = |what: String| {
        anyhow::Error::new(Failure {
            exit: Exit::Unavailable,
            message: format!(
                "The server's identity download is not what devid sends ({what}); is --url a devid server of this version?"
            ),
        })
    };
    let mut csv = csv::ReaderBuilder::new().from_reader(std::io::BufReader::with_capacity(1 << 20, reader));
    let headers = csv.headers().map_err(|e| not_devid(e.to_string()))?.clone();
    let column =
        |name: &str| headers.iter().position(|h| h == name).ok_or_else(|| not_devid(format!("no column {name}")));
    let (email, integration, identity, kind, locked) = (
        column("email")?,
        column("integrationId")?,
        column("identity")?,
        column("applicationType")?,
        column("locked")?,
    );
    let mut types: HashMap<i64, ApplicationType> = HashMap::new();
    let mut record = csv::StringRecord::new();
    while csv.read_record(&mut record).map_err(|e| not_devid(e.to_string()))? {
        let cell = |i: usize| record.get(i).unwrap_or_default();
        let id: i64 =
            cell(integration).parse().map_err(|_| not_devid(format!("integrationId `{}`", cell(integration))))?;
        let application_type = match types.get(&id) {
            Some(t) => *t,
            None => {
                let t: ApplicationType =
                    cell(kind).parse().map_err(|_| not_devid(format!("applicationType `{}`", cell(kind))))?;
                types.insert(id, t);
                t
            }
        };
        let shown = strip_formula_guard(cell(identity));
        let key = identity_key(application_type, &shown);
        held(id, key.as_deref().unwrap_or(&shown), &shown, &strip_formula_guard(cell(email)), cell(locked) == "true");
    }
    Ok(())
}

/// One upload of every create and reassignment, as CSV; a refusal names the rows.
async fn upload(client: &Client, plan: &SyncPlan) -> Result<Value> {
    let body =
        super::identities_csv(plan.upserts.iter().map(|u| (u.email.as_ref(), u.integration, u.identity.as_ref())))?;
    let rows: Vec<String> =
        plan.upserts.iter().map(|u| format!("{} {} → {}", u.integration, u.identity, u.email)).collect();
    let upload = super::import::Upload {
        body,
        format: super::doctor::Format::Csv,
        file_name: "sync.csv".into(),
        // Body line 1 is the header; line n + 2 is upserts[n].
        place: Box::new(move |line| match line.checked_sub(2).and_then(|i| rows.get(i as usize)) {
            Some(row) => row.clone(),
            None => format!("line {line} of the upload"),
        }),
    };
    super::import::send(client, &upload, super::import::Options { dry_run: false, force: false }).await
}

/// One delete of every identity absent from the source.
async fn delete(client: &Client, plan: &SyncPlan) -> Result<Value> {
    let body: Vec<Value> =
        plan.absent.iter().map(|a| json!({"integrationId": a.integration, "identity": a.identity.as_ref()})).collect();
    let body = serde_json::to_vec(&body).map_err(|e| usage(format!("cannot build the delete: {e}")))?;
    let request = client
        .request(reqwest::Method::DELETE, "/v2/developers/identities")
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body);
    let absent: Vec<String> = plan.absent.iter().map(|a| format!("{} {}", a.integration, a.identity)).collect();
    client
        .send_refusing_with_table(request, &move |index| {
            absent.get(index as usize).cloned().unwrap_or_else(|| format!("index {index}"))
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_takes_seconds_to_days_and_refuses_a_busy_loop() {
        assert_eq!(parse_every("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_every("1h"), Ok(Duration::from_secs(3_600)));
        assert_eq!(parse_every("2d"), Ok(Duration::from_secs(172_800)));
        assert!(parse_every("1s").is_err());
        assert!(parse_every("5y").is_err());
        assert!(parse_every("h").is_err());
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..100 {
            let d = jitter(Duration::from_secs(100)).as_secs_f64();
            assert!((90.0..=110.0).contains(&d), "{d}");
        }
    }

    #[test]
    fn the_download_is_read_with_keys_as_the_server_compares() {
        let csv = "email,integrationId,identity,applicationType,updatedAt,locked,source\r\n\
                   ann@x.com,1,Ann,GITHUB,2026-01-01T00:00:00Z,true,upload\r\n\
                   bob@x.com,2,'=B-1,JIRA,2026-01-01T00:00:00Z,false,csv\r\n";
        let mut rows = Vec::new();
        read_held(csv.as_bytes(), &mut |integration, key, identity, email, locked| {
            rows.push((integration, key.to_string(), identity.to_string(), email.to_string(), locked));
        })
        .expect("parsed");
        assert_eq!(
            rows,
            [
                (1, "ann".to_string(), "Ann".to_string(), "ann@x.com".to_string(), true),
                (2, "=B-1".to_string(), "=B-1".to_string(), "bob@x.com".to_string(), false),
            ],
            "GitHub keys lose their case, Jira's do not, and the formula guard is taken off"
        );
        assert!(read_held("email,identity\r\n".as_bytes(), &mut |_, _, _, _, _| {}).is_err(), "not devid's download");
    }
}
