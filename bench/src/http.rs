//! A minimal HTTP/1.1 keep-alive client for the load generator: one TCP connection per load
//! task, requests written as one pre-built buffer (request line, headers and body), answers
//! read into a reused buffer and parsed just enough for the status, `Content-Length` and
//! `Connection: close`.
//!
//! Why not reqwest or hyper's pool: on this 2-core machine the generator shares the CPU with
//! the api it measures. A general client costs ~30 µs of CPU per request (measured: 0.3 cores
//! at 10,800 requests/s); this one does a write and usually one read per request, which leaves
//! that CPU to the system under test. It speaks only what `pulse-api` answers: plain HTTP/1.1
//! with a `Content-Length` (chunked answers are decoded too, for robustness); no TLS, no
//! redirects, no HTTP/2.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Where requests go: `http://host:port[/prefix]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `host:port`, as connected to and sent in `Host`.
    pub authority: String,
    /// Path prefix without a trailing slash (empty for the root).
    pub prefix: String,
}

impl Target {
    pub fn parse(url: &str) -> Result<Self> {
        let rest = url
            .strip_prefix("http://")
            .context("the URL must start with http:// (the generator speaks plain HTTP/1.1 only)")?;
        let (authority, path) = match rest.find('/') {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, ""),
        };
        if authority.is_empty() {
            bail!("the URL has no host");
        }
        let authority = if authority.contains(':') && !authority.ends_with(']') {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        Ok(Self {
            authority,
            prefix: path.trim_end_matches('/').to_owned(),
        })
    }
}

/// The bytes of a complete `POST` request with a JSON body.
pub fn post_request(target: &Target, path: &str, auth: &str, body: &[u8]) -> Bytes {
    let head = format!(
        "POST {}{path} HTTP/1.1\r\nHost: {}\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        target.prefix,
        target.authority,
        body.len()
    );
    let mut request = Vec::with_capacity(head.len() + body.len());
    request.extend_from_slice(head.as_bytes());
    request.extend_from_slice(body);
    Bytes::from(request)
}

/// An answer: status code and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// How a request failed before an answer came.
#[derive(Debug)]
pub enum Failure {
    Timeout,
    Io(String),
}

/// One keep-alive connection, opened on first use and again after any failure or
/// `Connection: close`.
pub struct Connection {
    authority: String,
    stream: Option<TcpStream>,
    buffer: Vec<u8>,
}

impl Connection {
    pub fn new(target: &Target) -> Self {
        Self {
            authority: target.authority.clone(),
            stream: None,
            buffer: Vec::with_capacity(16 * 1024),
        }
    }

    /// Sends `request` and reads the answer, within `timeout` (connecting included).
    pub async fn send(&mut self, request: &[u8], timeout: Duration) -> Result<Answer, Failure> {
        match tokio::time::timeout(timeout, self.exchange(request)).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(error)) => {
                self.stream = None;
                Err(Failure::Io(error.to_string()))
            }
            Err(_) => {
                self.stream = None;
                Err(Failure::Timeout)
            }
        }
    }

    async fn exchange(&mut self, request: &[u8]) -> std::io::Result<Answer> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(&self.authority).await?;
            stream.set_nodelay(true)?;
            self.stream = Some(stream);
        }
        let Some(stream) = self.stream.as_mut() else {
            return Err(std::io::Error::other("no connection"));
        };
        stream.write_all(request).await?;
        self.buffer.clear();
        let head_end = loop {
            if let Some(end) = find(&self.buffer, b"\r\n\r\n") {
                break end + 4;
            }
            read_more(stream, &mut self.buffer).await?;
        };
        let head = parse_head(&self.buffer[..head_end])?;
        let body = match head.length {
            BodyLength::Exactly(length) => {
                while self.buffer.len() < head_end + length {
                    read_more(stream, &mut self.buffer).await?;
                }
                self.buffer[head_end..head_end + length].to_vec()
            }
            BodyLength::Chunked => read_chunked(stream, &mut self.buffer, head_end).await?,
        };
        if head.close {
            self.stream = None;
        }
        Ok(Answer {
            status: head.status,
            body,
        })
    }
}

async fn read_more(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> std::io::Result<()> {
    let before = buffer.len();
    buffer.reserve(8 * 1024);
    let read = stream.read_buf(buffer).await?;
    if read == 0 || buffer.len() == before {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed mid-answer",
        ));
    }
    Ok(())
}

async fn read_chunked(stream: &mut TcpStream, buffer: &mut Vec<u8>, mut at: usize) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = loop {
            if let Some(end) = find(&buffer[at..], b"\r\n") {
                break at + end;
            }
            read_more(stream, buffer).await?;
        };
        let size_text = std::str::from_utf8(&buffer[at..line_end]).unwrap_or_default();
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| invalid("bad chunk size"))?;
        at = line_end + 2;
        // The chunk, then its CRLF (for the last, zero-size chunk: the CRLF ending the trailers,
        // which we do not expect and do not parse).
        while buffer.len() < at + size + 2 {
            read_more(stream, buffer).await?;
        }
        body.extend_from_slice(&buffer[at..at + size]);
        at += size + 2;
        if size == 0 {
            return Ok(body);
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum BodyLength {
    Exactly(usize),
    Chunked,
}

#[derive(Debug, PartialEq, Eq)]
struct Head {
    status: u16,
    length: BodyLength,
    close: bool,
}

fn invalid(message: &'static str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}

fn parse_head(head: &[u8]) -> std::io::Result<Head> {
    let text = std::str::from_utf8(head).map_err(|_| invalid("answer head is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    if !status_line.starts_with("HTTP/1.") {
        return Err(invalid("not an HTTP/1.x answer"));
    }
    let status = status_line
        .get(9..12)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| invalid("bad status line"))?;
    let mut length = None;
    let mut close = status_line.starts_with("HTTP/1.0");
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(BodyLength::Exactly(
                value.parse().map_err(|_| invalid("bad Content-Length"))?,
            ));
        } else if name.eq_ignore_ascii_case("transfer-encoding") && value.to_ascii_lowercase().contains("chunked") {
            length = Some(BodyLength::Chunked);
        } else if name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close");
        }
    }
    Ok(Head {
        status,
        // No length and not chunked: for the answers we get (204, 304, or a bodiless error) an
        // empty body.
        length: length.unwrap_or(BodyLength::Exactly(0)),
        close,
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[test]
    fn targets_parse_host_port_and_prefix() {
        let t = Target::parse("http://127.0.0.1:8080").expect("valid");
        assert_eq!((t.authority.as_str(), t.prefix.as_str()), ("127.0.0.1:8080", ""));
        let t = Target::parse("http://localhost/pulse/").expect("valid");
        assert_eq!((t.authority.as_str(), t.prefix.as_str()), ("localhost:80", "/pulse"));
        assert!(Target::parse("https://x").is_err());
        assert!(Target::parse("http:///x").is_err());
    }

    #[test]
    fn heads_parse_status_length_and_close() {
        let head = parse_head(b"HTTP/1.1 202 Accepted\r\ncontent-length: 12\r\nConnection: close\r\n\r\n").expect("ok");
        assert_eq!(
            head,
            Head {
                status: 202,
                length: BodyLength::Exactly(12),
                close: true
            }
        );
        let head = parse_head(b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n").expect("ok");
        assert_eq!(
            (head.status, head.length, head.close),
            (503, BodyLength::Chunked, false)
        );
        assert!(parse_head(b"SSH-2.0\r\n\r\n").is_err());
    }

    #[tokio::test]
    async fn exchanges_over_keep_alive_and_reconnects_after_close() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            // First connection: two answers (one chunked), then close. Second: one answer.
            let answers: [&[&[u8]]; 2] = [
                &[
                    b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\nok",
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
                ],
                &[b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n"],
            ];
            for per_connection in answers {
                let (mut socket, _) = listener.accept().await.expect("accept");
                for answer in per_connection {
                    let mut request = vec![0u8; 4096];
                    let mut seen = 0;
                    while find(&request[..seen], b"{}").is_none() {
                        seen += socket.read(&mut request[seen..]).await.expect("read");
                    }
                    socket.write_all(answer).await.expect("write");
                }
            }
        });
        let target = Target::parse(&format!("http://{addr}")).expect("target");
        let request = post_request(&target, "/v1/events", "Bearer k", b"{}");
        assert!(request.starts_with(b"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1:"));
        let mut connection = Connection::new(&target);
        let timeout = Duration::from_secs(5);
        let first = connection.send(&request, timeout).await.expect("first");
        assert_eq!((first.status, first.body.as_slice()), (202, b"ok".as_slice()));
        let second = connection.send(&request, timeout).await.expect("second");
        assert_eq!((second.status, second.body.as_slice()), (200, b"abcde".as_slice()));
        let third = connection
            .send(&request, timeout)
            .await
            .expect("third, on a new connection");
        assert_eq!(third.status, 401);
        server.await.expect("server");
    }
}
