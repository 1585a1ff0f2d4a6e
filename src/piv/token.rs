//! The PIV token: PKCS#11 objects from the card's certificates, and the
//! private-key primitives as GENERAL AUTHENTICATE.

use std::ffi::CString;
use std::sync::{Arc, Mutex};

use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::card::{self, alg, CardData, KeySlot, PinStatus};
use super::reader::{CardWorker, Connection};
use super::transport::Transport;
use super::PivError;
use crate::core::keyobjects::{key_objects, KeySpec};
use crate::core::object::KeyInfo;
use crate::core::{lock, Error, Object, Result, Token, TokenInfo};
use crate::crypto::pubkey::{ecdsa_der_to_raw, parse_certificate, CertInfo};
use crate::crypto::{Curve, PublicKey};

/// A PIV card in a reader.
pub struct PivToken {
    worker: CardWorker,
    data: CardData,
    certs: Vec<(KeySlot, CertInfo)>,
    pin: Mutex<Option<PinStatus>>,
    config: Arc<crate::config::Config>,
}

/// Names for key slots, in the style OpenSC uses so users recognise them.
fn slot_names(s: &KeySlot) -> (String, String) {
    match s.key_ref {
        0x9a => ("PIV Authentication".into(), "PIV AUTH".into()),
        0x9c => ("Digital Signature".into(), "SIGN".into()),
        0x9d => ("Key Management".into(), "KEY MAN".into()),
        0x9e => ("Card Authentication".into(), "CARD AUTH".into()),
        r => {
            let n = r - 0x81;
            (
                format!("Retired Key Management {n}"),
                format!("RETIRED KEY MAN {n}"),
            )
        }
    }
}

fn piv_alg(k: &PublicKey) -> Result<u8> {
    match k {
        PublicKey::Rsa { .. } => match k.bits() {
            1024 => Ok(alg::RSA1024),
            2048 => Ok(alg::RSA2048),
            _ => Err(Error::KeySizeRange),
        },
        PublicKey::Ec {
            curve: Curve::P256, ..
        } => Ok(alg::P256),
        PublicKey::Ec {
            curve: Curve::P384, ..
        } => Ok(alg::P384),
    }
}

fn pin_flags(p: Option<PinStatus>, max_tries: u8) -> CK_FLAGS {
    match p {
        Some(PinStatus::Blocked) => CKF_USER_PIN_LOCKED,
        Some(PinStatus::Tries(1)) => CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_COUNT_LOW,
        Some(PinStatus::Tries(n)) if n < max_tries => CKF_USER_PIN_COUNT_LOW,
        _ => 0,
    }
}

impl PivToken {
    /// Connect to the card in `reader` and read its public data.
    pub fn open(
        ctx: &pcsc::Context,
        reader: CString,
        config: Arc<crate::config::Config>,
    ) -> Result<Self> {
        let conn = Connection::connect(ctx, &reader)?;
        let timeout = std::time::Duration::from_millis(config.card_timeout_ms);
        let worker = CardWorker::new(conn, timeout, !config.no_threads);
        let data = worker.run(|c| {
            c.with_transaction(|t, _| {
                card::select(t)?;
                card::read_card(t)
            })
        })?;
        let certs = data
            .certs
            .iter()
            .filter_map(|(slot, der)| match parse_certificate(der) {
                Ok(info) => Some((*slot, info)),
                Err(e) => {
                    log::warn!("key {:02X}: certificate not usable: {e:?}", slot.key_ref);
                    None
                }
            })
            .collect();
        Ok(PivToken {
            worker,
            pin: Mutex::new(data.pin),
            data,
            certs,
            config,
        })
    }

    /// Run card commands in one transaction after selecting the PIV application.
    fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn Transport) -> std::result::Result<R, PivError> + Send + 'static,
    ) -> Result<R> {
        self.worker
            .run(move |conn| {
                conn.with_transaction(|t, _reset| {
                    card::select(t)?;
                    f(t)
                })
            })
            .map_err(|e| {
                if let PivError::WrongPin { tries } = e {
                    *lock(&self.pin) = Some(PinStatus::Tries(tries));
                } else if e == PivError::PinBlocked {
                    *lock(&self.pin) = Some(PinStatus::Blocked);
                }
                Error::from(e)
            })
    }

    fn check_pin_len(&self, pin: &[u8]) -> Result<()> {
        if !(6..=8).contains(&pin.len()) {
            return Err(Error::PinLenRange);
        }
        Ok(())
    }

    fn verified(&self) {
        *lock(&self.pin) = Some(PinStatus::Verified);
    }

    fn with_key_pin<R: Send + 'static>(
        &self,
        context_pin: Option<&[u8]>,
        f: impl FnOnce(&mut dyn Transport) -> std::result::Result<R, PivError> + Send + 'static,
    ) -> Result<R> {
        if let Some(p) = context_pin {
            self.check_pin_len(p)?;
        }
        let pin = context_pin.map(|p| Zeroizing::new(p.to_vec()));
        let had_pin = pin.is_some();
        let r = self.run(move |t| {
            // VERIFY and the key operation in one transaction, nothing between.
            if let Some(p) = &pin {
                card::verify(t, p)?;
            }
            f(t)
        });
        if had_pin && r.is_ok() {
            self.verified();
        }
        r
    }

    fn key_objects(&self, slot: &KeySlot, cert_der: &[u8], info: &CertInfo) -> Vec<Object> {
        let (long, short) = slot_names(slot);
        let rsa = matches!(info.public_key, PublicKey::Rsa { .. });
        let (sign, decrypt, derive) = match slot.key_ref {
            0x9a | 0x9e => (true, rsa, false),
            0x9c => (true, false, false),
            _ => (false, rsa, !rsa),
        };
        key_objects(&KeySpec {
            id: slot.ck_id(),
            key_ref: slot.key_ref,
            cert_label: format!("Certificate for {long}"),
            key_label: format!("{short} key"),
            public_label: format!("{short} pubkey"),
            sign,
            decrypt,
            derive,
            // 9E is usable without the PIN (SP 800-73-4 Part 1 §3.2), so it is public.
            private: slot.key_ref != 0x9e,
            always_authenticate: slot.key_ref == 0x9c,
            cert_der,
            info,
        })
    }
}

impl Token for PivToken {
    fn info(&self) -> TokenInfo {
        let label = self
            .certs
            .iter()
            .find(|(s, _)| s.key_ref == 0x9a)
            .and_then(|(_, c)| c.common_name.clone())
            .unwrap_or_else(|| "PIV card".to_string());
        let serial_src = self
            .data
            .guid
            .as_ref()
            .filter(|g| g.iter().any(|&b| b != 0))
            .or(self.data.fascn.as_ref());
        let serial = serial_src
            .map(|g| g.iter().map(|b| format!("{b:02x}")).collect::<String>())
            .unwrap_or_default();
        TokenInfo {
            label,
            manufacturer: "piv_II".into(),
            model: "PIV II".into(),
            serial: serial.chars().take(16).collect(),
            min_pin: 6,
            max_pin: 8,
            pin_flags: pin_flags(*lock(&self.pin), self.config.pin_retries_hint),
            hardware: true,
        }
    }

    fn objects(&self) -> Vec<Object> {
        let mut objs = vec![crate::core::keyobjects::public_certificates_profile()];
        for (slot, info) in &self.certs {
            let der = self
                .data
                .certs
                .iter()
                .find(|(s, _)| s == slot)
                .map(|(_, d)| d.as_slice())
                .unwrap_or_default();
            objs.extend(self.key_objects(slot, der, info));
        }
        objs
    }

    fn login(&self, pin: &[u8]) -> Result<()> {
        self.check_pin_len(pin)?;
        let pin = Zeroizing::new(pin.to_vec());
        self.run(move |t| card::verify(t, &pin))?;
        self.verified();
        Ok(())
    }

    fn logout(&self) -> Result<()> {
        self.run(card::unverify)
    }

    fn set_pin(&self, old: &[u8], new: &[u8]) -> Result<()> {
        self.check_pin_len(old)?;
        self.check_pin_len(new)?;
        let (old, new) = (Zeroizing::new(old.to_vec()), Zeroizing::new(new.to_vec()));
        self.run(move |t| card::change_pin(t, &old, &new))?;
        self.verified();
        Ok(())
    }

    fn check_context_pin(&self, _key: &KeyInfo, pin: &[u8]) -> Result<()> {
        self.check_pin_len(pin)?;
        let pin = Zeroizing::new(pin.to_vec());
        self.run(move |t| card::verify(t, &pin))?;
        self.verified();
        Ok(())
    }

    fn rsa_private(
        &self,
        key: &KeyInfo,
        block: &[u8],
        context_pin: Option<&[u8]>,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let a = piv_alg(&key.public)?;
        let (key_ref, block) = (key.key_ref, Zeroizing::new(block.to_vec()));
        let out = self.with_key_pin(context_pin, move |t| {
            card::general_authenticate(t, a, key_ref, 0x81, &block)
        })?;
        let k = key.public.modulus_len();
        if out.len() > k {
            return Err(Error::DeviceError(
                "RSA result longer than the modulus".into(),
            ));
        }
        let mut v = Zeroizing::new(vec![0u8; k - out.len()]);
        v.extend_from_slice(&out);
        Ok(v)
    }

    fn ecdsa_sign(
        &self,
        key: &KeyInfo,
        hash: &[u8],
        context_pin: Option<&[u8]>,
    ) -> Result<Vec<u8>> {
        let PublicKey::Ec { curve, .. } = &key.public else {
            return Err(Error::KeyTypeInconsistent);
        };
        let a = piv_alg(&key.public)?;
        let (key_ref, hash) = (key.key_ref, hash.to_vec());
        let der = self.with_key_pin(context_pin, move |t| {
            card::general_authenticate(t, a, key_ref, 0x81, &hash)
        })?;
        ecdsa_der_to_raw(*curve, &der)
            .map_err(|_| Error::DeviceError("card returned a malformed ECDSA signature".into()))
    }

    fn ecdh(&self, key: &KeyInfo, peer: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let a = piv_alg(&key.public)?;
        let (key_ref, peer) = (key.key_ref, peer.to_vec());
        self.with_key_pin(None, move |t| {
            card::general_authenticate(t, a, key_ref, 0x85, &peer)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_flags_follow_the_counter() {
        assert_eq!(pin_flags(Some(PinStatus::Tries(3)), 3), 0);
        assert_eq!(
            pin_flags(Some(PinStatus::Tries(2)), 3),
            CKF_USER_PIN_COUNT_LOW
        );
        assert_eq!(
            pin_flags(Some(PinStatus::Tries(1)), 3),
            CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_COUNT_LOW
        );
        assert_eq!(pin_flags(Some(PinStatus::Blocked), 3), CKF_USER_PIN_LOCKED);
        assert_eq!(pin_flags(Some(PinStatus::Verified), 3), 0);
    }

    #[test]
    fn algorithms_from_keys() {
        let p = PublicKey::Ec {
            curve: Curve::P384,
            point: vec![],
        };
        assert_eq!(piv_alg(&p).unwrap(), alg::P384);
        let r = PublicKey::Rsa {
            n: vec![0x80; 256],
            e: vec![1, 0, 1],
        };
        assert_eq!(piv_alg(&r).unwrap(), alg::RSA2048);
    }
}
