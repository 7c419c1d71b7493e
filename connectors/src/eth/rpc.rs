//! A small blocking Ethereum JSON-RPC client over one websocket: calls, subscriptions, and the
//! pool-reserve loader the pending-swap tracker needs.
//!
//! Calls and subscription notifications share the socket: while [`RpcClient::call`] waits for
//! its response, notifications that arrive are queued and handed out later by
//! [`RpcClient::next_frame`], in arrival order. Every wait has a timeout. This is the I/O edge,
//! off the per-event path, so it parses responses with `serde_json`.

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use alloy_primitives::{Address, U256};
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

use super::output::push_hex;
use super::tx::{Notification, parse_notification};

/// Why an RPC exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// The URL is not `ws://host:port[/path]`.
    #[error("unsupported or malformed websocket URL {0:?}")]
    BadUrl(String),
    /// TCP connect or the websocket handshake failed (retry later).
    #[error("connect to {url}: {reason}")]
    Connect {
        /// The URL.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The connection broke or was closed (reconnect and resync).
    #[error("connection lost: {0}")]
    Closed(String),
    /// No response within the timeout.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The node answered with a JSON-RPC error.
    #[error("node error {code}: {message}")]
    Node {
        /// JSON-RPC error code.
        code: i64,
        /// Its message.
        message: String,
    },
    /// A response that is not the JSON it should be.
    #[error("bad response: {0}")]
    BadResponse(String),
}

impl RpcError {
    /// Whether the connection is gone (reconnect), as opposed to a failed call on a live one.
    pub fn is_disconnect(&self) -> bool {
        matches!(self, Self::Closed(_) | Self::Connect { .. })
    }
}

/// One websocket connection to a node.
pub struct RpcClient {
    ws: WebSocket<TcpStream>,
    next_id: u64,
    queued: VecDeque<Vec<u8>>,
    timeout: Duration,
}

impl std::fmt::Debug for RpcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcClient").field("next_id", &self.next_id).finish_non_exhaustive()
    }
}

enum Got {
    Frame(Vec<u8>),
    Nothing,
}

impl RpcClient {
    /// Connects to `url` (`ws://host:port`); `timeout` bounds the connect, the handshake and
    /// every later call.
    ///
    /// # Errors
    /// [`RpcError::BadUrl`] or [`RpcError::Connect`].
    pub fn connect(url: &str, timeout: Duration) -> Result<Self, RpcError> {
        let rest = url.strip_prefix("ws://").ok_or_else(|| RpcError::BadUrl(url.to_owned()))?;
        let host_port = rest.split('/').next().unwrap_or_default();
        let err = |reason: String| RpcError::Connect { url: url.to_owned(), reason };
        let addr = host_port
            .to_socket_addrs()
            .map_err(|e| err(e.to_string()))?
            .next()
            .ok_or_else(|| RpcError::BadUrl(url.to_owned()))?;
        let stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| err(e.to_string()))?;
        stream.set_nodelay(true).map_err(|e| err(e.to_string()))?;
        stream.set_read_timeout(Some(timeout)).map_err(|e| err(e.to_string()))?;
        stream.set_write_timeout(Some(timeout)).map_err(|e| err(e.to_string()))?;
        let request = url.into_client_request().map_err(|e| err(e.to_string()))?;
        let (ws, _) = tungstenite::client::client(request, stream).map_err(|e| err(e.to_string()))?;
        Ok(Self { ws, next_id: 1, queued: VecDeque::new(), timeout })
    }

    /// Reads one frame, waiting at most until `deadline`.
    fn read_frame(&mut self, deadline: Instant) -> Result<Got, RpcError> {
        let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
        let _ = self.ws.get_ref().set_read_timeout(Some(left));
        match self.ws.read() {
            Ok(Message::Text(t)) => Ok(Got::Frame(t.as_bytes().to_vec())),
            Ok(Message::Binary(b)) => Ok(Got::Frame(b.to_vec())),
            Ok(Message::Close(_)) => Err(RpcError::Closed("closed by node".into())),
            Ok(_) => Ok(Got::Nothing),
            Err(tungstenite::Error::Io(e)) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Ok(Got::Nothing)
            }
            Err(e) => Err(RpcError::Closed(e.to_string())),
        }
    }

    /// Calls `method` with `params` (a JSON array, written raw) and returns the `result`.
    ///
    /// # Errors
    /// [`RpcError::Node`] for an error response, [`RpcError::Timeout`], [`RpcError::Closed`].
    pub fn call(&mut self, method: &str, params: &str) -> Result<serde_json::Value, RpcError> {
        let id = self.next_id;
        self.next_id += 1;
        let req = format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"{method}\",\"params\":{params}}}");
        self.ws.send(Message::text(req)).map_err(|e| RpcError::Closed(e.to_string()))?;
        let deadline = Instant::now() + self.timeout;
        loop {
            if Instant::now() >= deadline {
                return Err(RpcError::Timeout("a call's response"));
            }
            let Got::Frame(frame) = self.read_frame(deadline)? else { continue };
            // Responses carry an id; notifications (and anything unexpected) are queued.
            let ours = id.to_string();
            match parse_notification(&frame) {
                Ok(Notification::Response { id: got, .. }) if got == ours.as_bytes() => {}
                Ok(Notification::Response { .. }) => continue,
                _ => {
                    self.queued.push_back(frame);
                    continue;
                }
            }
            let v: serde_json::Value =
                serde_json::from_slice(&frame).map_err(|e| RpcError::BadResponse(e.to_string()))?;
            if let Some(e) = v.get("error") {
                return Err(RpcError::Node {
                    code: e["code"].as_i64().unwrap_or_default(),
                    message: e["message"].as_str().unwrap_or_default().to_owned(),
                });
            }
            return Ok(v.get("result").cloned().unwrap_or(serde_json::Value::Null));
        }
    }

    /// Subscribes (`eth_subscribe` with `params`, a JSON array) and returns the subscription id.
    ///
    /// # Errors
    /// As [`RpcClient::call`]; [`RpcError::BadResponse`] when the id is not a string.
    pub fn subscribe(&mut self, params: &str) -> Result<String, RpcError> {
        let r = self.call("eth_subscribe", params)?;
        r.as_str().map(str::to_owned).ok_or_else(|| RpcError::BadResponse(format!("subscription id {r}")))
    }

    /// The next notification frame (raw JSON), waiting at most `wait`; `None` if none came.
    ///
    /// # Errors
    /// [`RpcError::Closed`] when the connection is gone.
    pub fn next_frame(&mut self, wait: Duration) -> Result<Option<Vec<u8>>, RpcError> {
        if let Some(f) = self.queued.pop_front() {
            return Ok(Some(f));
        }
        let deadline = Instant::now() + wait;
        loop {
            match self.read_frame(deadline)? {
                Got::Frame(f) => return Ok(Some(f)),
                Got::Nothing if Instant::now() >= deadline => return Ok(None),
                Got::Nothing => {}
            }
        }
    }

    /// `eth_call` of `data` on `to` at the latest block; the returned bytes.
    ///
    /// # Errors
    /// As [`RpcClient::call`]; [`RpcError::BadResponse`] when the result is not hex.
    pub fn eth_call(&mut self, to: Address, data: &[u8]) -> Result<Vec<u8>, RpcError> {
        let mut params = String::from("[{\"to\":\"");
        push_hex(&mut params, to.as_slice());
        params.push_str("\",\"data\":\"");
        push_hex(&mut params, data);
        params.push_str("\"},\"latest\"]");
        let r = self.call("eth_call", &params)?;
        let s = r.as_str().ok_or_else(|| RpcError::BadResponse(format!("eth_call result {r}")))?;
        let mut out = Vec::new();
        super::tx::decode_hex_into(s.strip_prefix("0x").unwrap_or(s).as_bytes(), &mut out, "result")
            .map_err(|e| RpcError::BadResponse(e.to_string()))?;
        Ok(out)
    }

    /// A pair's `getReserves()`: `None` when no pair contract is at `pair` (empty return data).
    ///
    /// # Errors
    /// As [`RpcClient::eth_call`]; [`RpcError::BadResponse`] on a short return.
    pub fn get_reserves(&mut self, pair: Address) -> Result<Option<(U256, U256, u32)>, RpcError> {
        let out = self.eth_call(pair, &[0x09, 0x02, 0xf1, 0xac])?;
        if out.is_empty() {
            return Ok(None);
        }
        if out.len() < 96 {
            return Err(RpcError::BadResponse(format!("getReserves returned {} bytes", out.len())));
        }
        let w = |i: usize| U256::from_be_slice(&out[32 * i..32 * i + 32]);
        let ts = u32::try_from(w(2)).map_err(|_| RpcError::BadResponse("blockTimestampLast".into()))?;
        Ok(Some((w(0), w(1), ts)))
    }

    /// Closes the connection cleanly.
    pub fn close(&mut self) {
        let _ = self.ws.close(None);
        let _ = self.ws.flush();
    }
}
