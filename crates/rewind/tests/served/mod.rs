//! A real `rewind serve` child for the tests in this directory: started
//! from a config file (optionally under `prlimit`), its URL read from the
//! line announcing it, every log line (stdout and stderr) collected, and
//! raw HTTP/1.1 over plain sockets for the requests a polite client would
//! never send.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Served {
    child: Child,
    pub url: String,
    pub addr: String,
    log: Arc<Mutex<Vec<String>>>,
}

/// `rewind serve --config <config>` in `dir`; `prefix` runs it under
/// another command (`["prlimit", "--nofile=256:256"]`).
pub fn serve(config: &Path, dir: &Path, prefix: &[&str], env: &[(&str, &str)]) -> Served {
    let binary = env!("CARGO_BIN_EXE_rewind");
    let mut command = match prefix.split_first() {
        Some((first, rest)) => {
            let mut command = Command::new(first);
            command.args(rest).arg(binary);
            command
        }
        None => Command::new(binary),
    };
    command
        .env_remove("REWIND_CONFIG")
        .env("RUST_LOG", "debug,hyper=info,h2=info,sqlx=info")
        .args(["serve", "--config"])
        .arg(config)
        .current_dir(dir)
        .stderr(Stdio::piped())
        .stdout(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("rewind serve starts");
    let log = Arc::new(Mutex::new(Vec::new()));
    let stdout = child.stdout.take().expect("stdout");
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let url = loop {
        let line = match lines.next() {
            Some(Ok(line)) => line,
            _ => panic!(
                "rewind serve exited before serving: {:#?}",
                log.lock().unwrap()
            ),
        };
        log.lock().unwrap().push(line.clone());
        if let Some(rest) = line.split("server.url=").nth(1) {
            break rest
                .split_whitespace()
                .next()
                .unwrap_or("")
                .trim_matches('"')
                .to_string();
        }
    };
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    let addr = url.trim_start_matches("http://").to_string();
    Served {
        child,
        url,
        addr,
        log,
    }
}

impl Served {
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// The child's process id (`/proc/PID/...`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_none()
    }

    /// SIGTERM, then every line it wrote.
    pub fn stop(mut self) -> Vec<String> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // The reader threads drain the pipes once the child is gone.
        std::thread::sleep(Duration::from_millis(200));
        self.log()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a raw exchange got back: the status and the body parsed as JSON.
#[derive(Debug)]
pub struct RawAnswer {
    pub status: u16,
    pub head: String,
    pub body: serde_json::Value,
}

/// Sends `request` as is, reads until the server closes or the answer is
/// complete (`Content-Length`), within `wait`.
pub fn exchange(addr: &str, request: &[u8], wait: Duration) -> RawAnswer {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.write_all(request).expect("send");
    read_answer(&mut stream, wait)
}

pub fn read_answer(stream: &mut TcpStream, wait: Duration) -> RawAnswer {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut received = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(error) => panic!(
                "no complete answer within {wait:?} ({error}); got {:?}",
                String::from_utf8_lossy(&received)
            ),
        }
        if let Some(answer) = complete(&received) {
            return answer;
        }
    }
    complete(&received).unwrap_or_else(|| {
        panic!(
            "connection closed without a complete answer: {:?}",
            String::from_utf8_lossy(&received)
        )
    })
}

fn complete(received: &[u8]) -> Option<RawAnswer> {
    let text = String::from_utf8_lossy(received);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    if body.len() < length {
        return None;
    }
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some(RawAnswer {
        status,
        head: head.to_string(),
        body: serde_json::from_str(&body[..length])
            .unwrap_or(serde_json::Value::String(body.to_string())),
    })
}

/// Whether the server closes `stream` (EOF or reset) within `wait`,
/// ignoring anything it sends first.
pub fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
}
