//! PIV data objects and key references (SP 800-73-4 Part 1 §3 and Appendix A) and the
//! builders for the objects the simulator creates itself.

use crate::tlv;

/// The PIV Card Application AID with its version (SP 800-73-4 Part 1 §2.2).
pub const PIV_AID: [u8; 11] = [
    0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00,
];
/// The shortest AID prefix SELECT accepts: the 5-byte RID `A0 00 00 03 08`, which is what
/// yubico-piv-tool sends (ISO/IEC 7816-4 §8.2.2.2 selection by a truncated DF name). OpenSC
/// sends the 9-byte form without the version; others send all 11 bytes.
pub const PIV_AID_MIN: usize = 5;

/// Card Capability Container.
pub const TAG_CCC: u32 = 0x5FC107;
/// Card Holder Unique Identifier.
pub const TAG_CHUID: u32 = 0x5FC102;
/// Discovery Object (returned with its own tag, not wrapped in `53`).
pub const TAG_DISCOVERY: u32 = 0x7E;
/// Biometric Information Templates Group Template (also returned unwrapped).
pub const TAG_BIT_GROUP: u32 = 0x7F61;
/// Key History Object.
pub const TAG_KEY_HISTORY: u32 = 0x5FC10C;
/// Printed Information.
pub const TAG_PRINTED: u32 = 0x5FC109;

/// Key reference of the PIV Authentication key.
pub const KEY_AUTH: u8 = 0x9A;
/// Key reference of the Card Application Administration (management) key.
pub const KEY_MGMT: u8 = 0x9B;
/// Key reference of the Digital Signature key (PIN always).
pub const KEY_SIGN: u8 = 0x9C;
/// Key reference of the Key Management key.
pub const KEY_KEYMGMT: u8 = 0x9D;
/// Key reference of the Card Authentication key (no PIN).
pub const KEY_CARD_AUTH: u8 = 0x9E;
/// First retired key management key reference.
pub const KEY_RETIRED_FIRST: u8 = 0x82;
/// Last retired key management key reference.
pub const KEY_RETIRED_LAST: u8 = 0x95;

/// The certificate object that goes with an asymmetric key reference.
pub fn cert_tag(key_ref: u8) -> Option<u32> {
    match key_ref {
        KEY_AUTH => Some(0x5FC105),
        KEY_SIGN => Some(0x5FC10A),
        KEY_KEYMGMT => Some(0x5FC10B),
        KEY_CARD_AUTH => Some(0x5FC101),
        KEY_RETIRED_FIRST..=KEY_RETIRED_LAST => {
            Some(0x5FC10D + u32::from(key_ref - KEY_RETIRED_FIRST))
        }
        _ => None,
    }
}

/// True for the asymmetric key references the card can hold a key in.
pub fn is_key_slot(key_ref: u8) -> bool {
    cert_tag(key_ref).is_some()
}

/// True for retired key management key references `82`–`95`.
pub fn is_retired(key_ref: u8) -> bool {
    (KEY_RETIRED_FIRST..=KEY_RETIRED_LAST).contains(&key_ref)
}

/// True for tags GET DATA / PUT DATA accept: the PIV objects `5FC1xx`, the Discovery and BIT
/// group objects, and the YubiKey vendor range `5FFFxx` that yubico-piv-tool writes.
pub fn is_object_tag(tag: u32) -> bool {
    matches!(tag, TAG_DISCOVERY | TAG_BIT_GROUP)
        || (0x5FC101..=0x5FC123).contains(&tag)
        || (0x5FFF00..=0x5FFFFF).contains(&tag)
}

/// The Application Property Template returned by SELECT (SP 800-73-4 Part 2 §3.1.1, Table 3):
/// `61 { 4F PIX, 79 { 4F RID }, 50 label, AC { 80 alg..., 06 01 00 } }`.
pub fn application_property_template(label: &str, algs: &[u8]) -> Vec<u8> {
    let mut inner = Vec::new();
    // Application identifier of the application: the PIX with version.
    tlv::push(&mut inner, 0x4F, &PIV_AID[5..]);
    tlv::push(&mut inner, 0x79, &tlv::encode(0x4F, &PIV_AID[..5]));
    tlv::push(&mut inner, 0x50, label.as_bytes());
    let mut algos = Vec::new();
    for &alg in algs {
        tlv::push(&mut algos, 0x80, &[alg]);
    }
    tlv::push(&mut algos, 0x06, &[0x00]);
    tlv::push(&mut inner, 0xAC, &algos);
    tlv::encode(0x61, &inner)
}

/// The FASC-N (SP 800-73-4 Part 1 §3.1.2, TIG SCEPACS 5-bit BCD) that yubico-piv-tool's
/// `set-chuid` also writes: agency, system and credential numbers all nines, i.e. a test
/// credential that names no real issuer.
pub const FASC_N: [u8; 25] = [
    0xD4, 0xE7, 0x39, 0xDA, 0x73, 0x9C, 0xED, 0x39, 0xCE, 0x73, 0x9D, 0x83, 0x68, 0x58, 0x21, 0x08,
    0x42, 0x10, 0x84, 0x21, 0xC8, 0x42, 0x10, 0xC3, 0xEB,
];

/// CHUID content (SP 800-73-4 Part 1 Table 9): FASC-N, GUID, expiration date, an empty
/// issuer signature (the simulator has no content signer) and the error detection code.
pub fn chuid(guid: &[u8; 16]) -> Vec<u8> {
    let mut v = Vec::new();
    tlv::push(&mut v, 0x30, &FASC_N);
    tlv::push(&mut v, 0x34, guid);
    tlv::push(&mut v, 0x35, b"20991231");
    tlv::push(&mut v, 0x3E, &[]);
    tlv::push(&mut v, 0xFE, &[]);
    v
}

/// CCC content (SP 800-73-4 Part 1 Table 8) with a card identifier that starts with the
/// GSC-RID `A0 00 00 01 16`, manufacturer `FF`, card type `02` (JavaCard), then 14 bytes.
pub fn ccc(card_id: &[u8; 14]) -> Vec<u8> {
    let mut id = vec![0xA0, 0x00, 0x00, 0x01, 0x16, 0xFF, 0x02];
    id.extend_from_slice(card_id);
    let mut v = Vec::new();
    tlv::push(&mut v, 0xF0, &id);
    tlv::push(&mut v, 0xF1, &[0x21]);
    tlv::push(&mut v, 0xF2, &[0x21]);
    tlv::push(&mut v, 0xF3, &[]);
    tlv::push(&mut v, 0xF4, &[0x00]);
    tlv::push(&mut v, 0xF5, &[0x10]);
    for tag in [0xF6, 0xF7, 0xFA, 0xFB, 0xFC, 0xFD, 0xFE] {
        tlv::push(&mut v, tag, &[]);
    }
    v
}

/// Discovery object content (SP 800-73-4 Part 1 Table 18): the PIV AID and the PIN usage
/// policy `40 00` (PIV Card Application PIN only, no global PIN).
pub fn discovery() -> Vec<u8> {
    let mut v = Vec::new();
    tlv::push(&mut v, 0x4F, &PIV_AID);
    tlv::push(&mut v, 0x5F2F, &[0x40, 0x00]);
    v
}

/// Key History object content (SP 800-73-4 Part 1 Table 19). The simulator keeps every
/// retired certificate on the card, so `keysWithOffCardCerts` is 0 and there is no URL.
pub fn key_history(on_card: u8) -> Vec<u8> {
    let mut v = Vec::new();
    tlv::push(&mut v, 0xC1, &[on_card]);
    tlv::push(&mut v, 0xC2, &[0]);
    tlv::push(&mut v, 0xFE, &[]);
    v
}

/// Certificate object content (SP 800-73-4 Part 1 Table 10): `70 cert, 71 00 (not
/// compressed), FE`.
pub fn cert_object(cert_der: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    tlv::push(&mut v, 0x70, cert_der);
    tlv::push(&mut v, 0x71, &[0x00]);
    tlv::push(&mut v, 0xFE, &[]);
    v
}

/// The tag as the state file names it (`5fc105`, `7e`).
pub fn tag_name(tag: u32) -> String {
    let mut v = Vec::new();
    tlv::push_tag(&mut v, tag);
    crate::state::hex(&v)
}

/// Parses a state-file tag name back.
pub fn parse_tag_name(name: &str) -> Option<u32> {
    let bytes = crate::state::unhex(name)?;
    if bytes.is_empty() || bytes.len() > 3 {
        return None;
    }
    Some(bytes.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_references_map_to_certificate_objects() {
        assert_eq!(cert_tag(0x9A), Some(0x5FC105));
        assert_eq!(cert_tag(0x9E), Some(0x5FC101));
        assert_eq!(cert_tag(0x82), Some(0x5FC10D));
        assert_eq!(cert_tag(0x95), Some(0x5FC120));
        assert_eq!(cert_tag(0x9B), None);
        assert_eq!(cert_tag(0x96), None);
        assert!(is_retired(0x90) && !is_retired(0x9A));
    }

    #[test]
    fn templates_have_the_expected_shape() {
        let apt = application_property_template("x", &[0x07]);
        let inner = tlv::parse_single(&apt, 0x61).unwrap();
        let items = tlv::parse_all(inner).unwrap();
        assert_eq!(tlv::find(&items, 0x4F), Some(&[0, 0, 0x10, 0, 1, 0][..]));
        assert_eq!(
            tlv::find(&items, 0x79),
            Some(&[0x4F, 5, 0xA0, 0, 0, 3, 8][..])
        );
        assert_eq!(tlv::find(&items, 0xAC), Some(&[0x80, 1, 7, 6, 1, 0][..]));
        let d = discovery();
        assert_eq!(d.len(), 18);
        assert_eq!(tlv::parse_all(&chuid(&[1; 16])).unwrap().len(), 5);
        assert_eq!(tlv::parse_all(&ccc(&[2; 14])).unwrap()[0].value.len(), 21);
        assert_eq!(key_history(2), vec![0xC1, 1, 2, 0xC2, 1, 0, 0xFE, 0]);
        assert_eq!(
            cert_object(&[0x30, 0]),
            vec![0x70, 2, 0x30, 0, 0x71, 1, 0, 0xFE, 0]
        );
    }

    #[test]
    fn tag_names_round_trip() {
        for tag in [0x7E, 0x7F61, 0x5FC102] {
            assert_eq!(parse_tag_name(&tag_name(tag)), Some(tag));
        }
        assert_eq!(tag_name(0x5FC10C), "5fc10c");
        assert_eq!(parse_tag_name("01020304"), None);
        assert!(is_object_tag(0x5FC10C) && is_object_tag(0x7E) && !is_object_tag(0x5FC200));
    }
}
