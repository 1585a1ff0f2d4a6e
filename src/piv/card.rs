//! PIV card commands (SP 800-73-4 Part 2) and reading the card's public data.

use std::io::Read;

use zeroize::Zeroizing;

use super::apdu::{Command, StatusWord};
use super::tlv::{self, Reader};
use super::transport::{transceive, Transport};
use super::PivError;

/// The PIV application identifier (with version), SP 800-73-4 Part 1 §2.2.
pub const PIV_AID: [u8; 11] = [
    0xa0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00,
];

/// PIV key references and the data objects holding their certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySlot {
    /// Key reference (9A, 9C, 9D, 9E, 82–95).
    pub key_ref: u8,
    /// Certificate data-object tag (5FC105, …).
    pub cert_tag: u32,
}

impl KeySlot {
    /// The four primary key slots.
    pub const PRIMARY: [KeySlot; 4] = [
        KeySlot {
            key_ref: 0x9a,
            cert_tag: 0x5fc105,
        },
        KeySlot {
            key_ref: 0x9c,
            cert_tag: 0x5fc10a,
        },
        KeySlot {
            key_ref: 0x9d,
            cert_tag: 0x5fc10b,
        },
        KeySlot {
            key_ref: 0x9e,
            cert_tag: 0x5fc101,
        },
    ];

    /// Retired key-management slot `i` (0-based; 0..20 → 82..95).
    pub fn retired(i: u8) -> Option<KeySlot> {
        (i < 20).then(|| KeySlot {
            key_ref: 0x82 + i,
            cert_tag: 0x5fc10d + i as u32,
        })
    }

    /// The CKA_ID OpenSC uses for this key: 01=9A, 02=9C, 03=9D, 04=9E, 05..=82...
    pub fn ck_id(&self) -> u8 {
        match self.key_ref {
            0x9a => 1,
            0x9c => 2,
            0x9d => 3,
            0x9e => 4,
            r => r - 0x82 + 5,
        }
    }
}

/// PIV algorithm identifiers (SP 800-78-4 Table 6-2).
pub mod alg {
    /// RSA 1024.
    pub const RSA1024: u8 = 0x06;
    /// RSA 2048.
    pub const RSA2048: u8 = 0x07;
    /// ECC P-256.
    pub const P256: u8 = 0x11;
    /// ECC P-384.
    pub const P384: u8 = 0x14;
}

fn status(ins: u8, sw: StatusWord) -> PivError {
    match sw {
        StatusWord::VerifyFailed(0) | StatusWord::Blocked => PivError::PinBlocked,
        StatusWord::VerifyFailed(tries) => PivError::WrongPin { tries },
        StatusWord::SecurityStatusNotSatisfied => PivError::SecurityStatusNotSatisfied,
        StatusWord::NotFound | StatusWord::ReferenceNotFound => PivError::NotFound,
        StatusWord::IncorrectData => PivError::IncorrectData,
        StatusWord::Success => PivError::Malformed("unexpected success"),
        StatusWord::MoreData(n) => PivError::Status {
            ins,
            sw: 0x6100 | n as u16,
        },
        StatusWord::WrongLe(n) => PivError::Status {
            ins,
            sw: 0x6c00 | n as u16,
        },
        StatusWord::NotSupported => PivError::Status { ins, sw: 0x6d00 },
        StatusWord::Other(sw) => PivError::Status { ins, sw },
    }
}

/// SELECT the PIV application; returns the application property template.
pub fn select(t: &mut dyn Transport) -> Result<Vec<u8>, PivError> {
    let r = transceive(t, &Command::new(0xa4, 0x04, 0x00, PIV_AID.to_vec(), true))?;
    match r.sw {
        StatusWord::Success => Ok(r.data.to_vec()),
        StatusWord::NotFound => Err(PivError::NotPiv),
        sw => Err(status(0xa4, sw)),
    }
}

/// GET DATA for an object tag; `None` when the card does not have it.
pub fn get_data(t: &mut dyn Transport, tag: u32) -> Result<Option<Vec<u8>>, PivError> {
    let tag_bytes: Vec<u8> = if tag == 0x7e {
        vec![0x7e]
    } else {
        vec![(tag >> 16) as u8, (tag >> 8) as u8, tag as u8]
    };
    let r = transceive(
        t,
        &Command::new(0xcb, 0x3f, 0xff, tlv::encode(0x5c, &tag_bytes), true),
    )?;
    match r.sw {
        StatusWord::Success => {
            let outer = if tag == 0x7e { 0x7e } else { 0x53 };
            match Reader::new(&r.data).find(outer)? {
                Some(v) => Ok(Some(v.to_vec())),
                None => Err(PivError::Malformed("GET DATA answer without 53/7E")),
            }
        }
        StatusWord::NotFound => Ok(None),
        sw => Err(status(0xcb, sw)),
    }
}

/// Pad a PIN to 8 bytes with 0xFF (SP 800-73-4 Part 2 §3.2.1).
fn padded(pin: &[u8]) -> Result<Zeroizing<Vec<u8>>, PivError> {
    if pin.len() > 8 {
        return Err(PivError::IncorrectData);
    }
    let mut p = Zeroizing::new(vec![0xffu8; 8]);
    p[..pin.len()].copy_from_slice(pin);
    Ok(p)
}

/// PIN state as the card reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinStatus {
    /// Verified in this card session.
    Verified,
    /// Not verified; tries left.
    Tries(u8),
    /// Blocked.
    Blocked,
}

/// VERIFY with no data: ask the PIN state without trying a PIN.
pub fn pin_status(t: &mut dyn Transport) -> Result<PinStatus, PivError> {
    let r = transceive(t, &Command::new(0x20, 0x00, 0x80, vec![], false))?;
    Ok(match r.sw {
        StatusWord::Success => PinStatus::Verified,
        StatusWord::VerifyFailed(0) | StatusWord::Blocked => PinStatus::Blocked,
        StatusWord::VerifyFailed(n) => PinStatus::Tries(n),
        sw => return Err(status(0x20, sw)),
    })
}

/// VERIFY the card application PIN.
pub fn verify(t: &mut dyn Transport, pin: &[u8]) -> Result<(), PivError> {
    let r = transceive(
        t,
        &Command::new(0x20, 0x00, 0x80, padded(pin)?.to_vec(), false),
    )?;
    match r.sw {
        StatusWord::Success => Ok(()),
        sw => Err(status(0x20, sw)),
    }
}

/// Reset the PIN's security status (VERIFY with P1=FF).
pub fn unverify(t: &mut dyn Transport) -> Result<(), PivError> {
    let r = transceive(t, &Command::new(0x20, 0xff, 0x80, vec![], false))?;
    match r.sw {
        StatusWord::Success => Ok(()),
        sw => Err(status(0x20, sw)),
    }
}

/// CHANGE REFERENCE DATA for the PIN.
pub fn change_pin(t: &mut dyn Transport, old: &[u8], new: &[u8]) -> Result<(), PivError> {
    let mut data = padded(old)?.to_vec();
    data.extend_from_slice(&padded(new)?);
    let r = transceive(t, &Command::new(0x24, 0x00, 0x80, data, false))?;
    match r.sw {
        StatusWord::Success => Ok(()),
        sw => Err(status(0x24, sw)),
    }
}

/// GENERAL AUTHENTICATE with a dynamic authentication template: `81`
/// (challenge) for signatures and RSA, `85` (exponentiation) for ECDH.
/// Returns the `82` response value.
pub fn general_authenticate(
    t: &mut dyn Transport,
    algorithm: u8,
    key_ref: u8,
    input_tag: u32,
    input: &[u8],
) -> Result<Zeroizing<Vec<u8>>, PivError> {
    let mut inner = vec![0x82, 0x00];
    inner.extend_from_slice(&tlv::encode(input_tag, input));
    let data = tlv::encode(0x7c, &inner);
    let r = transceive(t, &Command::new(0x87, algorithm, key_ref, data, true))?;
    if r.sw != StatusWord::Success {
        return Err(status(0x87, r.sw));
    }
    let dat = Reader::new(&r.data).find(0x7c)?.ok_or(PivError::Malformed(
        "GENERAL AUTHENTICATE answer without 7C",
    ))?;
    let out = Reader::new(dat).find(0x82)?.ok_or(PivError::Malformed(
        "GENERAL AUTHENTICATE answer without 82",
    ))?;
    Ok(Zeroizing::new(out.to_vec()))
}

/// The public data of a card, read once per insertion.
#[derive(Debug, Clone, Default)]
pub struct CardData {
    /// Card GUID from the CHUID (tag 34), if present.
    pub guid: Option<Vec<u8>>,
    /// FASC-N from the CHUID (tag 30), if present.
    pub fascn: Option<Vec<u8>>,
    /// DER certificates by key slot.
    pub certs: Vec<(KeySlot, Vec<u8>)>,
    /// PIN state at load.
    pub pin: Option<PinStatus>,
}

/// Extract the DER certificate from a certificate data object
/// (70 cert, 71 CertInfo with bit 0 = gzip-compressed, FE LRC).
pub fn certificate_from_object(obj: &[u8]) -> Result<Vec<u8>, PivError> {
    let r = Reader::new(obj);
    let cert = r
        .clone()
        .find(0x70)?
        .ok_or(PivError::Malformed("certificate object without 70"))?;
    let info = r.find(0x71)?.and_then(|v| v.first().copied()).unwrap_or(0);
    if info & 0x01 == 0 {
        return Ok(cert.to_vec());
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(cert)
        .take(64 * 1024)
        .read_to_end(&mut out)
        .map_err(|_| PivError::Malformed("compressed certificate does not inflate"))?;
    Ok(out)
}

/// Read CHUID, key history, the certificates and the PIN state.
pub fn read_card(t: &mut dyn Transport) -> Result<CardData, PivError> {
    let mut d = CardData::default();
    if let Some(chuid) = get_data(t, 0x5fc102)? {
        d.guid = Reader::new(&chuid).find(0x34)?.map(<[u8]>::to_vec);
        d.fascn = Reader::new(&chuid).find(0x30)?.map(<[u8]>::to_vec);
    }
    let mut slots: Vec<KeySlot> = KeySlot::PRIMARY.to_vec();
    if let Some(history) = get_data(t, 0x5fc10c)? {
        let on_card = Reader::new(&history)
            .find(0xc1)?
            .and_then(|v| v.first().copied())
            .unwrap_or(0);
        slots.extend((0..on_card.min(20)).filter_map(KeySlot::retired));
    }
    for slot in slots {
        match get_data(t, slot.cert_tag)? {
            Some(obj) if !obj.is_empty() => match certificate_from_object(&obj) {
                Ok(der) => d.certs.push((slot, der)),
                Err(e) => log::warn!("key {:02X}: unreadable certificate: {e}", slot.key_ref),
            },
            _ => {}
        }
    }
    d.pin = Some(pin_status(t)?);
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::piv::transport::tests::Replay;

    #[test]
    fn ck_ids_follow_opensc() {
        let ids: Vec<u8> = KeySlot::PRIMARY.iter().map(KeySlot::ck_id).collect();
        assert_eq!(ids, [1, 2, 3, 4]);
        assert_eq!(KeySlot::retired(0).unwrap().ck_id(), 5);
        assert_eq!(KeySlot::retired(19).unwrap().key_ref, 0x95);
        assert_eq!(KeySlot::retired(19).unwrap().cert_tag, 0x5fc120);
        assert!(KeySlot::retired(20).is_none());
    }

    #[test]
    fn verify_maps_status_words() {
        let mut t = Replay::new(&[&[0x63, 0xc2], &[0x69, 0x83], &[0x90, 0x00]]);
        assert_eq!(
            verify(&mut t, b"000000"),
            Err(PivError::WrongPin { tries: 2 })
        );
        assert_eq!(verify(&mut t, b"000000"), Err(PivError::PinBlocked));
        verify(&mut t, b"123456").unwrap();
        assert_eq!(&t.sent[2][5..], b"123456\xff\xff");
    }

    #[test]
    fn get_data_absent_and_present() {
        let mut t = Replay::new(&[&[0x6a, 0x82], &[0x53, 0x02, 0x34, 0x00, 0x90, 0x00]]);
        assert_eq!(get_data(&mut t, 0x5fc102).unwrap(), None);
        assert_eq!(get_data(&mut t, 0x5fc102).unwrap(), Some(vec![0x34, 0x00]));
        assert_eq!(
            t.sent[0],
            vec![0, 0xcb, 0x3f, 0xff, 5, 0x5c, 3, 0x5f, 0xc1, 0x02, 0]
        );
    }

    #[test]
    fn certificate_objects_plain_and_gzip() {
        let mut obj = tlv::encode(0x70, b"DER");
        obj.extend(tlv::encode(0x71, &[0]));
        assert_eq!(certificate_from_object(&obj).unwrap(), b"DER");
        let mut gz = Vec::new();
        {
            use std::io::Write;
            let mut enc = flate2::write::GzEncoder::new(&mut gz, flate2::Compression::default());
            enc.write_all(b"DER!").unwrap();
            enc.finish().unwrap();
        }
        let mut obj = tlv::encode(0x70, &gz);
        obj.extend(tlv::encode(0x71, &[1]));
        assert_eq!(certificate_from_object(&obj).unwrap(), b"DER!");
        assert!(certificate_from_object(&tlv::encode(0x71, &[1])).is_err());
    }

    #[test]
    fn general_authenticate_parses_the_template() {
        let mut t = Replay::new(&[&[0x7c, 0x04, 0x82, 0x02, 0xab, 0xcd, 0x90, 0x00]]);
        let out = general_authenticate(&mut t, alg::P256, 0x9a, 0x81, &[1; 32]).unwrap();
        assert_eq!(&out[..], &[0xab, 0xcd]);
        assert_eq!(&t.sent[0][..5], &[0, 0x87, 0x11, 0x9a, 38]);
    }
}
