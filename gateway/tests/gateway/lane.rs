//! The listener's poll lane over raw TCP: status polls answered in place,
//! anything else handed to hyper with the bytes already read, in order,
//! on one connection, as real clients send them (pipelined, cut into
//! pieces, with cookies, with a body, over HTTP/1.0), and a shutdown that
//! idle connections do not hold up.

use crate::*;
use enrollment::RoundId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One answer read off a connection.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
}

/// Reads answers off `bytes` (each with a `content-length`) until none is
/// left; panics on anything that is not a whole answer.
fn answers(mut bytes: &[u8]) -> Vec<Answer> {
    let mut all = Vec::new();
    while !bytes.is_empty() {
        let end = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no end of head in {:?}", String::from_utf8_lossy(bytes)));
        let head = std::str::from_utf8(&bytes[..end]).unwrap();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        let status = status_line
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("status line {status_line:?}"));
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (n, v) = l.split_once(':').unwrap();
                (n.trim().to_string(), v.trim().to_string())
            })
            .collect();
        let length: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse().unwrap())
            .unwrap_or_else(|| panic!("no content-length in {head:?}"));
        let body = bytes[end + 4..end + 4 + length].to_vec();
        bytes = &bytes[end + 4 + length..];
        all.push(Answer {
            status,
            headers,
            body,
        });
    }
    all
}

/// Reads until the gateway closes the connection (at most 10 s).
async fn until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut all))
        .await
        .expect("the gateway did not close the connection")
        .unwrap();
    all
}

fn poll(token_header: &str, extra: &str) -> String {
    format!("GET /api/queue/status HTTP/1.1\r\nHost: gateway\r\n{token_header}{extra}\r\n")
}

/// A round and one student in it; the student's queue token.
async fn joined(app: &TestApp) -> (RoundId, String) {
    let round = app.round("open", 60).await;
    app.student("20260301", 1).await;
    let r = app.join(round, "20260301").await;
    assert_eq!(r.status(), 200);
    (round, token(&r.json().await.unwrap()))
}

#[tokio::test]
async fn pipelined_polls_and_other_requests_on_one_connection_are_answered_in_order() {
    let app = TestApp::spawn(|_| {}).await;
    let (round, token) = joined(&app).await;
    let header = format!("X-Queue-Token: {token}\r\n");
    let cookie = format!("Cookie: theme=dark; sluice_queue={token}\r\n");
    // All in one write: two polls (one by cookie, as browsers send it),
    // an anonymous poll, a request for the router, then a poll that is
    // now hyper's, asking to close.
    let mut request = poll(&header, "");
    request += &poll(&cookie, "User-Agent: phone\r\n").replace("/status", "/status?t=1");
    request += &poll("", "");
    request += "GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n";
    request += &poll(&header, "Connection: close\r\n");
    let lane_before = gateway::http::lane::answered();
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let all = answers(&until_closed(&mut stream).await);

    let statuses: Vec<u16> = all.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [200, 200, 401, 200, 200], "{all:?}");
    // The first three in the lane, the last after the hand-over.
    assert_eq!(gateway::http::lane::answered() - lane_before, 3);
    for i in [0, 1, 4] {
        let status = all[i].json();
        assert_eq!(status["round"], json!(round), "answer {i}: {status}");
        assert!(status["state"].is_string(), "answer {i}: {status}");
    }
    assert_eq!(all[2].json()["code"], "bad_token", "{:?}", all[2]);
    assert_eq!(all[3].body, b"ok", "healthz: {:?}", all[3]);
    for (i, answer) in all.iter().enumerate() {
        assert_eq!(
            answer.header("x-content-type-options"),
            Some("nosniff"),
            "answer {i}"
        );
        assert!(
            answer.header("content-security-policy").is_some(),
            "answer {i}"
        );
        assert!(answer.header("date").is_some(), "answer {i}");
    }
    assert_eq!(
        all[0].header("content-type"),
        Some("application/json"),
        "{:?}",
        all[0]
    );
    assert_eq!(all[4].header("connection"), Some("close"));
    app.finish().await;
}

#[tokio::test]
async fn a_poll_cut_into_single_bytes_is_answered_and_the_connection_kept() {
    let app = TestApp::spawn(|_| {}).await;
    let (round, token) = joined(&app).await;
    let request = poll(&format!("X-Queue-Token: {token}\r\n"), "");
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    for byte in request.as_bytes() {
        stream.write_all(&[*byte]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // The connection stays open: the second, whole, asks to close.
    stream
        .write_all(
            poll(
                &format!("X-Queue-Token: {token}\r\n"),
                "Connection: close\r\n",
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let all = answers(&until_closed(&mut stream).await);
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(gateway::http::lane::answered() >= 2);
    for answer in &all {
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(answer.json()["round"], json!(round));
    }
    app.finish().await;
}

#[tokio::test]
async fn polls_the_lane_leaves_to_hyper_are_answered_the_same() {
    let app = TestApp::spawn(|_| {}).await;
    let (round, token) = joined(&app).await;
    let header = format!("X-Queue-Token: {token}\r\n");
    for (what, request) in [
        (
            "a poll with a body",
            poll(&header, "Content-Length: 2\r\nConnection: close\r\n") + "{}",
        ),
        (
            "an HTTP/1.0 poll",
            poll(&header, "").replace("HTTP/1.1", "HTTP/1.0"),
        ),
        (
            "a poll with 40 headers",
            poll(
                &header,
                &((0..40)
                    .map(|i| format!("X-Filler-{i}: {i}\r\n"))
                    .collect::<String>()
                    + "Connection: close\r\n"),
            ),
        ),
    ] {
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let bytes = until_closed(&mut stream).await;
        // HTTP/1.0 answers in kind.
        let bytes = String::from_utf8(bytes)
            .unwrap()
            .replacen("HTTP/1.0", "HTTP/1.1", 1);
        let all = answers(bytes.as_bytes());
        assert_eq!(all.len(), 1, "{what}: {all:?}");
        assert_eq!(all[0].status, 200, "{what}: {:?}", all[0]);
        assert_eq!(all[0].json()["round"], json!(round), "{what}");
    }
    app.finish().await;
}

#[tokio::test]
async fn idle_connections_in_the_lane_or_in_hyper_do_not_hold_up_shutdown() {
    let app = TestApp::spawn(|_| {}).await;
    let (_, token) = joined(&app).await;
    // One connection idle after a poll (the lane's), one after a request
    // for the router (hyper's): both kept alive.
    let mut in_lane = TcpStream::connect(app.addr).await.unwrap();
    in_lane
        .write_all(poll(&format!("X-Queue-Token: {token}\r\n"), "").as_bytes())
        .await
        .unwrap();
    let mut in_hyper = TcpStream::connect(app.addr).await.unwrap();
    in_hyper
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n")
        .await
        .unwrap();
    // And one that sent half a head and stopped.
    let mut half_head = TcpStream::connect(app.addr).await.unwrap();
    half_head
        .write_all(b"GET /api/queue/status HTTP/1.1\r\nX-Queue")
        .await
        .unwrap();
    let mut first = [0u8; 12];
    for stream in [&mut in_lane, &mut in_hyper] {
        stream.read_exact(&mut first).await.unwrap();
        assert_eq!(&first, b"HTTP/1.1 200");
    }
    tokio::time::timeout(Duration::from_secs(15), app.finish())
        .await
        .expect("shutdown waited on idle connections");
    for stream in [&mut in_lane, &mut in_hyper, &mut half_head] {
        let mut rest = Vec::new();
        let read =
            tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
        assert!(read.is_ok(), "a connection was left open after shutdown");
    }
}

#[tokio::test]
async fn the_lanes_answer_to_a_browsers_poll_is_hyper_s_answer() {
    let app = TestApp::spawn(|_| {}).await;
    let (_, token) = joined(&app).await;
    wait_until(Duration::from_secs(10), || async {
        app.status(&token).await["state"] == "admitted"
    })
    .await;
    // A browser's poll: the token in its cookie, the headers it sends.
    let poll = poll(
        "",
        &format!(
            "Accept: */*\r\nAccept-Language: ko-KR,ko;q=0.9\r\nCookie: sluice_queue={token}\r\n\
             Sec-Fetch-Mode: cors\r\nConnection: close\r\n"
        ),
    );
    // The lane answers a connection's first poll; after a request for the
    // router, hyper answers.
    let lane_before = gateway::http::lane::answered();
    let mut lane = TcpStream::connect(app.addr).await.unwrap();
    lane.write_all(poll.as_bytes()).await.unwrap();
    let by_lane = answers(&until_closed(&mut lane).await).remove(0);
    assert_eq!(gateway::http::lane::answered() - lane_before, 1);
    let mut hyper = TcpStream::connect(app.addr).await.unwrap();
    let request = format!("GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n{poll}");
    hyper.write_all(request.as_bytes()).await.unwrap();
    let by_hyper = answers(&until_closed(&mut hyper).await).remove(1);
    assert_eq!(gateway::http::lane::answered() - lane_before, 1);

    assert_eq!((by_lane.status, by_hyper.status), (200, 200));
    let names = |a: &Answer| {
        let mut names: Vec<String> = a.headers.iter().map(|(n, _)| n.to_lowercase()).collect();
        names.sort();
        names
    };
    assert_eq!(names(&by_lane), names(&by_hyper));
    for (name, value) in &by_lane.headers {
        if !["date", "set-cookie", "content-length"].contains(&name.as_str()) {
            assert_eq!(by_hyper.header(name), Some(value.as_str()), "{name}");
        }
    }
    // The admitted student's pass goes into its cookie, both ways.
    let cookie_names = |a: &Answer| {
        let mut names: Vec<String> = a
            .headers
            .iter()
            .filter(|(n, _)| n == "set-cookie")
            .map(|(_, v)| v.split('=').next().unwrap().to_string())
            .collect();
        names.sort();
        names
    };
    assert!(
        cookie_names(&by_lane).contains(&"sluice_pass".to_string()),
        "{by_lane:?}"
    );
    assert_eq!(cookie_names(&by_lane), cookie_names(&by_hyper));
    let (lane_status, hyper_status) = (by_lane.json(), by_hyper.json());
    assert_eq!(lane_status["state"], "admitted");
    assert_eq!(lane_status["state"], hyper_status["state"]);
    app.finish().await;
}
