//! The simulated node's JSON-RPC: requests in, responses and `eth_subscription` frames out,
//! shaped as anvil 1.7.1 writes them (`../shared/reference/ethereum/anvil/`: same keys, same
//! order, hex quantities without leading zeros).
//!
//! Served methods: `eth_subscribe` (`newPendingTransactions` with hashes or, with `true`, full
//! transaction objects; `newHeads`), `eth_unsubscribe`, `eth_call` (pairs' `getReserves`,
//! `token0`, `token1`, `factory`; the factory's `getPair`; Router02's `WETH`, `factory`),
//! `eth_getTransactionByHash`, `eth_getBlockByNumber`, `eth_blockNumber`, `eth_chainId`,
//! `net_version`. Anything else is JSON-RPC error -32601. This is the simulator, off any hot
//! path: requests are parsed with `serde_json`.

use std::fmt::Write as _;
use std::sync::Arc;

use alloy_primitives::{B256, keccak256};
use serde_json::Value;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{Notify, mpsc};
use tungstenite::Utf8Bytes;

use super::eth::{ChainEvent, EthChain, Header, SimTx};
use crate::eth::output::push_hex;

/// Keccak of the empty trie: the root of an empty transaction, receipt or withdrawal list.
const EMPTY_ROOT: &str = "0x56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421";
/// Keccak of the RLP of an empty uncle list.
const EMPTY_UNCLES: &str = "0x1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347";
/// Gas each simulated swap uses.
const GAS_PER_SWAP: u64 = 120_000;
/// Constant base fee, wei (1 gwei).
const BASE_FEE: u64 = 1_000_000_000;
/// Priority fee every sender pays, wei (2 gwei).
const PRIORITY_FEE: u64 = 2_000_000_000;
/// Fee cap every sender sets, wei (30 gwei).
const MAX_FEE: u64 = 30_000_000_000;

/// What a subscription delivers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SubKind {
    PendingHash,
    PendingFull,
    NewHeads,
}

/// One websocket client of the endpoint.
struct Client {
    id: u64,
    tx: mpsc::Sender<Utf8Bytes>,
    kick: Arc<Notify>,
    subs: Vec<(String, SubKind)>,
}

/// The simulated node: the chain and who is subscribed to what.
pub(crate) struct EthNode {
    chain: EthChain,
    clients: Vec<Client>,
    next_client: u64,
    next_sub: u64,
    events: Vec<ChainEvent>,
}

impl EthNode {
    pub(crate) fn new(chain: EthChain) -> Self {
        Self { chain, clients: Vec::new(), next_client: 0, next_sub: 0, events: Vec::new() }
    }

    pub(crate) fn chain(&self) -> &EthChain {
        &self.chain
    }

    /// Registers a client whose frames go to `tx`; `kick` tells it it was too slow.
    pub(crate) fn add_client(&mut self, tx: mpsc::Sender<Utf8Bytes>, kick: Arc<Notify>) -> u64 {
        self.next_client += 1;
        self.clients.push(Client { id: self.next_client, tx, kick, subs: Vec::new() });
        self.next_client
    }

    pub(crate) fn remove_client(&mut self, id: u64) {
        self.clients.retain(|c| c.id != id);
    }

    /// Advances the chain (see [`EthChain::advance`]) and queues the notifications; returns
    /// the number of frames queued.
    pub(crate) fn advance(&mut self, now_ms: u64, prices: &[f64]) -> u64 {
        let mut events = std::mem::take(&mut self.events);
        events.clear();
        self.chain.advance(now_ms, prices, &mut events);
        let mut queued = 0;
        let mut body = String::with_capacity(2048);
        for ev in &events {
            match *ev {
                ChainEvent::Pending(hash) => {
                    let Some(tx) = self.chain.tx(&hash) else { continue };
                    body.clear();
                    write_tx(&mut body, tx, self.chain.config().chain_id, None);
                    let hash_json = format!("\"{hash:#x}\"");
                    queued += self.publish(|k| match k {
                        SubKind::PendingFull => Some(body.as_str()),
                        SubKind::PendingHash => Some(hash_json.as_str()),
                        SubKind::NewHeads => None,
                    });
                }
                ChainEvent::Block(n) => {
                    let Some(h) = self.chain.header(n) else { continue };
                    body.clear();
                    write_header(&mut body, h, None);
                    queued += self.publish(|k| (k == SubKind::NewHeads).then_some(body.as_str()));
                }
            }
        }
        self.events = events;
        queued
    }

    /// Queues `result_of(kind)` to every subscription that wants it; drops slow clients.
    fn publish<'a>(&mut self, result_of: impl Fn(SubKind) -> Option<&'a str>) -> u64 {
        let mut queued = 0;
        self.clients.retain(|c| {
            for (sub, kind) in &c.subs {
                let Some(result) = result_of(*kind) else { continue };
                let frame = format!(
                    r#"{{"jsonrpc":"2.0","method":"eth_subscription","params":{{"subscription":"{sub}","result":{result}}}}}"#
                );
                match c.tx.try_send(frame.into()) {
                    Ok(()) => queued += 1,
                    Err(TrySendError::Full(_)) => {
                        c.kick.notify_one();
                        return false;
                    }
                    Err(TrySendError::Closed(_)) => return false,
                }
            }
            true
        });
        queued
    }

    /// Answers one request of client `id` (a JSON-RPC 2.0 object).
    pub(crate) fn handle(&mut self, id: u64, text: &str) -> String {
        let Ok(req) = serde_json::from_str::<Value>(text) else {
            return error(&Value::Null, -32700, "Parse error");
        };
        let req_id = req.get("id").cloned().unwrap_or(Value::Null);
        let Some(method) = req.get("method").and_then(Value::as_str) else {
            return error(&req_id, -32600, "Invalid request");
        };
        let params = match req.get("params") {
            None | Some(Value::Null) => &[][..],
            Some(Value::Array(a)) => a.as_slice(),
            Some(_) => return error(&req_id, -32602, "params must be an array"),
        };
        match self.dispatch(id, method, params) {
            Ok(result) => format!(r#"{{"jsonrpc":"2.0","id":{req_id},"result":{result}}}"#),
            Err(RpcFail { code, message }) => error(&req_id, code, &message),
        }
    }

    fn dispatch(&mut self, id: u64, method: &str, params: &[Value]) -> Result<String, RpcFail> {
        let chain = &self.chain;
        match method {
            "eth_chainId" => Ok(format!("\"{:#x}\"", chain.config().chain_id)),
            "net_version" => Ok(format!("\"{}\"", chain.config().chain_id)),
            "eth_blockNumber" => Ok(format!("\"{:#x}\"", chain.head().number)),
            "eth_subscribe" => {
                let kind = match (params.first().and_then(Value::as_str), params.get(1)) {
                    (Some("newHeads"), None) => SubKind::NewHeads,
                    (Some("newPendingTransactions"), None | Some(Value::Bool(false))) => SubKind::PendingHash,
                    (Some("newPendingTransactions"), Some(Value::Bool(true))) => SubKind::PendingFull,
                    _ => return Err(RpcFail::params("unsupported subscription")),
                };
                self.next_sub += 1;
                let sub = format!("{:#034x}", u128::from_be_bytes(sub_id(self.next_sub)));
                let client = self.clients.iter_mut().find(|c| c.id == id).ok_or_else(RpcFail::closing)?;
                client.subs.push((sub.clone(), kind));
                Ok(format!("\"{sub}\""))
            }
            "eth_unsubscribe" => {
                let sub = params.first().and_then(Value::as_str).ok_or_else(|| RpcFail::params("subscription id"))?;
                let client = self.clients.iter_mut().find(|c| c.id == id).ok_or_else(RpcFail::closing)?;
                let before = client.subs.len();
                client.subs.retain(|(s, _)| !s.eq_ignore_ascii_case(sub));
                Ok((client.subs.len() != before).to_string())
            }
            "eth_call" => {
                let call = params.first().ok_or_else(|| RpcFail::params("missing call object"))?;
                let to = call
                    .get("to")
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| RpcFail::params("bad or missing \"to\""))?;
                let data = call.get("data").or_else(|| call.get("input")).and_then(Value::as_str).unwrap_or("0x");
                let data = hex_bytes(data).ok_or_else(|| RpcFail::params("data is not hex"))?;
                match chain.call(to, &data) {
                    Ok(out) => {
                        let mut s = String::with_capacity(2 * out.len() + 4);
                        s.push('"');
                        push_hex(&mut s, &out);
                        s.push('"');
                        Ok(s)
                    }
                    Err(e) => Err(RpcFail { code: 3, message: e.to_string() }),
                }
            }
            "eth_getTransactionByHash" => {
                let hash: B256 = params
                    .first()
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| RpcFail::params("bad transaction hash"))?;
                let Some(tx) = chain.tx(&hash) else { return Ok("null".into()) };
                let block = tx.outcome.and_then(|o| chain.header(o.block));
                let mut s = String::with_capacity(2048);
                write_tx(&mut s, tx, chain.config().chain_id, block);
                Ok(s)
            }
            "eth_getBlockByNumber" => {
                let head = chain.head().number;
                let number = match params.first().and_then(Value::as_str) {
                    Some("latest" | "pending" | "safe" | "finalized") => head,
                    Some("earliest") => 0,
                    Some(n) => n
                        .strip_prefix("0x")
                        .and_then(|h| u64::from_str_radix(h, 16).ok())
                        .ok_or_else(|| RpcFail::params("bad block number"))?,
                    None => return Err(RpcFail::params("missing block number")),
                };
                let full = matches!(params.get(1), Some(Value::Bool(true)));
                let Some(h) = chain.header(number) else { return Ok("null".into()) };
                let mut s = String::with_capacity(2048);
                write_header(&mut s, h, full.then_some(chain));
                Ok(s)
            }
            _ => Err(RpcFail { code: -32601, message: format!("Method not found: {method}") }),
        }
    }
}

/// A JSON-RPC error to answer.
struct RpcFail {
    code: i64,
    message: String,
}

impl RpcFail {
    fn params(what: &str) -> Self {
        Self { code: -32602, message: format!("Invalid params: {what}") }
    }

    fn closing() -> Self {
        Self { code: -32000, message: "connection closing".into() }
    }
}

fn error(id: &Value, code: i64, message: &str) -> String {
    let message = Value::String(message.to_owned());
    format!(r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":{code},"message":{message}}}}}"#)
}

/// A subscription id: 16 bytes derived from a counter (anvil's are 16 random bytes).
fn sub_id(n: u64) -> [u8; 16] {
    let d = keccak256(format!("crossbar-sim subscription {n}"));
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    out
}

/// `0x`-prefixed hex → bytes.
fn hex_bytes(s: &str) -> Option<Vec<u8>> {
    let body = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?;
    let mut out = Vec::new();
    crate::eth::tx::decode_hex_into(body.as_bytes(), &mut out, "data").ok()?;
    Some(out)
}

fn push_b256(out: &mut String, key: &str, v: &B256) {
    let _ = write!(out, "\"{key}\":\"{v:#x}\",");
}

fn push_qty(out: &mut String, key: &str, v: impl std::fmt::LowerHex) {
    let _ = write!(out, "\"{key}\":\"{v:#x}\",");
}

/// Appends a transaction object as `newPendingTransactions` (full) and
/// `eth_getTransactionByHash` return it: pending (`block` `None`) or mined in `block`.
pub(crate) fn write_tx(out: &mut String, tx: &SimTx, chain_id: u64, block: Option<&Header>) {
    out.push_str("{\"type\":\"0x2\",");
    push_qty(out, "chainId", chain_id);
    push_qty(out, "nonce", tx.nonce);
    push_qty(out, "gas", 300_000u64);
    push_qty(out, "maxFeePerGas", MAX_FEE);
    push_qty(out, "maxPriorityFeePerGas", PRIORITY_FEE);
    out.push_str("\"to\":\"");
    push_hex(out, tx.to.as_slice());
    out.push_str("\",");
    push_qty(out, "value", tx.value);
    out.push_str("\"accessList\":[],\"input\":\"");
    push_hex(out, &tx.input);
    out.push_str("\",");
    let mut seed = [0u8; 33];
    seed[..32].copy_from_slice(tx.hash.as_slice());
    push_b256(out, "r", &keccak256(seed));
    seed[32] = 1;
    push_b256(out, "s", &keccak256(seed));
    let parity = tx.hash[31] & 1;
    push_qty(out, "yParity", parity);
    push_qty(out, "v", parity);
    push_b256(out, "hash", &tx.hash);
    match (block, tx.outcome) {
        (Some(h), Some(o)) => {
            push_b256(out, "blockHash", &h.hash);
            push_qty(out, "blockNumber", h.number);
            push_qty(out, "transactionIndex", o.index);
        }
        _ => out.push_str("\"blockHash\":null,\"blockNumber\":null,\"transactionIndex\":null,"),
    }
    out.push_str("\"from\":\"");
    push_hex(out, tx.from.as_slice());
    out.push_str("\",");
    push_qty(out, "gasPrice", BASE_FEE + PRIORITY_FEE);
    out.pop();
    out.push('}');
}

/// Appends a block header as `newHeads` sends it (and `eth_getBlockByNumber` returns it, with
/// full transaction objects when `full` gives the chain to look them up in).
pub(crate) fn write_header(out: &mut String, h: &Header, full: Option<&EthChain>) {
    let n = u64::try_from(h.transactions.len()).unwrap_or(u64::MAX);
    let root = |tag: u8| {
        if h.transactions.is_empty() {
            return EMPTY_ROOT.to_owned();
        }
        let mut seed = Vec::with_capacity(1 + 32 * h.transactions.len());
        seed.push(tag);
        for t in &h.transactions {
            seed.extend_from_slice(t.as_slice());
        }
        format!("{:#x}", keccak256(&seed))
    };
    out.push('{');
    push_b256(out, "hash", &h.hash);
    push_b256(out, "parentHash", &h.parent_hash);
    let _ = write!(out, "\"sha3Uncles\":\"{EMPTY_UNCLES}\",\"miner\":\"0x{:040x}\",", 0);
    push_b256(out, "stateRoot", &h.state_root);
    let _ = write!(out, "\"transactionsRoot\":\"{}\",\"receiptsRoot\":\"{}\",", root(0), root(1));
    let _ = write!(out, "\"logsBloom\":\"0x{}\",\"difficulty\":\"0x0\",", "0".repeat(512));
    push_qty(out, "number", h.number);
    push_qty(out, "gasLimit", 30_000_000u64);
    push_qty(out, "gasUsed", n.saturating_mul(GAS_PER_SWAP));
    push_qty(out, "timestamp", h.timestamp);
    out.push_str("\"extraData\":\"0x\",");
    push_b256(out, "mixHash", &keccak256(h.hash));
    out.push_str("\"nonce\":\"0x0000000000000000\",");
    push_qty(out, "baseFeePerGas", BASE_FEE);
    let _ = write!(out, "\"withdrawalsRoot\":\"{EMPTY_ROOT}\",\"blobGasUsed\":\"0x0\",\"excessBlobGas\":\"0x0\",");
    push_b256(out, "parentBeaconBlockRoot", &B256::ZERO);
    out.push_str("\"requestsHash\":\"0xe3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\",");
    out.push_str("\"totalDifficulty\":\"0x0\",");
    push_qty(out, "size", 0x260 + n.saturating_mul(0x1b0));
    out.push_str("\"uncles\":[],\"transactions\":[");
    for (i, t) in h.transactions.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match full.and_then(|c| c.tx(t)) {
            Some(tx) => write_tx(out, tx, full.map_or(0, |c| c.config().chain_id), Some(h)),
            None => {
                let _ = write!(out, "\"{t:#x}\"");
            }
        }
    }
    out.push_str("],\"withdrawals\":[]}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::eth::EthSimConfig;

    fn node() -> (EthNode, u64, mpsc::Receiver<Utf8Bytes>) {
        let u = [("ETH".to_owned(), 3_500.0)];
        let cfg = EthSimConfig { arb_probability: 1.0, noise_probability: 1.0, ..EthSimConfig::default() };
        let mut node = EthNode::new(EthChain::new(&cfg, &u, 3).unwrap());
        let (tx, rx) = mpsc::channel(1_000);
        let id = node.add_client(tx, Arc::new(Notify::new()));
        (node, id, rx)
    }

    #[test]
    fn requests_get_node_shaped_answers() {
        let (mut node, id, mut rx) = node();
        let r = node.handle(id, r#"{"jsonrpc":"2.0","id":7,"method":"eth_chainId","params":[]}"#);
        assert_eq!(r, r#"{"jsonrpc":"2.0","id":7,"result":"0x7a69"}"#);
        let r = node.handle(id, r#"{"jsonrpc":"2.0","id":"a","method":"eth_nope"}"#);
        assert!(r.starts_with(r#"{"jsonrpc":"2.0","id":"a","error":{"code":-32601"#), "{r}");
        assert!(node.handle(id, "{not json").contains("-32700"));
        let r = node.handle(id, r#"{"jsonrpc":"2.0","id":2,"method":"eth_subscribe","params":["newHeads"]}"#);
        let v: Value = serde_json::from_str(&r).unwrap();
        let sub = v["result"].as_str().unwrap().to_owned();
        assert_eq!(sub.len(), 34);
        node.advance(10_000, &[3_600.0]);
        let frame = rx.try_recv().unwrap();
        let v: Value = serde_json::from_str(frame.as_str()).unwrap();
        assert_eq!(v["params"]["subscription"], sub.as_str());
        assert_eq!(v["params"]["result"]["number"], "0x1");
        let unsub = format!(r#"{{"jsonrpc":"2.0","id":3,"method":"eth_unsubscribe","params":["{sub}"]}}"#);
        assert!(node.handle(id, &unsub).ends_with(r#""result":true}"#));
        assert!(node.handle(id, &unsub).ends_with(r#""result":false}"#));
    }
}
