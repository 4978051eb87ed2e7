//! Hostile clients against the recorder's server: idle and slowloris connections, stalled bodies, header floods,
//! oversized batches and ten thousand idle connections.

use crate::support::recorder_process::*;

/// Sends `request` on a new connection and reads the answer until the server closes it or `wait` passes; answers
/// what was read and whether the server closed the connection.
async fn exchange(addr: &str, request: &[u8], wait: Duration) -> (String, bool) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    // The server may answer and close before the whole request is written (a flood refused early): what it
    // answered is read either way.
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    let closed = tokio::time::timeout(wait, async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await
    .is_ok();
    (String::from_utf8_lossy(&answer).into_owned(), closed)
}

fn status_line(answer: &str) -> &str {
    answer.lines().next().unwrap_or_default()
}

#[tokio::test]
async fn idle_connections_slow_headers_and_stalled_bodies_are_cut_off() {
    let emulator = Emulator::builder().start().await.unwrap();
    let out = tempfile::tempdir().unwrap();
    let recorder = Recorder::start(&emulator, out.path()).await;
    let addr = recorder.addr.clone();
    let stalled_body = format!(
        "POST /api/events?code={SECRET} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\naeg-event-type: Notification\r\n\r\n[{{\"id\":"
    );
    // All three at once: each must be closed (or answered) by the server within its timeout plus a margin.
    let wait = Duration::from_secs(25);
    let started = Instant::now();
    let (idle, slow_headers, stalled) = tokio::join!(
        exchange(&addr, b"", wait),
        exchange(&addr, b"POST /api/events HTTP/1.1\r\nhost: x\r\n", wait),
        exchange(&addr, stalled_body.as_bytes(), wait),
    );
    assert!(idle.1, "an idle connection was kept open for {wait:?}");
    assert!(slow_headers.1, "a connection that never finished its headers was kept open for {wait:?}");
    assert!(stalled.1, "a stalled body kept its connection open for {wait:?}");
    assert_eq!(status_line(&stalled.0), "HTTP/1.1 408 Request Timeout", "{}", stalled.0);
    assert!(started.elapsed() >= Duration::from_secs(9), "cut off before the timeouts: {:?}", started.elapsed());
    // The server goes on serving.
    recorder.publisher().validate().await.unwrap();
}

#[tokio::test]
async fn header_floods_and_oversized_batches_are_refused_and_the_server_goes_on() {
    let emulator = Emulator::builder().start().await.unwrap();
    let out = tempfile::tempdir().unwrap();
    let recorder = Recorder::start(&emulator, out.path()).await;
    let wait = Duration::from_secs(10);
    let start = format!("POST /api/events?code={SECRET} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n");

    let many: String = (0..500).map(|i| format!("x-flood-{i}: {i}\r\n")).collect();
    let (answer, _) =
        exchange(&recorder.addr, format!("{start}{many}content-length: 2\r\n\r\n[]").as_bytes(), wait).await;
    assert_eq!(status_line(&answer), "HTTP/1.1 431 Request Header Fields Too Large", "{answer}");

    let huge = format!("x-huge: {}\r\n", "a".repeat(200 * 1024));
    let (answer, _) =
        exchange(&recorder.addr, format!("{start}{huge}content-length: 2\r\n\r\n[]").as_bytes(), wait).await;
    assert_eq!(status_line(&answer), "HTTP/1.1 431 Request Header Fields Too Large", "{answer}");

    // A batch of 2 MiB of events: 413, decided from Content-Length before any of it is read, and again when a
    // chunked body passes the limit while it arrives.
    let event = r#"{"id":"e","eventType":"Other","subject":"s","eventTime":"2026-12-01T10:00:00Z","data":{},"dataVersion":"1"}"#;
    let batch = format!("[{}]", vec![event; 2 * 1024 * 1024 / event.len()].join(","));
    let request = format!("{start}aeg-event-type: Notification\r\ncontent-length: {}\r\n\r\n{batch}", batch.len());
    let (answer, _) = exchange(&recorder.addr, request.as_bytes(), wait).await;
    assert_eq!(status_line(&answer), "HTTP/1.1 413 Payload Too Large", "{answer}");
    let chunked = format!(
        "{start}aeg-event-type: Notification\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{batch}\r\n0\r\n\r\n",
        batch.len()
    );
    let (answer, _) = exchange(&recorder.addr, chunked.as_bytes(), wait).await;
    assert_eq!(status_line(&answer), "HTTP/1.1 413 Payload Too Large", "{answer}");

    recorder.publisher().validate().await.unwrap();
}

#[tokio::test]
async fn ten_thousand_idle_connections_leave_the_webhook_serving_in_bounded_memory() {
    let emulator = Emulator::builder().start().await.unwrap();
    let out = tempfile::tempdir().unwrap();
    let recorder = Recorder::start(&emulator, out.path()).await;
    let pid = recorder.child.as_ref().unwrap().id();
    let before = rss_kib(pid);
    let mut idle = Vec::with_capacity(10_000);
    for _ in 0..100 {
        let batch = (0..100).map(|_| tokio::net::TcpStream::connect(recorder.addr.clone()));
        for stream in futures_util::future::join_all(batch).await {
            idle.push(stream.expect("connect"));
        }
    }
    // Every one of them accepted and waiting for headers.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stored = emulator.storage().record(RecordingSpec::new("call-idle", 4096));
    let event = recording_file_status_updated(&stored);
    assert!(recorder.publisher().deliver(std::slice::from_ref(&event)).await.is_delivered());
    let during = rss_kib(pid);
    assert_complete(out.path(), &stored, &event).await;
    let grown = during.saturating_sub(before);
    eprintln!("recorder RSS {before} KiB, with 10 000 idle connections {during} KiB (+{grown} KiB)");
    assert!(grown < 128 * 1024, "10 000 idle connections grew the recorder by {grown} KiB");
    drop(idle);
}
