//! A back-end on loopback for the integration tests.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use dcred_backend::cli;
use dcred_backend::service::{Policy, Service};
use dcred_protocol::client::Client;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

/// A running back-end and a client for it.
pub struct Backend {
    /// The data directory.
    pub dir: tempfile::TempDir,
    /// The service the server uses (for registering records directly).
    pub service: Arc<Service>,
    /// A client trusting the back-end's TLS CA.
    pub client: Client,
}

/// Start a back-end; `setup` may prepare the data directory after `init`.
pub fn start_with(lock_limit: u32, setup: impl FnOnce(&std::path::Path)) -> Backend {
    let dir = tempfile::tempdir().unwrap();
    cli::init(dir.path(), &["127.0.0.1".to_string()]).unwrap();
    setup(dir.path());
    serve(dir, lock_limit)
}

/// Serve an initialised data directory.
pub fn serve(dir: tempfile::TempDir, lock_limit: u32) -> Backend {
    let service = Arc::new(cli::service(dir.path(), Policy { lock_limit }).unwrap());
    let (cert, key) = cli::identity(dir.path()).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let svc = service.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let server =
                dcred_backend::server::Server::bind("127.0.0.1:0".parse().unwrap(), cert, key, svc)
                    .await
                    .unwrap();
            tx.send(server.local_addr().unwrap()).unwrap();
            server.run().await.unwrap();
        });
    });
    let addr = rx.recv().unwrap();
    let ca = CertificateDer::from_pem_file(dir.path().join(cli::TLS_CA_CERT)).unwrap();
    let client = Client::new(&addr.to_string(), ca.as_ref(), Duration::from_secs(5)).unwrap();
    Backend {
        dir,
        service,
        client,
    }
}

/// Start a back-end without enrollment.
pub fn start(lock_limit: u32) -> Backend {
    start_with(lock_limit, |_| {})
}

/// The audit log's event names, oldest first.
pub fn audit_events(b: &Backend) -> Vec<String> {
    b.service
        .store
        .audit_log()
        .unwrap()
        .into_iter()
        .map(|e| e.2)
        .collect()
}

/// Assert that `cert` (DER) is signed by the P-256 key of `ca` (DER).
pub fn assert_signed_by(cert: &[u8], ca: &[u8]) {
    use der::{Decode, Encode};
    let cert = x509_cert::Certificate::from_der(cert).unwrap();
    let ca = x509_cert::Certificate::from_der(ca).unwrap();
    assert_eq!(
        cert.tbs_certificate().issuer(),
        ca.tbs_certificate().subject()
    );
    let key = ca
        .tbs_certificate()
        .subject_public_key_info()
        .subject_public_key
        .raw_bytes();
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, key)
        .verify(
            &cert.tbs_certificate().to_der().unwrap(),
            cert.signature().raw_bytes(),
        )
        .expect("signed by the CA");
}
