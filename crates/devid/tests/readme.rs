//! The README, pasted: every shell block runs as written, in order, in one shell, in an
//! empty directory, against the real `devid` on the PATH; what each block prints must
//! match the answer block shown after it. So the README's walk-through cannot drift
//! from what devid does, and a block that fails when pasted fails here.
//!
//! A block's fence names how it is run: ```` ```sh ```` runs in the walk-through shell
//! ("terminal 2"); ```` ```sh terminal-1 ```` is the server's terminal, so the server
//! running there is stopped (as with Ctrl-C) and the block started in its place;
//! ```` ```sh install ````, ```` ```sh tests ````, ```` ```sh postgres ```` and
//! ```` ```sh fuzz ```` are not run (this test has the binary already, is itself the
//! test run, and has neither PostgreSQL nor nightly Rust). An answer block is
//! ```` ```json answer ```` or ```` ```text answer ````: whitespace is not compared and
//! `…` matches anything. Only two things are substituted: the key (the line `KEY=…`,
//! which the reader edits) and the port (8080 may be taken here).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

const README: &str = include_str!("../../../README.md");
const DONE: &str = "@@readme-block-done@@";
/// Longest one block may take; the slowest runs a few small requests.
const BLOCK_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct Block {
    info: String,
    body: String,
    line: usize,
}

fn blocks(markdown: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in markdown.lines().enumerate() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(info)) => {
                open = Some(Block { info: info.trim().to_string(), body: String::new(), line: i + 1 })
            }
            (Some(_), Some("")) => out.extend(open.take()),
            (Some(block), _) => {
                block.body.push_str(line);
                block.body.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(open.is_none(), "the README has an unclosed code block");
    out
}

/// `expected` with `…` as a wildcard, ignoring all whitespace on both sides.
fn matches(expected: &str, actual: &str) -> bool {
    let squash = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    let (expected, actual) = (squash(expected), squash(actual));
    let parts: Vec<&str> = expected.split('…').collect();
    let Some(rest) = actual.strip_prefix(parts[0]) else { return false };
    if parts.len() == 1 {
        return rest.is_empty();
    }
    let mut rest = rest;
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(parts[parts.len() - 1])
}

/// The walk-through shell: one bash, fed block by block, like a terminal.
struct Shell {
    child: Child,
    stdin: ChildStdin,
    output: Receiver<String>,
}

impl Shell {
    fn start(dir: &Path, path: &str) -> Shell {
        let mut child = Command::new("bash")
            .args(["--noprofile", "--norc"])
            .current_dir(dir)
            .env("PATH", path)
            .env_remove("DEVID_DATABASE")
            .env_remove("DEVID_LISTEN")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("bash is installed");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, output) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut shell = Shell { child, stdin, output };
        // Stricter than a terminal: any failing command fails the test.
        shell.send("set -euo pipefail\n");
        shell
    }

    fn send(&mut self, text: &str) {
        self.stdin.write_all(text.as_bytes()).expect("write to bash");
        self.stdin.flush().expect("flush");
    }

    /// Runs `script`; returns what it printed on stdout and stderr together.
    fn run(&mut self, script: &str, block: &Block) -> String {
        self.send(&format!("{{\n{script}\n}} 2>&1\nprintf '\\n%s\\n' '{DONE}'\n"));
        let mut printed = String::new();
        loop {
            match self.output.recv_timeout(BLOCK_TIMEOUT) {
                Ok(line) if line == DONE => return printed,
                Ok(line) => {
                    printed.push_str(&line);
                    printed.push('\n');
                }
                Err(_) => panic!(
                    "README block at line {} failed or hung when pasted (a command exited non-zero or bash ended):\n{}\nit printed:\n{printed}",
                    block.line, block.body
                ),
            }
        }
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What runs in terminal 1: a process group, so that "Ctrl-C" reaches every process.
struct Terminal1 {
    child: Child,
    address: String,
}

impl Terminal1 {
    fn start(dir: &Path, path: &str, block: &Block) -> Terminal1 {
        let mut child = Command::new("bash")
            .args(["--noprofile", "--norc", "-euo", "pipefail", "-c", &block.body])
            .current_dir(dir)
            .env("PATH", path)
            .env("DEVID_LISTEN", "127.0.0.1:0")
            .env("RUST_LOG", "info")
            .env_remove("DEVID_DATABASE")
            .env_remove("DEVID_FIRST_KEY_FILE")
            .env_remove("DEVID_LOG_FORMAT")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("start the terminal-1 block");
        let stderr = child.stderr.take().expect("stderr");
        // Owned from here on, so that a failure below still ends the process group.
        let mut terminal = Terminal1 { child, address: String::new() };
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut seen = Vec::new();
        while terminal.address.is_empty() {
            let line = lines.recv_timeout(BLOCK_TIMEOUT).unwrap_or_else(|_| {
                panic!("the terminal-1 block at line {} did not start devid:\n{}\n{seen:#?}", block.line, block.body)
            });
            if let Some(rest) = line.split("address=").nth(1) {
                terminal.address = rest.split_whitespace().next().unwrap_or_default().to_string();
            }
            seen.push(line);
        }
        terminal
    }

    /// Ctrl-C: SIGINT to the whole group, then devid must exit 0.
    fn stop(mut self) {
        let group = format!("-{}", self.child.id());
        assert!(Command::new("kill").args(["-INT", "--", &group]).status().expect("kill").success());
        for _ in 0..200 {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(status.success(), "devid serve exited with {status} on Ctrl-C");
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("devid serve did not stop within 10 s of Ctrl-C");
    }
}

impl Drop for Terminal1 {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", self.child.id())]).status();
            let _ = self.child.wait();
        }
    }
}

use std::os::unix::process::CommandExt;

#[test]
fn the_readme_works_when_pasted_in_order() {
    let dir = tempfile::tempdir().expect("an empty directory, as on a fresh machine");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_devid")).parent().expect("the binary's directory");
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let all = blocks(README);
    let mut shell = Shell::start(dir.path(), &path);
    let mut server: Option<Terminal1> = None;
    let (mut ran, mut answered, mut servers) = (0, 0, 0);

    for (i, block) in all.iter().enumerate() {
        let mut words = block.info.split_whitespace();
        if words.next() != Some("sh") {
            continue;
        }
        match words.next() {
            Some("install" | "tests" | "postgres" | "fuzz") => continue,
            Some("terminal-1") => {
                if let Some(running) = server.take() {
                    running.stop();
                }
                server = Some(Terminal1::start(dir.path(), &path, block));
                servers += 1;
                continue;
            }
            Some(other) => panic!("README block at line {} has an unknown tag `{other}`", block.line),
            None => {}
        }
        let address =
            &server.as_ref().unwrap_or_else(|| panic!("block at line {} runs before the server", block.line)).address;
        let script: String = block
            .body
            .lines()
            .map(|line| {
                if line.starts_with("KEY=") {
                    let key = std::fs::read_to_string(dir.path().join("devid.db.first-admin-key"))
                        .expect("the first start wrote the first admin key to its file");
                    format!("KEY={}", key.trim())
                } else {
                    line.replace("127.0.0.1:8080", address)
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let printed = shell.run(&script, block);
        ran += 1;
        let answer = all.get(i + 1).filter(|next| next.info.ends_with(" answer"));
        match answer {
            Some(answer) => {
                assert!(
                    matches(&answer.body, &printed),
                    "README block at line {} printed\n{printed}\nbut the README shows (line {})\n{}",
                    block.line,
                    answer.line,
                    answer.body
                );
                answered += 1;
            }
            None => assert!(
                printed.trim().is_empty(),
                "README block at line {} printed something the README does not show:\n{printed}",
                block.line
            ),
        }
    }
    if let Some(running) = server.take() {
        running.stop();
    }
    assert!(servers >= 2 && ran >= 8 && answered >= 7, "the walk-through is still there: {servers} {ran} {answered}");
}

#[test]
fn answers_match_with_wildcards_and_any_whitespace() {
    assert!(matches("{\"a\":1,\n \"t\":\"…\"}", "{\"a\":1,\"t\":\"2026-01-01\"}"));
    assert!(matches("a…c…e", "abcde"));
    assert!(!matches("a…c", "abd"));
    assert!(!matches("abc", "abcd"), "anchored at the end");
    assert!(!matches("…b", "bc"));
    assert!(!matches("{\"created\":2}", ""), "an empty output never matches an answer");
}
