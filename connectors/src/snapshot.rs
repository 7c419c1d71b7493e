//! REST book snapshots, fetched off the hot path.
//!
//! A venue whose depth stream needs a REST snapshot to start or to heal (Binance) gets one from
//! this fetcher: the I/O thread hands it a request and keeps polling its sockets; a separate
//! thread does the blocking HTTP (TLS through rustls for real endpoints) and hands the body back
//! through a bounded channel. The I/O thread parses the body and injects it into the market ring
//! as one contiguous snapshot message, so the core's sequencer sees it in stream order.

use std::time::Duration;

use crossbar_engine::instrument::InstrumentId;
use crossbeam::channel::{Receiver, Sender, TrySendError, bounded};

/// One snapshot to fetch.
#[derive(Clone, Debug)]
pub struct SnapshotRequest {
    /// The feed (connection index) whose decoder parses the answer.
    pub feed: usize,
    /// The instrument.
    pub instrument: InstrumentId,
    /// Full REST URL.
    pub url: String,
}

/// What came back.
#[derive(Debug)]
pub struct SnapshotResponse {
    /// The request's feed.
    pub feed: usize,
    /// The request's instrument.
    pub instrument: InstrumentId,
    /// The body, or why there is none (the URL's query is not repeated in it).
    pub body: Result<Vec<u8>, String>,
}

/// Requests that can wait at once; more are refused (the core asks again later).
const QUEUE: usize = 64;
/// Longest a snapshot request may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The fetcher thread and its channels. Dropping it stops the thread after the request in hand.
#[derive(Debug)]
pub struct SnapshotFetcher {
    requests: Option<Sender<SnapshotRequest>>,
    responses: Receiver<SnapshotResponse>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SnapshotFetcher {
    /// Starts the fetcher thread.
    ///
    /// # Errors
    /// When the OS refuses the thread.
    pub fn spawn() -> std::io::Result<Self> {
        let (req_tx, req_rx) = bounded::<SnapshotRequest>(QUEUE);
        let (resp_tx, resp_rx) = bounded::<SnapshotResponse>(QUEUE);
        let thread = std::thread::Builder::new().name("crossbar-snapshots".into()).spawn(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder().timeout_global(Some(TIMEOUT)).build().into();
            for req in req_rx {
                let body = fetch(&agent, &req.url);
                if resp_tx.send(SnapshotResponse { feed: req.feed, instrument: req.instrument, body }).is_err() {
                    return;
                }
            }
        })?;
        Ok(Self { requests: Some(req_tx), responses: resp_rx, thread: Some(thread) })
    }

    /// Queues a request without blocking; false when the queue is full.
    pub fn request(&self, req: SnapshotRequest) -> bool {
        match self.requests.as_ref().map(|tx| tx.try_send(req)) {
            Some(Ok(())) => true,
            Some(Err(TrySendError::Full(_) | TrySendError::Disconnected(_))) | None => false,
        }
    }

    /// A finished fetch, if any, without blocking.
    pub fn try_recv(&self) -> Option<SnapshotResponse> {
        self.responses.try_recv().ok()
    }
}

impl Drop for SnapshotFetcher {
    fn drop(&mut self) {
        self.requests.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn fetch(agent: &ureq::Agent, url: &str) -> Result<Vec<u8>, String> {
    let path = url.split('?').next().unwrap_or(url);
    let mut resp = agent.get(url).call().map_err(|e| format!("GET {path}: {e}"))?;
    resp.body_mut().read_to_vec().map_err(|e| format!("GET {path}: reading body: {e}"))
}
