//! The real `bora serve` binary on a free port over a temporary database,
//! for the tests that drive it from outside (the bora client,
//! python-mistralclient). The test script sets `BORA_BIN`.
#![allow(dead_code)]

use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// An environment variable the test script sets; a clear panic without it.
pub fn required_env(name: &str, hint: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: {hint}"))
}

/// The `bora` binary.
pub fn bora_bin() -> String {
    required_env(
        "BORA_BIN",
        "run scripts/test, or set it to $CARGO_TARGET_DIR/debug/bora after `cargo build -p bora-cli`",
    )
}

/// `bora serve` on a free port over a temporary database; killed on drop.
pub struct Serve {
    child: Child,
    /// `http://127.0.0.1:PORT` (no `/v2`).
    pub base: String,
    pub dir: tempfile::TempDir,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start it on a port the server picks itself (`127.0.0.1:0`) and read the
/// address from the line it prints when it listens: two tests can never be
/// handed the same port, as they could be by a probe-then-bind "free port".
pub fn serve() -> Serve {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(bora_bin());
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--workers", "2", "--db"])
        .arg(dir.path().join("bora.db"));
    let (child, base) = spawn_serve(command, None);
    Serve { child, base, dir }
}

/// Spawn a `bora serve` command, wait until it listens and answers, and
/// return it with its base URL (`http://127.0.0.1:PORT`), read from the line
/// it prints when it listens. Its log (stderr) keeps being read so it never
/// blocks on a full pipe, and is copied to `log` when given.
pub fn spawn_serve(mut command: Command, log: Option<&std::path::Path>) -> (Child, String) {
    use std::io::{BufRead, Write};
    let mut child = command
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("cannot start bora serve");
    let stderr = child.stderr.take().expect("piped stderr");
    let mut lines = std::io::BufReader::new(stderr).lines();
    let mut log = log.map(|path| std::fs::File::create(path).expect("create the log file"));
    let base = loop {
        let line = lines
            .next()
            .expect("bora serve exited before listening")
            .expect("reading bora serve's stderr");
        if let Some(file) = log.as_mut() {
            let _ = writeln!(file, "{line}");
        }
        if let Some(rest) = line.split(" API on ").nth(1) {
            break rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
        }
    };
    std::thread::spawn(move || {
        for line in lines.by_ref().map_while(Result::ok) {
            if let Some(file) = log.as_mut() {
                let _ = writeln!(file, "{line}");
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let address = base.trim_start_matches("http://").to_string();
    while std::net::TcpStream::connect(&address).is_err() {
        assert!(
            Instant::now() < deadline,
            "bora serve did not come up at {base}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, base)
}

/// The first task of execution `id`, once there is one: `task_list(id)`
/// runs a client's `task-list ID -f json` (polled for up to 20 s).
pub fn first_task(id: &str, task_list: impl Fn(&str) -> serde_json::Value) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let tasks = task_list(id);
        if let Some(t) = tasks.as_array().and_then(|a| a.first()) {
            return t.clone();
        }
        assert!(Instant::now() < deadline, "no task in {id}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
