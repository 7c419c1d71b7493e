//! A websocket client connection the I/O thread can poll without blocking.
//!
//! The handshake runs blocking with a timeout (it happens once per connection, off the per-event
//! path); afterwards the socket is non-blocking and registered with the I/O thread's `mio::Poll`,
//! and every read drains until `WouldBlock`, as edge-triggered readiness requires. Ping frames
//! are answered by tungstenite; their pongs go out on the next [`WsConn::flush`].
//!
//! `wss://` goes through rustls (ring) with the bundled webpki roots, so the same code talks to
//! a venue's real endpoint; a private CA can be added for tests and internal gateways.

use std::io::ErrorKind;
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::time::Duration;

use std::sync::Arc;

use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Connector, Message, WebSocket};

/// Why a connection could not be made or went down.
#[derive(Debug, thiserror::Error)]
pub enum WsError {
    /// The URL is not a `ws://` or `wss://` URL with a host.
    #[error("unsupported or malformed websocket URL {0:?}")]
    BadUrl(String),
    /// TCP connect or socket option failed.
    #[error("connect to {addr}: {source}")]
    Connect {
        /// Host and port.
        addr: String,
        /// OS error.
        source: std::io::Error,
    },
    /// The websocket handshake failed.
    #[error("handshake with {url}: {reason}")]
    Handshake {
        /// The URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The peer closed the connection.
    #[error("connection closed by peer")]
    Closed,
    /// A protocol or I/O error on an open connection.
    #[error("websocket error: {0}")]
    Protocol(#[from] tungstenite::Error),
}

/// What one non-blocking read produced.
#[derive(Debug)]
pub enum Read<'a> {
    /// A text (or binary) data frame's payload.
    Data(&'a [u8]),
    /// A control frame handled internally (ping, pong).
    Control,
    /// Nothing more to read now.
    WouldBlock,
}

/// One open websocket client connection.
pub struct WsConn {
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    url: String,
    /// Raw frames ([`WsConn::send_raw_text`]) not yet written, whole frames only.
    raw_out: Vec<u8>,
    /// How much of `raw_out` the socket has taken.
    raw_written: usize,
    /// State of the masking-key generator.
    mask_state: u64,
}

impl std::fmt::Debug for WsConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsConn").field("url", &self.url).finish_non_exhaustive()
    }
}

impl WsConn {
    /// Connects and completes the handshake within `timeout`, then switches to non-blocking.
    ///
    /// # Errors
    /// A [`WsError`] naming the step that failed; the URL's query string is not repeated in it.
    pub fn connect(url: &str, timeout: Duration) -> Result<Self, WsError> {
        Self::connect_with_tls(url, timeout, None)
    }

    /// As [`WsConn::connect`], with an explicit rustls client config for `wss://` (a private CA,
    /// client certificates); `None` uses the bundled webpki roots.
    ///
    /// # Errors
    /// As [`WsConn::connect`].
    pub fn connect_with_tls(
        url: &str,
        timeout: Duration,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Result<Self, WsError> {
        let (rest, default_port) = if let Some(r) = url.strip_prefix("wss://") {
            (r, 443)
        } else if let Some(r) = url.strip_prefix("ws://") {
            (r, 80)
        } else {
            return Err(WsError::BadUrl(url.to_owned()));
        };
        let host_port = rest.split(['/', '?']).next().unwrap_or_default();
        if host_port.is_empty() {
            return Err(WsError::BadUrl(url.to_owned()));
        }
        let with_port =
            if host_port.contains(':') { host_port.to_owned() } else { format!("{host_port}:{default_port}") };
        let conn_err = |source| WsError::Connect { addr: with_port.clone(), source };
        let addr =
            with_port.to_socket_addrs().map_err(conn_err)?.next().ok_or_else(|| WsError::BadUrl(url.to_owned()))?;
        let stream = TcpStream::connect_timeout(&addr, timeout).map_err(conn_err)?;
        stream.set_nodelay(true).map_err(conn_err)?;
        stream.set_read_timeout(Some(timeout)).map_err(conn_err)?;
        stream.set_write_timeout(Some(timeout)).map_err(conn_err)?;
        let request =
            url.into_client_request().map_err(|e| WsError::Handshake { url: url.to_owned(), reason: e.to_string() })?;
        // Tungstenite zero-fills its read buffer up to this size before every socket read, the
        // one that finds nothing included: keep it small (a larger message still grows the
        // buffer as far as it needs, and is read in several calls).
        let config = WebSocketConfig::default().read_buffer_size(READ_CHUNK);
        let connector = tls.map(Connector::Rustls);
        let (ws, _response) = tungstenite::client_tls_with_config(request, stream, Some(config), connector)
            .map_err(|e| WsError::Handshake { url: url.to_owned(), reason: e.to_string() })?;
        tcp(&ws).set_nonblocking(true).map_err(conn_err)?;
        let seed =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        let mask_state = (seed ^ u64::from(tcp(&ws).as_raw_fd().unsigned_abs()).rotate_left(32)) | 1;
        Ok(Self { ws, url: url.to_owned(), raw_out: Vec::with_capacity(RAW_OUT_CAPACITY), raw_written: 0, mask_state })
    }

    /// The raw file descriptor, for registration with `mio`.
    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        tcp(&self.ws).as_raw_fd()
    }

    /// The URL it was opened with.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Reads at most one message without blocking, copying a data payload into `buf`.
    ///
    /// # Errors
    /// [`WsError::Closed`] when the peer closed, [`WsError::Protocol`] on a broken stream.
    pub fn read<'b>(&mut self, buf: &'b mut Vec<u8>) -> Result<Read<'b>, WsError> {
        match self.ws.read() {
            Ok(Message::Text(t)) => {
                buf.clear();
                buf.extend_from_slice(t.as_bytes());
                Ok(Read::Data(buf.as_slice()))
            }
            Ok(Message::Binary(b)) => {
                buf.clear();
                buf.extend_from_slice(&b);
                Ok(Read::Data(buf.as_slice()))
            }
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => Ok(Read::Control),
            Ok(Message::Close(_)) | Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                Err(WsError::Closed)
            }
            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => Ok(Read::WouldBlock),
            Err(e) => Err(WsError::Protocol(e)),
        }
    }

    /// Sends a text message (a subscribe request, an application ping) without blocking long.
    ///
    /// # Errors
    /// [`WsError::Protocol`] when the connection is broken.
    pub fn send_text(&mut self, text: &str) -> Result<(), WsError> {
        match self.ws.send(Message::text(text)) {
            Ok(()) => Ok(()),
            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(WsError::Protocol(e)),
        }
    }

    /// Sends a constant text message (an application ping) without allocating: the frame
    /// borrows the `'static` text.
    ///
    /// # Errors
    /// [`WsError::Protocol`] when the connection is broken.
    pub fn send_static(&mut self, text: &'static str) -> Result<(), WsError> {
        match self.ws.send(Message::Text(tungstenite::Utf8Bytes::from_static(text))) {
            Ok(()) => Ok(()),
            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(WsError::Protocol(e)),
        }
    }

    /// Sends a text message the caller encoded in its own buffer, without allocating: the
    /// frame (header, masking key, masked payload) is built in a buffer the connection owns and
    /// written straight to the socket, after anything tungstenite still holds, so frames never
    /// interleave. This is the per-order path: an order's bytes are on the socket (or in its
    /// send buffer) when it returns `Ok`, unless the socket is full, when they go out on the
    /// next [`WsConn::flush`].
    ///
    /// # Errors
    /// [`WsError::Protocol`] / [`WsError::Closed`] when the connection is broken.
    pub fn send_raw_text(&mut self, payload: &[u8]) -> Result<(), WsError> {
        if self.raw_written == self.raw_out.len() {
            self.raw_out.clear();
            self.raw_written = 0;
        }
        self.raw_out.push(0x81); // FIN, text
        let len = payload.len();
        if len < 126 {
            self.raw_out.push(0x80 | len as u8);
        } else if len <= usize::from(u16::MAX) {
            self.raw_out.push(0x80 | 126);
            self.raw_out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            self.raw_out.push(0x80 | 127);
            self.raw_out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        // xorshift64*: masking keys need only be unpredictable to intermediaries.
        self.mask_state ^= self.mask_state >> 12;
        self.mask_state ^= self.mask_state << 25;
        self.mask_state ^= self.mask_state >> 27;
        let key = (self.mask_state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32;
        let mask = key.to_be_bytes();
        self.raw_out.extend_from_slice(&mask);
        let start = self.raw_out.len();
        self.raw_out.extend_from_slice(payload);
        for (i, b) in self.raw_out[start..].iter_mut().enumerate() {
            *b ^= mask[i & 3];
        }
        self.flush()
    }

    /// Writes queued frames (pongs, sends, raw frames) as far as the socket takes them.
    ///
    /// # Errors
    /// [`WsError::Protocol`] when the connection is broken.
    pub fn flush(&mut self) -> Result<(), WsError> {
        match self.ws.flush() {
            Ok(()) => {}
            // Tungstenite still holds part of a frame: raw frames wait behind it.
            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(tungstenite::Error::ConnectionClosed) => return Err(WsError::Closed),
            Err(e) => return Err(WsError::Protocol(e)),
        }
        while self.raw_written < self.raw_out.len() {
            let stream = self.ws.get_mut();
            match std::io::Write::write(stream, &self.raw_out[self.raw_written..]) {
                Ok(0) => return Err(WsError::Closed),
                Ok(n) => self.raw_written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(WsError::Protocol(tungstenite::Error::Io(e))),
            }
        }
        match std::io::Write::flush(self.ws.get_mut()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(WsError::Protocol(tungstenite::Error::Io(e))),
        }
    }

    /// Starts a clean close.
    pub fn close(&mut self) {
        let _ = self.ws.close(None);
        let _ = self.ws.flush();
    }
}

/// Most bytes one socket read takes (tungstenite's `read_buffer_size`).
const READ_CHUNK: usize = 16 * 1024;

/// Bytes of raw frames a connection holds without growing (an order frame is well under 1 KiB).
const RAW_OUT_CAPACITY: usize = 64 * 1024;

/// The TCP socket under a plain or TLS websocket.
fn tcp(ws: &WebSocket<MaybeTlsStream<TcpStream>>) -> &TcpStream {
    match ws.get_ref() {
        MaybeTlsStream::Rustls(s) => s.get_ref(),
        // Plain, and any future variant tungstenite adds, wrap the TcpStream directly.
        MaybeTlsStream::Plain(s) => s,
        _ => unreachable!("crossbar builds tungstenite with rustls only"),
    }
}
