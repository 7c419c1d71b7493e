//! The Ethereum endpoint's tasks on the simulator's runtime: the driver that advances the
//! simulated chain with the CEX true prices, and one websocket JSON-RPC session per client
//! (`ws://ADDR/ethereum`).

use std::sync::{Arc, MutexGuard, PoisonError};

use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior, interval};
use tokio_tungstenite::WebSocketStream;

use super::eth_rpc::EthNode;
use super::server::{Shared, close_session, session_loop};

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
    let end = session_loop(&mut ws, shared, &mut stop, &kick, &mut rx, |text| lock(node).handle(id, text)).await;
    lock(node).remove_client(id);
    close_session(ws, shared, end, || None).await;
}
