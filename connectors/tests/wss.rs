//! `wss://` through rustls: the same `WsConn` the I/O thread uses completes a TLS websocket
//! handshake with a server on 127.0.0.1, reads frames non-blocking, and refuses a certificate it
//! cannot verify.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbar_connectors::ws::{Read, WsConn, WsError};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

const FRAME: &str =
    r#"{"u":400900217,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}"#;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A one-connection TLS websocket server that sends `n` frames; returns its port and its CA.
fn serve(n: usize) -> (u16, CertificateDer<'static>) {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_der = cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(signing_key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert_der.clone()], key)
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let config = Arc::new(config);
    std::thread::spawn(move || {
        while let Ok((tcp, _)) = listener.accept() {
            let config = Arc::clone(&config);
            std::thread::spawn(move || {
                let Ok(conn) = rustls::ServerConnection::new(config) else { return };
                let tls = rustls::StreamOwned::new(conn, tcp);
                let Ok(mut ws) = tungstenite::accept(tls) else { return };
                for _ in 0..n {
                    if ws.send(tungstenite::Message::text(FRAME)).is_err() {
                        return;
                    }
                }
                let _ = ws.send(tungstenite::Message::Ping(Default::default()));
                std::thread::sleep(Duration::from_millis(500));
            });
        }
    });
    (port, cert_der)
}

#[test]
fn wss_handshake_and_non_blocking_reads_through_rustls() {
    let (port, ca) = serve(3);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let url = format!("wss://localhost:{port}/ws/bnbusdt@bookTicker");
    let mut conn = WsConn::connect_with_tls(&url, Duration::from_secs(5), Some(Arc::new(client))).unwrap();
    let (mut buf, mut got, deadline) = (Vec::new(), Vec::new(), Instant::now() + Duration::from_secs(5));
    while got.len() < 3 && Instant::now() < deadline {
        match conn.read(&mut buf).unwrap() {
            Read::Data(d) => got.push(String::from_utf8(d.to_vec()).unwrap()),
            Read::Control => {}
            Read::WouldBlock => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    assert_eq!(got, vec![FRAME; 3]);
    conn.flush().unwrap();
}

#[test]
fn an_unverifiable_certificate_is_refused() {
    let (port, _ca) = serve(1);
    // Default config: the bundled public roots, which do not include the test's self-signed CA.
    let err = WsConn::connect(&format!("wss://localhost:{port}/ws"), Duration::from_secs(5)).unwrap_err();
    match err {
        WsError::Handshake { reason, .. } => assert!(reason.to_lowercase().contains("certificate"), "{reason}"),
        other => panic!("expected a handshake error, got {other:?}"),
    }
    assert!(matches!(WsConn::connect("http://localhost/", Duration::from_secs(1)), Err(WsError::BadUrl(_))));
}
