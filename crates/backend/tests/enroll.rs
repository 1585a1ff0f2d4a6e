//! Enrollment over TLS: a PIV card's authentication key (here an rcgen key
//! with a certificate from a test PIV CA) proves possession; the back-end
//! issues derived certificates, delivers escrowed keys and registers the
//! device, which then activates.

mod common;

use dcred_backend::enroll;
use dcred_protocol::messages::{Bytes, EnrollRequest, PivSigAlg, RequestBody, ResponseBody};
use dcred_protocol::DeviceKey;
use der::Decode;
use rcgen::{CertificateParams, DnType, IsCa, Issuer, KeyPair};

struct Pki {
    ca_key: KeyPair,
    ca_params: CertificateParams,
    ca_pem: String,
}

fn pki(name: &str) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.distinguished_name.push(DnType::CommonName, name);
    ca_params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_pem = ca_params.self_signed(&ca_key).unwrap().pem();
    Pki {
        ca_key,
        ca_params,
        ca_pem,
    }
}

fn leaf(pki: &Pki, cn: &str, key: &KeyPair, days: i64) -> Vec<u8> {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CountryName, "US");
    p.distinguished_name
        .push(DnType::OrganizationName, "U.S. Government");
    p.distinguished_name
        .push(DnType::OrganizationalUnitName, "Test Agency");
    p.distinguished_name.push(DnType::CommonName, cn);
    p.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    p.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(days);
    let issuer = Issuer::new(pki.ca_params.clone(), &pki.ca_key);
    p.signed_by(key, &issuer).unwrap().der().to_vec()
}

fn request(
    piv_cert: &[u8],
    card: &KeyPair,
    challenge: &[u8],
    handle: u8,
    dev: &DeviceKey,
) -> RequestBody {
    use rcgen::{PublicKeyData, SigningKey};
    let auth = KeyPair::generate().unwrap();
    let sign = KeyPair::generate().unwrap();
    RequestBody::Enroll(Box::new(EnrollRequest {
        piv_cert: Bytes(piv_cert.to_vec()),
        piv_sig: Bytes(card.sign(challenge).unwrap()),
        piv_sig_alg: PivSigAlg::EcdsaSha256,
        handle: Bytes(vec![handle; 32]),
        q: Bytes(dev.public()),
        kwk: Bytes(vec![0x33; 32]),
        auth_spki: Bytes(auth.subject_public_key_info()),
        sign_spki: Bytes(sign.subject_public_key_info()),
    }))
}

#[test]
fn enrollment_issues_certificates_delivers_escrow_and_activates() {
    let piv = pki("Test PIV CA");
    let card = KeyPair::generate().unwrap();
    let piv_cert = leaf(&piv, "Jane Doe", &card, 365);
    let km_current = KeyPair::generate().unwrap();
    let km_retired = KeyPair::generate().unwrap();
    let b = common::start_with(10, |dir| {
        let f = dir.join("piv-ca.pem");
        std::fs::write(&f, &piv.ca_pem).unwrap();
        enroll::add_anchor(dir, &f).unwrap();
    });
    b.service
        .escrow_import(
            &piv_cert,
            &leaf(&piv, "Jane Doe KM old", &km_retired, 365),
            &km_retired.serialize_der(),
            false,
        )
        .unwrap();
    b.service
        .escrow_import(
            &piv_cert,
            &leaf(&piv, "Jane Doe KM", &km_current, 365),
            &km_current.serialize_der(),
            true,
        )
        .unwrap();
    let dev = DeviceKey::regenerate(b"24680135", b"salt", 10);
    let r = b
        .client
        .call(|c| request(&piv_cert, &card, c, 1, &dev))
        .unwrap();
    let ResponseBody::Enrolled(e) = r.body else {
        panic!("{:?}", r.body)
    };
    // the derived certificates carry the PIV certificate's whole subject
    let piv_subject = x509_cert::Certificate::from_der(&piv_cert)
        .unwrap()
        .tbs_certificate()
        .subject()
        .clone();
    for der in [&e.auth_cert.0, &e.sign_cert.0] {
        let c = x509_cert::Certificate::from_der(der).unwrap();
        assert_eq!(
            c.tbs_certificate().subject(),
            &piv_subject,
            "full DN copied"
        );
    }
    // the derived certificates chain to the issuing CA and carry the subject and policy
    let ca = x509_cert::Certificate::from_der(&e.ca_cert.0).unwrap();
    for (der, policy) in [
        (&e.auth_cert.0, enroll::POLICY_DERIVED_PIV_AUTH),
        (&e.sign_cert.0, enroll::POLICY_COMMON),
    ] {
        let c = x509_cert::Certificate::from_der(der).unwrap();
        assert_eq!(c.tbs_certificate().issuer(), ca.tbs_certificate().subject());
        let cn = c
            .tbs_certificate()
            .subject()
            .common_name()
            .unwrap()
            .unwrap()
            .value()
            .into_owned();
        assert_eq!(cn, "Jane Doe");
        let exts = c.tbs_certificate().extensions().unwrap();
        let pol = exts
            .iter()
            .find(|x| x.extn_id.to_string() == "2.5.29.32")
            .expect("policies");
        let policies =
            x509_cert::ext::pkix::CertificatePolicies::from_der(pol.extn_value.as_bytes()).unwrap();
        assert_eq!(policies.0[0].policy_identifier.to_string(), policy);
        common::assert_signed_by(der, &e.ca_cert.0);
    }
    // escrow: current first, then the retired one, with their private keys
    assert_eq!(e.key_management.len(), 2);
    assert!(e.key_management[0].current && !e.key_management[1].current);
    assert_eq!(e.key_management[0].pkcs8.0, km_current.serialize_der());
    assert_eq!(e.key_management[1].pkcs8.0, km_retired.serialize_der());
    // the new record activates with the derived PIN
    let r = b
        .client
        .call(|c| RequestBody::Activate {
            handle: Bytes(vec![1; 32]),
            q: Bytes(dev.public()),
            sig: Bytes(dev.sign(c)),
        })
        .unwrap();
    assert!(matches!(r.body, ResponseBody::Kwk { ref kwk } if kwk.0 == vec![0x33; 32]));
    // the same handle cannot be enrolled twice
    let r = b
        .client
        .call(|c| request(&piv_cert, &card, c, 1, &dev))
        .unwrap();
    assert!(
        matches!(r.body, ResponseBody::Error { ref message } if message.contains("already registered"))
    );
}

#[test]
fn enrollment_refuses_foreign_expired_and_replayed_proofs() {
    let piv = pki("Test PIV CA");
    let rogue = pki("Rogue CA");
    let card = KeyPair::generate().unwrap();
    let good = leaf(&piv, "Jane Doe", &card, 365);
    let foreign = leaf(&rogue, "Jane Doe", &card, 365);
    let expired = leaf(&piv, "Jane Doe", &card, -1);
    let b = common::start_with(10, |dir| {
        let f = dir.join("piv-ca.pem");
        std::fs::write(&f, &piv.ca_pem).unwrap();
        enroll::add_anchor(dir, &f).unwrap();
    });
    let dev = DeviceKey::regenerate(b"24680135", b"salt", 10);
    let message = |body: ResponseBody| match body {
        ResponseBody::Error { message } => message,
        other => panic!("{other:?}"),
    };
    let m = message(
        b.client
            .call(|c| request(&foreign, &card, c, 2, &dev))
            .unwrap()
            .body,
    );
    assert!(m.contains("trust anchor"), "{m}");
    let m = message(
        b.client
            .call(|c| request(&expired, &card, c, 3, &dev))
            .unwrap()
            .body,
    );
    assert!(m.contains("validity"), "{m}");
    // a proof made for another TLS session
    let mut old = Vec::new();
    let _ = b.client.call(|c| {
        old = c.to_vec();
        request(&good, &KeyPair::generate().unwrap(), c, 9, &dev)
    });
    let m = message(
        b.client
            .call(|_| request(&good, &card, &old, 4, &dev))
            .unwrap()
            .body,
    );
    assert!(m.contains("does not verify"), "{m}");
    // nothing was registered by the refusals
    assert!(b.service.store.list().unwrap().is_empty());
    let events = common::audit_events(&b);
    assert!(
        events.iter().filter(|e| *e == "enroll-refused").count() >= 4,
        "{events:?}"
    );
}

#[test]
fn a_back_end_without_anchors_does_not_enroll() {
    let b = common::start(10);
    let piv = pki("Test PIV CA");
    let card = KeyPair::generate().unwrap();
    let cert = leaf(&piv, "Jane Doe", &card, 365);
    let dev = DeviceKey::regenerate(b"24680135", b"salt", 10);
    let r = b
        .client
        .call(|c| request(&cert, &card, c, 5, &dev))
        .unwrap();
    assert!(
        matches!(r.body, ResponseBody::Error { ref message } if message.contains("not configured"))
    );
}

fn leaf_with_serial(pki: &Pki, cn: &str, key: &KeyPair, serial: u8) -> Vec<u8> {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.serial_number = Some(rcgen::SerialNumber::from(vec![serial]));
    p.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    p.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(30);
    let issuer = Issuer::new(pki.ca_params.clone(), &pki.ca_key);
    p.signed_by(key, &issuer).unwrap().der().to_vec()
}

fn crl(pki: &Pki, serials: &[u8]) -> String {
    let now = time::OffsetDateTime::now_utc();
    let params = rcgen::CertificateRevocationListParams {
        this_update: now - time::Duration::minutes(1),
        next_update: now + time::Duration::days(1),
        crl_number: rcgen::SerialNumber::from(vec![1]),
        issuing_distribution_point: None,
        revoked_certs: serials
            .iter()
            .map(|s| rcgen::RevokedCertParams {
                serial_number: rcgen::SerialNumber::from(vec![*s]),
                revocation_time: now - time::Duration::minutes(1),
                reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: rcgen::KeyIdMethod::Sha256,
    };
    let issuer = Issuer::new(pki.ca_params.clone(), &pki.ca_key);
    params.signed_by(&issuer).unwrap().pem().unwrap()
}

#[test]
fn a_crl_refuses_enrollment_and_activation_of_revoked_piv_certificates() {
    let piv = pki("Test PIV CA");
    let rogue = pki("Rogue CA");
    let card = KeyPair::generate().unwrap();
    let cert_a = leaf_with_serial(&piv, "Jane Doe", &card, 0x0a);
    let cert_b = leaf_with_serial(&piv, "John Roe", &card, 0x0b);
    let b = common::start_with(10, |dir| {
        let f = dir.join("piv-ca.pem");
        std::fs::write(&f, &piv.ca_pem).unwrap();
        enroll::add_anchor(dir, &f).unwrap();
    });
    let dev = DeviceKey::regenerate(b"24680135", b"salt", 10);
    let r = b
        .client
        .call(|c| request(&cert_a, &card, c, 1, &dev))
        .unwrap();
    assert!(matches!(r.body, ResponseBody::Enrolled(_)), "{:?}", r.body);
    let activate = || {
        b.client
            .call(|c| RequestBody::Activate {
                handle: Bytes(vec![1; 32]),
                q: Bytes(dev.public()),
                sig: Bytes(dev.sign(c)),
            })
            .unwrap()
            .body
    };
    assert!(matches!(activate(), ResponseBody::Kwk { .. }));
    // a CRL from another CA is refused; the PIV CA's one is taken by the running server
    let bogus = b.dir.path().join("bogus.crl");
    std::fs::write(&bogus, crl(&rogue, &[0x0a])).unwrap();
    assert!(enroll::add_crl(b.dir.path(), &bogus).is_err());
    let good = b.dir.path().join("piv.crl");
    std::fs::write(&good, crl(&piv, &[0x0a, 0x0b])).unwrap();
    assert_eq!(enroll::add_crl(b.dir.path(), &good).unwrap(), 2);
    let r = b
        .client
        .call(|c| request(&cert_b, &card, c, 2, &dev))
        .unwrap();
    assert!(
        matches!(r.body, ResponseBody::Error { ref message } if message.contains("revoked")),
        "{:?}",
        r.body
    );
    assert!(
        matches!(activate(), ResponseBody::Revoked),
        "a device derived from a revoked PIV certificate"
    );
}

#[test]
fn init_imports_a_given_tls_identity_and_issuing_ca() {
    use dcred_backend::cli;
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let f = |name: &str, text: &str| {
        let p = files.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    // a TLS CA and a server certificate for 127.0.0.1 made elsewhere
    let tls_ca = pki("Corporate TLS CA");
    let server_key = KeyPair::generate().unwrap();
    let mut sp = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    sp.distinguished_name
        .push(DnType::CommonName, "backend.example");
    let server = sp
        .signed_by(
            &server_key,
            &Issuer::new(tls_ca.ca_params.clone(), &tls_ca.ca_key),
        )
        .unwrap();
    // an issuing CA made elsewhere
    let issuing = pki("Corporate Derived Credential CA");
    let wrong_key = KeyPair::generate().unwrap();
    let mismatched = cli::init_full(
        &dir.path().join("x"),
        &[],
        None,
        cli::Import {
            tls: None,
            ca: Some([
                f("ica.pem", &issuing.ca_pem),
                f("wrong.key", &wrong_key.serialize_pem()),
            ]),
        },
    );
    assert!(
        mismatched.is_err(),
        "a key that does not match its certificate is refused"
    );
    cli::init_full(
        dir.path(),
        &[],
        None,
        cli::Import {
            tls: Some([
                f("server.pem", &server.pem()),
                f("server.key", &server_key.serialize_pem()),
                f("tls-ca.pem", &tls_ca.ca_pem),
            ]),
            ca: Some([
                f("ica.pem", &issuing.ca_pem),
                f("ica.key", &issuing.ca_key.serialize_pem()),
            ]),
        },
    )
    .unwrap();
    let piv = pki("Test PIV CA");
    let anchor = f("piv-ca.pem", &piv.ca_pem);
    enroll::add_anchor(dir.path(), &anchor).unwrap();
    // the client trusts the imported TLS CA (common::serve reads it from the data dir)
    let b = common::serve(dir, 10);
    let card = KeyPair::generate().unwrap();
    let cert = leaf(&piv, "Jane Doe", &card, 30);
    let dev = DeviceKey::regenerate(b"24680135", b"salt", 10);
    let r = b
        .client
        .call(|c| request(&cert, &card, c, 7, &dev))
        .unwrap();
    let ResponseBody::Enrolled(e) = r.body else {
        panic!("{:?}", r.body)
    };
    let issued = x509_cert::Certificate::from_der(&e.auth_cert.0).unwrap();
    let ca = x509_cert::Certificate::from_der(&e.ca_cert.0).unwrap();
    let cn = ca
        .tbs_certificate()
        .subject()
        .common_name()
        .unwrap()
        .unwrap()
        .value()
        .into_owned();
    assert_eq!(cn, "Corporate Derived Credential CA");
    assert_eq!(
        issued.tbs_certificate().issuer(),
        ca.tbs_certificate().subject()
    );
    common::assert_signed_by(&e.auth_cert.0, &e.ca_cert.0);
}
