//! `devid discover`, the real binary, writing what it would upload with `--out`: a git
//! repository made here with the `git` program (authors, a committer who is not the
//! author, a merge, Co-authored-by trailers, an author name that is not UTF-8), numpy's
//! commits CSV from the shared data, and paths that are not repositories. Uploading
//! to a running server is tested with the server's contributors endpoint.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `devid discover <args>` with no server settings from the environment.
fn discover(args: &[&OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_devid"))
        .arg("discover")
        .args(args)
        .env_remove("DEVID_API_KEY")
        .env_remove("DEVID_URL")
        .output()
        .expect("run devid discover")
}

/// `git <args>` in `repo`, isolated from the machine's and user's git configuration;
/// returns what it printed.
fn git(repo: &Path, args: &[&str], env: &[(&str, &[u8])]) -> Vec<u8> {
    let mut command = Command::new("git");
    command
        .current_dir(repo)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("HOME", repo);
    for (name, value) in env {
        command.env(name, OsStr::from_bytes(value));
    }
    let out = command.output().expect("run git");
    assert!(out.status.success(), "git {args:?}: {}", text(&out.stderr));
    out.stdout
}

/// An empty commit by `author` (name, email), committed by `committer`, at `date`.
/// The commit encoding is declared ISO-8859-1, so git stores the author's bytes as
/// given; with the default (UTF-8), git would re-encode bytes that are not UTF-8.
fn commit(repo: &Path, author: (&[u8], &str), committer: (&str, &str), date: &str, message: &str) {
    git(
        repo,
        &["-c", "i18n.commitEncoding=ISO-8859-1", "commit", "-q", "--allow-empty", "-m", message],
        &[
            ("GIT_AUTHOR_NAME", author.0),
            ("GIT_AUTHOR_EMAIL", author.1.as_bytes()),
            ("GIT_AUTHOR_DATE", date.as_bytes()),
            ("GIT_COMMITTER_NAME", committer.0.as_bytes()),
            ("GIT_COMMITTER_EMAIL", committer.1.as_bytes()),
            ("GIT_COMMITTER_DATE", date.as_bytes()),
        ],
    );
}

/// The NDJSON file, keyed by (kind, email, name, utcOffset or ""), each value
/// `count firstSeen lastSeen`.
fn rows(ndjson: &str) -> BTreeMap<(String, String, String, String), String> {
    ndjson
        .lines()
        .map(|line| {
            let row: Value = serde_json::from_str(line).expect("each line is a JSON object");
            let field = |name: &str| row[name].as_str().unwrap_or_else(|| panic!("{name} in {line}")).to_string();
            assert_eq!(row["integrationId"], 7, "{line}");
            assert_eq!(row["identity"], row["email"], "{line}");
            (
                (
                    field("kind"),
                    field("email"),
                    field("name"),
                    row["utcOffset"].as_str().unwrap_or_default().to_string(),
                ),
                format!("{} {} {}", row["count"], field("firstSeen"), field("lastSeen")),
            )
        })
        .collect()
}

fn key(kind: &str, email: &str, name: &str, utc_offset: &str) -> (String, String, String, String) {
    (kind.into(), email.into(), name.into(), utc_offset.into())
}

#[test]
fn a_repository_history_becomes_one_row_per_kind_email_and_name() {
    let dir = tempfile::tempdir().expect("dir");
    let repo = dir.path().join("widgets");
    std::fs::create_dir(&repo).expect("mkdir");
    git(&repo, &["init", "-q", "-b", "main"], &[]);
    let jane = (&b"Jane Doe"[..], "jane@example.com");
    commit(&repo, jane, ("Jane Doe", "jane@example.com"), "2024-01-01T00:00:00Z", "First");
    commit(
        &repo,
        (b"Bob", "bob@example.com"),
        // Differs from the author only in case: the same person, so no `other` row.
        ("Bob", "BOB@example.com"),
        "2024-02-01T00:00:00Z",
        "Pair work\n\nCo-authored-by: Ann Lee <ann@example.com>\nco-authored-by: Jane Doe <jane@example.com>\nCo-authored-by: not a trailer",
    );
    git(&repo, &["checkout", "-q", "-b", "topic"], &[]);
    commit(
        &repo,
        (b"Jos\xe9", "jose@example.com"),
        ("Jos\u{e9}", "jose@example.com"),
        "2024-03-01T00:00:00Z",
        "Latin-1",
    );
    let raw = git(&repo, &["cat-file", "commit", "HEAD"], &[]);
    assert!(raw.windows(5).any(|w| w == b"Jos\xe9 "), "the fixture holds a name that is not UTF-8");
    git(&repo, &["checkout", "-q", "main"], &[]);
    commit(&repo, jane, ("GitHub", "noreply@github.com"), "2024-04-01T00:00:00Z", "Via the web");
    git(
        &repo,
        &["merge", "-q", "--no-ff", "-m", "Merge topic", "topic"],
        &[
            ("GIT_AUTHOR_NAME", b"Maintainer"),
            ("GIT_AUTHOR_EMAIL", b"lead@example.com"),
            ("GIT_AUTHOR_DATE", b"2024-05-01T00:00:00Z"),
            ("GIT_COMMITTER_NAME", b"Maintainer"),
            ("GIT_COMMITTER_EMAIL", b"lead@example.com"),
            ("GIT_COMMITTER_DATE", b"2024-05-01T00:00:00Z"),
        ],
    );

    let out_file = dir.path().join("out.ndjson");
    let out = discover(&[
        "--git".as_ref(),
        repo.as_os_str(),
        "--integration".as_ref(),
        "7".as_ref(),
        "--out".as_ref(),
        out_file.as_os_str(),
    ]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let found = rows(&std::fs::read_to_string(&out_file).expect("the NDJSON file"));
    let expected: BTreeMap<_, _> = [
        (key("commit", "jane@example.com", "Jane Doe", "+00:00"), "2 2024-01-01T00:00:00Z 2024-04-01T00:00:00Z"),
        // A co-author's own clock is not in the commit: no offset is claimed for it.
        (key("commit", "jane@example.com", "Jane Doe", ""), "1 2024-02-01T00:00:00Z 2024-02-01T00:00:00Z"),
        (key("commit", "bob@example.com", "Bob", "+00:00"), "1 2024-02-01T00:00:00Z 2024-02-01T00:00:00Z"),
        (key("commit", "ann@example.com", "Ann Lee", ""), "1 2024-02-01T00:00:00Z 2024-02-01T00:00:00Z"),
        (key("commit", "jose@example.com", "Jos\u{fffd}", "+00:00"), "1 2024-03-01T00:00:00Z 2024-03-01T00:00:00Z"),
        (key("other", "noreply@github.com", "GitHub", "+00:00"), "1 2024-04-01T00:00:00Z 2024-04-01T00:00:00Z"),
        (key("commit", "lead@example.com", "Maintainer", "+00:00"), "1 2024-05-01T00:00:00Z 2024-05-01T00:00:00Z"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_string()))
    .collect();
    assert_eq!(found, expected);
    assert!(
        stderr.contains("1 commit had names or emails that are not UTF-8; they were read with U+FFFD replacements."),
        "{stderr}"
    );
    assert!(stderr.contains("Found 6 contributors (5 commit, 1 other) in 5 commits of"), "{stderr}");
}

/// numpy's commits as exported to the project's shared data: beside the repository, or
/// where `DEVID_SHARED_DATA` points. A missing folder fails the test rather than
/// skipping it, so a machine without the data cannot pass silently.
fn numpy_commits_csv() -> PathBuf {
    let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    let candidates = [
        std::env::var_os("DEVID_SHARED_DATA").map(PathBuf::from),
        Some(beside),
        Some(PathBuf::from("/work/shared/data")),
    ];
    candidates.into_iter().flatten().map(|dir| dir.join("numpy/commits.csv")).find(|p| p.exists()).expect(
        "shared/data/numpy/commits.csv is beside the repository, in /work/shared/data, or under DEVID_SHARED_DATA",
    )
}

#[test]
fn numpy_commits_csv_gives_one_commit_row_per_author_email_and_name() {
    let csv_path = numpy_commits_csv();
    // Counted here with the csv crate directly, not with devid's reader.
    let mut reader = csv::Reader::from_path(&csv_path).expect("open the CSV");
    let header = reader.headers().expect("header").clone();
    let email_at = header.iter().position(|h| h == "author_email").expect("author_email column");
    let time_at = header.iter().position(|h| h == "authored_at").expect("authored_at column");
    let mut commits = 0;
    let mut emails = BTreeSet::new();
    let mut per_offset: BTreeMap<String, u64> = BTreeMap::new();
    for record in reader.byte_records() {
        let record = record.expect("row");
        let email = String::from_utf8_lossy(&record[email_at]).trim().to_lowercase();
        if !email.is_empty() {
            commits += 1;
            emails.insert(email);
            // Every numpy commit carries an offset in use; `Z` is written +00:00.
            let time = String::from_utf8_lossy(&record[time_at]).to_string();
            let offset = if time.ends_with('Z') { "+00:00".to_string() } else { time[time.len() - 6..].to_string() };
            *per_offset.entry(offset).or_default() += 1;
        }
    }
    assert!(commits > 30_000, "the shared numpy data has its 31,562 commits: {commits}");

    let dir = tempfile::tempdir().expect("dir");
    let out_file = dir.path().join("numpy.ndjson");
    let out = discover(&[
        "--commits-csv".as_ref(),
        csv_path.as_os_str(),
        "--integration".as_ref(),
        "7".as_ref(),
        "--out".as_ref(),
        out_file.as_os_str(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let ndjson = std::fs::read_to_string(&out_file).expect("the NDJSON file");
    let mut found_emails = BTreeSet::new();
    let mut counted = 0;
    let mut found_offsets: BTreeMap<String, u64> = BTreeMap::new();
    for line in ndjson.lines() {
        let row: Value = serde_json::from_str(line).expect("JSON");
        if row["kind"] == "commit" {
            found_emails.insert(row["email"].as_str().expect("email").to_lowercase());
            counted += row["count"].as_u64().expect("count");
            let offset = row["utcOffset"].as_str().unwrap_or("none").to_string();
            *found_offsets.entry(offset).or_default() += row["count"].as_u64().expect("count");
        }
    }
    assert_eq!(found_offsets, per_offset, "each commit counts once, under its author's UTC offset");
    assert_eq!(found_emails, emails, "every author email, and no other, has a commit row");
    assert_eq!(counted, commits, "each commit counts once, for its author");
}

#[test]
fn a_repository_and_its_commits_csv_give_the_same_contributors() {
    let csv_path = numpy_commits_csv();
    // numpy's first 2,000 commits (newest first) as a CSV and as a repository holding
    // the same authors, committers and times, made with `git fast-import`.
    let all = std::fs::read_to_string(&csv_path).expect("read the CSV");
    let subset: String = all.lines().take(2_001).flat_map(|line| [line, "\n"]).collect();
    let dir = tempfile::tempdir().expect("dir");
    let csv_file = dir.path().join("numpy-2000.csv");
    let mut reader = csv::Reader::from_reader(subset.as_bytes());
    let header = reader.headers().expect("header").clone();
    let column = |name: &str| header.iter().position(|h| h == name).expect("column");
    let (an, ae, at, cn, ce) = (
        column("author_name"),
        column("author_email"),
        column("authored_at"),
        column("committer_name"),
        column("committer_email"),
    );
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    // The repository's committers commit when their authors wrote, in the same zone; the
    // CSV says so in a committed_at column (without it, a committer's zone is unknown).
    let mut writer = csv::Writer::from_path(&csv_file).expect("create the CSV");
    writer.write_record(header.iter().chain(["committed_at"])).expect("header");
    for record in &records {
        writer.write_record(record.iter().chain([&record[at]])).expect("row");
    }
    writer.flush().expect("write the CSV");
    let mut stream = Vec::new();
    for record in records.iter().rev() {
        let time = time::OffsetDateTime::parse(&record[at], &time::format_description::well_known::Rfc3339)
            .expect("an RFC 3339 time");
        let offset = time.offset().whole_minutes();
        let zone = format!("{}{:02}{:02}", if offset < 0 { '-' } else { '+' }, offset.abs() / 60, offset.abs() % 60);
        let when = format!("{} {zone}", time.unix_timestamp());
        stream.extend_from_slice(b"commit refs/heads/main\n");
        stream.extend_from_slice(format!("author {} <{}> {when}\n", &record[an], &record[ae]).as_bytes());
        stream.extend_from_slice(format!("committer {} <{}> {when}\n", &record[cn], &record[ce]).as_bytes());
        stream.extend_from_slice(b"data 7\nCommit\n\n");
    }
    let repo = dir.path().join("numpy");
    std::fs::create_dir(&repo).expect("mkdir");
    git(&repo, &["init", "-q", "-b", "main"], &[]);
    let mut import = Command::new("git")
        .current_dir(&repo)
        .args(["fast-import", "--quiet"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("git fast-import");
    std::io::Write::write_all(&mut import.stdin.take().expect("stdin"), &stream).expect("feed git fast-import");
    assert!(import.wait().expect("git fast-import ends").success());

    let mut outputs = Vec::new();
    for (flag, path) in [("--git", &repo), ("--commits-csv", &csv_file)] {
        let out_file = dir.path().join(format!("{}.ndjson", &flag[2..]));
        let out = discover(&[
            flag.as_ref(),
            path.as_os_str(),
            "--integration".as_ref(),
            "7".as_ref(),
            "--out".as_ref(),
            out_file.as_os_str(),
        ]);
        assert!(out.status.success(), "{flag}: {}", text(&out.stderr));
        outputs.push(rows(&std::fs::read_to_string(&out_file).expect("the NDJSON file")));
    }
    assert!(outputs[0].len() > 100, "numpy's 2,000 commits have many contributors: {}", outputs[0].len());
    assert_eq!(outputs[0], outputs[1]);
}

#[test]
fn a_path_that_is_not_a_repository_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("dir");
    let plain = dir.path().join("not-a-repo");
    std::fs::create_dir(&plain).expect("mkdir");
    let missing = dir.path().join("missing");
    for path in [&plain, &missing] {
        let out =
            discover(&["--git".as_ref(), path.as_os_str(), "--integration".as_ref(), "1".as_ref(), "--out=-".as_ref()]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(&path.display().to_string()), "the message names the path: {stderr}");
        assert!(stderr.contains("--git"), "the message says what to pass: {stderr}");
    }
}

#[test]
fn uploading_without_a_key_names_the_flag_and_the_variable() {
    let csv = tempfile::NamedTempFile::new().expect("file");
    std::fs::write(csv.path(), "author_name,author_email,authored_at,committer_name,committer_email\n").expect("write");
    let out = discover(&["--commits-csv".as_ref(), csv.path().as_os_str(), "--integration".as_ref(), "1".as_ref()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "a missing key is a usage error: {stderr}");
    assert!(stderr.contains("--api-key") && stderr.contains("DEVID_API_KEY"), "{stderr}");
}

#[test]
fn the_api_key_never_shows_in_help_or_errors() {
    let secret = "pat.default.0123456789abcdef.c2VjcmV0LXRoYXQtbXVzdC1zdGF5LWhpZGRlbg";
    let csv = tempfile::NamedTempFile::new().expect("file");
    std::fs::write(
        csv.path(),
        "author_name,author_email,authored_at,committer_name,committer_email\nJane,jane@example.com,2024-05-01T00:00:00Z,Jane,jane@example.com\n",
    )
    .expect("write");
    let run = |args: &[&OsStr]| {
        Command::new(env!("CARGO_BIN_EXE_devid"))
            .arg("discover")
            .args(args)
            .env("DEVID_API_KEY", secret)
            // Nothing listens on port 1: the upload fails to connect.
            .env("DEVID_URL", "http://127.0.0.1:1")
            .output()
            .expect("run devid discover")
    };
    let help = run(&["--help".as_ref()]);
    assert!(help.status.success());
    let failed = run(&["--commits-csv".as_ref(), csv.path().as_os_str(), "--integration".as_ref(), "1".as_ref()]);
    assert_eq!(failed.status.code(), Some(3), "an unreachable server: {}", text(&failed.stderr));
    assert!(
        text(&failed.stderr).contains("Cannot talk to the devid server at http://127.0.0.1:1"),
        "{}",
        text(&failed.stderr)
    );
    for out in [&help, &failed] {
        let printed = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(!printed.contains("c2VjcmV0"), "the key's secret was printed: {printed}");
    }
}
