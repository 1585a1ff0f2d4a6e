//! RSA padding (RFC 8017) for a card that only performs the raw RSA operation.
//!
//! Encoding for signatures handles no secret. Decoding of decrypted blocks
//! (PKCS#1 v1.5 type 2 and OAEP) handles the plaintext of a private-key
//! operation and runs in constant time with respect to its content: every byte
//! is visited, and validity is accumulated in `subtle::Choice` values; only the
//! final verdict (and, on success, the plaintext length, which the caller
//! learns anyway) is revealed.

use subtle::{ConditionallySelectable, ConstantTimeEq, ConstantTimeLess};
use zeroize::Zeroizing;

use super::{random, CryptoError, HashAlg};

/// MGF1 (RFC 8017 B.2.1): XOR `out` with the mask generated from `seed`.
pub fn mgf1_xor(out: &mut [u8], hash: HashAlg, seed: &[u8]) {
    let mut counter: u32 = 0;
    let mut offset = 0;
    while offset < out.len() {
        let mut h = super::Hasher::new(hash);
        h.update(seed);
        h.update(&counter.to_be_bytes());
        let block = h.finish();
        for (o, m) in out[offset..].iter_mut().zip(block.iter()) {
            *o ^= m;
        }
        offset += block.len();
        counter = counter.wrapping_add(1);
    }
}

/// EMSA-PKCS1-v1_5 block (type 1) around already-encoded data (usually a DigestInfo).
pub fn pkcs1_type1(data: &[u8], k: usize) -> Result<Vec<u8>, CryptoError> {
    if data.len() + 11 > k {
        return Err(CryptoError::DataLen);
    }
    let mut em = vec![0xffu8; k];
    em[0] = 0;
    em[1] = 1;
    em[k - data.len() - 1] = 0;
    em[k - data.len()..].copy_from_slice(data);
    Ok(em)
}

/// Check a type-1 block and return the data it carries (public data: not constant-time).
pub fn pkcs1_type1_unpad(em: &[u8]) -> Result<&[u8], CryptoError> {
    if em.len() < 11 || em[0] != 0 || em[1] != 1 {
        return Err(CryptoError::BadSignature);
    }
    let zero = em[2..]
        .iter()
        .position(|&b| b != 0xff)
        .ok_or(CryptoError::BadSignature)?
        + 2;
    if zero < 10 || em[zero] != 0 {
        return Err(CryptoError::BadSignature);
    }
    Ok(&em[zero + 1..])
}

/// RSAES-PKCS1-v1_5 encryption block (type 2) with random non-zero padding.
pub fn pkcs1_type2(msg: &[u8], k: usize) -> Result<Vec<u8>, CryptoError> {
    if msg.len() + 11 > k {
        return Err(CryptoError::DataLen);
    }
    let mut em = vec![0u8; k];
    em[1] = 2;
    let ps_end = k - msg.len() - 1;
    for b in em[2..ps_end].iter_mut() {
        let mut r = [0u8; 1];
        while r[0] == 0 {
            random(&mut r)?;
        }
        *b = r[0];
    }
    em[k - msg.len()..].copy_from_slice(msg);
    Ok(em)
}

/// Constant-time removal of a PKCS#1 v1.5 type-2 block (RFC 8017 §7.2.2 step 3).
pub fn pkcs1_type2_unpad(em: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let k = em.len();
    if k < 11 {
        return Err(CryptoError::Padding);
    }
    let mut good = em[0].ct_eq(&0) & em[1].ct_eq(&2);
    let mut looking = subtle::Choice::from(1);
    let mut zero_index: u32 = 0;
    for (i, b) in em.iter().enumerate().skip(2) {
        let is_zero = b.ct_eq(&0);
        let first = looking & is_zero;
        zero_index = u32::conditional_select(&zero_index, &(i as u32), first);
        looking &= !is_zero;
    }
    // A separator must exist and at least eight padding bytes precede it.
    good &= !looking;
    good &= !zero_index.ct_lt(&10);
    if bool::from(good) {
        Ok(Zeroizing::new(em[zero_index as usize + 1..].to_vec()))
    } else {
        Err(CryptoError::Padding)
    }
}

/// EME-OAEP encoding (RFC 8017 §7.1.1) for public-key encryption.
pub fn oaep_pad(
    msg: &[u8],
    k: usize,
    hash: HashAlg,
    mgf: HashAlg,
    label: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let hlen = hash.output_len();
    if k < 2 * hlen + 2 || msg.len() > k - 2 * hlen - 2 {
        return Err(CryptoError::DataLen);
    }
    let mut em = vec![0u8; k];
    let (seed, db) = em[1..].split_at_mut(hlen);
    db[..hlen].copy_from_slice(&hash.digest(label));
    let db_len = db.len();
    db[db_len - msg.len() - 1] = 1;
    db[db_len - msg.len()..].copy_from_slice(msg);
    random(seed)?;
    mgf1_xor(db, mgf, seed);
    mgf1_xor(seed, mgf, db);
    Ok(em)
}

/// Constant-time EME-OAEP decoding (RFC 8017 §7.1.2 step 3).
pub fn oaep_unpad(
    em: &[u8],
    hash: HashAlg,
    mgf: HashAlg,
    label: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let hlen = hash.output_len();
    let k = em.len();
    if k < 2 * hlen + 2 {
        return Err(CryptoError::Padding);
    }
    let mut buf = Zeroizing::new(em.to_vec());
    let (y, rest) = buf.split_at_mut(1);
    let (seed, db) = rest.split_at_mut(hlen);
    mgf1_xor(seed, mgf, db);
    mgf1_xor(db, mgf, seed);
    let lhash = hash.digest(label);
    let mut good = y[0].ct_eq(&0) & db[..hlen].ct_eq(&lhash[..]);
    // After lHash: zero bytes, then 0x01, then the message.
    let mut looking = subtle::Choice::from(1);
    let mut one_index: u32 = 0;
    let mut bad_byte = subtle::Choice::from(0);
    for (i, b) in db.iter().enumerate().skip(hlen) {
        let is_zero = b.ct_eq(&0);
        let is_one = b.ct_eq(&1);
        let first_one = looking & is_one;
        one_index = u32::conditional_select(&one_index, &(i as u32), first_one);
        // A byte other than 0 or 1 while still looking is invalid.
        bad_byte |= looking & !is_zero & !is_one;
        looking &= !is_one;
    }
    good &= !looking & !bad_byte;
    if bool::from(good) {
        Ok(Zeroizing::new(db[one_index as usize + 1..].to_vec()))
    } else {
        Err(CryptoError::Padding)
    }
}

/// EMSA-PSS encoding (RFC 8017 §9.1.1), returned as a `k`-byte block for the raw RSA operation.
pub fn pss_encode(
    mhash: &[u8],
    mod_bits: usize,
    hash: HashAlg,
    mgf: HashAlg,
    salt_len: usize,
) -> Result<Vec<u8>, CryptoError> {
    let hlen = hash.output_len();
    if mhash.len() != hlen {
        return Err(CryptoError::DataLen);
    }
    let em_bits = mod_bits.saturating_sub(1);
    let em_len = em_bits.div_ceil(8);
    if hlen
        .checked_add(salt_len)
        .and_then(|x| x.checked_add(2))
        .is_none_or(|need| em_len < need)
    {
        return Err(CryptoError::DataLen);
    }
    let mut salt = vec![0u8; salt_len];
    random(&mut salt)?;
    let mut h = super::Hasher::new(hash);
    h.update(&[0u8; 8]);
    h.update(mhash);
    h.update(&salt);
    let hm = h.finish();
    let db_len = em_len - hlen - 1;
    let mut db = vec![0u8; db_len];
    db[db_len - salt_len - 1] = 1;
    db[db_len - salt_len..].copy_from_slice(&salt);
    mgf1_xor(&mut db, mgf, &hm);
    db[0] &= 0xff >> (8 * em_len - em_bits);
    let k = mod_bits.div_ceil(8);
    let mut out = vec![0u8; k - em_len];
    out.extend_from_slice(&db);
    out.extend_from_slice(&hm);
    out.push(0xbc);
    Ok(out)
}

/// EMSA-PSS verification (RFC 8017 §9.1.2) of a `k`-byte block from the raw public operation.
pub fn pss_verify(
    mhash: &[u8],
    block: &[u8],
    mod_bits: usize,
    hash: HashAlg,
    mgf: HashAlg,
    salt_len: usize,
) -> Result<(), CryptoError> {
    let hlen = hash.output_len();
    let em_bits = mod_bits.saturating_sub(1);
    let em_len = em_bits.div_ceil(8);
    let bad = Err(CryptoError::BadSignature);
    let need = hlen.checked_add(salt_len).and_then(|x| x.checked_add(2));
    if mhash.len() != hlen || block.len() < em_len || need.is_none_or(|n| em_len < n) {
        return bad;
    }
    let (lead, em) = block.split_at(block.len() - em_len);
    if lead.iter().any(|&b| b != 0) || em[em_len - 1] != 0xbc {
        return bad;
    }
    let top_mask = !(0xffu8 >> (8 * em_len - em_bits));
    let (masked_db, rest) = em.split_at(em_len - hlen - 1);
    let hm = &rest[..hlen];
    if masked_db[0] & top_mask != 0 {
        return bad;
    }
    let mut db = masked_db.to_vec();
    mgf1_xor(&mut db, mgf, hm);
    db[0] &= !top_mask;
    let ps_len = em_len - hlen - salt_len - 2;
    if db[..ps_len].iter().any(|&b| b != 0) || db[ps_len] != 1 {
        return bad;
    }
    let salt = &db[ps_len + 1..];
    let mut h = super::Hasher::new(hash);
    h.update(&[0u8; 8]);
    h.update(mhash);
    h.update(salt);
    if bool::from(h.finish().ct_eq(hm)) {
        Ok(())
    } else {
        bad
    }
}

/// Compare two equal-length big-endian numbers: is `a < b`? (constant-time)
pub fn be_less_than(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return a.len() < b.len();
    }
    let mut lt = subtle::Choice::from(0);
    let mut eq = subtle::Choice::from(1);
    for (x, y) in a.iter().zip(b) {
        lt |= eq & x.ct_lt(y);
        eq &= x.ct_eq(y);
    }
    bool::from(lt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type1_round_trip() {
        let em = pkcs1_type1(b"hello", 64).unwrap();
        assert_eq!(em.len(), 64);
        assert_eq!(pkcs1_type1_unpad(&em).unwrap(), b"hello");
        assert_eq!(pkcs1_type1(&[0u8; 54], 64), Err(CryptoError::DataLen));
    }

    #[test]
    fn type2_round_trip_and_rejects() {
        let em = pkcs1_type2(b"secret", 128).unwrap();
        assert_eq!(&pkcs1_type2_unpad(&em).unwrap()[..], b"secret");
        let mut bad = em.clone();
        bad[1] = 1;
        assert!(pkcs1_type2_unpad(&bad).is_err());
        // separator too early (fewer than 8 padding bytes)
        let mut short = em.clone();
        short[5] = 0;
        assert!(pkcs1_type2_unpad(&short).is_err());
        // no separator at all
        let mut none = vec![0x55u8; 128];
        none[0] = 0;
        none[1] = 2;
        assert!(pkcs1_type2_unpad(&none).is_err());
        // empty message is valid
        let mut empty = vec![0x55u8; 128];
        empty[0] = 0;
        empty[1] = 2;
        empty[127] = 0;
        assert_eq!(pkcs1_type2_unpad(&empty).unwrap().len(), 0);
    }

    #[test]
    fn oaep_round_trip_and_label_binding() {
        for (h, m) in [
            (HashAlg::Sha1, HashAlg::Sha1),
            (HashAlg::Sha256, HashAlg::Sha256),
            (HashAlg::Sha256, HashAlg::Sha1),
        ] {
            let em = oaep_pad(b"key material", 256, h, m, b"label").unwrap();
            assert_eq!(
                &oaep_unpad(&em, h, m, b"label").unwrap()[..],
                b"key material"
            );
            assert!(oaep_unpad(&em, h, m, b"other").is_err());
            let mut flipped = em.clone();
            flipped[100] ^= 1;
            assert!(oaep_unpad(&flipped, h, m, b"label").is_err());
        }
    }

    #[test]
    fn pss_round_trip_all_sizes() {
        for bits in [1024usize, 2048, 2047, 1025] {
            let mh = HashAlg::Sha256.digest(b"m");
            let block = pss_encode(&mh, bits, HashAlg::Sha256, HashAlg::Sha256, 32).unwrap();
            assert_eq!(block.len(), bits.div_ceil(8));
            pss_verify(&mh, &block, bits, HashAlg::Sha256, HashAlg::Sha256, 32).unwrap();
            let other = HashAlg::Sha256.digest(b"n");
            assert!(
                pss_verify(&other, &block, bits, HashAlg::Sha256, HashAlg::Sha256, 32).is_err()
            );
        }
    }

    #[test]
    fn be_compare() {
        assert!(be_less_than(&[0, 1], &[0, 2]));
        assert!(!be_less_than(&[1, 0], &[0, 2]));
        assert!(!be_less_than(&[1, 2], &[1, 2]));
    }
}
