//! The back-end with its master, MAC and CA keys inside a SoftHSMv2 token
//! (softhsm-fixtures/make-tokens.sh): no key file in the data directory;
//! activation, wrong-PIN counting and enrollment work through the token.

mod common;

use std::path::Path;

use dcred_backend::{cli, enroll, keys};
use dcred_protocol::messages::{Bytes, EnrollRequest, PivSigAlg, RequestBody, ResponseBody};
use dcred_protocol::DeviceKey;

use rcgen::{CertificateParams, DnType, IsCa, Issuer, KeyPair, PublicKeyData, SigningKey};

fn fixture(dir: &Path) -> keys::HsmConfig {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../softhsm-fixtures/make-tokens.sh");
    let st = std::process::Command::new("bash")
        .arg(script)
        .arg(dir)
        .status()
        .expect("run make-tokens.sh");
    assert!(
        st.success(),
        "softhsm-fixtures/make-tokens.sh failed (is softhsm2 installable?)"
    );
    let env = std::fs::read_to_string(dir.join("env.sh")).unwrap();
    let var = |name: &str| -> String {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("export {name}=")))
            .map(|v| v.trim_matches('\'').to_string())
            .unwrap_or_else(|| panic!("{name} in env.sh"))
    };
    // SAFETY-free in edition 2021; this test binary holds one test, no other thread reads it.
    std::env::set_var("SOFTHSM2_CONF", var("SOFTHSM2_CONF"));
    keys::HsmConfig {
        master: var("DCRED_HSM_MASTER_URI"),
        mac: var("DCRED_HSM_MAC_URI"),
        ca: var("DCRED_HSM_CA_URI"),
    }
}

#[test]
fn keys_in_softhsm_activation_counting_and_enrollment() {
    let hsm_dir = tempfile::tempdir().unwrap();
    let cfg = fixture(hsm_dir.path());
    let data = tempfile::tempdir().unwrap();
    cli::init_with(data.path(), &["127.0.0.1".to_string()], Some(cfg)).unwrap();
    for f in [
        keys::MASTER_KEY_FILE,
        keys::MAC_KEY_FILE,
        enroll::ISSUING_KEY,
    ] {
        assert!(
            !data.path().join(f).exists(),
            "{f} must not exist: the key is in the token"
        );
    }
    assert!(data.path().join(keys::HSM_CONFIG).exists());
    // PIV trust anchor for enrollment
    let piv_key = KeyPair::generate().unwrap();
    let mut piv_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    piv_params
        .distinguished_name
        .push(DnType::CommonName, "Test PIV CA");
    piv_params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let piv_ca = piv_params.self_signed(&piv_key).unwrap();
    std::fs::write(data.path().join("piv-ca.pem"), piv_ca.pem()).unwrap();
    enroll::add_anchor(data.path(), &data.path().join("piv-ca.pem")).unwrap();
    let b = common::serve(data, 10);

    // activation through the token's MAC and master keys
    let dev = DeviceKey::regenerate(b"24681357", b"salt", 10);
    b.service
        .register(&[9; 32], &dev.public(), &[0x77; 32], None)
        .unwrap();
    let activate = |key: &DeviceKey| {
        b.client
            .call(|c| RequestBody::Activate {
                handle: Bytes(vec![9; 32]),
                q: Bytes(key.public()),
                sig: Bytes(key.sign(c)),
            })
            .unwrap()
            .body
    };
    assert!(matches!(
        activate(&DeviceKey::regenerate(b"00000000", b"salt", 10)),
        ResponseBody::WrongPin { attempts_left: 9 }
    ));
    assert!(matches!(activate(&dev), ResponseBody::Kwk { ref kwk } if kwk.0 == vec![0x77; 32]));

    // enrollment: the derived certificate is signed by the CA key inside the token
    let card = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(Vec::<String>::new()).unwrap();
    leaf.distinguished_name.push(DnType::CommonName, "Jane Doe");
    let piv_cert = leaf
        .signed_by(&card, &Issuer::new(piv_params, &piv_key))
        .unwrap();
    let auth = KeyPair::generate().unwrap();
    let r = b
        .client
        .call(|c| {
            RequestBody::Enroll(Box::new(EnrollRequest {
                piv_cert: Bytes(piv_cert.der().to_vec()),
                piv_sig: Bytes(card.sign(c).unwrap()),
                piv_sig_alg: PivSigAlg::EcdsaSha256,
                handle: Bytes(vec![8; 32]),
                q: Bytes(dev.public()),
                kwk: Bytes(vec![0x55; 32]),
                auth_spki: Bytes(auth.subject_public_key_info()),
                sign_spki: Bytes(auth.subject_public_key_info()),
            }))
        })
        .unwrap();
    let ResponseBody::Enrolled(e) = r.body else {
        panic!("{:?}", r.body)
    };
    // the derived certificate is signed by the CA key in the token, and the CA
    // certificate itself is self-signed by it
    common::assert_signed_by(&e.auth_cert.0, &e.ca_cert.0);
    common::assert_signed_by(&e.ca_cert.0, &e.ca_cert.0);
}
