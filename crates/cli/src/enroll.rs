//! `dcred enroll` and `dcred change-pin`.

use std::time::Duration;

use dcred_protocol::client::Client;
use dcred_protocol::credential::{self, BackendRef, Credential, KeyEntry, Protocredential, Role};
use dcred_protocol::devicekey::{random, DeviceKey};
use dcred_protocol::messages::{Bytes, EnrollRequest, RequestBody, ResponseBody};
use p256::pkcs8::{EncodePrivateKey, EncodePublicKey};
use rustls::pki_types::pem::PemObject;
use zeroize::Zeroizing;

use crate::card::{module_path, Card};
use crate::{dir, find, pin, CliError, Opts};

const TIMEOUT: Duration = Duration::from_secs(10);

fn step(n: u8, total: u8, what: &str) {
    eprintln!("[{n}/{total}] {what}");
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A fresh key made on this device: (PKCS#8, SPKI). RSA-2048 with aws-lc-rs,
/// or P-256.
fn device_key(rsa: bool) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), CliError> {
    if rsa {
        use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
        use aws_lc_rs::signature::KeyPair as _;
        let kp = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
            .map_err(|_| CliError("RSA key generation failed".into()))?;
        let pkcs8: Pkcs8V1Der<'_> = kp
            .as_der()
            .map_err(|_| CliError("RSA key encoding".into()))?;
        let spki: PublicKeyX509Der<'_> = kp
            .public_key()
            .as_der()
            .map_err(|_| CliError("RSA public key encoding".into()))?;
        return Ok((
            Zeroizing::new(pkcs8.as_ref().to_vec()),
            spki.as_ref().to_vec(),
        ));
    }
    loop {
        let bytes = random::<32>();
        if let Ok(k) = p256::SecretKey::from_slice(bytes.as_ref()) {
            let pkcs8 = Zeroizing::new(k.to_pkcs8_der()?.as_bytes().to_vec());
            let spki = k.public_key().to_public_key_der()?.as_bytes().to_vec();
            return Ok((pkcs8, spki));
        }
    }
}

fn read_anchor(path: &std::path::Path) -> Result<Vec<u8>, CliError> {
    rustls::pki_types::CertificateDer::from_pem_file(path)
        .map(|c| c.as_ref().to_vec())
        .or_else(|_| std::fs::read(path))
        .map_err(|e| CliError(format!("{}: {e}", path.display())))
}

/// Enroll a derived credential.
pub fn enroll(o: &Opts) -> Result<(), CliError> {
    let backend = o
        .backend
        .clone()
        .ok_or_else(|| CliError("--backend HOST:PORT is required".into()))?;
    let anchor_path = o
        .trust_anchor
        .clone()
        .ok_or_else(|| CliError("--trust-anchor CERT is required".into()))?;
    let anchor = read_anchor(&anchor_path)?;
    let module = module_path(o.module.as_deref())?;
    let card_pin = match &o.card_pin_file {
        Some(f) => pin::lines(f)?
            .into_iter()
            .next()
            .ok_or_else(|| CliError("the card PIN file is empty".into()))?,
        None => pin::prompt("PIV card PIN")?,
    };
    let new_pin = match &o.pin_file {
        Some(f) => pin::lines(f)?
            .into_iter()
            .next()
            .ok_or_else(|| CliError("the PIN file is empty".into()))?,
        None => {
            let a = pin::prompt("new derived-credential PIN")?;
            let b = pin::prompt("repeat it")?;
            if *a != *b {
                return Err(CliError("the two PINs differ".into()));
            }
            a
        }
    };
    pin::check_policy(&new_pin, o.min_pin_len)?;

    step(1, 5, "reading the PIV card");
    let card = Card::open(&module, o.token.as_deref(), o.reader.as_deref(), &card_pin)?;
    drop(card_pin);
    eprintln!("      card {}", card.name);

    step(2, 5, "making the device keys and the protocredential");
    let handle = random::<32>();
    let salt = random::<32>();
    let kwk = random::<32>();
    let dev = DeviceKey::regenerate(new_pin.as_bytes(), salt.as_ref(), o.iterations);
    drop(new_pin);
    let (auth_pkcs8, auth_spki) = device_key(o.rsa)?;
    let (sign_pkcs8, sign_spki) = device_key(o.rsa)?;

    step(
        3,
        5,
        &format!("proving possession of the card to the back-end at {backend}"),
    );
    let client = Client::new(&backend, &anchor, TIMEOUT)?;
    let mut card_error = None;
    let response = client.call(|challenge| {
        let (alg, sig) = card.sign(challenge).unwrap_or_else(|e| {
            card_error = Some(e);
            (dcred_protocol::messages::PivSigAlg::EcdsaSha256, Vec::new())
        });
        RequestBody::Enroll(Box::new(EnrollRequest {
            piv_cert: Bytes(card.cert.clone()),
            piv_sig: Bytes(sig),
            piv_sig_alg: alg,
            handle: Bytes(handle.to_vec()),
            q: Bytes(dev.public()),
            kwk: Bytes(kwk.to_vec()),
            auth_spki: Bytes(auth_spki.clone()),
            sign_spki: Bytes(sign_spki.clone()),
        }))
    })?;
    if let Some(e) = card_error {
        return Err(e);
    }
    drop(dev);
    let enrolled = match response.body {
        ResponseBody::Enrolled(e) => e,
        ResponseBody::Error { message } => {
            return Err(CliError(format!("the back-end refused: {message}")))
        }
        other => return Err(CliError(format!("unexpected answer: {other:?}"))),
    };

    step(4, 5, "wrapping the keys under the key-wrapping key");
    let id = hex(random::<16>().as_ref());
    let kwk_arr: &[u8; 32] = &kwk;
    let mut keys = vec![
        KeyEntry {
            role: Role::Authentication,
            cert: enrolled.auth_cert.clone(),
            wrapped_key: credential::wrap(kwk_arr, &id, Role::Authentication, &auth_pkcs8),
        },
        KeyEntry {
            role: Role::Signature,
            cert: enrolled.sign_cert.clone(),
            wrapped_key: credential::wrap(kwk_arr, &id, Role::Signature, &sign_pkcs8),
        },
    ];
    let mut retired = 0u8;
    for k in &enrolled.key_management {
        let role = if k.current {
            Role::KeyManagement
        } else {
            retired = retired.saturating_add(1);
            Role::Retired(retired)
        };
        keys.push(KeyEntry {
            role,
            cert: k.cert.clone(),
            wrapped_key: credential::wrap(kwk_arr, &id, role, &k.pkcs8.0),
        });
    }
    let cred = Credential {
        version: credential::FORMAT_VERSION,
        id: id.clone(),
        label: o
            .label
            .clone()
            .unwrap_or_else(|| format!("{} (derived)", card_common_name(&card.cert))),
        backend: BackendRef {
            address: backend.clone(),
            trust_anchor: Bytes(anchor),
        },
        protocredential: Protocredential {
            handle: Bytes(handle.to_vec()),
            salt: Bytes(salt.to_vec()),
            kdf: "pbkdf2-hmac-sha256".into(),
            iterations: o.iterations,
        },
        ca_cert: enrolled.ca_cert.clone(),
        keys,
    };

    step(5, 5, "storing the credential");
    let path = cred.write(&dir()?)?;
    eprintln!(
        "dcred: enrolled {id} ({}) with {} escrowed key-management key(s): {}",
        cred.label,
        enrolled.key_management.len(),
        path.display()
    );
    Ok(())
}

fn card_common_name(cert: &[u8]) -> String {
    use der::Decode;
    x509_cert::Certificate::from_der(cert)
        .ok()
        .and_then(|c| {
            c.tbs_certificate()
                .subject()
                .common_name()
                .ok()
                .flatten()
                .map(|n| n.value().into_owned())
        })
        .unwrap_or_else(|| "PIV cardholder".into())
}

/// Change the derived PIN: prove the old one, register the new `Q`.
pub fn change_pin(o: &Opts) -> Result<(), CliError> {
    let [id] = o.rest.as_slice() else {
        return Err(CliError("change-pin needs a credential id".into()));
    };
    let (_, cred) = find(id)?;
    let (old, new) = match &o.pin_file {
        Some(f) => {
            let mut l = pin::lines(f)?.into_iter();
            match (l.next(), l.next()) {
                (Some(a), Some(b)) => (a, b),
                _ => {
                    return Err(CliError(
                        "the PIN file needs two lines: old PIN, new PIN".into(),
                    ))
                }
            }
        }
        None => {
            let a = pin::prompt("current derived-credential PIN")?;
            let b = pin::prompt("new PIN")?;
            let c = pin::prompt("repeat the new PIN")?;
            if *b != *c {
                return Err(CliError("the two new PINs differ".into()));
            }
            (a, b)
        }
    };
    pin::check_policy(&new, o.min_pin_len)?;
    let pc = &cred.protocredential;
    let old_key = DeviceKey::regenerate(old.as_bytes(), &pc.salt.0, pc.iterations);
    let new_key = DeviceKey::regenerate(new.as_bytes(), &pc.salt.0, pc.iterations);
    let client = Client::new(&cred.backend.address, &cred.backend.trust_anchor.0, TIMEOUT)?;
    let r = client.call(|challenge| RequestBody::ChangePin {
        handle: pc.handle.clone(),
        q: Bytes(old_key.public()),
        sig: Bytes(old_key.sign(challenge)),
        new_q: Bytes(new_key.public()),
    })?;
    match r.body {
        ResponseBody::PinChanged => {
            eprintln!("dcred: PIN changed for {}", cred.id);
            Ok(())
        }
        ResponseBody::WrongPin { attempts_left } => Err(CliError(format!(
            "wrong PIN ({attempts_left} attempt(s) left before the credential locks)"
        ))),
        ResponseBody::Refused => Err(CliError(
            "the credential is locked (ask an administrator to unlock it)".into(),
        )),
        ResponseBody::Revoked => Err(CliError("the credential is revoked".into())),
        other => Err(CliError(format!("unexpected answer: {other:?}"))),
    }
}
