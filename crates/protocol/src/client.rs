//! A blocking TLS 1.3 client (feature `client`): one request per connection,
//! with a bounded connect/read/write timeout, the back-end certificate
//! checked against the trust anchor recorded at enrollment, and the request
//! built from this connection's channel-bound challenge.

use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};

use crate::challenge::{EXPORTER_LABEL, EXPORTER_LEN};
use crate::frame::{self, FrameError};
use crate::messages::{Request, RequestBody, Response};

/// Client errors.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError {
    /// The address does not resolve or the name is not usable for TLS.
    Address(String),
    /// Connecting, the handshake or I/O failed or timed out.
    Io(std::io::Error),
    /// TLS configuration or verification failed.
    Tls(String),
    /// The answer was not a valid message.
    Frame(FrameError),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Address(a) => write!(f, "back-end address {a}"),
            ClientError::Io(e) => write!(f, "back-end unreachable: {e}"),
            ClientError::Tls(e) => write!(f, "TLS: {e}"),
            ClientError::Frame(e) => write!(f, "back-end answer: {e}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<FrameError> for ClientError {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::Io(io) => ClientError::Io(io),
            other => ClientError::Frame(other),
        }
    }
}

/// A configured client for one back-end.
#[derive(Clone)]
pub struct Client {
    config: Arc<rustls::ClientConfig>,
    addr: String,
    name: ServerName<'static>,
    timeout: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `addr` ("host:port"), trusting `anchor_der` (a CA or the
    /// back-end's own certificate), with `timeout` for every step.
    pub fn new(addr: &str, anchor_der: &[u8], timeout: Duration) -> Result<Client, ClientError> {
        let host = addr
            .rsplit_once(':')
            .map(|(h, _)| h.trim_start_matches('[').trim_end_matches(']'))
            .ok_or_else(|| ClientError::Address(format!("{addr}: expected host:port")))?;
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| ClientError::Address(format!("{host}: not a DNS name or IP address")))?;
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(anchor_der.to_vec()))
            .map_err(|e| ClientError::Tls(format!("trust anchor: {e}")))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| ClientError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![crate::ALPN.to_vec()];
        Ok(Client {
            config: Arc::new(config),
            addr: addr.to_string(),
            name,
            timeout,
        })
    }

    /// The back-end address ("host:port").
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Connect, derive this session's challenge, send the request `build`
    /// makes from it, and return the answer.
    pub fn call(&self, build: impl FnOnce(&[u8]) -> RequestBody) -> Result<Response, ClientError> {
        let sock = self
            .addr
            .to_socket_addrs()
            .map_err(|e| ClientError::Address(format!("{}: {e}", self.addr)))?
            .next()
            .ok_or_else(|| ClientError::Address(format!("{}: no address", self.addr)))?;
        let tcp = TcpStream::connect_timeout(&sock, self.timeout).map_err(ClientError::Io)?;
        tcp.set_read_timeout(Some(self.timeout))
            .map_err(ClientError::Io)?;
        tcp.set_write_timeout(Some(self.timeout))
            .map_err(ClientError::Io)?;
        let conn = rustls::ClientConnection::new(self.config.clone(), self.name.clone())
            .map_err(|e| ClientError::Tls(e.to_string()))?;
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        while tls.conn.is_handshaking() {
            tls.conn
                .complete_io(&mut tls.sock)
                .map_err(|e| match e.kind() {
                    std::io::ErrorKind::InvalidData => ClientError::Tls(e.to_string()),
                    _ => ClientError::Io(e),
                })?;
        }
        let cert = tls
            .conn
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.as_ref().to_vec())
            .ok_or_else(|| ClientError::Tls("no server certificate".into()))?;
        let mut exporter = [0u8; EXPORTER_LEN];
        tls.conn
            .export_keying_material(&mut exporter, EXPORTER_LABEL, None)
            .map_err(|e| ClientError::Tls(e.to_string()))?;
        let challenge = crate::challenge(&exporter, &cert);
        let req = Request {
            version: crate::VERSION,
            body: build(&challenge),
        };
        frame::write_frame(&mut tls, &req)?;
        tls.flush().map_err(ClientError::Io)?;
        let body = frame::read_frame(&mut tls)?;
        Ok(frame::decode(&body)?)
    }
}
