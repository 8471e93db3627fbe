//! Outgoing https: rustls with ring, the one crypto provider in the tree.

/// Makes rustls use ring; harmless when already done.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
