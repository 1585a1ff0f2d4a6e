//! The back-end over real TLS 1.3 on loopback, driven by the protocol crate's
//! blocking client: activation, channel binding (relay), guessed handles,
//! parallel wrong-PIN attempts, and trust-anchor checking.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::start;

use dcred_backend::cli;
use dcred_backend::service::record_id;
use dcred_backend::store::State;
use dcred_protocol::client::{Client, ClientError};
use dcred_protocol::messages::{Bytes, RequestBody, ResponseBody};
use dcred_protocol::DeviceKey;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

fn activate(c: &Client, handle: &[u8], key: &DeviceKey) -> ResponseBody {
    c.call(|challenge| RequestBody::Activate {
        handle: handle.into(),
        q: Bytes(key.public()),
        sig: Bytes(key.sign(challenge)),
    })
    .unwrap()
    .body
}

#[test]
fn activation_releases_the_kwk_only_to_the_right_pin() {
    let b = start(10);
    let right = DeviceKey::regenerate(b"123456", b"salt", 10);
    let wrong = DeviceKey::regenerate(b"654321", b"salt", 10);
    b.service
        .register(&[1; 32], &right.public(), &[0x42; 32], None)
        .unwrap();
    assert!(matches!(
        activate(&b.client, &[1; 32], &wrong),
        ResponseBody::WrongPin { attempts_left: 9 }
    ));
    match activate(&b.client, &[1; 32], &right) {
        ResponseBody::Kwk { kwk } => assert_eq!(kwk.0, vec![0x42; 32]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_signature_from_one_tls_session_is_refused_on_another() {
    let b = start(10);
    let key = DeviceKey::regenerate(b"123456", b"salt", 10);
    b.service
        .register(&[2; 32], &key.public(), &[7; 32], None)
        .unwrap();
    // Session A: the relay captures the device's signature (and lets A complete).
    let mut captured = Vec::new();
    let _ = b
        .client
        .call(|challenge| {
            captured = key.sign(challenge);
            RequestBody::Activate {
                handle: Bytes(vec![2; 32]),
                q: Bytes(key.public()),
                sig: Bytes(captured.clone()),
            }
        })
        .unwrap();
    // Session B: the relay replays it on its own connection.
    let r = b
        .client
        .call(|_| RequestBody::Activate {
            handle: Bytes(vec![2; 32]),
            q: Bytes(key.public()),
            sig: Bytes(captured.clone()),
        })
        .unwrap();
    assert!(
        matches!(r.body, ResponseBody::WrongPin { attempts_left: 9 }),
        "{:?}",
        r.body
    );
}

#[test]
fn guessed_handles_cannot_lock_a_real_record() {
    let b = start(3);
    let key = DeviceKey::regenerate(b"123456", b"salt", 10);
    b.service
        .register(&[3; 32], &key.public(), &[7; 32], None)
        .unwrap();
    for i in 0..20u8 {
        let guess = [i.wrapping_add(100); 32];
        assert!(matches!(
            activate(&b.client, &guess, &key),
            ResponseBody::Refused
        ));
    }
    let rec = b.service.store.get(&record_id(&[3; 32])).unwrap().unwrap();
    assert_eq!((rec.failures, rec.state), (0, State::Active));
    assert!(matches!(
        activate(&b.client, &[3; 32], &key),
        ResponseBody::Kwk { .. }
    ));
}

#[test]
fn two_hundred_parallel_wrong_pins_lock_at_exactly_the_limit() {
    let b = start(10);
    let right = DeviceKey::regenerate(b"123456", b"salt", 10);
    b.service
        .register(&[4; 32], &right.public(), &[7; 32], None)
        .unwrap();
    let wrong = Arc::new(DeviceKey::regenerate(b"000000", b"salt", 10));
    let answers: Vec<ResponseBody> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..200)
            .map(|_| {
                let c = b.client.clone();
                let k = wrong.clone();
                s.spawn(move || activate(&c, &[4; 32], &k))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let wrong_pin = answers
        .iter()
        .filter(|a| matches!(a, ResponseBody::WrongPin { .. }))
        .count();
    let refused = answers
        .iter()
        .filter(|a| matches!(a, ResponseBody::Refused))
        .count();
    assert_eq!(wrong_pin + refused, 200);
    assert_eq!(
        wrong_pin, 9,
        "attempts 1..9 report attempts left; the 10th locks"
    );
    let rec = b.service.store.get(&record_id(&[4; 32])).unwrap().unwrap();
    assert_eq!((rec.failures, rec.state), (10, State::Locked));
    assert!(
        matches!(activate(&b.client, &[4; 32], &right), ResponseBody::Refused),
        "locked releases nothing"
    );
}

#[test]
fn a_back_end_with_another_certificate_is_not_trusted() {
    let b = start(10);
    let dir = tempfile::tempdir().unwrap();
    cli::init(dir.path(), &[]).unwrap();
    let foreign = CertificateDer::from_pem_file(dir.path().join(cli::TLS_CA_CERT)).unwrap();
    // b's address with a trust anchor that did not issue b's certificate
    let c = Client::new(b.client.addr(), foreign.as_ref(), Duration::from_secs(5)).unwrap();
    let e = c
        .call(|_| RequestBody::Activate {
            handle: Bytes(vec![0; 32]),
            q: Bytes(vec![]),
            sig: Bytes(vec![]),
        })
        .unwrap_err();
    assert!(matches!(e, ClientError::Tls(_)), "{e}");
}

#[test]
fn unreachable_back_end_fails_within_the_timeout() {
    let ca_dir = tempfile::tempdir().unwrap();
    cli::init(ca_dir.path(), &[]).unwrap();
    let ca = CertificateDer::from_pem_file(ca_dir.path().join(cli::TLS_CA_CERT)).unwrap();
    // a port nobody listens on
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let c = Client::new(
        &format!("127.0.0.1:{port}"),
        ca.as_ref(),
        Duration::from_secs(2),
    )
    .unwrap();
    let start = std::time::Instant::now();
    assert!(matches!(
        c.call(|_| RequestBody::Activate {
            handle: Bytes(vec![]),
            q: Bytes(vec![]),
            sig: Bytes(vec![])
        }),
        Err(ClientError::Io(_))
    ));
    assert!(start.elapsed() < Duration::from_secs(3));
}

#[test]
fn admin_commands_lock_unlock_revoke_and_audit() {
    let b = start(10);
    let key = DeviceKey::regenerate(b"123456", b"salt", 10);
    b.service
        .register(&[5; 32], &key.public(), &[7; 32], None)
        .unwrap();
    let id: String = record_id(&[5; 32])
        .iter()
        .take(4)
        .map(|x| format!("{x:02x}"))
        .collect();
    let data = b.dir.path().to_str().unwrap().to_string();
    let run = |args: &[&str]| cli::main(args.iter().map(|s| s.to_string()).collect());
    assert_eq!(run(&["device", "lock", "--data", &data, &id]), 0);
    assert!(matches!(
        activate(&b.client, &[5; 32], &key),
        ResponseBody::Refused
    ));
    assert_eq!(
        run(&["device", "lock", "--data", &data, &id]),
        2,
        "already locked"
    );
    assert_eq!(run(&["device", "unlock", "--data", &data, &id]), 0);
    assert!(matches!(
        activate(&b.client, &[5; 32], &key),
        ResponseBody::Kwk { .. }
    ));
    assert_eq!(run(&["device", "revoke", "--data", &data, &id]), 0);
    assert!(matches!(
        activate(&b.client, &[5; 32], &key),
        ResponseBody::Revoked
    ));
    assert_eq!(run(&["device", "list", "--data", &data]), 0);
    assert_eq!(run(&["audit", "--data", &data]), 0);
    assert_eq!(run(&["device", "frob", "--data", &data, &id]), 2);
    assert_eq!(
        run(&["device", "lock", "--data", &data, "ffffffffff"]),
        2,
        "unknown id"
    );
    let events = common::audit_events(&b);
    for e in [
        "register",
        "admin-lock",
        "admin-unlock",
        "activate",
        "admin-revoke",
    ] {
        assert!(events.iter().any(|x| x == e), "{e} in {events:?}");
    }
}
