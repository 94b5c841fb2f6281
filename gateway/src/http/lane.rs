//! The listener's own loop, with a lane for status polls.
//!
//! Status polls are most of a registration day's requests and do little
//! work of their own: verify a token, read the snapshot, answer a few
//! hundred bytes. Through hyper, parsing every header into a map, the
//! connection's dispatch and the response's encoding cost about as much
//! as the poll itself. So each connection starts here: while its
//! requests are plain `GET /api/queue/status` on HTTP/1.1, the lane
//! parses them in place ([`httparse`], no header map beyond the three
//! headers a poll reads), answers them with [`super::status_direct`] (the
//! same handler, limits, headers and metrics as the routed path) and
//! writes the answer's bytes itself.
//!
//! The first request that is anything else (another route or method, a
//! body, an upgrade, `Expect`, HTTP/1.0, a head too large or malformed)
//! hands the connection, with the bytes already read, to hyper and the
//! router for the rest of its life, so every other request is served
//! exactly as before, and hyper gives its own answer to a malformed
//! request. Pipelined polls are answered in order; an answer waits in a
//! buffer until the polls already read are answered, then goes in one
//! write.
//!
//! Graceful shutdown: no new connections; an idle connection in the lane
//! closes, a poll being answered is answered (with `connection: close`),
//! and hyper finishes the connections it holds as it does.

use super::api::queue::{Status, QUEUE_HEADER};
use super::headers::json_answer_head;
use super::{poll_answer, router, service, PollAnswer, STATUS_ROUTE};
use crate::AppState;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;
use bytes::{Buf, BytesMut};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Headers a poll's request may carry at most for the lane to take it;
/// one with more goes to hyper (which allows 100).
const MAX_HEADERS: usize = 32;

/// A request head the lane keeps reading at most; a longer one goes to
/// hyper, which reads and judges it as it would any other (its own limit
/// is far larger).
const MAX_HEAD: usize = 16 * 1024;

/// How long a request head may take to arrive, from its first byte, before
/// the connection is closed: a client that sends a few bytes and stops, or
/// trickles them, holds nothing for long.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);

/// Answers are written out once this many bytes of them wait (a long
/// pipelined burst), and a buffer grown past it is not kept.
const OUTPUT_LIMIT: usize = 64 * 1024;

/// Polls answered in the lane since the process started (a relaxed count:
/// for tests and diagnostics; the request metrics count every poll).
static ANSWERED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many polls the lane has answered since the process started.
pub fn answered() -> u64 {
    ANSWERED.load(std::sync::atomic::Ordering::Relaxed)
}

/// The headers the poll's handler reads besides the queue token's (the
/// cookies that may carry it, the forwarded address); the lane copies
/// only these into a map, and takes the token's value in place.
static POLL_HEADERS: [HeaderName; 2] = [
    axum::http::header::COOKIE,
    HeaderName::from_static("x-forwarded-for"),
];

/// Room kept free in a connection's input before each read.
const READ_ROOM: usize = 2048;

/// Serves `listener` until `shutdown` resolves, then waits for the open
/// connections to finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let router = router(Arc::clone(&state));
    let stop = CancellationToken::new();
    let stopping = stop.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopping.cancel();
    });
    let connections = TaskTracker::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tokio::select! {
                        () = accept_failed(e) => continue,
                        () = stop.cancelled() => break,
                    }
                }
            },
            () = stop.cancelled() => break,
        };
        // Answers go out in one write each; nothing gains from waiting.
        let _ = stream.set_nodelay(true);
        connections.spawn(connection(
            stream,
            peer,
            Arc::clone(&state),
            router.clone(),
            stop.clone(),
        ));
    }
    drop(listener);
    connections.close();
    connections.wait().await;
    Ok(())
}

/// An accept that failed: the peer's fault (it reset before we took it)
/// costs nothing; anything else (out of descriptors) is logged and waited
/// out, as retrying at once would spin.
async fn accept_failed(e: io::Error) {
    use io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset | Interrupted
    ) {
        return;
    }
    tracing::error!(error = %e, "accepting a connection failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// One connection: polls in the lane, then (if anything else comes) hyper.
async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    state: AppState,
    router: axum::Router,
    stop: CancellationToken,
) {
    let mut input = BytesMut::with_capacity(READ_ROOM);
    let mut output = Vec::new();
    // When the head being read must be complete by.
    let mut head_due = None;
    loop {
        // Answer every complete poll already read, in order.
        loop {
            match head(&input) {
                Head::Poll {
                    len,
                    token,
                    headers,
                    close,
                } => {
                    let closing = close || stop.is_cancelled();
                    match poll_answer(&state, &headers, token, peer.ip()).await {
                        PollAnswer::Status { jar, status } => {
                            let tls = state.config.secure_cookies;
                            encode_status(&mut output, jar, &status, tls, closing);
                        }
                        PollAnswer::Other(response) => encode(&mut output, response, closing).await,
                    }
                    ANSWERED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    input.advance(len);
                    head_due = None;
                    if closing {
                        let _ = stream.write_all(&output).await;
                        let _ = stream.shutdown().await;
                        return;
                    }
                    if output.len() >= OUTPUT_LIMIT && !flush(&mut stream, &mut output).await {
                        return;
                    }
                }
                Head::Partial if input.len() < MAX_HEAD => break,
                Head::Partial | Head::Other => {
                    if !flush(&mut stream, &mut output).await {
                        return;
                    }
                    drop(output);
                    return hand_over(stream, input, peer, state, router, stop).await;
                }
            }
        }
        if !flush(&mut stream, &mut output).await {
            return;
        }
        // Answered heads were advanced past: this takes the buffer back
        // rather than reading into what is left of it a little at a time.
        input.reserve(READ_ROOM);
        // Between requests, or while a head is read (no request is being
        // answered): shutdown closes the connection, as hyper closes one
        // whose head it has not parsed.
        let read = if input.is_empty() {
            tokio::select! {
                read = stream.read_buf(&mut input) => read,
                () = stop.cancelled() => return,
            }
        } else {
            let due = *head_due.get_or_insert_with(|| tokio::time::Instant::now() + HEAD_TIMEOUT);
            tokio::select! {
                read = tokio::time::timeout_at(due, stream.read_buf(&mut input)) => match read {
                    Ok(read) => read,
                    Err(_) => return,
                },
                () = stop.cancelled() => return,
            }
        };
        match read {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Writes out the answers waiting in `output`; false when the connection
/// is gone. A buffer a burst grew past [`OUTPUT_LIMIT`] is let go.
async fn flush(stream: &mut TcpStream, output: &mut Vec<u8>) -> bool {
    if output.is_empty() {
        return true;
    }
    if stream.write_all(output).await.is_err() {
        return false;
    }
    if output.capacity() > OUTPUT_LIMIT {
        *output = Vec::new();
    } else {
        output.clear();
    }
    true
}

/// What the bytes at the front of a connection's input are.
#[derive(Debug)]
enum Head<'a> {
    /// A complete status poll the lane answers: the head's length, the
    /// queue token header's value (when it is sent and visible ASCII, as
    /// a header value must be to be read as text), the other headers the
    /// poll reads, and whether the client asked to close.
    Poll {
        len: usize,
        token: Option<&'a str>,
        headers: HeaderMap,
        close: bool,
    },
    /// Not yet a complete head.
    Partial,
    /// Anything else: hyper's.
    Other,
}

/// Reads the request head at the front of `input`.
fn head(input: &[u8]) -> Head<'_> {
    if input.is_empty() {
        return Head::Partial;
    }
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut slots);
    let len = match request.parse(input) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Head::Partial,
        Err(_) => return Head::Other,
    };
    // A query is the lane's only if hyper would have parsed it too.
    let is_poll = request.method == Some("GET")
        && request.version == Some(1)
        && request.path.is_some_and(|path| {
            path.strip_prefix(STATUS_ROUTE).is_some_and(|rest| {
                rest.is_empty()
                    || (rest.starts_with('?')
                        && axum::http::uri::PathAndQuery::try_from(path).is_ok())
            })
        });
    if !is_poll {
        return Head::Other;
    }
    let mut headers = HeaderMap::new();
    let mut token = None;
    let mut token_seen = false;
    let mut close = false;
    for header in request.headers.iter() {
        let name = header.name;
        if name.eq_ignore_ascii_case(QUEUE_HEADER) {
            // As a header map would: the first of several counts, and one
            // that is not visible ASCII is no token (httparse has refused
            // control bytes already).
            if !token_seen {
                token_seen = true;
                token = std::str::from_utf8(header.value)
                    .ok()
                    .filter(|v| v.is_ascii());
            }
        } else if name.eq_ignore_ascii_case("connection") {
            match header.value {
                v if v.eq_ignore_ascii_case(b"keep-alive") => {}
                v if v.eq_ignore_ascii_case(b"close") => close = true,
                // Upgrades and anything unusual: hyper's.
                _ => return Head::Other,
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            if header.value != b"0" {
                return Head::Other;
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            || name.eq_ignore_ascii_case("upgrade")
            || name.eq_ignore_ascii_case("expect")
        {
            return Head::Other;
        } else if let Some(kept) = POLL_HEADERS
            .iter()
            .find(|kept| name.eq_ignore_ascii_case(kept.as_str()))
        {
            let Ok(value) = HeaderValue::from_bytes(header.value) else {
                return Head::Other;
            };
            headers.append(kept.clone(), value);
        }
    }
    Head::Poll {
        len,
        token,
        headers,
        close,
    }
}

/// Appends a status answer to `output`: the same bytes as hyper would
/// write for [`super::api::queue::Status::secured_response`] (the prebuilt
/// JSON answer headers, the jar's cookies, the body), without building
/// the response.
fn encode_status(output: &mut Vec<u8>, jar: CookieJar, status: &Status, tls: bool, closing: bool) {
    let body = status.to_json();
    output.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
    output.extend_from_slice(json_answer_head(tls));
    // The jar writes its own `set-cookie` lines (only its changes).
    let cookies = axum::response::IntoResponse::into_response((jar, ()));
    for value in cookies.headers().get_all(axum::http::header::SET_COOKIE) {
        output.extend_from_slice(b"set-cookie: ");
        output.extend_from_slice(value.as_bytes());
        output.extend_from_slice(b"\r\n");
    }
    end_head(output, body.len(), closing);
    output.extend_from_slice(&body);
}

/// The head's last lines: `content-length`, `date`, `connection: close`
/// when closing, and the blank line.
fn end_head(output: &mut Vec<u8>, length: usize, closing: bool) {
    output.extend_from_slice(b"content-length: ");
    output.extend_from_slice(itoa::Buffer::new().format(length).as_bytes());
    output.extend_from_slice(b"\r\ndate: ");
    output.extend_from_slice(&date::now());
    if closing {
        output.extend_from_slice(b"\r\nconnection: close");
    }
    output.extend_from_slice(b"\r\n\r\n");
}

/// Appends `response` to `output` as HTTP/1.1: status line, its headers,
/// `content-length`, `date` (and `connection: close` when closing), body.
async fn encode(output: &mut Vec<u8>, response: Response, closing: bool) {
    let (parts, body) = response.into_parts();
    // The poll's answers are whole bodies: this resolves at once.
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    output.extend_from_slice(status_line(parts.status).as_bytes());
    for (name, value) in &parts.headers {
        if name == axum::http::header::CONTENT_LENGTH || name == axum::http::header::CONNECTION {
            continue;
        }
        output.extend_from_slice(name.as_str().as_bytes());
        output.extend_from_slice(b": ");
        output.extend_from_slice(value.as_bytes());
        output.extend_from_slice(b"\r\n");
    }
    end_head(output, body.len(), closing);
    output.extend_from_slice(&body);
}

/// `HTTP/1.1 200 OK\r\n` and the like.
fn status_line(status: StatusCode) -> std::borrow::Cow<'static, str> {
    if status == StatusCode::OK {
        return "HTTP/1.1 200 OK\r\n".into();
    }
    format!(
        "HTTP/1.1 {} {}\r\n",
        status.as_str(),
        status.canonical_reason().unwrap_or("")
    )
    .into()
}

/// The `date` header's value, formatted once a second per thread.
mod date {
    use std::cell::RefCell;
    use std::time::{SystemTime, UNIX_EPOCH};

    /// `Sun, 06 Nov 1994 08:49:37 GMT`.
    const LEN: usize = 29;

    thread_local! {
        static CACHED: RefCell<(u64, [u8; LEN])> = const { RefCell::new((u64::MAX, [0; LEN])) };
    }

    pub(super) fn now() -> [u8; LEN] {
        let now = SystemTime::now();
        let second = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        CACHED.with(|cached| {
            let mut cached = cached.borrow_mut();
            if cached.0 != second {
                let text = httpdate::fmt_http_date(now);
                if let Ok(bytes) = <[u8; LEN]>::try_from(text.as_bytes()) {
                    *cached = (second, bytes);
                }
            }
            cached.1
        })
    }
}

/// Gives the connection to hyper and the router, with the bytes the lane
/// has read and not answered, and serves it until it closes.
async fn hand_over(
    stream: TcpStream,
    read: BytesMut,
    peer: SocketAddr,
    state: AppState,
    router: axum::Router,
    stop: CancellationToken,
) {
    use tower::ServiceExt;
    let io = hyper_util::rt::TokioIo::new(Rewind {
        read: read.freeze(),
        stream,
    });
    let service = service(state, router, peer).map_request(
        |request: axum::http::Request<hyper::body::Incoming>| request.map(axum::body::Body::new),
    );
    let service = hyper_util::service::TowerToHyperService::new(service);
    let mut builder = hyper::server::conn::http1::Builder::new();
    // Handed over while shutting down: the request the lane read is
    // answered, then the connection closes (a graceful shutdown now would
    // find it idle, before hyper read that request, and close it unanswered).
    let stopping = stop.is_cancelled();
    builder.keep_alive(!stopping);
    let connection = builder.serve_connection(io, service).with_upgrades();
    let mut connection = std::pin::pin!(connection);
    if stopping {
        let _ = connection.await;
        return;
    }
    tokio::select! {
        // First: hyper takes the bytes already read before any shutdown.
        biased;
        _ = connection.as_mut() => return,
        () = stop.cancelled() => {}
    }
    connection.as_mut().graceful_shutdown();
    let _ = connection.await;
}

/// A connection whose first bytes were already read: they are read again
/// first, then the stream.
struct Rewind {
    read: bytes::Bytes,
    stream: TcpStream,
}

impl AsyncRead for Rewind {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.read.is_empty() {
            let n = self.read.len().min(buf.remaining());
            buf.put_slice(&self.read[..n]);
            self.read.advance(n);
            if self.read.is_empty() {
                // Let the lane's buffer go for the connection's life.
                self.read = bytes::Bytes::new();
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poll_headers(head: Head<'_>) -> (usize, Option<&str>, HeaderMap, bool) {
        match head {
            Head::Poll {
                len,
                token,
                headers,
                close,
            } => (len, token, headers, close),
            other => panic!("expected a poll, got {other:?}"),
        }
    }

    #[test]
    fn a_plain_poll_is_the_lanes_with_only_the_headers_a_poll_reads() {
        let request = b"GET /api/queue/status HTTP/1.1\r\nHost: x\r\nX-Queue-Token: abc\r\n\
            User-Agent: t\r\nCookie: a=1\r\nCookie: b=2\r\nX-Forwarded-For: 10.0.0.1\r\n\r\nGET /next";
        let (len, token, headers, close) = poll_headers(head(request));
        assert_eq!(&request[len..], b"GET /next");
        assert!(!close);
        assert_eq!(token, Some("abc"));
        assert_eq!(headers.len(), 3);
        assert_eq!(headers.get_all("cookie").iter().count(), 2);
        assert_eq!(headers["x-forwarded-for"], "10.0.0.1");
        assert!(headers.get("host").is_none());
    }

    #[test]
    fn a_query_and_connection_close_stay_in_the_lane() {
        let (_, token, _, close) = poll_headers(head(
            b"GET /api/queue/status?x=1 HTTP/1.1\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        ));
        assert!(close);
        assert_eq!(token, None);
    }

    #[test]
    fn the_first_token_counts_and_one_not_in_ascii_is_none() {
        let request =
            b"GET /api/queue/status HTTP/1.1\r\nx-queue-token: one\r\nX-QUEUE-TOKEN: two\r\n\r\n";
        let (_, token, _, _) = poll_headers(head(request));
        assert_eq!(token, Some("one"));
        let request = b"GET /api/queue/status HTTP/1.1\r\nX-Queue-Token: \xc3\xa9t\xc3\xa9\r\n\r\n";
        let (_, token, _, _) = poll_headers(head(request));
        assert_eq!(token, None);
        // A first token that is no token is not replaced by a second.
        let request = b"GET /api/queue/status HTTP/1.1\r\nX-Queue-Token: \xc3\xa9\r\nX-Queue-Token: two\r\n\r\n";
        let (_, token, _, _) = poll_headers(head(request));
        assert_eq!(token, None);
    }

    #[test]
    fn everything_else_goes_to_hyper() {
        for request in [
            &b"POST /api/queue/status HTTP/1.1\r\n\r\n"[..],
            b"HEAD /api/queue/status HTTP/1.1\r\n\r\n",
            b"GET /api/queue/status HTTP/1.0\r\n\r\n",
            b"GET /api/queue/statusx HTTP/1.1\r\n\r\n",
            b"GET /api/queue/status?q=<\"> HTTP/1.1\r\n\r\n",
            b"GET /api/queue/join HTTP/1.1\r\n\r\n",
            b"GET http://h/api/queue/status HTTP/1.1\r\n\r\n",
            b"GET /api/queue/status HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
            b"GET /api/queue/status HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET /api/queue/status HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
            b"GET /api/queue/status HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
            b"GET /api/queue/status HTTP/1.1\r\nX-Queue-Token: a\x01b\r\n\r\n",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01",
        ] {
            assert!(
                matches!(head(request), Head::Other),
                "{:?}",
                String::from_utf8_lossy(request)
            );
        }
    }

    #[test]
    fn a_head_cut_short_waits_for_the_rest() {
        let request = b"GET /api/queue/status HTTP/1.1\r\nX-Queue-Token: abc\r\n\r\n";
        for cut in 0..request.len() {
            assert!(
                matches!(head(&request[..cut]), Head::Partial),
                "cut at {cut}"
            );
        }
    }

    #[tokio::test]
    async fn an_answer_is_encoded_with_its_headers_length_and_date() {
        let mut response = Response::new(axum::body::Body::from("{\"a\":1}"));
        *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        response
            .headers_mut()
            .insert("retry-after", HeaderValue::from_static("2"));
        let mut output = Vec::new();
        encode(&mut output, response, true).await;
        let text = String::from_utf8(output).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let mut lines = head.split("\r\n");
        assert_eq!(lines.next(), Some("HTTP/1.1 429 Too Many Requests"));
        let lines: Vec<&str> = lines.collect();
        assert!(lines.contains(&"retry-after: 2"));
        assert!(lines.contains(&"content-length: 7"));
        assert!(lines.contains(&"connection: close"));
        let date = lines.iter().find_map(|l| l.strip_prefix("date: ")).unwrap();
        assert!(httpdate::parse_http_date(date).is_ok(), "{date}");
        assert_eq!(body, "{\"a\":1}");
    }
}
