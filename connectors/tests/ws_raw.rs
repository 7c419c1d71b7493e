//! `WsConn::send_raw_text`, the per-order send path: frames of every length class (7-bit,
//! 16-bit and 64-bit payload lengths, at their boundaries) arrive at a real websocket server on
//! 127.0.0.1 as exactly the texts sent, and sending allocates nothing after warm-up.

use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crossbar_connectors::ws::WsConn;
use futures_util::StreamExt as _;
use tokio_tungstenite::tungstenite::Message;

mod counting_alloc;
use counting_alloc::{ALLOCS, COUNTED};

/// A tokio-tungstenite server on 127.0.0.1 that accepts one connection and forwards every
/// message it receives (texts as `Ok`, anything else as `Err` with its kind).
fn echo_server() -> (String, mpsc::Receiver<Result<String, String>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
            while let Some(msg) = ws.next().await {
                let forwarded = match msg {
                    Ok(Message::Text(t)) => Ok(t.as_str().to_owned()),
                    Ok(Message::Close(_)) | Err(_) => break,
                    Ok(other) => Err(format!("{other:?}").chars().take(40).collect()),
                };
                if tx.send(forwarded).is_err() {
                    break;
                }
            }
        });
    });
    (format!("ws://{addr}/raw"), rx)
}

/// `len` bytes of printable ASCII that differ by position (so a masking or offset slip shows).
fn text(len: usize, salt: u8) -> Vec<u8> {
    (0..len).map(|i| b'!' + ((i as u64 * 7 + u64::from(salt)) % 94) as u8).collect()
}

/// Flushes until the server has received the next message, or 10 s passed.
fn receive(conn: &mut WsConn, rx: &mpsc::Receiver<Result<String, String>>) -> Result<String, String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        conn.flush().unwrap();
        match rx.recv_timeout(Duration::from_millis(5)) {
            Ok(m) => return m,
            Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {}
            Err(e) => panic!("server got nothing: {e}"),
        }
    }
}

#[test]
fn raw_text_frames_of_every_length_class_arrive_exactly() {
    let (url, rx) = echo_server();
    let mut conn = WsConn::connect(&url, Duration::from_secs(5)).unwrap();
    for (i, len) in [0usize, 1, 125, 126, 127, 65_535, 65_536, 200_000].into_iter().enumerate() {
        let payload = text(len, i as u8);
        conn.send_raw_text(&payload).unwrap();
        let got = receive(&mut conn, &rx).unwrap_or_else(|e| panic!("length {len}: server got {e}"));
        assert_eq!(got.len(), len);
        assert!(got.as_bytes() == payload.as_slice(), "length {len}: payload differs");
    }
    // Several frames written back to back arrive in order, whole.
    let burst: Vec<Vec<u8>> = (0..50).map(|i| text(100 + i * 37, i as u8)).collect();
    for p in &burst {
        conn.send_raw_text(p).unwrap();
    }
    for p in &burst {
        assert!(receive(&mut conn, &rx).unwrap().as_bytes() == p.as_slice());
    }
    // Mixed with tungstenite's own sends, frames never interleave.
    conn.send_text("via tungstenite").unwrap();
    conn.send_raw_text(b"raw after").unwrap();
    assert_eq!(receive(&mut conn, &rx).unwrap(), "via tungstenite");
    assert_eq!(receive(&mut conn, &rx).unwrap(), "raw after");
}

#[test]
fn sending_order_sized_raw_frames_allocates_nothing_after_warm_up() {
    let (url, rx) = echo_server();
    let mut conn = WsConn::connect(&url, Duration::from_secs(5)).unwrap();
    let frames: Vec<Vec<u8>> = (0..64).map(|i| text(150 + i * 5, i as u8)).collect();
    // Warm-up: the connection's buffers reach their working size.
    for f in &frames {
        conn.send_raw_text(f).unwrap();
        receive(&mut conn, &rx).unwrap();
    }
    COUNTED.with(|c| c.set(true));
    let probe = ALLOCS.load(Ordering::Relaxed);
    drop(std::hint::black_box(Vec::<u8>::with_capacity(8)));
    assert_eq!(ALLOCS.load(Ordering::Relaxed) - probe, 1, "the counter sees this thread's allocations");
    let before = ALLOCS.load(Ordering::Relaxed);
    for f in &frames {
        conn.send_raw_text(f).unwrap();
        conn.flush().unwrap();
    }
    let allocs = ALLOCS.load(Ordering::Relaxed) - before;
    COUNTED.with(|c| c.set(false));
    for f in &frames {
        assert!(receive(&mut conn, &rx).unwrap().as_bytes() == f.as_slice());
    }
    assert_eq!(allocs, 0, "{allocs} allocations sending {} frames", frames.len());
}
