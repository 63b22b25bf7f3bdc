//! `devid import FILE|-`: check the file offline, send it as a dry run and print what
//! would change, then apply it on `--yes` or a yes at the prompt. `--mailmap` turns a
//! git `.mailmap` into identities of a GIT integration first.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Result;
use clap::Args;
use devid_core::mailmap::{MailmapIdentities, mailmap_identities};
use serde_json::Value;

use super::doctor::{Format, Integrations, check, read_input, refusal};
use super::{Client, ServerArgs, progress, rejected, summary_lines, usage};

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The file to upload: CSV (`email,integrationId,identity` or
    /// `email,applicationType,cloudId`) or JSON as the API takes it, told apart by its
    /// first character; `-` reads standard input.
    pub file: String,
    /// Apply without asking, after the dry run's summary.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Only the dry run: print what would change, change nothing.
    #[arg(long, conflicts_with = "yes")]
    pub dry_run: bool,
    /// Move locked identities too (needs an admin key); without it an upload that would
    /// move one is refused whole.
    #[arg(long)]
    pub force: bool,
    /// FILE is a git .mailmap (gitmailmap(5)): each commit email becomes an identity of
    /// the GIT integration given by --integration, mapped to its canonical email.
    #[arg(long, requires = "integration")]
    pub mailmap: bool,
    /// The GIT integration the mailmap's emails belong to (see `devid integrations add
    /// --type GIT`).
    #[arg(long, requires = "mailmap")]
    pub integration: Option<i64>,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// An upload about to be sent: the body, how the server reads it, and how its line
/// numbers map back to the file the user has.
pub struct Upload {
    pub body: Vec<u8>,
    pub format: Format,
    /// The name the body is sent under (shown in the server's logs).
    pub file_name: String,
    /// A line of the body → where it is in the user's terms (`line 12`).
    pub place: Box<dyn Fn(u64) -> String + Send + Sync>,
}

pub async fn import(args: ImportArgs) -> Result<()> {
    let bytes = read_input(&args.file)?;
    let upload = if args.mailmap {
        let integration =
            args.integration.ok_or_else(|| usage("--mailmap needs --integration ID (a GIT integration)."))?;
        from_mailmap(&args.file, &bytes, integration)?
    } else {
        check(&bytes, &Integrations::Assumed(Vec::new())).map_err(|problems| refusal(&args.file, problems))?;
        Upload {
            format: Format::detect(&bytes),
            body: bytes,
            file_name: file_name(&args.file),
            place: Box::new(|line| format!("line {line}")),
        }
    };
    let client = Client::new(&args.server)?;
    let preview = send(&client, &upload, Options { dry_run: true, force: args.force }).await?;
    print_summary("Dry run (nothing changed yet)", &preview);
    if args.dry_run {
        return Ok(());
    }
    if !args.yes && !confirm(&args.file)? {
        println!("Nothing applied.");
        return Ok(());
    }
    let applied = send(&client, &upload, Options { dry_run: false, force: args.force }).await?;
    print_summary("Applied", &applied);
    Ok(())
}

#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub dry_run: bool,
    pub force: bool,
}

/// Sends the upload to the endpoint its format belongs to, with a progress bar, and
/// returns the server's answer; a refusal is an error whose table names the user's lines.
pub async fn send(client: &Client, upload: &Upload, options: Options) -> Result<Value> {
    let mut query = Vec::new();
    if options.dry_run {
        query.push(("dryRun", "true"));
    }
    if options.force {
        query.push(("force", "true"));
    }
    let bar = progress(Some(upload.body.len() as u64), "{spinner} Sending {bytes}/{total_bytes} {bar:30} {msg}");
    let (body, length) = super::body_with_progress(upload.body.clone(), &bar);
    let request = match upload.format {
        Format::Csv => {
            let part = reqwest::multipart::Part::stream_with_length(body, length)
                .file_name(upload.file_name.clone())
                .mime_str("text/csv")
                .map_err(|e| usage(format!("cannot build the upload: {e}")))?;
            client
                .request(reqwest::Method::PATCH, "/v2/developers/identities")
                .multipart(reqwest::multipart::Form::new().part("file", part))
        }
        Format::JsonIdentities => client
            .request(reqwest::Method::PATCH, "/v2/developers/identities")
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::CONTENT_LENGTH, length)
            .body(body),
        Format::JsonCloudIds => client
            .post("/v2/developers/cloud-ids")
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::CONTENT_LENGTH, length)
            .body(body),
    };
    let answer = client.send_refusing_with_table(request.query(&query), &*upload.place).await;
    bar.finish_and_clear();
    answer
}

fn print_summary(heading: &str, answer: &Value) {
    let message = answer.get("message").and_then(Value::as_str).unwrap_or_default();
    println!("{heading}: {message}");
    for line in summary_lines(answer.get("summary").unwrap_or(&Value::Null)) {
        println!("  {line}");
    }
}

/// Asks on the terminal; without one, applying needs `--yes`.
fn confirm(file: &str) -> Result<bool> {
    let stdin = std::io::stdin();
    if file == "-" || !stdin.is_terminal() {
        return Err(usage(
            "Nothing applied: there is no terminal to ask on. Run again with --yes to apply, or --dry-run to only preview.",
        ));
    }
    print!("Apply these changes? [y/N] ");
    std::io::stdout().flush().ok();
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer).map_err(|e| usage(format!("cannot read the answer: {e}")))?;
    Ok(matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}

fn file_name(file: &str) -> String {
    if file == "-" {
        return "stdin.csv".into();
    }
    std::path::Path::new(file)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "upload.csv".into())
}

/// The mailmap's identities as a CSV upload, after printing every line it had to
/// skip or read leniently. A mailmap with no usable line is refused.
fn from_mailmap(file: &str, bytes: &[u8], integration: i64) -> Result<Upload> {
    let text = String::from_utf8_lossy(bytes);
    let MailmapIdentities { rows, notes, lines } = mailmap_identities(&text);
    for note in &notes {
        let what = if note.skipped { "skipped" } else { "note" };
        eprintln!("{file}:{}: {what}: {} ({})", note.line, note.reason, note.text.trim());
    }
    if rows.is_empty() {
        return Err(rejected(format!("{file} has no mailmap line that maps an email ({lines} lines read).")));
    }
    let skipped = notes.iter().filter(|n| n.skipped).count();
    eprintln!(
        "{file}: {lines} lines, {} identities for integration {integration}, {skipped} lines skipped.",
        rows.len()
    );
    let body = super::identities_csv(rows.iter().map(|r| (r.email.as_str(), integration, r.identity.as_str())))?;
    // Body line 1 is the header; line n + 2 is rows[n].
    let source_lines: Vec<u64> = rows.iter().map(|r| r.line).collect();
    Ok(Upload {
        body,
        format: Format::Csv,
        file_name: "mailmap.csv".into(),
        place: Box::new(move |line| match line.checked_sub(2).and_then(|i| source_lines.get(i as usize)) {
            Some(source) => format!("line {source}"),
            None => format!("line {line} of the upload"),
        }),
    })
}
