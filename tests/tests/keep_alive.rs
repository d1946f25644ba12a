//! Persistent connections to the app API never lose a request: every route reads
//! or rejects its body, so a client on a keep-alive connection always gets its
//! answer and can send the next request on the same connection.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use actor_e2e_tests::Host;

const CONNECTIONS: usize = 4;
const REQUESTS_PER_CONNECTION: usize = 750;

/// One keep-alive connection speaking HTTP/1.1 by hand, so nothing hides a close.
struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

/// How one exchange ended.
#[derive(Debug)]
enum Outcome {
    Answered(u16),
    /// The server closed or broke the connection before answering.
    Dropped(String),
}

impl Conn {
    fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("read timeout");
        stream.set_nodelay(true).expect("nodelay");
        Conn {
            reader: BufReader::new(stream.try_clone().expect("clone")),
            writer: stream,
        }
    }

    fn exchange(&mut self, method: &str, path: &str, body: &str) -> Outcome {
        // Headers and body in two writes, as many clients send them: the body
        // may arrive after the server has routed the request.
        let head = format!(
            "{method} {path} HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        for part in [head.as_bytes(), body.as_bytes()] {
            if let Err(e) = self.writer.write_all(part) {
                return Outcome::Dropped(format!("write: {e}"));
            }
        }
        let mut status_line = String::new();
        match self.reader.read_line(&mut status_line) {
            Ok(0) => return Outcome::Dropped("closed before the status line".into()),
            Ok(_) => {}
            Err(e) => return Outcome::Dropped(format!("read: {e}")),
        }
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let mut length = None;
        let mut close = false;
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line).unwrap_or(0) == 0 {
                return Outcome::Dropped("closed inside the headers".into());
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').expect("header line");
            let (name, value) = (name.to_ascii_lowercase(), value.trim());
            if name == "content-length" {
                length = value.parse::<usize>().ok();
            }
            if name == "connection" && value.eq_ignore_ascii_case("close") {
                close = true;
            }
        }
        let mut body = vec![0; length.expect("every answer has a content-length")];
        if let Err(e) = self.reader.read_exact(&mut body) {
            return Outcome::Dropped(format!("body: {e}"));
        }
        if close {
            return Outcome::Dropped(format!("{status} with connection: close"));
        }
        Outcome::Answered(status)
    }
}

#[test]
fn thousands_of_requests_with_ignored_bodies_on_persistent_connections_all_answered() {
    let host = Host::start(&["--workload", "none"]);
    let app = host.app;
    let body = format!(r#"{{"ignored": "{}"}}"#, "x".repeat(20_000));
    let workers: Vec<_> = (0..CONNECTIONS)
        .map(|c| {
            let body = body.clone();
            std::thread::spawn(move || {
                let mut conn = Conn::open(app);
                let mut drops = Vec::new();
                let mut unexpected = Vec::new();
                for i in 0..REQUESTS_PER_CONNECTION {
                    let key = format!("ka-{c}-{}", i % 25);
                    let (method, path, expect): (&str, String, &[u16]) = match i % 6 {
                        0 => ("POST", format!("/actors/counter/{key}"), &[200]),
                        1 => ("POST", format!("/actors/counter/{key}/sleep"), &[200, 404]),
                        2 => ("DELETE", format!("/actors/counter/{key}"), &[200, 404]),
                        3 => ("PUT", "/actors".to_owned(), &[405]),
                        4 => ("POST", "/no/such/route".to_owned(), &[404]),
                        _ => (
                            "POST",
                            format!("/actors/counter/{key}/actions/increment"),
                            &[200, 404],
                        ),
                    };
                    let body = if i % 6 == 5 { "{}" } else { body.as_str() };
                    match conn.exchange(method, &path, body) {
                        Outcome::Answered(status) if expect.contains(&status) => {}
                        Outcome::Answered(status) => {
                            unexpected.push(format!("{method} {path}: {status}"))
                        }
                        Outcome::Dropped(why) => {
                            drops.push(format!("request {i} {method} {path}: {why}"));
                            conn = Conn::open(app);
                        }
                    }
                }
                (drops, unexpected)
            })
        })
        .collect();
    let mut drops = Vec::new();
    let mut unexpected = Vec::new();
    for w in workers {
        let (d, u) = w.join().unwrap();
        drops.extend(d);
        unexpected.extend(u);
    }
    assert!(
        drops.is_empty(),
        "{} of {} requests lost their connection: {:?}",
        drops.len(),
        CONNECTIONS * REQUESTS_PER_CONNECTION,
        &drops[..drops.len().min(5)]
    );
    assert!(unexpected.is_empty(), "{unexpected:?}");
}

#[test]
fn an_oversized_body_is_refused_and_the_connection_says_it_closes() {
    let host = Host::start(&["--workload", "none"]);
    // Declares 2 MiB and sends only the headers: the refusal must come from the
    // declaration, and say that the connection closes.
    let mut stream = TcpStream::connect(host.app).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "POST /actors/counter/big/actions/increment HTTP/1.1\r\nhost: test\r\ncontent-length: {}\r\n\r\n",
        2 << 20
    )
    .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let head = answer.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 413"), "{answer}");
    assert!(head.contains("connection: close"), "{answer}");
    assert!(answer.contains(r#"{"error":"#), "{answer}");

    // A body within the limit on a route that ignores it: the connection stays.
    let mut conn = Conn::open(host.app);
    let within = "y".repeat(64 << 10);
    for _ in 0..3 {
        let outcome = conn.exchange("POST", "/actors/counter/big", &within);
        assert!(matches!(outcome, Outcome::Answered(200)), "{outcome:?}");
    }
}
