//! Enrollment: proof of PIV card possession, issuance of the derived
//! certificates, delivery of escrowed key-management keys, registration of
//! the device record (SP 800-157 derived credentials).
//!
//! The PIV Authentication certificate must be issued directly by one of the
//! configured PIV trust anchors and be within its validity; its key must have
//! signed *this* TLS session's challenge. (Intermediate CAs and CRLs: not yet.)

use std::path::Path;

use der::asn1::ObjectIdentifier;
use der::{Decode, Encode};
use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use sha2::{Digest, Sha256};
use x509_cert::Certificate;

use crate::{write_private, Error, Result};

const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_EC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_SHA256_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const OID_SHA384_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const OID_SHA512_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
const OID_ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const OID_ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
/// id-fpki-common-derived-pivAuth (SP 800-157 / FPKI Common Policy).
pub const POLICY_DERIVED_PIV_AUTH: &str = "2.16.840.1.101.3.2.1.3.40";
/// id-fpki-common-policy, for the derived digital-signature certificate.
pub const POLICY_COMMON: &str = "2.16.840.1.101.3.2.1.3.6";

/// Directory of PIV trust anchors in the data directory.
pub const ANCHOR_DIR: &str = "piv-anchors";
/// Directory of CRLs for the PIV trust anchors.
pub const CRL_DIR: &str = "piv-crls";
/// Issuing CA key and certificate.
pub const ISSUING_KEY: &str = "issuing-ca.key.pem";
/// Issuing CA certificate.
pub const ISSUING_CERT: &str = "issuing-ca.cert.pem";

/// The kind of public key in a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    P256,
    P384,
}

/// A parsed public key.
struct Spki {
    kind: KeyKind,
    bits: Vec<u8>,
}

fn spki(cert: &Certificate) -> Result<Spki> {
    let s = cert.tbs_certificate().subject_public_key_info();
    let kind = if s.algorithm.oid == OID_RSA {
        KeyKind::Rsa
    } else if s.algorithm.oid == OID_EC {
        let curve = s
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
        match curve {
            Some(c) if c == OID_P256 => KeyKind::P256,
            Some(c) if c == OID_P384 => KeyKind::P384,
            _ => return Err(Error::Usage("unsupported curve".into())),
        }
    } else {
        return Err(Error::Usage("unsupported public key algorithm".into()));
    };
    Ok(Spki {
        kind,
        bits: s.subject_public_key.raw_bytes().to_vec(),
    })
}

fn cert_sig_alg(
    oid: &ObjectIdentifier,
    issuer: KeyKind,
) -> Option<&'static dyn VerificationAlgorithm> {
    Some(match (issuer, *oid) {
        (KeyKind::Rsa, o) if o == OID_SHA256_RSA => &signature::RSA_PKCS1_2048_8192_SHA256,
        (KeyKind::Rsa, o) if o == OID_SHA384_RSA => &signature::RSA_PKCS1_2048_8192_SHA384,
        (KeyKind::Rsa, o) if o == OID_SHA512_RSA => &signature::RSA_PKCS1_2048_8192_SHA512,
        (KeyKind::P256, o) if o == OID_ECDSA_SHA256 => &signature::ECDSA_P256_SHA256_ASN1,
        (KeyKind::P256, o) if o == OID_ECDSA_SHA384 => &signature::ECDSA_P256_SHA384_ASN1,
        (KeyKind::P384, o) if o == OID_ECDSA_SHA256 => &signature::ECDSA_P384_SHA256_ASN1,
        (KeyKind::P384, o) if o == OID_ECDSA_SHA384 => &signature::ECDSA_P384_SHA384_ASN1,
        _ => return None,
    })
}

/// Why a PIV certificate or proof is not accepted (reported to the client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected(pub String);

/// A validated PIV Authentication certificate.
pub struct PivCert {
    /// DER.
    pub der: Vec<u8>,
    /// SHA-256 of the subject Name: the user's escrow key.
    pub user_id: Vec<u8>,
    /// The subject's common name.
    pub common_name: String,
    /// notAfter, unix seconds.
    pub not_after: i64,
    cert: Certificate,
}

/// The configured PIV trust anchors and the certificates their CRLs revoke.
pub struct Anchors {
    certs: Vec<Certificate>,
    /// (issuer Name DER, serial DER) of every revoked certificate.
    revoked: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Anchors {
    /// Every certificate in `dir` and every CRL in `crl_dir` (missing
    /// directories: none). A CRL must be signed by one of the anchors.
    pub fn load(dir: &Path, crl_dir: &Path) -> Result<Anchors> {
        let mut certs = Vec::new();
        for (path, bytes) in read_all(dir)? {
            certs.push(
                parse_cert(&bytes)
                    .map_err(|e| Error::Usage(format!("{}: {}", path.display(), e.0)))?,
            );
        }
        let mut a = Anchors {
            certs,
            revoked: Vec::new(),
        };
        for (path, bytes) in read_all(crl_dir)? {
            a.add_crl(&bytes)
                .map_err(|e| Error::Usage(format!("{}: {}", path.display(), e.0)))?;
        }
        Ok(a)
    }

    /// Verify a CRL (DER) against the anchors and remember what it revokes.
    pub fn add_crl(&mut self, der: &[u8]) -> std::result::Result<usize, Rejected> {
        let crl: x509_cert::crl::CertificateList = x509_cert::crl::CertificateList::from_der(der)
            .map_err(|_| Rejected("not a DER CRL".into()))?;
        let tbs = &crl.tbs_cert_list;
        let issuer = self
            .certs
            .iter()
            .find(|a| a.tbs_certificate().subject() == &tbs.issuer)
            .ok_or_else(|| Rejected("CRL not issued by a configured PIV trust anchor".into()))?;
        let key = spki(issuer).map_err(|_| Rejected("anchor key unsupported".into()))?;
        let alg = cert_sig_alg(&crl.signature_algorithm.oid, key.kind)
            .ok_or_else(|| Rejected("CRL signature algorithm unsupported".into()))?;
        let tbs_der = tbs
            .to_der()
            .map_err(|_| Rejected("CRL re-encoding".into()))?;
        UnparsedPublicKey::new(alg, &key.bits)
            .verify(&tbs_der, crl.signature.raw_bytes())
            .map_err(|_| Rejected("CRL signature does not verify".into()))?;
        let issuer_der = tbs.issuer.to_der().map_err(|_| Rejected("issuer".into()))?;
        let mut n = 0;
        for r in tbs.revoked_certificates.iter().flatten() {
            let serial = r
                .serial_number
                .to_der()
                .map_err(|_| Rejected("serial".into()))?;
            self.revoked.push((issuer_der.clone(), serial));
            n += 1;
        }
        Ok(n)
    }

    /// Is a certificate (DER) revoked by a loaded CRL?
    pub fn is_revoked(&self, cert_der: &[u8]) -> bool {
        let Ok(c) = Certificate::from_der(cert_der) else {
            return false;
        };
        let tbs = c.tbs_certificate();
        let (Ok(issuer), Ok(serial)) = (tbs.issuer().to_der(), tbs.serial_number().to_der()) else {
            return false;
        };
        self.revoked
            .iter()
            .any(|(i, s)| *i == issuer && *s == serial)
    }

    /// Validate a PIV Authentication certificate against the anchors, at `now`.
    pub fn validate(&self, der: &[u8], now: i64) -> std::result::Result<PivCert, Rejected> {
        let cert = Certificate::from_der(der)
            .map_err(|_| Rejected("PIV certificate is not DER X.509".into()))?;
        let tbs = cert.tbs_certificate();
        let issuer = self
            .certs
            .iter()
            .find(|a| a.tbs_certificate().subject() == tbs.issuer())
            .ok_or_else(|| {
                Rejected("PIV certificate is not issued by a configured PIV trust anchor".into())
            })?;
        let key = spki(issuer).map_err(|_| Rejected("trust anchor key unsupported".into()))?;
        let alg = cert_sig_alg(&cert.signature_algorithm().oid, key.kind)
            .ok_or_else(|| Rejected("PIV certificate signature algorithm unsupported".into()))?;
        let tbs_der = tbs
            .to_der()
            .map_err(|_| Rejected("PIV certificate re-encoding".into()))?;
        UnparsedPublicKey::new(alg, &key.bits)
            .verify(&tbs_der, cert.signature().raw_bytes())
            .map_err(|_| Rejected("PIV certificate signature does not verify".into()))?;
        let v = tbs.validity();
        let nb = v.not_before.to_unix_duration().as_secs() as i64;
        let na = v.not_after.to_unix_duration().as_secs() as i64;
        if now < nb || now > na {
            return Err(Rejected(
                "PIV certificate is not within its validity period".into(),
            ));
        }
        if self.is_revoked(der) {
            return Err(Rejected("PIV certificate is revoked (CRL)".into()));
        }
        let subject = tbs
            .subject()
            .to_der()
            .map_err(|_| Rejected("subject".into()))?;
        let common_name = tbs
            .subject()
            .common_name()
            .ok()
            .flatten()
            .map(|c| c.value().into_owned())
            .unwrap_or_else(|| "PIV cardholder".into());
        Ok(PivCert {
            der: der.to_vec(),
            user_id: Sha256::digest(&subject).to_vec(),
            common_name,
            not_after: na,
            cert,
        })
    }
}

impl PivCert {
    /// Verify the card's signature over the challenge.
    pub fn verify_proof(
        &self,
        alg: dcred_protocol::messages::PivSigAlg,
        challenge: &[u8],
        sig: &[u8],
    ) -> std::result::Result<(), Rejected> {
        use dcred_protocol::messages::PivSigAlg;
        let key = spki(&self.cert).map_err(|_| Rejected("PIV key unsupported".into()))?;
        let ring_alg: &dyn VerificationAlgorithm = match (alg, key.kind) {
            (PivSigAlg::RsaPkcs1Sha256, KeyKind::Rsa) => &signature::RSA_PKCS1_2048_8192_SHA256,
            (PivSigAlg::EcdsaSha256, KeyKind::P256) => &signature::ECDSA_P256_SHA256_ASN1,
            (PivSigAlg::EcdsaSha256, KeyKind::P384) => &signature::ECDSA_P384_SHA256_ASN1,
            _ => {
                return Err(Rejected(
                    "signature algorithm does not fit the PIV key".into(),
                ))
            }
        };
        UnparsedPublicKey::new(ring_alg, &key.bits)
            .verify(challenge, sig)
            .map_err(|_| {
                Rejected(
                    "the PIV key's signature over this session's challenge does not verify".into(),
                )
            })
    }
}

fn parse_cert(bytes: &[u8]) -> std::result::Result<Certificate, Rejected> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        if text.contains("-----BEGIN CERTIFICATE-----") {
            let pem = rustls::pki_types::CertificateDer::from_pem_slice(bytes)
                .map_err(|_| Rejected("not a PEM certificate".into()))?;
            return Certificate::from_der(pem.as_ref()).map_err(|_| Rejected("not X.509".into()));
        }
    }
    Certificate::from_der(bytes).map_err(|_| Rejected("not X.509".into()))
}
use rustls::pki_types::pem::PemObject;

/// A public key handed to rcgen for signing (SPKI parsed with x509-cert).
struct ExternalKey {
    bits: Vec<u8>,
    alg: &'static rcgen::SignatureAlgorithm,
}

impl rcgen::PublicKeyData for ExternalKey {
    fn der_bytes(&self) -> &[u8] {
        &self.bits
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.alg
    }
}

fn external_key(spki_der: &[u8]) -> std::result::Result<ExternalKey, Rejected> {
    let s = x509_cert::spki::SubjectPublicKeyInfoOwned::from_der(spki_der)
        .map_err(|_| Rejected("device public key is not a SubjectPublicKeyInfo".into()))?;
    let alg: &'static rcgen::SignatureAlgorithm = if s.algorithm.oid == OID_RSA {
        &rcgen::PKCS_RSA_SHA256
    } else if s.algorithm.oid == OID_EC {
        match s
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
        {
            Some(c) if c == OID_P256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            Some(c) if c == OID_P384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            _ => return Err(Rejected("device key curve unsupported".into())),
        }
    } else {
        return Err(Rejected("device key algorithm unsupported".into()));
    };
    Ok(ExternalKey {
        bits: s.subject_public_key.raw_bytes().to_vec(),
        alg,
    })
}

/// The issuing CA's key: a file, or a key pair inside the HSM.
pub enum CaKey {
    /// PEM file in the data directory.
    File(Box<rcgen::KeyPair>),
    /// EC P-256 key in a PKCS#11 token.
    Hsm {
        /// The token session.
        hsm: std::sync::Arc<crate::hsm::Hsm>,
        /// Key label.
        label: String,
        /// Uncompressed public point.
        point: Vec<u8>,
    },
}

impl rcgen::PublicKeyData for CaKey {
    fn der_bytes(&self) -> &[u8] {
        match self {
            CaKey::File(k) => k.der_bytes(),
            CaKey::Hsm { point, .. } => point,
        }
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            CaKey::File(k) => k.algorithm(),
            CaKey::Hsm { .. } => &rcgen::PKCS_ECDSA_P256_SHA256,
        }
    }
}

impl rcgen::SigningKey for CaKey {
    fn sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, rcgen::Error> {
        match self {
            CaKey::File(k) => k.sign(msg),
            CaKey::Hsm { hsm, label, .. } => {
                let raw = hsm.sign_ecdsa(label, msg).map_err(|e| {
                    log::error!("issuing CA key in the HSM: {e}");
                    rcgen::Error::RemoteKeyError
                })?;
                p256::ecdsa::Signature::from_slice(&raw)
                    .map(|s| s.to_der().as_bytes().to_vec())
                    .map_err(|_| {
                        log::error!("the HSM returned a {}-byte ECDSA signature", raw.len());
                        rcgen::Error::RemoteKeyError
                    })
            }
        }
    }
}

/// The issuing CA for derived certificates.
pub struct IssuingCa {
    key: CaKey,
    /// CA certificate, DER.
    pub cert_der: Vec<u8>,
}

fn ca_params() -> Result<rcgen::CertificateParams> {
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new())
        .map_err(|e| Error::Tls(e.to_string()))?;
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "dcred derived credential CA");
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    p.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    Ok(p)
}

impl IssuingCa {
    /// Create the issuing CA in `dir`: its key in a file, or in the HSM.
    pub fn create(
        dir: &Path,
        hsm: Option<(std::sync::Arc<crate::hsm::Hsm>, String)>,
    ) -> Result<()> {
        let key = match hsm {
            None => {
                let k = rcgen::KeyPair::generate().map_err(|e| Error::Tls(e.to_string()))?;
                write_private(&dir.join(ISSUING_KEY), k.serialize_pem().as_bytes())?;
                CaKey::File(Box::new(k))
            }
            Some((hsm, label)) => {
                let point = hsm.ec_point(&label)?;
                CaKey::Hsm { hsm, label, point }
            }
        };
        let mut params = ca_params()?;
        params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(3650);
        let cert = params
            .self_signed(&key)
            .map_err(|e| Error::Tls(e.to_string()))?;
        write_private(&dir.join(ISSUING_CERT), cert.pem().as_bytes())?;
        Ok(())
    }

    /// Load it (the key from the HSM when the back-end's keys live there).
    pub fn load(
        dir: &Path,
        hsm: Option<(std::sync::Arc<crate::hsm::Hsm>, String)>,
    ) -> Result<IssuingCa> {
        let key = match hsm {
            Some((hsm, label)) => {
                let point = hsm.ec_point(&label)?;
                CaKey::Hsm { hsm, label, point }
            }
            None => {
                let pem = std::fs::read_to_string(dir.join(ISSUING_KEY))?;
                CaKey::File(Box::new(
                    rcgen::KeyPair::from_pem(&pem)
                        .map_err(|e| Error::Keys(format!("{ISSUING_KEY}: {e}")))?,
                ))
            }
        };
        let cert = rustls::pki_types::CertificateDer::from_pem_file(dir.join(ISSUING_CERT))
            .map_err(|e| Error::Keys(format!("{ISSUING_CERT}: {e}")))?;
        Ok(IssuingCa {
            key,
            cert_der: cert.as_ref().to_vec(),
        })
    }

    /// Issue a derived certificate for a device key.
    pub fn issue(
        &self,
        piv: &PivCert,
        spki_der: &[u8],
        signature_cert: bool,
    ) -> std::result::Result<Vec<u8>, Rejected> {
        let key = external_key(spki_der)?;
        let fail = |e: rcgen::Error| Rejected(format!("certificate issuance: {e}"));
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
        // The subject is the PIV certificate's, attribute by attribute.
        p.distinguished_name = distinguished_name(piv.cert.tbs_certificate().subject());
        p.not_before = time::OffsetDateTime::now_utc() - time::Duration::minutes(5);
        // SP 800-157: the derived credential does not outlive the PIV credential.
        p.not_after = time::OffsetDateTime::from_unix_timestamp(piv.not_after)
            .map_err(|_| Rejected("PIV notAfter out of range".into()))?;
        p.use_authority_key_identifier_extension = true;
        if signature_cert {
            p.key_usages = vec![
                rcgen::KeyUsagePurpose::DigitalSignature,
                rcgen::KeyUsagePurpose::ContentCommitment,
            ];
            p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::EmailProtection];
        } else {
            p.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
            p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        }
        let policy = if signature_cert {
            POLICY_COMMON
        } else {
            POLICY_DERIVED_PIV_AUTH
        };
        p.custom_extensions.push(policies_extension(policy)?);
        // The issuer's name and key identifier come from the CA certificate itself,
        // so an imported CA issues exactly as a generated one.
        let ca_der = rustls::pki_types::CertificateDer::from(self.cert_der.as_slice());
        let issuer = rcgen::Issuer::from_ca_cert_der(&ca_der, &self.key)
            .map_err(|e| Rejected(format!("issuing CA certificate: {e}")))?;
        let cert = p.signed_by(&key, &issuer).map_err(fail)?;
        Ok(cert.der().to_vec())
    }
}

/// An rcgen distinguished name with the attributes of an X.509 Name, in order
/// and with their string types (PrintableString stays PrintableString).
fn distinguished_name(name: &x509_cert::name::Name) -> rcgen::DistinguishedName {
    use der::{Tag, Tagged};
    let mut dn = rcgen::DistinguishedName::new();
    for atv in name.iter() {
        let oid: Vec<u64> = atv.oid.arcs().map(u64::from).collect();
        let ty = rcgen::DnType::from_oid(&oid);
        let text = String::from_utf8_lossy(atv.value.value()).into_owned();
        let value = match atv.value.tag() {
            Tag::PrintableString => rcgen::string::PrintableString::try_from(text.clone())
                .map(rcgen::DnValue::PrintableString)
                .unwrap_or(rcgen::DnValue::Utf8String(text)),
            Tag::Ia5String => rcgen::string::Ia5String::try_from(text.clone())
                .map(rcgen::DnValue::Ia5String)
                .unwrap_or(rcgen::DnValue::Utf8String(text)),
            _ => rcgen::DnValue::Utf8String(text),
        };
        dn.push(ty, value);
    }
    dn
}

/// certificatePolicies with one policy OID, encoded by x509-cert.
fn policies_extension(oid: &str) -> std::result::Result<rcgen::CustomExtension, Rejected> {
    use x509_cert::ext::pkix::certpolicy::PolicyInformation;
    use x509_cert::ext::pkix::CertificatePolicies;
    let info = PolicyInformation {
        policy_identifier: ObjectIdentifier::new(oid).map_err(|_| Rejected("policy OID".into()))?,
        policy_qualifiers: None,
    };
    let content = CertificatePolicies(vec![info])
        .to_der()
        .map_err(|_| Rejected("policy encoding".into()))?;
    Ok(rcgen::CustomExtension::from_oid_content(
        &[2, 5, 29, 32],
        content,
    ))
}

fn read_all(dir: &Path) -> Result<Vec<(std::path::PathBuf, Vec<u8>)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut v = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let bytes = std::fs::read(&path)?;
        v.push((path, bytes));
    }
    Ok(v)
}

/// Add a CRL for the PIV trust anchors (PEM or DER); it must verify.
pub fn add_crl(dir: &Path, file: &Path) -> Result<usize> {
    let bytes = std::fs::read(file)?;
    let der = match std::str::from_utf8(&bytes) {
        Ok(t) if t.contains("-----BEGIN X509 CRL-----") => {
            rustls::pki_types::CertificateRevocationListDer::from_pem_slice(&bytes)
                .map_err(|e| Error::Usage(format!("{}: {e}", file.display())))?
                .as_ref()
                .to_vec()
        }
        _ => bytes,
    };
    let mut anchors = Anchors::load(&dir.join(ANCHOR_DIR), &dir.join(CRL_DIR))?;
    let n = anchors
        .add_crl(&der)
        .map_err(|e| Error::Usage(format!("{}: {}", file.display(), e.0)))?;
    let name: String = Sha256::digest(&der)
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    std::fs::create_dir_all(dir.join(CRL_DIR))?;
    write_private(&dir.join(CRL_DIR).join(format!("{name}.crl")), &der)?;
    Ok(n)
}

/// Import an issuing CA (certificate and PKCS#8 PEM key, files) into `dir`,
/// after checking that they belong together.
pub fn import_issuing_ca(dir: &Path, cert: &Path, key: &Path) -> Result<()> {
    let cert_der = rustls::pki_types::CertificateDer::from_pem_file(cert)
        .map_err(|e| Error::Usage(format!("{}: {e}", cert.display())))?;
    let pem = std::fs::read_to_string(key)?;
    let kp = rcgen::KeyPair::from_pem(&pem)
        .map_err(|e| Error::Usage(format!("{}: {e}", key.display())))?;
    let c = Certificate::from_der(cert_der.as_ref())
        .map_err(|e| Error::Usage(format!("{}: {e}", cert.display())))?;
    let cert_key = c
        .tbs_certificate()
        .subject_public_key_info()
        .subject_public_key
        .raw_bytes();
    if cert_key != rcgen::PublicKeyData::der_bytes(&kp) {
        return Err(Error::Usage(
            "the issuing CA key does not belong to its certificate".into(),
        ));
    }
    write_private(&dir.join(ISSUING_KEY), kp.serialize_pem().as_bytes())?;
    write_private(&dir.join(ISSUING_CERT), std::fs::read(cert)?.as_slice())?;
    Ok(())
}

/// Copy a PIV trust anchor into the data directory.
pub fn add_anchor(dir: &Path, file: &Path) -> Result<String> {
    let bytes = std::fs::read(file)?;
    let cert =
        parse_cert(&bytes).map_err(|e| Error::Usage(format!("{}: {}", file.display(), e.0)))?;
    let der = cert.to_der().map_err(|e| Error::Usage(e.to_string()))?;
    let name: String = Sha256::digest(&der)
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    let anchors = dir.join(ANCHOR_DIR);
    std::fs::create_dir_all(&anchors)?;
    write_private(&anchors.join(format!("{name}.der")), &der)?;
    Ok(name)
}
