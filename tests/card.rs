//! The module through the `cryptoki` crate against the virtual PIV card that
//! scripts/test.sh provisions and inserts in reader 0 (PIN 123456; keys 9A
//! RSA-2048, 9C P-256, 9D RSA-2048, 9E P-256, 82 RSA-2048, 83 P-384).
//! Ignored by a plain `cargo test`: scripts/test.sh runs them with `--include-ignored`.

mod common;

use std::time::{Duration, Instant};

use common::*;
use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use sha2::Digest;

fn rv(e: Error) -> RvError {
    match e {
        Error::Pkcs11(rv, _) => rv,
        other => panic!("not a PKCS#11 error: {other}"),
    }
}

fn pss(hash: MechanismType, mgf: PkcsMgfType, len: u64) -> PkcsPssParams {
    PkcsPssParams {
        hash_alg: hash,
        mgf,
        s_len: len.into(),
    }
}

#[test]
#[ignore = "needs the virtual card: run scripts/test.sh"]
fn rsa_signatures_verify_and_tampering_is_caught() {
    let _g = serial();
    require_env();
    let p = init();
    let s = login(&p);
    let key = object(&s, ObjectClass::PRIVATE_KEY, 1);
    let pubkey = object(&s, ObjectClass::PUBLIC_KEY, 1);
    let data = b"the quick brown fox".to_vec();
    let digest = sha2::Sha256::digest(&data);
    let mut digest_info = vec![
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x20,
    ];
    digest_info.extend_from_slice(&digest);
    let p256 = pss(MechanismType::SHA256, PkcsMgfType::MGF1_SHA256, 32);
    let cases: Vec<(Mechanism, Vec<u8>)> = vec![
        (Mechanism::Sha1RsaPkcs, data.clone()),
        (Mechanism::Sha256RsaPkcs, data.clone()),
        (Mechanism::Sha384RsaPkcs, data.clone()),
        (Mechanism::Sha512RsaPkcs, data.clone()),
        (Mechanism::RsaPkcs, digest_info.clone()),
        (Mechanism::Sha256RsaPkcsPss(p256), data.clone()),
        (Mechanism::RsaPkcsPss(p256), digest.to_vec()),
        (
            Mechanism::Sha512RsaPkcsPss(pss(MechanismType::SHA512, PkcsMgfType::MGF1_SHA512, 64)),
            data.clone(),
        ),
    ];
    for (mech, input) in &cases {
        let sig = s
            .sign(mech, key, input)
            .unwrap_or_else(|e| panic!("{mech:?}: {e}"));
        assert_eq!(sig.len(), 256);
        s.verify(mech, pubkey, input, &sig)
            .unwrap_or_else(|e| panic!("verify {mech:?}: {e}"));
        let mut bad = sig.clone();
        bad[10] ^= 1;
        assert_eq!(
            rv(s.verify(mech, pubkey, input, &bad).unwrap_err()),
            RvError::SignatureInvalid,
            "{mech:?}"
        );
    }
    // multi-part hash-and-sign equals single-part verification
    s.sign_init(&Mechanism::Sha256RsaPkcs, key).unwrap();
    s.sign_update(&data[..5]).unwrap();
    s.sign_update(&data[5..]).unwrap();
    let sig = s.sign_final().unwrap();
    s.verify(&Mechanism::Sha256RsaPkcs, pubkey, &data, &sig)
        .unwrap();
    // RSA-X-509 round trip: raw block in, raw block back through the public key
    let mut block = vec![0u8; 256];
    block[1] = 0x42;
    block[255] = 7;
    let sig = s.sign(&Mechanism::RsaX509, key, &block).unwrap();
    s.verify(&Mechanism::RsaX509, pubkey, &block, &sig).unwrap();
}

#[test]
#[ignore = "needs the virtual card: run scripts/test.sh"]
fn ecdsa_context_login_and_pinless_9e() {
    let _g = serial();
    require_env();
    let p = init();
    let s = login(&p);
    let key9c = object(&s, ObjectClass::PRIVATE_KEY, 2);
    let pub9c = object(&s, ObjectClass::PUBLIC_KEY, 2);
    let data = b"sign me".to_vec();
    // 9C without the context-specific login is refused
    let e = s.sign(&Mechanism::EcdsaSha256, key9c, &data).unwrap_err();
    assert_eq!(rv(e), RvError::UserNotLoggedIn);
    // with it, it signs (multi-part, as cryptoki needs the login between init and sign)
    s.sign_init(&Mechanism::EcdsaSha256, key9c).unwrap();
    s.login(UserType::ContextSpecific, Some(&AuthPin::new(PIN.into())))
        .unwrap();
    s.sign_update(&data).unwrap();
    let sig = s.sign_final().unwrap();
    assert_eq!(sig.len(), 64);
    s.verify(&Mechanism::EcdsaSha256, pub9c, &data, &sig)
        .unwrap();
    // a context-specific login without an operation is refused
    assert_eq!(
        rv(
            s.login(UserType::ContextSpecific, Some(&AuthPin::new(PIN.into())))
                .unwrap_err()
        ),
        RvError::OperationNotInitialized
    );
    drop(s);
    // 9E signs in a session that never logged in
    let s = p.open_ro_session(card_slot(&p)).unwrap();
    let key9e = object(&s, ObjectClass::PRIVATE_KEY, 4);
    let pub9e = object(&s, ObjectClass::PUBLIC_KEY, 4);
    let hash = sha2::Sha256::digest(&data);
    let sig = s.sign(&Mechanism::Ecdsa, key9e, &hash).unwrap();
    s.verify(&Mechanism::Ecdsa, pub9e, &hash, &sig).unwrap();
    s.verify(&Mechanism::EcdsaSha256, pub9e, &data, &sig)
        .unwrap();
    // other private keys are invisible before login
    let privs = s
        .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY)])
        .unwrap();
    assert_eq!(privs.len(), 1);
}

#[test]
#[ignore = "needs the virtual card: run scripts/test.sh"]
fn decrypt_and_unwrap_with_card_keys() {
    let _g = serial();
    require_env();
    let p = init();
    let s = login(&p);
    let oaep = PkcsOaepParams::new(
        MechanismType::SHA256,
        PkcsMgfType::MGF1_SHA256,
        PkcsOaepSource::data_specified(b"label"),
    );
    for id in [3u8, 5] {
        let key = object(&s, ObjectClass::PRIVATE_KEY, id);
        let pubkey = object(&s, ObjectClass::PUBLIC_KEY, id);
        for mech in [Mechanism::RsaPkcs, Mechanism::RsaPkcsOaep(oaep)] {
            let secret = b"thirty-two bytes of key material".to_vec();
            let ct = s.encrypt(&mech, pubkey, &secret).unwrap();
            assert_eq!(s.decrypt(&mech, key, &ct).unwrap(), secret, "{mech:?}");
            // unwrap the same bytes as an AES key, readable because extractable
            let template = [
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::Token(false),
                Attribute::Sensitive(false),
                Attribute::Extractable(true),
                Attribute::Encrypt(true),
            ];
            let k = s.unwrap_key(&mech, key, &ct, &template).unwrap();
            assert_eq!(bytes(&s, k, AttributeType::Value), secret);
            s.destroy_object(k).unwrap();
            // a sensitive unwrapped key keeps its value inside
            let mut t = template.to_vec();
            t[3] = Attribute::Sensitive(true);
            let k = s.unwrap_key(&mech, key, &ct, &t).unwrap();
            let e = s.get_attributes(k, &[AttributeType::Value]).unwrap();
            assert!(!e.iter().any(|a| matches!(a, Attribute::Value(_))));
        }
    }
}

#[test]
#[ignore = "needs the virtual card: run scripts/test.sh"]
fn ecdh_derive_null_and_x963_kdf() {
    use p384::elliptic_curve::sec1::ToSec1Point;
    let _g = serial();
    require_env();
    let p = init();
    let s = login(&p);
    let key = object(&s, ObjectClass::PRIVATE_KEY, 6);
    let point_der = bytes(
        &s,
        object(&s, ObjectClass::PUBLIC_KEY, 6),
        AttributeType::EcPoint,
    );
    let card_point = &point_der[2..];
    let card_pub = p384::PublicKey::from_sec1_bytes(card_point).unwrap();
    let peer = p384::SecretKey::from_slice(&[0x11u8; 48]).unwrap();
    let peer_pub = peer.public_key().to_sec1_point(false);
    let z = p384::ecdh::diffie_hellman(peer.to_nonzero_scalar(), card_pub.as_affine());
    let z = z.raw_secret_bytes().to_vec();
    let template = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::GENERIC_SECRET),
        Attribute::Token(false),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
    ];
    let params = Ecdh1DeriveParams::new(EcKdf::null(), peer_pub.as_bytes());
    let k = s
        .derive_key(&Mechanism::Ecdh1Derive(params), key, &template)
        .unwrap();
    assert_eq!(bytes(&s, k, AttributeType::Value), z, "CKD_NULL is Z");
    let shared = b"shared info";
    let mut t = template.to_vec();
    t.push(Attribute::ValueLen(40.into()));
    let params = Ecdh1DeriveParams::new(EcKdf::sha256(shared), peer_pub.as_bytes());
    let k = s
        .derive_key(&Mechanism::Ecdh1Derive(params), key, &t)
        .unwrap();
    let mut expect = Vec::new();
    for counter in 1u32..=2 {
        let mut h = sha2::Sha256::new();
        h.update(&z);
        h.update(counter.to_be_bytes());
        h.update(shared);
        expect.extend_from_slice(&h.finalize());
    }
    expect.truncate(40);
    assert_eq!(bytes(&s, k, AttributeType::Value), expect, "X9.63 KDF");
    // a point that is not on the curve is refused
    let mut bad = peer_pub.as_bytes().to_vec();
    bad[20] ^= 1;
    let params = Ecdh1DeriveParams::new(EcKdf::null(), &bad);
    let e = s
        .derive_key(&Mechanism::Ecdh1Derive(params), key, &template)
        .unwrap_err();
    assert_eq!(rv(e), RvError::MechanismParamInvalid);
}

#[test]
#[ignore = "needs the virtual card: run scripts/test.sh"]
fn card_data_is_cached_apdu_counts() {
    let _g = serial();
    require_env();
    let p = init();
    let slot = card_slot(&p);
    let t0 = apdus();
    p.get_token_info(slot).unwrap();
    let cold = apdus() - t0;
    let t1 = apdus();
    for _ in 0..5 {
        p.get_slots_with_token().unwrap();
        p.get_slot_info(slot).unwrap();
        p.get_token_info(slot).unwrap();
        let s = p.open_ro_session(slot).unwrap();
        let all = s.find_objects(&[]).unwrap();
        for o in all {
            s.get_attributes(o, &[AttributeType::Label, AttributeType::Id])
                .unwrap();
        }
    }
    let warm = apdus() - t1;
    let s = login(&p);
    let key = object(&s, ObjectClass::PRIVATE_KEY, 1);
    let t2 = apdus();
    s.sign(&Mechanism::Sha256RsaPkcs, key, b"x").unwrap();
    let sign = apdus() - t2;
    eprintln!("APDUs: cold load {cold}; 5x slot list + token info + find + attributes {warm}; one RSA-2048 signature {sign}");
    assert_eq!(warm, 0, "warm listing must send no APDU");
    assert!(cold > 0 && sign > 0);
}

#[test]
#[ignore = "needs the virtual card: run scripts/test.sh"]
fn concurrent_sessions_sign_in_parallel() {
    let _g = serial();
    require_env();
    let p = init();
    // keep this session open: closing the last session logs the user out
    let keeper = login(&p);
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let p = p.0.clone();
            std::thread::spawn(move || {
                let s = p.open_ro_session(card_slot(&p)).unwrap();
                let key = object(&s, ObjectClass::PRIVATE_KEY, 1);
                let pubkey = object(&s, ObjectClass::PUBLIC_KEY, 1);
                for j in 0..3 {
                    let msg = format!("thread {i} message {j}");
                    let sig = s
                        .sign(&Mechanism::Sha256RsaPkcs, key, msg.as_bytes())
                        .unwrap();
                    s.verify(&Mechanism::Sha256RsaPkcs, pubkey, msg.as_bytes(), &sig)
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("signing thread");
    }
    drop(keeper);
}

#[test]
#[ignore = "needs the virtual card: run scripts/test.sh"]
fn set_pin_and_back() {
    let _g = serial();
    require_env();
    let p = init();
    let s = login(&p);
    s.set_pin(&AuthPin::new(PIN.into()), &AuthPin::new("654321".into()))
        .unwrap();
    s.logout().unwrap();
    s.login(UserType::User, Some(&AuthPin::new("654321".into())))
        .unwrap();
    s.set_pin(&AuthPin::new("654321".into()), &AuthPin::new(PIN.into()))
        .unwrap();
    let e = s
        .set_pin(&AuthPin::new("1".into()), &AuthPin::new(PIN.into()))
        .unwrap_err();
    assert_eq!(rv(e), RvError::PinLenRange);
}

#[test]
#[ignore = "needs the virtual card: run scripts/test.sh"]
fn card_removed_between_operations_and_reinserted() {
    let _g = serial();
    require_env();
    let p = init();
    let slot = card_slot(&p);
    while p.get_slot_event().unwrap().is_some() {}
    let s = login(&p);
    let key = object(&s, ObjectClass::PRIVATE_KEY, 1);
    s.sign(&Mechanism::Sha256RsaPkcs, key, b"before").unwrap();
    card("remove");
    let e = s
        .sign(&Mechanism::Sha256RsaPkcs, key, b"after")
        .unwrap_err();
    assert_eq!(rv(e), RvError::DeviceRemoved);
    assert!(p.get_slots_with_token().unwrap().is_empty());
    assert!(!p.get_slot_info(slot).unwrap().token_present());
    assert_eq!(
        rv(p.open_ro_session(slot).unwrap_err()),
        RvError::TokenNotPresent
    );
    assert_eq!(p.get_slot_event().unwrap(), Some(slot), "removal event");
    assert_eq!(p.get_slot_event().unwrap(), None);
    // a blocking wait sees the insertion
    let waiter = {
        let p = p.0.clone();
        std::thread::spawn(move || p.wait_for_slot_event())
    };
    std::thread::sleep(Duration::from_millis(300));
    card("insert");
    assert_eq!(waiter.join().unwrap().unwrap(), slot, "insertion event");
    // the old session is gone; a new one works without restarting anything
    assert_eq!(
        rv(s.sign(&Mechanism::Sha256RsaPkcs, key, b"x").unwrap_err()),
        RvError::DeviceRemoved
    );
    drop(s);
    let s = login(&p);
    let key = object(&s, ObjectClass::PRIVATE_KEY, 1);
    s.sign(&Mechanism::Sha256RsaPkcs, key, b"after reinsertion")
        .unwrap();
}

#[test]
#[ignore = "needs the virtual card: run scripts/test.sh"]
fn finalize_ends_a_blocked_wait() {
    let _g = serial();
    require_env();
    let p = init();
    while p.get_slot_event().unwrap().is_some() {}
    let waiter = {
        let p = p.0.clone();
        std::thread::spawn(move || p.wait_for_slot_event())
    };
    std::thread::sleep(Duration::from_millis(500));
    let start = Instant::now();
    p.0.clone().finalize().unwrap();
    let r = waiter.join().unwrap();
    assert_eq!(rv(r.unwrap_err()), RvError::CryptokiNotInitialized);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "wait ended promptly"
    );
}

#[test]
#[ignore = "needs the virtual card: run scripts/test.sh"]
fn forked_child_initialises_again() {
    let _g = serial();
    require_env();
    let p = init();
    let slot = card_slot(&p);
    // SAFETY: the child only calls the module and _exit; tests run one at a time.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork");
    if pid == 0 {
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let before = p.get_slots_with_token();
            let again = p.initialize(cryptoki::context::CInitializeArgs::new(
                cryptoki::context::CInitializeFlags::OS_LOCKING_OK,
            ));
            let info = p.get_token_info(slot);
            let ok = matches!(
                before,
                Err(Error::Pkcs11(RvError::CryptokiNotInitialized, _))
            ) && again.is_ok()
                && info.is_ok();
            i32::from(!ok)
        }))
        .unwrap_or(2);
        // SAFETY: leave the child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child: {status}"
    );
    p.get_token_info(slot).expect("parent unaffected");
}

#[test]
#[ignore = "needs the virtual card: run scripts/test.sh"]
fn a_derived_login_waiting_on_the_back_end_blocks_no_other_slot() {
    use dcred_protocol::credential::{BackendRef, Credential, KeyEntry, Protocredential, Role};
    use dcred_protocol::messages::Bytes;
    let _g = serial();
    require_env();
    // a back-end that accepts connections and never answers
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    // a credential that points at it (its key is never unwrapped)
    let dir = std::env::temp_dir().join(format!("dcred-stall-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let pki = std::env::var("DCRED_TEST_PKI").unwrap();
    let pem = std::fs::read_to_string(format!("{pki}/9a.cert.pem")).unwrap();
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let cert_der = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap()
    };
    let cred = Credential {
        version: dcred_protocol::credential::FORMAT_VERSION,
        id: "57a115".repeat(5) + "00",
        label: "stalled back-end".into(),
        backend: BackendRef {
            address: addr.to_string(),
            trust_anchor: Bytes(cert_der.clone()),
        },
        protocredential: Protocredential {
            handle: Bytes(vec![1; 32]),
            salt: Bytes(vec![2; 32]),
            kdf: "pbkdf2-hmac-sha256".into(),
            iterations: 1000,
        },
        ca_cert: Bytes(vec![]),
        keys: vec![KeyEntry {
            role: Role::Authentication,
            cert: Bytes(cert_der),
            wrapped_key: Bytes(vec![0; 40]),
        }],
    };
    cred.write(&dir.join("credentials")).unwrap();
    std::fs::write(dir.join("dcred.toml"), "backend_timeout_ms = 3000\n").unwrap();
    let old_data = std::env::var_os("DCRED_DATA_DIR");
    std::env::set_var("DCRED_DATA_DIR", &dir);
    std::env::set_var("DCRED_CONFIG", dir.join("dcred.toml"));
    let p = init();
    let derived = p
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| p.get_token_info(*s).unwrap().label() == "stalled back-end")
        .expect("the derived slot");
    let waiting = {
        let p = p.0.clone();
        std::thread::spawn(move || {
            let s = p.open_ro_session(derived).unwrap();
            let t = Instant::now();
            let r = s.login(UserType::User, Some(&AuthPin::new("24681357".into())));
            (r, t.elapsed())
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    // meanwhile the card slot logs in and signs
    let t = Instant::now();
    let s = login(&p);
    let key = object(&s, ObjectClass::PRIVATE_KEY, 1);
    for _ in 0..3 {
        s.sign(&Mechanism::Sha256RsaPkcs, key, b"while the back-end stalls")
            .unwrap();
    }
    let card_time = t.elapsed();
    assert!(!waiting.is_finished(), "the derived login is still waiting");
    let (r, waited) = waiting.join().unwrap();
    assert_eq!(rv(r.unwrap_err()), RvError::DeviceError);
    eprintln!("card slot: login + 3 signatures in {card_time:?} while the derived login waited {waited:?}");
    assert!(card_time < Duration::from_secs(2), "{card_time:?}");
    assert!(
        waited >= Duration::from_millis(2500) && waited < Duration::from_secs(8),
        "{waited:?}"
    );
    drop(s);
    drop(p);
    match old_data {
        Some(v) => std::env::set_var("DCRED_DATA_DIR", v),
        None => std::env::remove_var("DCRED_DATA_DIR"),
    }
    std::env::remove_var("DCRED_CONFIG");
    let _ = std::fs::remove_dir_all(&dir);
}
