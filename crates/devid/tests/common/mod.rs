//! The real `devid` binary, as the CLI tests run it: one-shot commands on a database,
//! and `serve` on a free port, stopped like a service manager would when dropped.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// `devid <args> --database <db>`, ignoring any `DEVID_DATABASE` of the environment.
pub fn devid(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_devid"))
        .args(args)
        .arg("--database")
        .arg(db)
        .env_remove("DEVID_DATABASE")
        .output()
        .expect("run devid")
}

/// A new SQLite database at `db` with an admin key (returned) and GitHub as integration 1.
pub fn admin_key_and_github(db: &Path) -> String {
    let out = devid(db, &["keys", "create", "--scope", "admin"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let added = devid(db, &["integrations", "add", "--id", "1", "--type", "GITHUB", "--name", "gh"]);
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A running `devid serve`; dropped, it gets SIGTERM (a clean stop), then SIGKILL if
/// it has not stopped within 10 s.
pub struct Server {
    pub child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
            for _ in 0..100 {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Starts `devid serve` on `db` and a free port, and waits until it listens.
pub fn start(db: &Path) -> Server {
    start_with(db, &[])
}

/// [`start`] with more arguments for `serve`.
pub fn start_with(db: &Path, args: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_devid"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .arg("--database")
        .arg(db)
        .env("RUST_LOG", "info")
        .env_remove("DEVID_DATABASE")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn devid serve");
    let stderr = child.stderr.take().expect("stderr");
    // Owned from here on, so that a failure below still stops the process.
    let mut server = Server { child, base: String::new() };
    let (tx, rx) = std::sync::mpsc::channel();
    // Keeps draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    while server.base.is_empty() {
        let line = rx.recv_timeout(Duration::from_secs(60)).expect("devid serve started");
        if let Some(rest) = line.split("address=").nth(1) {
            server.base = format!("http://{}", rest.split_whitespace().next().unwrap_or_default());
        }
    }
    server
}
