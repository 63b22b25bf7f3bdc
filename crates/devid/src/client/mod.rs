//! Commands that talk to a running devid server over HTTP and never open its database
//! (`discover`, `import`, `export`, `sync`). This module holds what they share: where
//! the server is and which key to send (flags, environment or a named profile, see
//! [`profile`]), the HTTP client, a refused request turned into readable lines, the
//! exit code each failure ends the process with ([`Failure`]), and progress bars that
//! appear only on a terminal.

pub mod discover;
pub mod doctor;
pub mod export;
pub mod import;
pub mod profile;
pub mod sync;
mod table;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

pub use table::error_table;

/// Where the server is and how to authenticate, for every client command. A flag
/// beats its environment variable, which beats the profile's setting.
#[derive(Debug, Args, Clone, Default)]
pub struct ServerArgs {
    /// Base URL of the devid server (http:// or https://) [default: the profile's, or
    /// http://127.0.0.1:8080].
    #[arg(long, env = "DEVID_URL")]
    pub url: Option<String>,
    /// API key sent as the `x-api-key` header, as printed by `devid serve` or
    /// `devid keys create`. Prefer --api-key-file: a key on the command line shows in
    /// the process list.
    #[arg(long, env = "DEVID_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// File whose first line is the API key.
    #[arg(long, env = "DEVID_API_KEY_FILE")]
    pub api_key_file: Option<PathBuf>,
    /// Named profile of the config file (`$DEVID_CONFIG`, else
    /// `$XDG_CONFIG_HOME/devid/config.toml` or `~/.config/devid/config.toml`) that
    /// supplies the URL and key; without it, the file's `default_profile`, or a
    /// profile called `default`.
    #[arg(long, env = "DEVID_PROFILE")]
    pub profile: Option<String>,
}

/// How a client command ended, as its exit code (documented in the README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The input was refused, by the file checks or by the server: nothing applied.
    Rejected = 1,
    /// The command was called wrongly: flags, key, URL, a missing file.
    Usage = 2,
    /// The server could not be reached, failed, or asked to come back later.
    Unavailable = 3,
}

/// An error that decides the exit code; other errors end with 1.
#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    pub message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

pub fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Failure { exit: Exit::Usage, message: message.into() })
}

pub fn rejected(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Failure { exit: Exit::Rejected, message: message.into() })
}

pub fn unavailable(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Failure { exit: Exit::Unavailable, message: message.into() })
}

/// The exit code for an error: the first [`Failure`] in its chain decides, else 1.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    error.chain().find_map(|e| e.downcast_ref::<Failure>()).map_or(1, |f| f.exit as u8)
}

/// Which exit a refused request ends with: bad input is the caller's to fix (1); a
/// wrong key, scope or address is how the command was called (2); a server that failed,
/// timed out or limits the rate may answer later (3).
fn exit_for_status(status: reqwest::StatusCode) -> Exit {
    match status.as_u16() {
        401 | 403 | 404 | 405 => Exit::Usage,
        408 | 429 => Exit::Unavailable,
        400..=499 => Exit::Rejected,
        _ => Exit::Unavailable,
    }
}

/// Seconds to wait for a TCP (and TLS) connection before saying the server is unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// An HTTP client bound to one server and key. Its `Debug` leaves the key out.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("base", &self.base).finish_non_exhaustive()
    }
}

impl Client {
    /// Resolves the URL and key (flags, environment, profile), checks them (a key is
    /// required, the URL must be http or https) and builds the client; nothing is sent yet.
    pub fn new(args: &ServerArgs) -> Result<Self> {
        let resolved = profile::resolve(args)?;
        let key = resolved.key;
        let base = resolved.url.trim().trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(usage(format!(
                "--url (or DEVID_URL, or the profile's url) must start with http:// or https://, such as http://127.0.0.1:8080; it is `{base}`."
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("devid/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot set up the HTTP client")?;
        Ok(Self { http, base, key })
    }

    /// The server's base URL, without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A request to `path` (starting with `/`), carrying the key.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base)).header("x-api-key", &self.key)
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::POST, path)
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::GET, path)
    }

    /// Sends a request and returns the response of a 2xx answer, its body unread (a
    /// download streams it); any other answer is an error as in [`Client::send_json`].
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        let response = request.send().await.map_err(|e| self.unreachable(e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.bytes().await.map_err(|e| self.unreachable(e))?;
        Err(anyhow::Error::new(Failure { exit: exit_for_status(status), message: refusal(status, &body, &|_| None) }))
    }

    /// Sends a request and returns the JSON body of a 2xx answer. A connection failure
    /// says which server could not be reached; any other status becomes an error
    /// holding the server's message and every error group with its samples, each
    /// sample's line of the body described by `line` where it can (who that row is).
    pub async fn send_json(
        &self,
        request: reqwest::RequestBuilder,
        line: &dyn Fn(u64) -> Option<String>,
    ) -> Result<Value> {
        let response = request.send().await.map_err(|e| self.unreachable(e))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| self.unreachable(e))?;
        if !status.is_success() {
            return Err(anyhow::Error::new(Failure {
                exit: exit_for_status(status),
                message: refusal(status, &body, line),
            }));
        }
        serde_json::from_slice(&body).map_err(|_| {
            unavailable(format!(
                "The server at {} answered {status} with a body that is not JSON; is --url a devid server?",
                self.base
            ))
        })
    }

    /// As [`Client::send_json`], but a refusal shows the server's message, then its
    /// error groups as a table ([`error_table`]) whose lines `place` describes.
    pub async fn send_refusing_with_table(
        &self,
        request: reqwest::RequestBuilder,
        place: &(dyn Fn(u64) -> String + Send + Sync),
    ) -> Result<Value> {
        let response = request.send().await.map_err(|e| self.unreachable(e))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| self.unreachable(e))?;
        if !status.is_success() {
            let answer: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let message = match answer.get("message").and_then(Value::as_str) {
                Some(message) => {
                    let table = error_table(answer.get("errors").unwrap_or(&Value::Null), place);
                    format!("The server refused the request ({status}): {message}\n{}", table.trim_end())
                }
                None => refusal(status, &body, &|_| None),
            };
            return Err(anyhow::Error::new(Failure {
                exit: exit_for_status(status),
                message: message.trim_end().into(),
            }));
        }
        serde_json::from_slice(&body).map_err(|_| {
            unavailable(format!(
                "The server at {} answered {status} with a body that is not JSON; is --url a devid server?",
                self.base
            ))
        })
    }

    fn unreachable(&self, e: reqwest::Error) -> anyhow::Error {
        // reqwest's own text repeats the URL; the innermost cause says why
        // ("Connection refused", "invalid peer certificate: UnknownIssuer").
        let mut cause = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            cause = s.to_string();
            source = s.source();
        }
        if e.is_timeout() {
            cause = format!("timed out: {cause}");
        }
        unavailable(format!(
            "Cannot talk to the devid server at {} ({cause}). Check --url (or DEVID_URL) and that `devid serve` runs there.",
            self.base
        ))
    }
}

/// A non-2xx answer in lines a person can act on: the status and the server's message,
/// then each error group (type, field, count, message) with its samples indented, a
/// sample's body line followed by what `line` says of it. Falls back to the raw body
/// when it is not devid's JSON error shape.
pub fn refusal(status: reqwest::StatusCode, body: &[u8], line: &dyn Fn(u64) -> Option<String>) -> String {
    let mut out = format!("The server refused the request ({status})");
    let Ok(Value::Object(answer)) = serde_json::from_slice::<Value>(body) else {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        if !text.is_empty() {
            out.push_str(": ");
            out.extend(text.chars().take(500));
        } else {
            out.push('.');
        }
        return out;
    };
    match answer.get("message").and_then(Value::as_str) {
        Some(message) => {
            out.push_str(": ");
            out.push_str(message);
        }
        None => out.push('.'),
    }
    for group in answer.get("errors").and_then(Value::as_array).into_iter().flatten() {
        out.push_str(&format!("\n  {}", group_heading(group)));
        for sample in group.get("samples").and_then(Value::as_array).into_iter().flatten() {
            out.push_str(&format!("\n    {}", sample_line(sample, line)));
        }
    }
    out
}

fn group_heading(group: &Value) -> String {
    let text = |key: &str| group.get(key).and_then(Value::as_str).unwrap_or_default();
    let mut heading = text("errorType").to_string();
    let mut details = Vec::new();
    if !text("fieldName").is_empty() {
        details.push(format!("field {}", text("fieldName")));
    }
    if let Some(count) = group.get("errorCount").and_then(Value::as_u64) {
        details.push(format!("{count} {}", if count == 1 { "time" } else { "times" }));
    }
    if !details.is_empty() {
        heading.push_str(&format!(" ({})", details.join(", ")));
    }
    if !text("message").is_empty() {
        heading.push_str(&format!(": {}", text("message")));
    }
    heading
}

fn sample_line(sample: &Value, describe: &dyn Fn(u64) -> Option<String>) -> String {
    let place = match (sample.get("line").and_then(Value::as_u64), sample.get("index").and_then(Value::as_u64)) {
        (Some(line), _) => match describe(line) {
            Some(what) => format!("line {line} ({what})"),
            None => format!("line {line}"),
        },
        (None, Some(index)) => format!("index {index}"),
        (None, None) => "sample".to_string(),
    };
    let value = match sample.get("value") {
        Some(Value::String(s)) => format!(" `{s}`"),
        Some(Value::Null) | None => String::new(),
        Some(other) => format!(" `{other}`"),
    };
    let reason = sample.get("reason").and_then(Value::as_str).map(|r| format!(": {r}")).unwrap_or_default();
    format!("{place}{value}{reason}")
}

/// Every numeric field of a JSON summary, nested objects included, as a line
/// `words: value` (`contributorsCreated` becomes `contributors created`), then every
/// yes/no field, so a field the server adds later shows up without a client change.
/// `received` comes first, the rest in alphabetical order (serde_json's map keeps no
/// other). Text fields (the server's message) are left to the caller.
pub fn summary_lines(answer: &Value) -> Vec<String> {
    let (mut numbers, mut flags) = (Vec::new(), Vec::new());
    collect_summary(answer, &mut numbers, &mut flags);
    numbers.extend(flags);
    numbers
}

fn collect_summary(value: &Value, numbers: &mut Vec<String>, flags: &mut Vec<String>) {
    let Value::Object(fields) = value else { return };
    let (first, rest): (Vec<_>, Vec<_>) = fields.iter().partition(|(key, _)| key.as_str() == "received");
    for (key, value) in first.into_iter().chain(rest) {
        match value {
            Value::Number(n) => numbers.push(format!("{}: {n}", words(key))),
            Value::Bool(b) => flags.push(format!("{}: {}", words(key), if *b { "yes" } else { "no" })),
            Value::Object(_) => collect_summary(value, numbers, flags),
            _ => {}
        }
    }
}

/// `contributorsCreated` → `contributors created`.
fn words(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push(' ');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// A CSV upload of `(email, integrationId, identity)` rows, header first.
pub fn identities_csv<'a>(rows: impl Iterator<Item = (&'a str, i64, &'a str)>) -> Result<Vec<u8>> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let write = || -> csv::Result<()> {
        writer.write_record(["email", "integrationId", "identity"])?;
        for (email, integration, identity) in rows {
            writer.write_record([email, integration.to_string().as_str(), identity])?;
        }
        writer.flush()?;
        Ok(())
    };
    write().map_err(|e| usage(format!("cannot build the upload: {e}")))?;
    writer.into_inner().map_err(|e| usage(format!("cannot build the upload: {e}")))
}

/// `body` as a request body that advances `bar` as it is sent, with its length.
pub fn body_with_progress(body: Vec<u8>, bar: &ProgressBar) -> (reqwest::Body, u64) {
    const CHUNK_BYTES: usize = 64 * 1024;
    let length = body.len() as u64;
    bar.set_length(length);
    let sent = bar.clone();
    let chunks: Vec<Vec<u8>> = body.chunks(CHUNK_BYTES).map(<[u8]>::to_vec).collect();
    let stream = futures_util::stream::iter(chunks.into_iter().map(move |chunk| {
        sent.inc(chunk.len() as u64);
        if sent.position() >= length {
            sent.set_message("sent; the server is applying it");
        }
        Ok::<_, std::io::Error>(chunk)
    }));
    (reqwest::Body::wrap_stream(stream), length)
}

/// A progress bar on stderr, or a hidden one when stderr is not a terminal (a log
/// file or a CI job gets only the final summary). `len: None` is a spinner with a count.
pub fn progress(len: Option<u64>, template: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = match len {
        Some(len) => ProgressBar::new(len),
        None => ProgressBar::new_spinner(),
    };
    // The templates are constants of this crate; a bad one falls back to the default look.
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(url: &str, key: Option<&str>) -> ServerArgs {
        // A profile name that no config file holds would fail; none is named, and
        // DEVID_CONFIG points nowhere so the developer's own file is not read.
        ServerArgs { url: Some(url.into()), api_key: key.map(Into::into), ..ServerArgs::default() }
    }

    #[test]
    fn a_missing_key_names_the_flag_and_the_variable() {
        let e = Client::new(&args("http://127.0.0.1:8080", None)).expect_err("no key");
        assert_eq!(exit_code(&e), 2, "a missing key is a usage error");
        let text = e.to_string();
        assert!(text.contains("--api-key") && text.contains("DEVID_API_KEY"), "{text}");
        assert!(Client::new(&args("http://127.0.0.1:8080", Some("  "))).is_err(), "a blank key is no key");
    }

    #[test]
    fn the_url_must_be_http_or_https_and_loses_its_trailing_slash() {
        assert!(Client::new(&args("127.0.0.1:8080", Some("k"))).is_err());
        let client = Client::new(&args("https://devid.example.com/", Some("k"))).expect("https URL");
        assert_eq!(client.base(), "https://devid.example.com");
    }

    #[test]
    fn a_refusal_shows_the_message_and_each_group_with_its_samples() {
        let body = br#"{"message":"2 rows are invalid. Nothing was changed.","errors":[
            {"errorType":"INVALID_EMAIL","fieldName":"email","errorCount":2,"message":"Emails must look like name@domain.",
             "samples":[{"line":3,"value":"bob","reason":"it must contain exactly one `@`"},{"index":7,"value":""}]}]}"#;
        let who = |line: u64| (line == 3).then(|| "Bob <bob>".to_string());
        let text = refusal(reqwest::StatusCode::BAD_REQUEST, body, &who);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "The server refused the request (400 Bad Request): 2 rows are invalid. Nothing was changed.",
                "  INVALID_EMAIL (field email, 2 times): Emails must look like name@domain.",
                "    line 3 (Bob <bob>) `bob`: it must contain exactly one `@`",
                "    index 7 ``",
            ]
        );
    }

    #[test]
    fn a_refusal_that_is_not_json_shows_the_body() {
        let text = refusal(reqwest::StatusCode::BAD_GATEWAY, b"upstream down\n", &|_| None);
        assert_eq!(text, "The server refused the request (502 Bad Gateway): upstream down");
        assert_eq!(
            refusal(reqwest::StatusCode::NOT_FOUND, b"", &|_| None),
            "The server refused the request (404 Not Found)."
        );
    }

    #[test]
    fn a_summary_prints_every_number_and_flag_whatever_its_name() {
        let answer: Value = serde_json::from_str(
            r#"{"received":3,"contributorsCreated":2,"note":"text is skipped","dryRun":true,"extra":{"botsFlagged":1}}"#,
        )
        .expect("json");
        assert_eq!(
            summary_lines(&answer),
            ["received: 3", "contributors created: 2", "bots flagged: 1", "dry run: yes"]
        );
    }
}
