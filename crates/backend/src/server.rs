//! The TLS 1.3 server: our own accept loop on tokio-rustls, so that each
//! connection's RFC 9266 exporter value is at hand when its request is
//! handled. One request and one response per connection, each with a size
//! limit and a deadline. TLS ends in this process: the challenge is bound to
//! this very TLS session.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use dcred_protocol::challenge::{EXPORTER_LABEL, EXPORTER_LEN};
use dcred_protocol::frame::{self, FrameError};
use dcred_protocol::messages::{Request, Response, ResponseBody};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::service::Service;
use crate::{Error, Result};

/// Deadline for the handshake plus one request and its response.
pub const CONNECTION_DEADLINE: Duration = Duration::from_secs(15);

/// TLS server configuration: TLS 1.3 only, our ALPN, ring provider.
pub fn tls_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| Error::Tls(e.to_string()))?;
    cfg.alpn_protocols = vec![dcred_protocol::ALPN.to_vec()];
    Ok(cfg)
}

/// A running server.
pub struct Server {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    cert_der: Arc<Vec<u8>>,
    service: Arc<Service>,
}

impl Server {
    /// Bind to `addr`.
    pub async fn bind(
        addr: SocketAddr,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        service: Arc<Service>,
    ) -> Result<Server> {
        // The challenge binds the end-entity certificate, the first of the chain.
        let leaf = chain
            .first()
            .ok_or_else(|| Error::Tls("empty certificate chain".into()))?;
        let cert_der = Arc::new(leaf.as_ref().to_vec());
        let cfg = tls_config(chain, key)?;
        let listener = TcpListener::bind(addr).await?;
        Ok(Server {
            listener,
            acceptor: TlsAcceptor::from(Arc::new(cfg)),
            cert_der,
            service,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// Serve forever.
    pub async fn run(self) -> Result<()> {
        loop {
            let (tcp, peer) = match self.listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    log::warn!("accept: {e}");
                    continue;
                }
            };
            let acceptor = self.acceptor.clone();
            let service = self.service.clone();
            let cert = self.cert_der.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(
                    CONNECTION_DEADLINE,
                    connection(acceptor, tcp, service, cert),
                )
                .await
                {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => log::info!("{peer}: {e}"),
                    Err(_) => log::info!("{peer}: deadline passed"),
                }
            });
        }
    }
}

async fn connection(
    acceptor: TlsAcceptor,
    tcp: tokio::net::TcpStream,
    service: Arc<Service>,
    cert_der: Arc<Vec<u8>>,
) -> Result<()> {
    let mut tls = acceptor.accept(tcp).await?;
    let mut exporter = [0u8; EXPORTER_LEN];
    tls.get_ref()
        .1
        .export_keying_material(&mut exporter, EXPORTER_LABEL, None)
        .map_err(|e| Error::Tls(e.to_string()))?;
    let challenge = dcred_protocol::challenge(&exporter, &cert_der);
    let mut header = [0u8; 4];
    tls.read_exact(&mut header).await?;
    let response = match frame::body_len(header) {
        Err(e) => error_reply(&e),
        Ok(n) => {
            let mut body = zeroize::Zeroizing::new(vec![0u8; n]);
            tls.read_exact(&mut body).await?;
            match frame::decode::<Request>(&body) {
                Err(e) => error_reply(&e),
                Ok(req) => {
                    let service = service.clone();
                    tokio::task::spawn_blocking(move || service.handle(&req.body, &challenge))
                        .await
                        .map_err(|e| Error::Store(format!("request task: {e}")))??
                }
            }
        }
    };
    let out = frame::encode(&response).map_err(|e| Error::Tls(e.to_string()))?;
    tls.write_all(&out).await?;
    tls.shutdown().await?;
    Ok(())
}

fn error_reply(e: &FrameError) -> Response {
    Response {
        version: dcred_protocol::VERSION,
        body: ResponseBody::Error {
            message: e.to_string(),
        },
    }
}
