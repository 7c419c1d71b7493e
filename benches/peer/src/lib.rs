//! Empty: this crate only holds the peer bench (`benches/peer.rs`).
