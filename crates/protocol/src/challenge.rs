//! The channel-bound challenge the device signs (DESIGN.md, activation step 3):
//! `"dcred-kwk-v1" || TLS exporter || SHA-256(back-end certificate)`.
//!
//! The exporter is RFC 9266's `tls-exporter` channel binding: label
//! [`EXPORTER_LABEL`], no context, [`EXPORTER_LEN`] bytes. Including the
//! server certificate's hash defeats unknown-key-share relays (the Pomcor
//! article's 2014 update).

use sha2::{Digest, Sha256};

/// Domain-separation prefix of the challenge.
pub const CONTEXT: &[u8] = b"dcred-kwk-v1";

/// RFC 9266 exporter label.
pub const EXPORTER_LABEL: &[u8] = b"EXPORTER-Channel-Binding";

/// RFC 9266 exporter length.
pub const EXPORTER_LEN: usize = 32;

/// Build the challenge from the TLS exporter value and the back-end's DER certificate.
pub fn challenge(exporter: &[u8; EXPORTER_LEN], server_cert_der: &[u8]) -> Vec<u8> {
    let mut c = Vec::with_capacity(CONTEXT.len() + EXPORTER_LEN + 32);
    c.extend_from_slice(CONTEXT);
    c.extend_from_slice(exporter);
    c.extend_from_slice(&Sha256::digest(server_cert_der));
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_binding() {
        let a = challenge(&[1; 32], b"cert");
        assert_eq!(&a[..12], CONTEXT);
        assert_eq!(&a[12..44], &[1u8; 32]);
        assert_eq!(a.len(), 12 + 32 + 32);
        assert_ne!(a, challenge(&[2; 32], b"cert"), "another TLS session");
        assert_ne!(a, challenge(&[1; 32], b"other cert"), "another server");
    }
}
