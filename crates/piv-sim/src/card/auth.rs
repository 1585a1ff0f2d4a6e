//! GENERAL AUTHENTICATE (SP 800-73-4 Part 2 §3.2.4): private-key operations with the
//! dynamic authentication template `7C`, and management key (`9B`) authentication
//! (Appendix A.1: mutual authentication with a witness, or external authentication with a
//! challenge).

use zeroize::Zeroizing;

use super::{ct_eq, Card, Pending};
use crate::apdu::{Command, Response, Sw};
use crate::keys::{KeyError, PrivateKey};
use crate::objects::{KEY_CARD_AUTH, KEY_MGMT, KEY_SIGN};
use crate::tlv::{self, Tlv};

/// Dynamic authentication template.
const TAG_TEMPLATE: u32 = 0x7C;
/// Witness.
const TAG_WITNESS: u32 = 0x80;
/// Challenge (the input to sign or decrypt, for asymmetric keys).
const TAG_CHALLENGE: u32 = 0x81;
/// Response.
const TAG_RESPONSE: u32 = 0x82;
/// Exponentiation: the peer's public point for ECDH.
const TAG_EXPONENTIATION: u32 = 0x85;

fn random(len: usize) -> Result<Vec<u8>, Sw> {
    let mut v = vec![0u8; len];
    getrandom::fill(&mut v).map_err(|_| super::SW_MEMORY_FAILURE)?;
    Ok(v)
}

fn template(tag: u32, value: &[u8]) -> Response {
    Response::ok(tlv::encode(TAG_TEMPLATE, &tlv::encode(tag, value)))
}

impl Card {
    /// `00 87 alg keyref 7C{...}`.
    pub(super) fn general_authenticate(
        &mut self,
        cmd: &Command,
        pin_always: bool,
        pending: Option<Pending>,
    ) -> Response {
        let (alg, key_ref) = (cmd.p1, cmd.p2);
        let Ok(items) = tlv::parse_single(&cmd.data, TAG_TEMPLATE).and_then(tlv::parse_all) else {
            return Sw::BAD_DATA.into();
        };
        if key_ref == KEY_MGMT {
            return match self.authenticate_mgmt(alg, &items, pending) {
                Ok(resp) => resp,
                Err(sw) => sw.into(),
            };
        }
        let Some(key) = self.keys.get(&key_ref) else {
            return Sw::REF_NOT_FOUND.into();
        };
        if key.algorithm() != alg {
            return Sw::BAD_DATA.into();
        }
        let allowed = match key_ref {
            KEY_CARD_AUTH => true,
            KEY_SIGN => pin_always && self.session.pin_verified,
            _ => self.session.pin_verified,
        };
        if !allowed {
            return Sw::SECURITY_STATUS.into();
        }
        // The host asks for the response with an empty `82`.
        if tlv::find(&items, TAG_RESPONSE) != Some(&[][..]) {
            return Sw::BAD_DATA.into();
        }
        let result = match (
            tlv::find(&items, TAG_CHALLENGE),
            tlv::find(&items, TAG_EXPONENTIATION),
        ) {
            (Some(input), None) => private_op(key, input),
            (None, Some(point)) => key.ecdh(point),
            _ => return Sw::BAD_DATA.into(),
        };
        match result {
            Ok(out) => template(TAG_RESPONSE, &out),
            Err(KeyError::BadInput(_)) => Sw::BAD_DATA.into(),
            Err(e) => {
                eprintln!("piv-sim: key operation failed: {e}");
                Sw::BAD_DATA.into()
            }
        }
    }

    /// Management key authentication. Mutual: `80 00` → `80 E(witness)`; then
    /// `80 witness 81 challenge` → `82 E(challenge)`. External: `81 00` → `81 challenge`;
    /// then `82 E(challenge)` → `90 00`.
    fn authenticate_mgmt(
        &mut self,
        alg: u8,
        items: &[Tlv<'_>],
        pending: Option<Pending>,
    ) -> Result<Response, Sw> {
        if alg != self.mgmt.alg() {
            return Err(Sw::BAD_DATA);
        }
        let block = self.mgmt.block_len();
        let enc = |k: &crate::mgmt::MgmtKey, b: &[u8]| k.encrypt(b).map_err(|_| Sw::BAD_DATA);
        let witness = tlv::find(items, TAG_WITNESS);
        let challenge = tlv::find(items, TAG_CHALLENGE);
        let response = tlv::find(items, TAG_RESPONSE);
        match (witness, challenge, response) {
            (Some([]), None, _) => {
                self.session.mgmt_authenticated = false;
                let w = Zeroizing::new(random(block)?);
                let resp = template(TAG_WITNESS, &enc(&self.mgmt, &w)?);
                self.session.mgmt_pending = Some(Pending::Witness(w));
                Ok(resp)
            }
            (Some(w), Some(c), None | Some([])) if !w.is_empty() && !c.is_empty() => {
                let Some(Pending::Witness(expected)) = pending else {
                    return Err(Sw::SECURITY_STATUS);
                };
                if !ct_eq(w, &expected) {
                    return Err(Sw::SECURITY_STATUS);
                }
                if c.len() != block {
                    return Err(Sw::BAD_DATA);
                }
                self.session.mgmt_authenticated = true;
                Ok(template(TAG_RESPONSE, &enc(&self.mgmt, c)?))
            }
            (None, Some([]), None | Some([])) => {
                self.session.mgmt_authenticated = false;
                let c = random(block)?;
                let resp = template(TAG_CHALLENGE, &c);
                self.session.mgmt_pending = Some(Pending::Challenge(c));
                Ok(resp)
            }
            (None, None, Some(r)) if !r.is_empty() => {
                let Some(Pending::Challenge(expected)) = pending else {
                    return Err(Sw::SECURITY_STATUS);
                };
                if r.len() != block || !ct_eq(r, &enc(&self.mgmt, &expected)?) {
                    return Err(Sw::SECURITY_STATUS);
                }
                self.session.mgmt_authenticated = true;
                Ok(Sw::OK.into())
            }
            _ => Err(Sw::BAD_DATA),
        }
    }
}

/// Signature or decryption input (`81`): raw RSA, or ECDSA over a hash.
fn private_op(key: &PrivateKey, input: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    match key {
        PrivateKey::Rsa(_) => key.rsa_raw(input),
        PrivateKey::P256(_) | PrivateKey::P384(_) => key.ecdsa_sign(input).map(Zeroizing::new),
    }
}
