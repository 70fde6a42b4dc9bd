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

/// Start it and wait until it accepts connections.
pub fn serve() -> Serve {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(bora_bin())
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--workers",
            "2",
            "--db",
        ])
        .arg(dir.path().join("bora.db"))
        .spawn()
        .expect("cannot start bora serve");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "bora serve did not come up on port {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Serve {
        child,
        base: format!("http://127.0.0.1:{port}"),
        dir,
    }
}
