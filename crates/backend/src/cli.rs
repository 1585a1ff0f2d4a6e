//! The `dcred-backend` command line.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::keys::Keys;
use crate::service::{Policy, Service};
use crate::store::{short_id, Store};
use crate::{write_private, Error, Result};

const USAGE: &str = "\
dcred-backend: guards the key-wrapping keys of derived credentials.

USAGE:
  dcred-backend init  --data DIR [--name HOST]... [--piv-anchor CERT]...
                      [--master-key URI --mac-key URI --ca-key URI]
                      [--tls-cert CHAIN --tls-key KEY --tls-ca CA]
                      [--issuing-ca-cert CERT --issuing-ca-key KEY]
      Creates DIR (mode 0700) with the database, the master and MAC keys, a TLS CA
      and a server certificate for HOST names (default: localhost and 127.0.0.1).
      Clients trust DIR/tls-ca.cert.pem. Also creates the CA that issues derived
      certificates. Never overwrites existing keys. With the three PKCS#11 URIs
      (pkcs11:token=T;object=O?module-path=LIB&pin-value=PIN or pin-source=file:F)
      the master, MAC and CA keys live in that token (generated there if missing).
      --tls-* import a TLS identity (server chain, key, and the CA clients trust)
      and --issuing-ca-* an issuing CA, instead of generating them (PEM files).
  dcred-backend piv-anchor add --data DIR CERT
      Trust CERT (PEM or DER) as an issuer of PIV Authentication certificates.
  dcred-backend piv-crl add --data DIR CRL
      Load a CRL (PEM or DER, signed by a PIV trust anchor): its certificates cannot
      enroll, and devices derived from them are refused activation ('revoked'). A
      running serve picks new anchors and CRLs up at its next request.
  dcred-backend escrow import --data DIR --user PIV_AUTH_CERT --cert KM_CERT --key KM_KEY [--retired]
      Escrow a key-management key (PKCS#8 PEM) for the cardholder of PIV_AUTH_CERT;
      it is delivered, with every retired one, at each enrollment.
  dcred-backend serve --data DIR [--listen 127.0.0.1:8443] [--lock-limit 10]
  dcred-backend device list   --data DIR
  dcred-backend device lock   --data DIR ID
  dcred-backend device unlock --data DIR ID
  dcred-backend device revoke --data DIR ID     (destroys the KWK: the credential is dead)
  dcred-backend audit --data DIR
IDs are the record ids `device list` prints (a unique prefix is enough).";

/// File names in the data directory.
pub const DB_FILE: &str = "db.sqlite";
/// TLS CA certificate (the clients' trust anchor).
pub const TLS_CA_CERT: &str = "tls-ca.cert.pem";
/// TLS CA key (to issue certificates for more back-end nodes).
pub const TLS_CA_KEY: &str = "tls-ca.key.pem";
/// TLS server certificate.
pub const TLS_CERT: &str = "tls.cert.pem";
/// TLS private key.
pub const TLS_KEY: &str = "tls.key.pem";

/// Entry point; returns the exit code.
pub fn main(args: Vec<String>) -> i32 {
    match run(args) {
        Ok(()) => 0,
        Err(Error::Usage(m)) if m.is_empty() => {
            println!("{USAGE}");
            0
        }
        Err(Error::Usage(m)) => {
            eprintln!("dcred-backend: {m}\n\n{USAGE}");
            2
        }
        Err(e) => {
            eprintln!("dcred-backend: {e}");
            1
        }
    }
}

struct Args {
    data: Option<PathBuf>,
    names: Vec<String>,
    anchors: Vec<PathBuf>,
    hsm: [Option<String>; 3],
    tls_import: [Option<PathBuf>; 3],
    ca_import: [Option<PathBuf>; 2],
    user: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    retired: bool,
    listen: String,
    lock_limit: u32,
    rest: Vec<String>,
}

fn parse(args: &[String]) -> Result<Args> {
    let mut a = Args {
        data: None,
        names: Vec::new(),
        anchors: Vec::new(),
        hsm: [None, None, None],
        tls_import: [None, None, None],
        ca_import: [None, None],
        user: None,
        cert: None,
        key: None,
        retired: false,
        listen: "127.0.0.1:8443".into(),
        lock_limit: 10,
        rest: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| Error::Usage(format!("{arg} needs a value")))
        };
        match arg.as_str() {
            "--data" => a.data = Some(PathBuf::from(value()?)),
            "--name" => a.names.push(value()?),
            "--piv-anchor" => a.anchors.push(PathBuf::from(value()?)),
            "--master-key" => a.hsm[0] = Some(value()?),
            "--mac-key" => a.hsm[1] = Some(value()?),
            "--ca-key" => a.hsm[2] = Some(value()?),
            "--tls-cert" => a.tls_import[0] = Some(PathBuf::from(value()?)),
            "--tls-key" => a.tls_import[1] = Some(PathBuf::from(value()?)),
            "--tls-ca" => a.tls_import[2] = Some(PathBuf::from(value()?)),
            "--issuing-ca-cert" => a.ca_import[0] = Some(PathBuf::from(value()?)),
            "--issuing-ca-key" => a.ca_import[1] = Some(PathBuf::from(value()?)),
            "--user" => a.user = Some(PathBuf::from(value()?)),
            "--cert" => a.cert = Some(PathBuf::from(value()?)),
            "--key" => a.key = Some(PathBuf::from(value()?)),
            "--retired" => a.retired = true,
            "--listen" => a.listen = value()?,
            "--lock-limit" => {
                a.lock_limit =
                    value()?.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                        Error::Usage("--lock-limit takes a positive number".into())
                    })?
            }
            "-h" | "--help" => return Err(Error::Usage(String::new())),
            s if s.starts_with("--") => return Err(Error::Usage(format!("unknown option {s}"))),
            s => a.rest.push(s.to_string()),
        }
    }
    Ok(a)
}

fn data(a: &Args) -> Result<&Path> {
    a.data
        .as_deref()
        .ok_or_else(|| Error::Usage("--data DIR is required".into()))
}

fn run(args: Vec<String>) -> Result<()> {
    let (cmd, rest) = args
        .split_first()
        .ok_or_else(|| Error::Usage(String::new()))?;
    let a = parse(rest)?;
    match cmd.as_str() {
        "init" => {
            let hsm = match &a.hsm {
                [Some(master), Some(mac), Some(ca)] => Some(crate::keys::HsmConfig {
                    master: master.clone(),
                    mac: mac.clone(),
                    ca: ca.clone(),
                }),
                [None, None, None] => None,
                _ => {
                    return Err(Error::Usage(
                        "--master-key, --mac-key and --ca-key go together".into(),
                    ))
                }
            };
            let tls = match &a.tls_import {
                [Some(c), Some(k), Some(ca)] => Some([c.clone(), k.clone(), ca.clone()]),
                [None, None, None] => None,
                _ => {
                    return Err(Error::Usage(
                        "--tls-cert, --tls-key and --tls-ca go together".into(),
                    ))
                }
            };
            let ca = match &a.ca_import {
                [Some(c), Some(k)] if hsm.is_none() => Some([c.clone(), k.clone()]),
                [None, None] => None,
                [Some(_), Some(_)] => {
                    return Err(Error::Usage(
                        "an imported issuing CA key is a file; it cannot go with --ca-key".into(),
                    ))
                }
                _ => {
                    return Err(Error::Usage(
                        "--issuing-ca-cert and --issuing-ca-key go together".into(),
                    ))
                }
            };
            init_full(data(&a)?, &a.names, hsm, Import { tls, ca })?;
            for f in &a.anchors {
                let name = crate::enroll::add_anchor(data(&a)?, f)?;
                eprintln!("dcred-backend: PIV trust anchor {name} added");
            }
            Ok(())
        }
        "piv-anchor" => match a.rest.as_slice() {
            [op, file] if op == "add" => {
                let name = crate::enroll::add_anchor(data(&a)?, Path::new(file))?;
                eprintln!("dcred-backend: PIV trust anchor {name} added");
                Ok(())
            }
            _ => Err(Error::Usage("piv-anchor add CERT".into())),
        },
        "piv-crl" => match a.rest.as_slice() {
            [op, file] if op == "add" => {
                let n = crate::enroll::add_crl(data(&a)?, Path::new(file))?;
                eprintln!("dcred-backend: CRL added ({n} revoked certificate(s)); a running serve applies it at the next request");
                Ok(())
            }
            _ => Err(Error::Usage("piv-crl add CRL".into())),
        },
        "escrow" => escrow(&a),
        "serve" => serve(data(&a)?, &a.listen, a.lock_limit),
        "device" => device(data(&a)?, &a.rest),
        "audit" => audit(data(&a)?),
        "-h" | "--help" | "help" => Err(Error::Usage(String::new())),
        other => Err(Error::Usage(format!("unknown command {other}"))),
    }
}

/// Create the data directory with file keys.
pub fn init(dir: &Path, names: &[String]) -> Result<()> {
    init_with(dir, names, None)
}

/// Identities to import at `init` instead of generating them.
#[derive(Debug, Default)]
pub struct Import {
    /// TLS server chain, key, and the CA clients trust (PEM).
    pub tls: Option<[PathBuf; 3]>,
    /// Issuing CA certificate and key (PEM).
    pub ca: Option<[PathBuf; 2]>,
}

/// Create the data directory; the master, MAC and CA keys in files or in an HSM.
pub fn init_with(dir: &Path, names: &[String], hsm: Option<crate::keys::HsmConfig>) -> Result<()> {
    init_full(dir, names, hsm, Import::default())
}

/// Create the data directory, importing the given identities.
pub fn init_full(
    dir: &Path,
    names: &[String],
    hsm: Option<crate::keys::HsmConfig>,
    import: Import,
) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let issuing_key = match hsm {
        None => {
            Keys::create(dir)?;
            None
        }
        Some(cfg) => {
            let (hsm, [_, _, ca]) = cfg.open()?;
            let text = serde_json::to_vec_pretty(&cfg).map_err(|e| Error::Keys(e.to_string()))?;
            write_private(&dir.join(crate::keys::HSM_CONFIG), &text)?;
            Some((hsm, ca))
        }
    };
    let names = if names.is_empty() {
        vec!["localhost".to_string(), "127.0.0.1".to_string()]
    } else {
        names.to_vec()
    };
    match import.tls {
        Some([chain, key, ca]) => {
            let c = CertificateDer::pem_file_iter(&chain)
                .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| Error::Usage(format!("{}: {e}", chain.display())))?;
            let k = PrivateKeyDer::from_pem_file(&key)
                .map_err(|e| Error::Usage(format!("{}: {e}", key.display())))?;
            CertificateDer::from_pem_file(&ca)
                .map_err(|e| Error::Usage(format!("{}: {e}", ca.display())))?;
            // rustls refuses a key that does not match the certificate.
            crate::server::tls_config(c, k)?;
            write_private(&dir.join(TLS_CERT), &std::fs::read(&chain)?)?;
            write_private(&dir.join(TLS_KEY), &std::fs::read(&key)?)?;
            write_private(&dir.join(TLS_CA_CERT), &std::fs::read(&ca)?)?;
        }
        None => generate_tls(dir, names)?,
    }
    match import.ca {
        Some([cert, key]) => crate::enroll::import_issuing_ca(dir, &cert, &key)?,
        None => crate::enroll::IssuingCa::create(dir, issuing_key)?,
    }
    let store = Store::open(&dir.join(DB_FILE))?;
    store.audit(None, "init", "")?;
    eprintln!(
        "dcred-backend: initialised {} (schema {}); clients trust {}",
        dir.display(),
        store.schema_version()?,
        dir.join(TLS_CA_CERT).display()
    );
    Ok(())
}

fn generate_tls(dir: &Path, names: Vec<String>) -> Result<()> {
    let tls = |e: rcgen::Error| Error::Tls(e.to_string());
    let ca_key = rcgen::KeyPair::generate().map_err(tls)?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(tls)?;
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "dcred back-end TLS CA");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(tls)?;
    let issuer = rcgen::Issuer::new(ca_params, &ca_key);
    let key = rcgen::KeyPair::generate().map_err(tls)?;
    let mut params = rcgen::CertificateParams::new(names).map_err(tls)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "dcred back-end");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, &issuer).map_err(tls)?;
    write_private(&dir.join(TLS_CA_KEY), ca_key.serialize_pem().as_bytes())?;
    write_private(&dir.join(TLS_CA_CERT), ca_cert.pem().as_bytes())?;
    write_private(&dir.join(TLS_KEY), key.serialize_pem().as_bytes())?;
    write_private(&dir.join(TLS_CERT), cert.pem().as_bytes())?;
    Ok(())
}

/// Load the service from a data directory (enrollment on when PIV trust
/// anchors are configured).
pub fn service(dir: &Path, policy: Policy) -> Result<Service> {
    let keys = Keys::load(dir)?;
    let hsm_ca = keys.hsm_ca(dir)?;
    let svc = Service::new(Store::open(&dir.join(DB_FILE))?, keys, policy);
    if !dir.join(crate::enroll::ANCHOR_DIR).exists() {
        return Ok(svc);
    }
    Ok(svc.with_enrollment(crate::service::Enrollment::new(
        dir,
        crate::enroll::IssuingCa::load(dir, hsm_ca)?,
    )?))
}

fn escrow(a: &Args) -> Result<()> {
    if a.rest.first().map(String::as_str) != Some("import") {
        return Err(Error::Usage(
            "escrow import --user CERT --cert CERT --key KEY".into(),
        ));
    }
    let need = |p: &Option<PathBuf>, what: &str| {
        p.clone()
            .ok_or_else(|| Error::Usage(format!("escrow import needs {what}")))
    };
    let read_cert = |p: PathBuf| -> Result<Vec<u8>> {
        CertificateDer::from_pem_file(&p)
            .map(|c| c.as_ref().to_vec())
            .or_else(|_| std::fs::read(&p).map_err(Error::from))
    };
    let user = read_cert(need(&a.user, "--user")?)?;
    let cert = read_cert(need(&a.cert, "--cert")?)?;
    let key_path = need(&a.key, "--key")?;
    let key = match PrivateKeyDer::from_pem_file(&key_path) {
        Ok(PrivateKeyDer::Pkcs8(k)) => zeroize::Zeroizing::new(k.secret_pkcs8_der().to_vec()),
        _ => {
            return Err(Error::Usage(format!(
                "{}: expected a PKCS#8 PEM private key (openssl genpkey writes one)",
                key_path.display()
            )))
        }
    };
    service(data(a)?, Policy::default())?.escrow_import(&user, &cert, &key, !a.retired)?;
    eprintln!(
        "dcred-backend: escrowed ({})",
        if a.retired { "retired" } else { "current" }
    );
    Ok(())
}

/// Read the TLS identity.
pub fn identity(dir: &Path) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let cert = CertificateDer::pem_file_iter(dir.join(TLS_CERT))
        .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| Error::Tls(format!("{}: {e}", TLS_CERT)))?;
    let key = PrivateKeyDer::from_pem_file(dir.join(TLS_KEY))
        .map_err(|e| Error::Tls(format!("{}: {e}", TLS_KEY)))?;
    Ok((cert, key))
}

fn serve(dir: &Path, listen: &str, lock_limit: u32) -> Result<()> {
    let addr = listen
        .parse()
        .map_err(|_| Error::Usage(format!("--listen {listen}: not an address:port")))?;
    let svc = Arc::new(service(dir, Policy { lock_limit })?);
    let (cert, key) = identity(dir)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let server = crate::server::Server::bind(addr, cert, key, svc).await?;
        eprintln!("dcred-backend: listening on {}", server.local_addr()?);
        server.run().await
    })
}

fn device(dir: &Path, rest: &[String]) -> Result<()> {
    let store = Store::open(&dir.join(DB_FILE))?;
    let (op, ids) = rest
        .split_first()
        .ok_or_else(|| Error::Usage("device needs list, lock, unlock or revoke".into()))?;
    if op == "list" {
        println!("{:<16}  {:<8}  failures", "id", "state");
        for r in store.list()? {
            println!(
                "{:<16}  {:<8}  {}",
                short_id(&r.id),
                r.state.as_str(),
                r.failures
            );
        }
        return Ok(());
    }
    let [printed] = ids else {
        return Err(Error::Usage(format!("device {op} needs one record id")));
    };
    let id = store.resolve(printed)?;
    let changed = match op.as_str() {
        "lock" => store.lock(&id)?,
        "unlock" => store.unlock(&id)?,
        "revoke" => store.revoke(&id)?,
        other => return Err(Error::Usage(format!("unknown device operation {other}"))),
    };
    store.audit(
        Some(&id),
        &format!("admin-{op}"),
        if changed { "" } else { "no change" },
    )?;
    if !changed {
        return Err(Error::Usage(format!(
            "record {printed} is not in a state that allows {op}"
        )));
    }
    eprintln!("dcred-backend: {op}: {}", short_id(&id));
    Ok(())
}

fn audit(dir: &Path) -> Result<()> {
    let store = Store::open(&dir.join(DB_FILE))?;
    for (at, dev, event, detail) in store.audit_log()? {
        println!(
            "{at}  {:<16}  {event}  {detail}",
            dev.unwrap_or_else(|| "-".into())
        );
    }
    Ok(())
}
