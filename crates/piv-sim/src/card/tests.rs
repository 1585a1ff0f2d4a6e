//! Card application tests, driven through the transmission layer as a host would.

use super::*;
use crate::keys::{ALG_ECC_P256, ALG_ECC_P384, ALG_RSA1024};
use crate::mgmt::MgmtKey;
use crate::state::DEFAULT_MGMT_KEY;
use p256::elliptic_curve::Generate;

/// A host: chains long commands (255-byte parts) and follows `61 xx` with GET RESPONSE.
pub(crate) struct Host {
    pub card: Card,
    pub ex: Exchange,
}

use crate::exchange::Exchange;

impl Host {
    pub fn new() -> Host {
        Host {
            card: Card::new(State::default(), None).unwrap(),
            ex: Exchange::new(),
        }
    }

    /// Sends `cla ins p1 p2 data` (Le = 00 when `le`), returns the whole answer and the SW.
    pub fn send(&mut self, ins: u8, p1: u8, p2: u8, data: &[u8], le: bool) -> (Vec<u8>, u16) {
        let mut parts: Vec<&[u8]> = data.chunks(255).collect();
        if parts.is_empty() {
            parts.push(&[]);
        }
        let last = parts.len() - 1;
        let mut resp = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            let cla = if i < last { 0x10 } else { 0x00 };
            let mut apdu = vec![cla, ins, p1, p2];
            if !part.is_empty() {
                apdu.push(part.len() as u8);
                apdu.extend_from_slice(part);
            }
            if le && i == last {
                apdu.push(0);
            }
            resp = self.ex.transmit(&apdu, &mut self.card).1;
            if i < last {
                assert_eq!(resp, vec![0x90, 0], "intermediate chain part");
            }
        }
        let mut data = Vec::new();
        loop {
            let sw = u16::from_be_bytes([resp[resp.len() - 2], resp[resp.len() - 1]]);
            data.extend_from_slice(&resp[..resp.len() - 2]);
            if sw >> 8 != 0x61 {
                return (data, sw);
            }
            resp = self
                .ex
                .transmit(&[0, 0xC0, 0, 0, sw as u8], &mut self.card)
                .1;
        }
    }

    pub fn sw(&mut self, ins: u8, p1: u8, p2: u8, data: &[u8]) -> u16 {
        self.send(ins, p1, p2, data, false).1
    }

    pub fn verify(&mut self, pin: &str) -> u16 {
        self.sw(0x20, 0, 0x80, &pad_pin(pin))
    }

    /// Mutual authentication with the default management key.
    pub fn mgmt_auth(&mut self) -> u16 {
        let key = MgmtKey::new(0x03, &unhex(DEFAULT_MGMT_KEY).unwrap()).unwrap();
        let (r, sw) = self.send(0x87, 0x03, 0x9B, &[0x7C, 2, 0x80, 0], true);
        assert_eq!(sw, 0x9000);
        assert_eq!(r[..4], [0x7C, 10, 0x80, 8]);
        let witness = key.decrypt(&r[4..]).unwrap();
        let mut cmd = vec![0x7C, 20, 0x80, 8];
        cmd.extend_from_slice(&witness);
        cmd.extend_from_slice(&[0x81, 8, 1, 2, 3, 4, 5, 6, 7, 8]);
        let (r, sw) = self.send(0x87, 0x03, 0x9B, &cmd, true);
        if sw == 0x9000 {
            assert_eq!(r[4..], key.encrypt(&[1, 2, 3, 4, 5, 6, 7, 8]).unwrap()[..]);
        }
        sw
    }

    pub fn generate(&mut self, slot: u8, alg: u8) -> Vec<u8> {
        let (r, sw) = self.send(0x47, 0, slot, &[0xAC, 3, 0x80, 1, alg], true);
        assert_eq!(sw, 0x9000);
        r
    }

    /// GENERAL AUTHENTICATE `7C { 82 00, tag input }`.
    pub fn general_auth(&mut self, alg: u8, slot: u8, tag: u8, input: &[u8]) -> (Vec<u8>, u16) {
        let mut inner = vec![0x82, 0];
        tlv::push(&mut inner, u32::from(tag), input);
        self.send(0x87, alg, slot, &tlv::encode(0x7C, &inner), true)
    }
}

fn select_piv() -> Vec<u8> {
    objects::PIV_AID.to_vec()
}

#[test]
fn select_answers_the_application_property_template() {
    let mut h = Host::new();
    let (r, sw) = h.send(0xA4, 4, 0, &select_piv(), true);
    assert_eq!(sw, 0x9000);
    assert_eq!(r[0], 0x61);
    assert!(r.windows(17).any(|w| w == b"dcred virtual PIV"));
    assert_eq!(h.send(0xA4, 4, 0, &select_piv()[..9], true).1, 0x9000);
    assert_eq!(h.send(0xA4, 4, 0, &select_piv()[..5], true).1, 0x9000);
    assert_eq!(h.send(0xA4, 4, 0, &select_piv()[..4], true).1, 0x6A82);
    assert_eq!(h.send(0xA4, 4, 0, &[1, 2, 3], true).1, 0x6A82);
    assert_eq!(h.send(0xA4, 0, 0, &[0x3F, 0], true).1, 0x6A82);
    assert_eq!(
        h.send(0xA4, 4, 0x0C, &select_piv(), false),
        (vec![], 0x9000)
    );
    assert_eq!(h.sw(0xFD, 0, 0, &[]), 0x9000);
    assert_eq!(h.send(0x42, 0, 0, &[], false).1, 0x6D00);
}

#[test]
fn get_and_put_data() {
    let mut h = Host::new();
    let get = |h: &mut Host, tag: &[u8]| h.send(0xCB, 0x3F, 0xFF, &tlv::encode(0x5C, tag), true);
    assert_eq!(get(&mut h, &[0x5F, 0xC1, 0x02]).1, 0x6A82);
    assert_eq!(h.sw(0xCB, 0x3F, 0xFE, &[0x5C, 1, 0x7E]), 0x6A86);
    assert_eq!(h.sw(0xCB, 0x3F, 0xFF, &[0x5C, 9]), 0x6A80);
    let mut put = vec![0x5C, 3, 0x5F, 0xC1, 0x05];
    tlv::push(&mut put, 0x53, &objects::cert_object(&[0x30; 600]));
    assert_eq!(h.sw(0xDB, 0x3F, 0xFF, &put), 0x6982);
    assert_eq!(h.mgmt_auth(), 0x9000);
    assert_eq!(h.sw(0xDB, 0x3F, 0xFF, &put), 0x9000);
    // 600+ bytes come back in pieces through 61xx / GET RESPONSE.
    let before = h.ex.count();
    let (r, sw) = get(&mut h, &[0x5F, 0xC1, 0x05]);
    assert_eq!(sw, 0x9000);
    assert_eq!(r, put[5..]);
    assert_eq!(h.ex.count() - before, 3);
    // Discovery is written and read with its own tag.
    assert_eq!(
        h.sw(0xDB, 0x3F, 0xFF, &tlv::encode(0x7E, &objects::discovery())),
        0x9000
    );
    let (r, sw) = get(&mut h, &[0x7E]);
    assert_eq!((r, sw), (tlv::encode(0x7E, &objects::discovery()), 0x9000));
    // Too large for the card.
    let mut huge = vec![0x5C, 3, 0x5F, 0xC1, 0x05];
    tlv::push(&mut huge, 0x53, &vec![0; MAX_OBJECT + 1]);
    let mut apdu = vec![0, 0xDB, 0x3F, 0xFF, 0];
    apdu.extend((huge.len() as u16).to_be_bytes());
    apdu.extend(&huge);
    assert_eq!(h.ex.transmit(&apdu, &mut h.card).1, vec![0x6A, 0x84]);
    // An empty value deletes.
    assert_eq!(
        h.sw(0xDB, 0x3F, 0xFF, &[0x5C, 3, 0x5F, 0xC1, 0x05, 0x53, 0]),
        0x9000
    );
    assert_eq!(get(&mut h, &[0x5F, 0xC1, 0x05]).1, 0x6A82);
}

#[test]
fn pin_retry_counter_blocks_and_puk_unblocks() {
    let mut h = Host::new();
    assert_eq!(h.sw(0x20, 0, 0x80, &[]), 0x63C3);
    assert_eq!(h.verify("000000"), 0x63C2);
    assert_eq!(h.verify("123456"), 0x9000);
    assert_eq!(h.sw(0x20, 0, 0x80, &[]), 0x9000);
    assert_eq!(h.sw(0x20, 0xFF, 0x80, &[]), 0x9000);
    assert_eq!(h.sw(0x20, 0, 0x80, &[]), 0x63C3);
    for left in [2, 1, 0] {
        assert_eq!(h.verify("999999"), 0x63C0 | left);
    }
    assert_eq!(h.verify("123456"), 0x6983);
    assert_eq!(h.sw(0x20, 0, 0x80, &[]), 0x6983);
    assert_eq!(h.sw(0x20, 0, 0x80, &[1, 2, 3]), 0x6A80);
    // Wrong PUK counts down the PUK counter.
    let rrc = |puk: &str, pin: &str| [pad_pin(puk), pad_pin(pin)].concat();
    assert_eq!(h.sw(0x2C, 0, 0x80, &rrc("00000000", "111111")), 0x63C2);
    assert_eq!(h.sw(0x2C, 0, 0x80, &rrc("12345678", "11")), 0x6A80);
    assert_eq!(h.sw(0x2C, 0, 0x80, &rrc("12345678", "111111")), 0x9000);
    assert_eq!(h.card.state().puk_tries_left, 3);
    assert_eq!(h.sw(0x20, 0, 0x80, &[]), 0x63C3);
    assert_eq!(h.verify("111111"), 0x9000);
    // CHANGE REFERENCE DATA for the PIN and the PUK.
    let crd = |old: &str, new: &str| [pad_pin(old), pad_pin(new)].concat();
    assert_eq!(h.sw(0x24, 0, 0x80, &crd("111112", "222222")), 0x63C2);
    assert_eq!(h.sw(0x24, 0, 0x80, &crd("111111", "222222")), 0x9000);
    assert_eq!(h.verify("222222"), 0x9000);
    assert_eq!(h.sw(0x24, 0, 0x81, &crd("12345678", "87654321")), 0x9000);
    assert_eq!(h.card.state().puk.as_str(), "87654321");
    assert_eq!(h.sw(0x24, 0, 0x82, &crd("1", "2")), 0x6A88);
}

#[test]
fn power_cycle_clears_security_status() {
    let mut h = Host::new();
    assert_eq!(h.verify("123456"), 0x9000);
    assert_eq!(h.mgmt_auth(), 0x9000);
    h.card.reset();
    assert_eq!(h.sw(0x20, 0, 0x80, &[]), 0x63C3);
    assert_eq!(h.sw(0x47, 0, 0x9A, &[0xAC, 3, 0x80, 1, 0x11]), 0x6982);
}

#[test]
fn management_key_authentication() {
    let mut h = Host::new();
    let key = MgmtKey::new(0x03, &unhex(DEFAULT_MGMT_KEY).unwrap()).unwrap();
    // Wrong witness.
    h.send(0x87, 3, 0x9B, &[0x7C, 2, 0x80, 0], true);
    let mut bad = vec![0x7C, 20, 0x80, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0x81, 8];
    bad.extend([0; 8]);
    assert_eq!(h.sw(0x87, 3, 0x9B, &bad), 0x6982);
    // A witness is valid for the next command only.
    let (r, _) = h.send(0x87, 3, 0x9B, &[0x7C, 2, 0x80, 0], true);
    let mut good = vec![0x7C, 20, 0x80, 8];
    good.extend(key.decrypt(&r[4..]).unwrap());
    good.extend([0x81, 8, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(h.sw(0x20, 0, 0x80, &[]), 0x63C3);
    assert_eq!(h.sw(0x87, 3, 0x9B, &good), 0x6982);
    // Wrong algorithm.
    assert_eq!(h.sw(0x87, 0x08, 0x9B, &[0x7C, 2, 0x80, 0]), 0x6A80);
    assert_eq!(h.mgmt_auth(), 0x9000);
    // External authentication: 81 00 -> challenge, 82 E(challenge) -> 9000.
    h.card.reset();
    let (r, sw) = h.send(0x87, 3, 0x9B, &[0x7C, 2, 0x81, 0], true);
    assert_eq!((sw, &r[..4]), (0x9000, &[0x7C, 10, 0x81, 8][..]));
    let mut resp = vec![0x7C, 10, 0x82, 8];
    resp.extend(key.encrypt(&r[4..]).unwrap());
    assert_eq!(h.sw(0x87, 3, 0x9B, &resp), 0x9000);
    assert!(h.card.session.mgmt_authenticated);
}

#[test]
fn general_authenticate_rsa_ecdsa_ecdh() {
    let mut h = Host::new();
    assert_eq!(h.mgmt_auth(), 0x9000);
    let rsa = h.generate(0x9A, ALG_RSA1024);
    let p256 = h.generate(0x9E, ALG_ECC_P256);
    h.generate(0x9D, ALG_ECC_P384);
    assert_eq!(rsa[..2], [0x7F, 0x49]);
    assert_eq!(p256[..5], [0x7F, 0x49, 0x43, 0x86, 0x41]);

    // RSA needs the PIN.
    let mut block = vec![0u8; 128];
    block[1] = 1;
    assert_eq!(h.general_auth(ALG_RSA1024, 0x9A, 0x81, &block).1, 0x6982);
    assert_eq!(h.verify("123456"), 0x9000);
    let (r, sw) = h.general_auth(ALG_RSA1024, 0x9A, 0x81, &block);
    assert_eq!(sw, 0x9000);
    let sig = tlv::parse_single(&r, 0x7C).and_then(|v| tlv::parse_single(v, 0x82));
    assert_eq!(sig.unwrap().len(), 128);
    assert_eq!(h.general_auth(ALG_RSA1024, 0x9A, 0x81, &[1; 127]).1, 0x6A80);
    assert_eq!(h.general_auth(ALG_ECC_P256, 0x9A, 0x81, &block).1, 0x6A80);
    assert_eq!(h.general_auth(ALG_RSA1024, 0x82, 0x81, &block).1, 0x6A88);

    // ECDSA with 9E needs no PIN.
    h.card.reset();
    let hash = [0x11u8; 32];
    let (r, sw) = h.general_auth(ALG_ECC_P256, 0x9E, 0x81, &hash);
    assert_eq!(sw, 0x9000);
    let der = tlv::parse_single(&r, 0x7C)
        .and_then(|v| tlv::parse_single(v, 0x82))
        .unwrap();
    let PrivateKey::P256(sk) = &h.card.keys[&0x9E] else {
        unreachable!()
    };
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    let sig = p256::ecdsa::Signature::from_der(der).unwrap();
    p256::ecdsa::VerifyingKey::from(sk.public_key())
        .verify_prehash(&hash, &sig)
        .unwrap();

    // ECDH with 9D (P-384) needs the PIN; the answer is the shared X coordinate.
    let peer = p384::SecretKey::try_generate_from_rng(&mut getrandom::SysRng).unwrap();
    let point = peer.public_key().to_sec1_bytes();
    assert_eq!(h.general_auth(ALG_ECC_P384, 0x9D, 0x85, &point).1, 0x6982);
    assert_eq!(h.verify("123456"), 0x9000);
    let (r, sw) = h.general_auth(ALG_ECC_P384, 0x9D, 0x85, &point);
    assert_eq!(sw, 0x9000);
    let PrivateKey::P384(card_sk) = &h.card.keys[&0x9D] else {
        unreachable!()
    };
    let expected = peer.diffie_hellman(&card_sk.public_key());
    assert_eq!(r[4..], expected.raw_secret_bytes()[..]);
    assert_eq!(
        h.general_auth(ALG_ECC_P384, 0x9D, 0x85, &point[..50]).1,
        0x6A80
    );
}

#[test]
fn rsa_2048_uses_chaining_and_get_response() {
    let mut h = Host::new();
    assert_eq!(h.mgmt_auth(), 0x9000);
    let key = PrivateKey::generate(crate::keys::ALG_RSA2048).unwrap();
    h.card.store_key(0x9D, key).unwrap();
    assert_eq!(h.verify("123456"), 0x9000);
    let mut block = vec![0u8; 256];
    block[1] = 2;
    block[2..].fill(0x77);
    let before = h.ex.count();
    let (r, sw) = h.general_auth(0x07, 0x9D, 0x81, &block);
    assert_eq!(sw, 0x9000);
    assert_eq!(r[..8], [0x7C, 0x82, 1, 4, 0x82, 0x82, 1, 0]);
    // 266 data bytes: two chained parts; 264 answer bytes: one GET RESPONSE.
    assert_eq!(h.ex.count() - before, 3);
}

#[test]
fn digital_signature_key_needs_pin_right_before_each_use() {
    let mut h = Host::new();
    assert_eq!(h.mgmt_auth(), 0x9000);
    h.generate(0x9C, ALG_ECC_P256);
    let hash = [7u8; 32];
    assert_eq!(h.verify("123456"), 0x9000);
    assert_eq!(h.general_auth(ALG_ECC_P256, 0x9C, 0x81, &hash).1, 0x9000);
    // Consumed by the signature.
    assert_eq!(h.general_auth(ALG_ECC_P256, 0x9C, 0x81, &hash).1, 0x6982);
    // Cancelled by any APDU in between.
    assert_eq!(h.verify("123456"), 0x9000);
    assert_eq!(h.sw(0xCB, 0x3F, 0xFF, &[0x5C, 1, 0x7E]), 0x6A82);
    assert_eq!(h.general_auth(ALG_ECC_P256, 0x9C, 0x81, &hash).1, 0x6982);
    assert_eq!(h.verify("123456"), 0x9000);
    assert_eq!(h.general_auth(ALG_ECC_P256, 0x9C, 0x81, &hash).1, 0x9000);
}

#[test]
fn generate_and_state_survive_reload() {
    let dir = std::env::temp_dir().join(format!("piv-sim-card-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("card.json");
    State::default().save(&path).unwrap();
    let mut h = Host::new();
    h.card = Card::open(path.clone()).unwrap();
    assert_eq!(h.sw(0x47, 0, 0x9E, &[0xAC, 3, 0x80, 1, 0x11]), 0x6982);
    assert_eq!(h.mgmt_auth(), 0x9000);
    assert_eq!(h.sw(0x47, 0, 0x9B, &[0xAC, 3, 0x80, 1, 0x11]), 0x6A86);
    assert_eq!(h.sw(0x47, 0, 0x9E, &[0xAC, 3, 0x80, 1, 0x99]), 0x6A80);
    let public = h.generate(0x9E, ALG_ECC_P256);
    assert_eq!(h.verify("000000"), 0x63C2);
    let reopened = Card::open(path).unwrap();
    assert_eq!(reopened.keys[&0x9E].public_template(), public);
    assert_eq!(reopened.state().pin_tries_left, 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn yubikey_serial_via_otp_applet_resets_piv_state() {
    let mut h = Host::new();
    h.card.state.serial = 0x01020304;
    assert_eq!(h.send(0xF8, 0, 0, &[], true), (vec![1, 2, 3, 4], 0x9000));
    assert_eq!(h.verify("123456"), 0x9000);
    assert_eq!(h.send(0xA4, 4, 0, &YUBICO_OTP_AID, true).1, 0x9000);
    assert_eq!(h.send(0x01, 0x10, 0, &[], true), (vec![1, 2, 3, 4], 0x9000));
    assert_eq!(h.sw(0x20, 0, 0x80, &[]), 0x6D00);
    assert_eq!(h.send(0xA4, 4, 0, &select_piv(), true).1, 0x9000);
    assert_eq!(h.sw(0x20, 0, 0x80, &[]), 0x63C3);
}
