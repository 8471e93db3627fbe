//! The real binary: it starts, serves its metadata, refuses a broken configuration with a
//! useful message, and stops cleanly on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A SQLite database in a directory of its own, removed when the test ends (also when it
/// fails).
struct TempDb(std::path::PathBuf);

impl TempDb {
    fn new() -> Self {
        Self(std::env::temp_dir().join(format!(
            "authz-smoke-{}-{}",
            std::process::id(),
            free_port()
        )))
    }

    fn url(&self) -> String {
        format!("sqlite://{}/authz.db", self.0.display())
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn binary_serves_metadata_and_stops_on_sigterm() {
    let db = TempDb::new();
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_authz-server"))
        .arg("serve")
        .env("AUTHZ_BIND", format!("127.0.0.1:{port}"))
        .env("AUTHZ_ISSUER", &issuer)
        .env("AUTHZ_DATABASE_URL", db.url())
        .env_remove("DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.starts_with(&format!(
            "authz-server listening on http://127.0.0.1:{port}"
        )),
        "{line}"
    );
    let server = Server(child);

    let body = http_get(port, "/.well-known/oauth-authorization-server");
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains(&format!("\"issuer\":\"{issuer}\"")));

    let pid = server.0.id();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let mut server = server;
    let status = server.0.wait().unwrap();
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
}

#[test]
fn broken_configuration_is_refused_with_what_to_change() {
    let db = TempDb::new();
    for (issuer, want) in [
        ("http://127.0.0.1:8001/", "trailing slash"),
        ("http://auth.example.com", "AUTHZ_ALLOW_INSECURE_ISSUER"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_authz-server"))
            .arg("serve")
            .env("AUTHZ_ISSUER", issuer)
            .env("AUTHZ_DATABASE_URL", db.url())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{issuer}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{issuer}: {err}");
    }
}

fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}
