//! The Ethereum endpoint's tasks on the simulator's runtime: the driver that advances the
//! simulated chain with the CEX true prices, and one websocket JSON-RPC session per client
//! (`ws://ADDR/ethereum`).

use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard, PoisonError};

use futures_util::StreamExt;
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior, interval, interval_at, sleep_until, timeout};
use tokio_tungstenite::WebSocketStream;
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Bytes, Message};

use super::eth_rpc::EthNode;
use super::server::{CLOSE_TIMEOUT, End, Shared, WRITE_TIMEOUT, bump, send, write_batch};

/// The node, locked (never across an `.await`).
pub(super) fn lock(node: &std::sync::Mutex<EthNode>) -> MutexGuard<'_, EthNode> {
    node.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Advances the chain every `tx_interval_ms` of real time; never returns (pending forever
/// when the endpoint is off).
pub(super) async fn drive(shared: Arc<Shared>) {
    let Some(node) = shared.eth.as_ref() else { return std::future::pending().await };
    let (names, every) = {
        let n = lock(node);
        let names: Vec<String> = n.chain().pools().iter().map(|p| p.underlying.clone()).collect();
        (names, std::time::Duration::from_millis(n.chain().config().tx_interval_ms))
    };
    let start = Instant::now();
    let mut tick = interval(every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut prices = vec![f64::NAN; names.len()];
    loop {
        tick.tick().await;
        let now_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
        {
            let market = shared.lock_market();
            for (p, name) in prices.iter_mut().zip(&names) {
                *p = market.true_price(name).unwrap_or(f64::NAN);
            }
        }
        lock(node).advance(now_ms, &prices);
    }
}

/// Runs one JSON-RPC websocket session: requests in, responses and notifications out, pings.
pub(super) async fn run_client(
    mut ws: WebSocketStream<TcpStream>,
    shared: &Shared,
    node: &std::sync::Mutex<EthNode>,
    mut stop: watch::Receiver<bool>,
) {
    let (tx, mut rx) = mpsc::channel(shared.client_queue);
    let kick = Arc::new(Notify::new());
    let id = lock(node).add_client(tx, Arc::clone(&kick));
    bump(&shared.stats.clients, 1);
    bump(&shared.stats.connections, 1);
    let mut ping = interval_at(Instant::now() + shared.ping_interval, shared.ping_interval);
    let mut unanswered: Option<Instant> = None;
    let end = loop {
        let pong_deadline = unanswered.map(|t| t + shared.pong_timeout);
        tokio::select! {
            biased;
            _ = stop.changed() => break End::Shutdown,
            () = kick.notified() => break End::Slow,
            () = sleep_until(pong_deadline.unwrap_or_else(Instant::now)), if pong_deadline.is_some() => {
                break End::PongTimeout;
            }
            _ = ping.tick() => {
                if !send(&mut ws, Message::Ping(Bytes::new())).await {
                    break End::Gone;
                }
                unanswered.get_or_insert_with(Instant::now);
            }
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(text))) => {
                    let reply = lock(node).handle(id, text.as_str());
                    if !send(&mut ws, Message::text(reply)).await {
                        break End::Gone;
                    }
                }
                Some(Ok(Message::Pong(_))) => unanswered = None,
                Some(Ok(Message::Ping(_))) => {
                    if !matches!(timeout(WRITE_TIMEOUT, futures_util::SinkExt::flush(&mut ws)).await, Ok(Ok(()))) {
                        break End::Gone;
                    }
                }
                Some(Ok(Message::Binary(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Close(_))) => break End::ClientClosed,
                Some(Err(_)) | None => break End::Gone,
            },
            frame = rx.recv() => {
                let Some(frame) = frame else { break End::Slow };
                tokio::select! {
                    biased;
                    _ = stop.changed() => break End::Shutdown,
                    () = kick.notified() => break End::Slow,
                    written = timeout(WRITE_TIMEOUT, write_batch(&mut ws, frame, &mut rx)) => match written {
                        Ok(Ok(n)) => bump(&shared.stats.frames_sent, n),
                        Ok(Err(_)) => break End::Gone,
                        Err(_) => break End::Slow,
                    },
                }
            }
        }
    };
    lock(node).remove_client(id);
    shared.stats.clients.fetch_sub(1, Ordering::Relaxed);
    bump(&shared.stats.disconnects, 1);
    let (code, reason) = match end {
        End::Gone => return,
        End::ClientClosed => {
            let _ = timeout(CLOSE_TIMEOUT, futures_util::SinkExt::flush(&mut ws)).await;
            return;
        }
        End::Shutdown => (CloseCode::Away, "server shutdown"),
        End::Slow => {
            bump(&shared.stats.slow_disconnects, 1);
            (CloseCode::Policy, "client too slow")
        }
        End::PongTimeout => {
            bump(&shared.stats.pong_timeouts, 1);
            (CloseCode::Policy, "pong timeout")
        }
    };
    let _ = timeout(CLOSE_TIMEOUT, async {
        ws.close(Some(CloseFrame { code, reason: reason.into() })).await?;
        while let Some(Ok(_)) = ws.next().await {}
        Ok::<(), tungstenite::Error>(())
    })
    .await;
}
