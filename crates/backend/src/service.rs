//! The protocol logic, independent of the transport: given a request and the
//! channel binding of the TLS session it arrived on, produce the response.
//!
//! Activation (DESIGN.md): unknown and locked records get the same answer
//! ([`ResponseBody::Refused`]); otherwise the presented `Q` is compared with
//! the stored MAC in constant time and the signature over *this* session's
//! challenge is verified. Any failure is counted atomically and reported with
//! the attempts left (the attempt that reaches the limit gets `Refused`, as
//! the record is now locked); success resets the counter and returns the KWK.

use dcred_protocol::devicekey;
use dcred_protocol::messages::{Bytes, RequestBody, Response, ResponseBody};
use sha2::{Digest, Sha256};

use crate::enroll::{Anchors, IssuingCa, Rejected};
use crate::keys::Keys;
use crate::store::{short_id, State, Store};
use crate::Result;

/// Policy knobs.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Consecutive failures that lock a record.
    pub lock_limit: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy { lock_limit: 10 }
    }
}

/// What enrollment needs: PIV trust anchors and the issuing CA.
pub struct Enrollment {
    /// PIV trust anchors (and CRLs), reloaded when their directories change.
    pub anchors: std::sync::RwLock<Anchors>,
    /// The data directory they are read from.
    pub dir: std::path::PathBuf,
    /// Modification times of the anchor and CRL directories at the last load.
    pub stamp: std::sync::Mutex<Option<[Option<std::time::SystemTime>; 2]>>,
    /// Issuing CA for derived certificates.
    pub ca: IssuingCa,
}

/// The service: store, keys and policy.
pub struct Service {
    /// Device records and audit log.
    pub store: Store,
    keys: Keys,
    policy: Policy,
    enrollment: Option<Enrollment>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// The record id for a handle: SHA-256 of it (the handle itself is never stored).
pub fn record_id(handle: &[u8]) -> Vec<u8> {
    Sha256::digest(handle).to_vec()
}

fn reply(body: ResponseBody) -> Response {
    Response {
        version: dcred_protocol::VERSION,
        body,
    }
}

impl Service {
    /// A service over a store and keys.
    pub fn new(store: Store, keys: Keys, policy: Policy) -> Service {
        Service {
            store,
            keys,
            policy,
            enrollment: None,
        }
    }

    /// Enable enrollment.
    pub fn with_enrollment(mut self, enrollment: Enrollment) -> Service {
        self.enrollment = Some(enrollment);
        self
    }

    /// Escrow a key-management key (PKCS#8 DER) for the holder of a PIV certificate.
    pub fn escrow_import(
        &self,
        user_cert: &[u8],
        cert: &[u8],
        pkcs8: &[u8],
        current: bool,
    ) -> Result<()> {
        use der::{Decode, Encode};
        let user = x509_cert::Certificate::from_der(user_cert)
            .map_err(|e| crate::Error::Usage(format!("user certificate: {e}")))?;
        let subject = user
            .tbs_certificate()
            .subject()
            .to_der()
            .map_err(|e| crate::Error::Usage(e.to_string()))?;
        let user_id = Sha256::digest(&subject).to_vec();
        x509_cert::Certificate::from_der(cert)
            .map_err(|e| crate::Error::Usage(format!("escrowed certificate: {e}")))?;
        let wrapped = self.keys.wrap_kwk(&Sha256::digest(cert), pkcs8)?;
        self.store.escrow_add(&user_id, cert, &wrapped, current)?;
        self.store.audit(
            None,
            "escrow-import",
            if current { "current" } else { "retired" },
        )?;
        Ok(())
    }

    /// Register a device record directly (administrative enrollment and tests).
    pub fn register(
        &self,
        handle: &[u8],
        q: &[u8],
        kwk: &[u8],
        piv_not_after: Option<i64>,
    ) -> Result<()> {
        let id = record_id(handle);
        let wrapped = self.keys.wrap_kwk(&id, kwk)?;
        self.store
            .register(&id, &self.keys.mac_q(q)?, &wrapped, None, piv_not_after)?;
        self.store.audit(Some(&id), "register", "")?;
        Ok(())
    }

    /// Handle one request. `challenge` is this TLS session's channel-bound challenge.
    pub fn handle(&self, body: &RequestBody, challenge: &[u8]) -> Result<Response> {
        match body {
            RequestBody::Activate { handle, q, sig } => self.activate(handle, q, sig, challenge),
            RequestBody::ChangePin {
                handle,
                q,
                sig,
                new_q,
            } => self.change_pin(handle, q, sig, new_q, challenge),
            RequestBody::Enroll(req) => self.enroll(req, challenge),
        }
    }

    /// Check a proof; on failure count it. `Ok(None)` means the proof is good.
    fn prove(
        &self,
        id: &[u8],
        q: &Bytes,
        sig: &Bytes,
        challenge: &[u8],
    ) -> Result<Option<Response>> {
        let Some(rec) = self.store.get(id)? else {
            self.store.audit(Some(id), "refused", "unknown record")?;
            return Ok(Some(reply(ResponseBody::Refused)));
        };
        match rec.state {
            State::Locked => {
                self.store.audit(Some(id), "refused", "locked")?;
                return Ok(Some(reply(ResponseBody::Refused)));
            }
            State::Revoked => {
                self.store.audit(Some(id), "refused", "revoked")?;
                return Ok(Some(reply(ResponseBody::Revoked)));
            }
            State::Active => {}
        }
        let expired = rec.piv_not_after.is_some_and(|t| t < now());
        let crl_revoked = match (&self.enrollment, &rec.piv_cert) {
            (Some(en), Some(cert)) => en.current().is_revoked(cert),
            _ => false,
        };
        if rec.piv_revoked || expired || crl_revoked {
            self.store.audit(
                Some(id),
                "refused",
                "originating PIV certificate revoked or expired",
            )?;
            return Ok(Some(reply(ResponseBody::Revoked)));
        }
        // Both checks run whatever the first one says.
        let q_ok = self.keys.check_q(&q.0, &rec.q_mac)?;
        let sig_ok = devicekey::verify(&q.0, challenge, &sig.0).is_ok();
        if q_ok && sig_ok {
            return Ok(None);
        }
        let why = if q_ok {
            "bad signature (replayed or relayed?)"
        } else {
            "wrong PIN"
        };
        match self.store.count_failure(id, self.policy.lock_limit)? {
            Some((failures, State::Active)) => {
                self.store.audit(
                    Some(id),
                    "failure",
                    &format!("{why}; {failures} consecutive"),
                )?;
                Ok(Some(reply(ResponseBody::WrongPin {
                    attempts_left: self.policy.lock_limit.saturating_sub(failures),
                })))
            }
            Some((failures, _)) => {
                self.store.audit(
                    Some(id),
                    "locked",
                    &format!("{why}; {failures} consecutive"),
                )?;
                log::warn!("device {}: locked after {failures} failures", short_id(id));
                Ok(Some(reply(ResponseBody::Refused)))
            }
            None => Ok(Some(reply(ResponseBody::Refused))),
        }
    }

    fn activate(
        &self,
        handle: &Bytes,
        q: &Bytes,
        sig: &Bytes,
        challenge: &[u8],
    ) -> Result<Response> {
        let id = record_id(&handle.0);
        if let Some(refusal) = self.prove(&id, q, sig, challenge)? {
            return Ok(refusal);
        }
        self.store.reset_failures(&id)?;
        let Some(rec) = self.store.get(&id)? else {
            return Ok(reply(ResponseBody::Refused));
        };
        let Some(wrapped) = rec.kwk_wrapped else {
            return Ok(reply(ResponseBody::Revoked));
        };
        let kwk = self.keys.unwrap_kwk(&id, &wrapped)?;
        self.store.audit(Some(&id), "activate", "KWK released")?;
        Ok(reply(ResponseBody::Kwk {
            kwk: Bytes(kwk.to_vec()),
        }))
    }

    fn change_pin(
        &self,
        handle: &Bytes,
        q: &Bytes,
        sig: &Bytes,
        new_q: &Bytes,
        challenge: &[u8],
    ) -> Result<Response> {
        let id = record_id(&handle.0);
        if let Some(refusal) = self.prove(&id, q, sig, challenge)? {
            return Ok(refusal);
        }
        if devicekey::check_point(&new_q.0).is_err() {
            return Ok(reply(ResponseBody::Error {
                message: "new Q is not a P-256 point".into(),
            }));
        }
        let changed =
            self.store
                .replace_q(&id, &self.keys.mac_q(&q.0)?, &self.keys.mac_q(&new_q.0)?)?;
        if !changed {
            return Ok(reply(ResponseBody::Refused));
        }
        self.store.audit(Some(&id), "change-pin", "")?;
        Ok(reply(ResponseBody::PinChanged))
    }
}

impl Enrollment {
    /// New enrollment state reading anchors and CRLs from `dir`.
    pub fn new(dir: &std::path::Path, ca: IssuingCa) -> Result<Enrollment> {
        let en = Enrollment {
            anchors: std::sync::RwLock::new(Anchors::load(
                &dir.join(crate::enroll::ANCHOR_DIR),
                &dir.join(crate::enroll::CRL_DIR),
            )?),
            dir: dir.to_path_buf(),
            stamp: std::sync::Mutex::new(None),
            ca,
        };
        *en.stamp
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(en.stamps());
        Ok(en)
    }

    fn stamps(&self) -> [Option<std::time::SystemTime>; 2] {
        let m = |d: &str| {
            std::fs::metadata(self.dir.join(d))
                .and_then(|m| m.modified())
                .ok()
        };
        [m(crate::enroll::ANCHOR_DIR), m(crate::enroll::CRL_DIR)]
    }

    /// The anchors, reloaded first if an anchor or a CRL was added since.
    pub fn current(&self) -> std::sync::RwLockReadGuard<'_, Anchors> {
        let now = self.stamps();
        let mut stamp = self
            .stamp
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *stamp != Some(now) {
            match Anchors::load(
                &self.dir.join(crate::enroll::ANCHOR_DIR),
                &self.dir.join(crate::enroll::CRL_DIR),
            ) {
                Ok(a) => {
                    *self
                        .anchors
                        .write()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = a;
                    log::info!("PIV trust anchors and CRLs reloaded");
                }
                Err(e) => log::error!(
                    "PIV trust anchors or CRLs unreadable, keeping the previous ones: {e}"
                ),
            }
            *stamp = Some(now);
        }
        self.anchors
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Service {
    fn enroll(
        &self,
        req: &dcred_protocol::messages::EnrollRequest,
        challenge: &[u8],
    ) -> Result<Response> {
        use dcred_protocol::messages::{EnrollResponse, EscrowedKey};
        let refuse = |m: String| -> Result<Response> {
            self.store.audit(None, "enroll-refused", &m)?;
            Ok(reply(ResponseBody::Error { message: m }))
        };
        let Some(en) = &self.enrollment else {
            return refuse(
                "enrollment is not configured on this back-end (no PIV trust anchor)".into(),
            );
        };
        let piv = match en.current().validate(&req.piv_cert.0, now()) {
            Ok(p) => p,
            Err(Rejected(m)) => return refuse(m),
        };
        if let Err(Rejected(m)) = piv.verify_proof(req.piv_sig_alg, challenge, &req.piv_sig.0) {
            return refuse(m);
        }
        if req.handle.0.len() != 32 || req.kwk.0.len() != 32 {
            return refuse("handle and KWK must be 32 bytes".into());
        }
        if devicekey::check_point(&req.q.0).is_err() {
            return refuse("Q is not a P-256 point".into());
        }
        let auth_cert = match en.ca.issue(&piv, &req.auth_spki.0, false) {
            Ok(c) => c,
            Err(Rejected(m)) => return refuse(m),
        };
        let sign_cert = match en.ca.issue(&piv, &req.sign_spki.0, true) {
            Ok(c) => c,
            Err(Rejected(m)) => return refuse(m),
        };
        let mut key_management = Vec::new();
        for (cert, wrapped, current) in self.store.escrow_for(&piv.user_id)? {
            let pkcs8 = self.keys.unwrap_kwk(&Sha256::digest(&cert), &wrapped)?;
            key_management.push(EscrowedKey {
                cert: Bytes(cert),
                pkcs8: Bytes(pkcs8.to_vec()),
                current,
            });
        }
        let id = record_id(&req.handle.0);
        let wrapped = self.keys.wrap_kwk(&id, &req.kwk.0)?;
        if self
            .store
            .register(
                &id,
                &self.keys.mac_q(&req.q.0)?,
                &wrapped,
                Some(&piv.der),
                Some(piv.not_after),
            )
            .is_err()
        {
            return refuse("that device handle is already registered".into());
        }
        self.store.audit(
            Some(&id),
            "enroll",
            &format!("{} escrowed key(s) delivered", key_management.len()),
        )?;
        Ok(reply(ResponseBody::Enrolled(Box::new(EnrollResponse {
            auth_cert: Bytes(auth_cert),
            sign_cert: Bytes(sign_cert),
            ca_cert: Bytes(en.ca.cert_der.clone()),
            key_management,
        }))))
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dcred_protocol::DeviceKey;

    fn service(limit: u32) -> (tempfile::TempDir, Service) {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(&d.path().join("db")).unwrap();
        let svc = Service::new(
            store,
            Keys::from_bytes([1; 32], [2; 32]),
            Policy { lock_limit: limit },
        );
        (d, svc)
    }

    fn activate(svc: &Service, handle: &[u8], pin: &[u8], challenge: &[u8]) -> ResponseBody {
        let k = DeviceKey::regenerate(pin, b"salt", 10);
        svc.handle(
            &RequestBody::Activate {
                handle: handle.into(),
                q: Bytes(k.public()),
                sig: Bytes(k.sign(challenge)),
            },
            challenge,
        )
        .unwrap()
        .body
    }

    #[test]
    fn right_pin_gets_the_kwk_and_resets_the_count() {
        let (_d, svc) = service(3);
        let k = DeviceKey::regenerate(b"123456", b"salt", 10);
        svc.register(&[7; 32], &k.public(), &[9; 32], None).unwrap();
        assert!(matches!(
            activate(&svc, &[7; 32], b"000000", b"c1"),
            ResponseBody::WrongPin { attempts_left: 2 }
        ));
        match activate(&svc, &[7; 32], b"123456", b"c2") {
            ResponseBody::Kwk { kwk } => assert_eq!(kwk.0, vec![9; 32]),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            svc.store
                .get(&record_id(&[7; 32]))
                .unwrap()
                .unwrap()
                .failures,
            0
        );
    }

    #[test]
    fn lock_at_the_limit_then_refused_like_unknown() {
        let (_d, svc) = service(3);
        let k = DeviceKey::regenerate(b"123456", b"salt", 10);
        svc.register(&[7; 32], &k.public(), &[9; 32], None).unwrap();
        assert!(matches!(
            activate(&svc, &[7; 32], b"1", b"c"),
            ResponseBody::WrongPin { attempts_left: 2 }
        ));
        assert!(matches!(
            activate(&svc, &[7; 32], b"2", b"c"),
            ResponseBody::WrongPin { attempts_left: 1 }
        ));
        assert!(matches!(
            activate(&svc, &[7; 32], b"3", b"c"),
            ResponseBody::Refused
        ));
        assert!(matches!(
            activate(&svc, &[7; 32], b"123456", b"c"),
            ResponseBody::Refused
        ));
        let unknown =
            serde_json::to_string(&reply(activate(&svc, &[8; 32], b"123456", b"c"))).unwrap();
        let locked =
            serde_json::to_string(&reply(activate(&svc, &[7; 32], b"123456", b"c"))).unwrap();
        assert_eq!(unknown, locked, "unknown and locked answers are identical");
        assert!(svc.store.unlock(&record_id(&[7; 32])).unwrap());
        assert!(matches!(
            activate(&svc, &[7; 32], b"123456", b"c"),
            ResponseBody::Kwk { .. }
        ));
    }

    #[test]
    fn a_signature_over_another_challenge_is_a_failure() {
        let (_d, svc) = service(10);
        let k = DeviceKey::regenerate(b"123456", b"salt", 10);
        svc.register(&[7; 32], &k.public(), &[9; 32], None).unwrap();
        let r = svc
            .handle(
                &RequestBody::Activate {
                    handle: Bytes(vec![7; 32]),
                    q: Bytes(k.public()),
                    sig: Bytes(k.sign(b"session A")),
                },
                b"session B",
            )
            .unwrap();
        assert!(matches!(
            r.body,
            ResponseBody::WrongPin { attempts_left: 9 }
        ));
    }

    #[test]
    fn revoked_and_expired_are_refused_distinctly() {
        let (_d, svc) = service(10);
        let k = DeviceKey::regenerate(b"123456", b"salt", 10);
        svc.register(&[1; 32], &k.public(), &[9; 32], None).unwrap();
        svc.store.revoke(&record_id(&[1; 32])).unwrap();
        assert!(matches!(
            activate(&svc, &[1; 32], b"123456", b"c"),
            ResponseBody::Revoked
        ));
        svc.register(&[2; 32], &k.public(), &[9; 32], Some(1))
            .unwrap();
        assert!(matches!(
            activate(&svc, &[2; 32], b"123456", b"c"),
            ResponseBody::Revoked
        ));
    }

    #[test]
    fn pin_change_replaces_q() {
        let (_d, svc) = service(10);
        let old = DeviceKey::regenerate(b"123456", b"salt", 10);
        let new = DeviceKey::regenerate(b"654321", b"salt", 10);
        svc.register(&[3; 32], &old.public(), &[9; 32], None)
            .unwrap();
        let r = svc
            .handle(
                &RequestBody::ChangePin {
                    handle: Bytes(vec![3; 32]),
                    q: Bytes(old.public()),
                    sig: Bytes(old.sign(b"c")),
                    new_q: Bytes(new.public()),
                },
                b"c",
            )
            .unwrap();
        assert!(matches!(r.body, ResponseBody::PinChanged));
        assert!(matches!(
            activate(&svc, &[3; 32], b"123456", b"c"),
            ResponseBody::WrongPin { .. }
        ));
        assert!(matches!(
            activate(&svc, &[3; 32], b"654321", b"c"),
            ResponseBody::Kwk { .. }
        ));
    }

    #[test]
    fn audit_never_holds_handle_or_kwk() {
        let (_d, svc) = service(10);
        let k = DeviceKey::regenerate(b"123456", b"salt", 10);
        svc.register(&[0x5a; 32], &k.public(), &[0xa5; 32], None)
            .unwrap();
        activate(&svc, &[0x5a; 32], b"123456", b"c");
        activate(&svc, &[0x5a; 32], b"000000", b"c");
        for (_, dev, ev, detail) in svc.store.audit_log().unwrap() {
            let line = format!("{dev:?} {ev} {detail}");
            assert!(!line.contains("5a5a") && !line.contains("a5a5"), "{line}");
        }
    }
}
