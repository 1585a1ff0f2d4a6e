//! Cryptographic operations: the PKCS#11 sign/verify/encrypt/decrypt/digest
//! state machines, derive and unwrap. Padding and hashing happen here in
//! software; the token performs only the private-key primitive.

use std::sync::Arc;

use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::mechanism::{x963_kdf, Kdf, Mech};
use super::module::Module;
use super::object::{bool_from, ulong_from, KeyInfo, Object};
use super::session::{OpKind, Operation};
use super::slots::Loaded;
use super::{lock, Error, Result};
use crate::crypto::pubkey::{ecdsa_card_input, RsaVerify};
use crate::crypto::{padding, PublicKey};

/// How the caller wants the output.
#[derive(Debug, Clone, Copy)]
pub enum OutSpec {
    /// Only the length (`NULL` output pointer).
    Query,
    /// A buffer of this capacity.
    Buffer(usize),
}

/// What an operation produced.
#[derive(Debug)]
pub enum Out {
    /// The length the output needs (answer to [`OutSpec::Query`]).
    Len(usize),
    /// The output.
    Data(Zeroizing<Vec<u8>>),
}

fn key_info(o: &Object) -> Result<&KeyInfo> {
    o.key.as_ref().ok_or(Error::KeyHandleInvalid)
}

fn check_key(
    mech: &Mech,
    o: &Object,
    class: CK_OBJECT_CLASS,
    usage: CK_ATTRIBUTE_TYPE,
) -> Result<()> {
    if o.class != class && !(class == CKO_PUBLIC_KEY && o.class == CKO_PRIVATE_KEY) {
        return Err(Error::KeyHandleInvalid);
    }
    let k = key_info(o)?;
    let rsa = matches!(k.public, PublicKey::Rsa { .. });
    if rsa != mech.is_rsa() {
        return Err(Error::KeyTypeInconsistent);
    }
    if o.class == class && !o.flag(usage) {
        return Err(Error::KeyFunctionNotPermitted);
    }
    Ok(())
}

/// Length of a signature made with a key.
fn sig_len(k: &KeyInfo) -> usize {
    match &k.public {
        PublicKey::Rsa { n, .. } => n.len(),
        PublicKey::Ec { curve, .. } => 2 * curve.field_len(),
    }
}

/// The bytes an RSA signature covers, as a modulus-sized block, or the hash an ECDSA covers.
enum ToSign {
    RsaBlock(Vec<u8>),
    EcHash(Vec<u8>),
}

/// What the signature covers before encoding: the message hash for hashing
/// mechanisms, else the caller's data (a hash or a DigestInfo).
fn message_input(op: &mut Operation, data: &[u8]) -> Vec<u8> {
    let msg_hash = match op.hasher.take() {
        Some(mut h) => {
            h.update(data);
            Some(h.finish())
        }
        None => None,
    };
    let input: Vec<u8> = match msg_hash {
        Some(h) => h,
        None if op.multipart => {
            let mut v = std::mem::take(&mut *op.data).to_vec();
            v.extend_from_slice(data);
            v
        }
        None => data.to_vec(),
    };
    input
}

/// Encode the input for the token's raw primitive.
fn prepare_sign(op: &Operation, k: &KeyInfo, input: &[u8]) -> Result<ToSign> {
    let input = input.to_vec();
    let kl = k.public.modulus_len();
    Ok(match &op.mech {
        Mech::RsaPkcs => ToSign::RsaBlock(padding::pkcs1_type1(&input, kl)?),
        Mech::HashRsaPkcs(h) => {
            let mut di = h.digest_info_prefix().to_vec();
            di.extend_from_slice(&input);
            ToSign::RsaBlock(padding::pkcs1_type1(&di, kl)?)
        }
        Mech::RsaX509 => {
            if input.len() > kl {
                return Err(Error::DataLenRange);
            }
            let mut b = vec![0u8; kl - input.len()];
            b.extend_from_slice(&input);
            ToSign::RsaBlock(b)
        }
        Mech::RsaPss {
            hash,
            mgf,
            salt_len,
            ..
        } => {
            if input.len() != hash.output_len() {
                return Err(Error::DataLenRange);
            }
            ToSign::RsaBlock(padding::pss_encode(
                &input,
                k.public.bits(),
                *hash,
                *mgf,
                *salt_len,
            )?)
        }
        Mech::Ecdsa(_) => match &k.public {
            PublicKey::Ec { curve, .. } => {
                if input.is_empty() {
                    return Err(Error::DataLenRange);
                }
                ToSign::EcHash(ecdsa_card_input(*curve, &input))
            }
            PublicKey::Rsa { .. } => return Err(Error::KeyTypeInconsistent),
        },
        _ => return Err(Error::MechanismInvalid(0)),
    })
}

impl Module {
    fn op_init(
        &self,
        h: CK_SESSION_HANDLE,
        kind: OpKind,
        mech: Mech,
        key: Option<CK_OBJECT_HANDLE>,
    ) -> Result<()> {
        let key = match key {
            Some(kh) => Some(self.object(h, kh).map_err(|e| match e {
                Error::ObjectHandleInvalid => Error::KeyHandleInvalid,
                e => e,
            })?),
            None => None,
        };
        if let Some(k) = &key {
            match kind {
                OpKind::Sign => check_key(&mech, k, CKO_PRIVATE_KEY, CKA_SIGN)?,
                OpKind::Decrypt => check_key(&mech, k, CKO_PRIVATE_KEY, CKA_DECRYPT)?,
                OpKind::Verify => check_key(&mech, k, CKO_PUBLIC_KEY, CKA_VERIFY)?,
                OpKind::Encrypt => check_key(&mech, k, CKO_PUBLIC_KEY, CKA_ENCRYPT)?,
                OpKind::Digest => {}
            }
        }
        let ok = match kind {
            OpKind::Sign | OpKind::Verify => !matches!(
                mech,
                Mech::RsaOaep { .. } | Mech::Ecdh { .. } | Mech::Digest(_)
            ),
            OpKind::Encrypt | OpKind::Decrypt => {
                matches!(mech, Mech::RsaPkcs | Mech::RsaX509 | Mech::RsaOaep { .. })
            }
            OpKind::Digest => matches!(mech, Mech::Digest(_)),
        };
        if !ok {
            return Err(Error::MechanismInvalid(0));
        }
        let (e, _) = self.session(h)?;
        let mut s = lock(&e.session);
        s.start(kind, Operation::new(mech, key))
    }

    /// `C_SignInit`.
    pub fn sign_init(&self, h: CK_SESSION_HANDLE, mech: Mech, key: CK_OBJECT_HANDLE) -> Result<()> {
        self.op_init(h, OpKind::Sign, mech, Some(key))
    }

    /// `C_VerifyInit`.
    pub fn verify_init(
        &self,
        h: CK_SESSION_HANDLE,
        mech: Mech,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        self.op_init(h, OpKind::Verify, mech, Some(key))
    }

    /// `C_EncryptInit`.
    pub fn encrypt_init(
        &self,
        h: CK_SESSION_HANDLE,
        mech: Mech,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        self.op_init(h, OpKind::Encrypt, mech, Some(key))
    }

    /// `C_DecryptInit`.
    pub fn decrypt_init(
        &self,
        h: CK_SESSION_HANDLE,
        mech: Mech,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        self.op_init(h, OpKind::Decrypt, mech, Some(key))
    }

    /// `C_DigestInit`.
    pub fn digest_init(&self, h: CK_SESSION_HANDLE, mech: Mech) -> Result<()> {
        self.op_init(h, OpKind::Digest, mech, None)
    }

    /// `C_*Update` for sign, verify and digest.
    pub fn update(&self, h: CK_SESSION_HANDLE, kind: OpKind, data: &[u8]) -> Result<()> {
        let (e, _) = self.session(h)?;
        let mut s = lock(&e.session);
        let op = s.op(kind).ok_or(Error::OperationNotInitialized)?;
        if matches!(op.mech, Mech::RsaPss { prehash: None, .. })
            || (op.hasher.is_none() && op.data.len() + data.len() > 1 << 16)
        {
            s.end(kind);
            return Err(Error::DataLenRange);
        }
        op.update(data);
        Ok(())
    }

    /// `C_Sign` (`data` given) or `C_SignFinal` (`None`).
    pub fn sign(&self, h: CK_SESSION_HANDLE, data: Option<&[u8]>, out: OutSpec) -> Result<Out> {
        let (e, l) = self.session(h)?;
        let mut s = lock(&e.session);
        let op = s.op(OpKind::Sign).ok_or(Error::OperationNotInitialized)?;
        let key = op.key.clone().ok_or(Error::OperationNotInitialized)?;
        let k = key_info(&key)?.clone();
        let n = sig_len(&k);
        match out {
            OutSpec::Query => return Ok(Out::Len(n)),
            OutSpec::Buffer(cap) if cap < n => return Err(Error::BufferTooSmall(n)),
            OutSpec::Buffer(_) => {}
        }
        let mut op = s.end(OpKind::Sign).ok_or(Error::OperationNotInitialized)?;
        drop(s);
        if k.always_authenticate && op.context_pin.is_none() {
            return Err(Error::UserNotLoggedIn);
        }
        let pin = op.context_pin.take();
        let input = message_input(&mut op, data.unwrap_or(&[]));
        // Software RSA keys sign in their crypto library (no raw RSA there).
        if op.mech.is_rsa() {
            if let Some(r) = l.token.rsa_sign(&k, &op.mech, &input) {
                if let Err(err) = &r {
                    self.note_error(&e.slot, err);
                }
                return r.map(|v| Out::Data(Zeroizing::new(v)));
            }
        }
        let r = prepare_sign(&op, &k, &input).and_then(|t| match t {
            ToSign::RsaBlock(b) => l.token.rsa_private(&k, &b, pin.as_deref().map(|p| &p[..])),
            ToSign::EcHash(hh) => l
                .token
                .ecdsa_sign(&k, &hh, pin.as_deref().map(|p| &p[..]))
                .map(Zeroizing::new),
        });
        if let Err(err) = &r {
            self.note_error(&e.slot, err);
        }
        r.map(Out::Data)
    }

    /// `C_Verify` (`data` given) or `C_VerifyFinal` (`None`).
    pub fn verify(&self, h: CK_SESSION_HANDLE, data: Option<&[u8]>, sig: &[u8]) -> Result<()> {
        let (e, _) = self.session(h)?;
        let mut op = lock(&e.session)
            .end(OpKind::Verify)
            .ok_or(Error::OperationNotInitialized)?;
        let key = op.key.clone().ok_or(Error::OperationNotInitialized)?;
        let k = key_info(&key)?;
        let data = data.unwrap_or(&[]);
        let input: Vec<u8> = match op.hasher.take() {
            Some(mut hh) => {
                hh.update(data);
                hh.finish()
            }
            None => {
                let mut v = std::mem::take(&mut *op.data).to_vec();
                v.extend_from_slice(data);
                v
            }
        };
        let r = match &op.mech {
            Mech::RsaPkcs => k.public.rsa_verify(RsaVerify::Pkcs1(&input), sig),
            Mech::HashRsaPkcs(hh) => {
                let mut di = hh.digest_info_prefix().to_vec();
                di.extend_from_slice(&input);
                k.public.rsa_verify(RsaVerify::Pkcs1(&di), sig)
            }
            Mech::RsaX509 => k.public.rsa_verify(RsaVerify::Raw(&input), sig),
            Mech::RsaPss {
                hash,
                mgf,
                salt_len,
                ..
            } => {
                if input.len() != hash.output_len() {
                    return Err(Error::DataLenRange);
                }
                k.public.rsa_verify(
                    RsaVerify::Pss {
                        mhash: &input,
                        hash: *hash,
                        mgf: *mgf,
                        salt_len: *salt_len,
                    },
                    sig,
                )
            }
            Mech::Ecdsa(_) => k.public.ecdsa_verify_prehash(&input, sig),
            _ => return Err(Error::OperationNotInitialized),
        };
        r.map_err(Error::from)
    }

    /// `C_Encrypt` (single part).
    ///
    /// `data` is `None` for `C_EncryptFinal`: the input collected by
    /// `C_EncryptUpdate` is used (RSA works on one block).
    pub fn encrypt(&self, h: CK_SESSION_HANDLE, data: Option<&[u8]>, out: OutSpec) -> Result<Out> {
        let (e, _) = self.session(h)?;
        let mut s = lock(&e.session);
        let op = s
            .op(OpKind::Encrypt)
            .ok_or(Error::OperationNotInitialized)?;
        let data: Zeroizing<Vec<u8>> = match data {
            Some(d) => Zeroizing::new(d.to_vec()),
            None => op.data.clone(),
        };
        let key = op.key.clone().ok_or(Error::OperationNotInitialized)?;
        let k = key_info(&key)?;
        let n = k.public.modulus_len();
        match out {
            OutSpec::Query => return Ok(Out::Len(n)),
            OutSpec::Buffer(cap) if cap < n => return Err(Error::BufferTooSmall(n)),
            OutSpec::Buffer(_) => {}
        }
        let op = s
            .end(OpKind::Encrypt)
            .ok_or(Error::OperationNotInitialized)?;
        let block = match &op.mech {
            Mech::RsaPkcs => padding::pkcs1_type2(&data, n)?,
            Mech::RsaOaep { hash, mgf, label } => padding::oaep_pad(&data, n, *hash, *mgf, label)?,
            Mech::RsaX509 => {
                if data.len() > n {
                    return Err(Error::DataLenRange);
                }
                let mut b = vec![0u8; n - data.len()];
                b.extend_from_slice(&data);
                b
            }
            _ => return Err(Error::OperationNotInitialized),
        };
        Ok(Out::Data(Zeroizing::new(k.public.rsa_public_raw(&block)?)))
    }

    /// `C_Decrypt` (single part).
    ///
    /// `data` is `None` for `C_DecryptFinal`: the input collected by
    /// `C_DecryptUpdate` is used (RSA works on one block).
    pub fn decrypt(&self, h: CK_SESSION_HANDLE, data: Option<&[u8]>, out: OutSpec) -> Result<Out> {
        let (e, l) = self.session(h)?;
        let mut s = lock(&e.session);
        let op = s
            .op(OpKind::Decrypt)
            .ok_or(Error::OperationNotInitialized)?;
        let data: Zeroizing<Vec<u8>> = match data {
            Some(d) => Zeroizing::new(d.to_vec()),
            None => op.data.clone(),
        };
        let key = op.key.clone().ok_or(Error::OperationNotInitialized)?;
        let k = key_info(&key)?.clone();
        let n = k.public.modulus_len();
        let cap = match out {
            OutSpec::Query => return Ok(Out::Len(op.result.as_ref().map_or(n, |r| r.len()))),
            OutSpec::Buffer(cap) => cap,
        };
        if op.result.is_none() {
            let pin = op.context_pin.take();
            if k.always_authenticate && pin.is_none() {
                s.end(OpKind::Decrypt);
                return Err(Error::UserNotLoggedIn);
            }
            let mech = op.mech.clone();
            // The card call happens with the session locked: one thread per
            // session is the PKCS#11 model, other sessions are unaffected.
            let r = decrypt_block(&l, &k, &mech, &data, pin.as_deref().map(|p| &p[..]));
            match r {
                Ok(pt) => {
                    if let Some(op) = s.op(OpKind::Decrypt) {
                        op.result = Some(pt);
                    }
                }
                Err(err) => {
                    s.end(OpKind::Decrypt);
                    drop(s);
                    self.note_error(&e.slot, &err);
                    return Err(err);
                }
            }
        }
        let op = s
            .op(OpKind::Decrypt)
            .ok_or(Error::OperationNotInitialized)?;
        let len = op.result.as_ref().map_or(0, |r| r.len());
        if cap < len {
            return Err(Error::BufferTooSmall(len));
        }
        let op = s
            .end(OpKind::Decrypt)
            .ok_or(Error::OperationNotInitialized)?;
        op.result
            .map(Out::Data)
            .ok_or(Error::OperationNotInitialized)
    }

    /// `C_Digest` (`data` given) or `C_DigestFinal`.
    pub fn digest(&self, h: CK_SESSION_HANDLE, data: Option<&[u8]>, out: OutSpec) -> Result<Out> {
        let (e, _) = self.session(h)?;
        let mut s = lock(&e.session);
        let op = s.op(OpKind::Digest).ok_or(Error::OperationNotInitialized)?;
        let n = op.mech.message_hash().map_or(0, |hh| hh.output_len());
        match out {
            OutSpec::Query => return Ok(Out::Len(n)),
            OutSpec::Buffer(cap) if cap < n => return Err(Error::BufferTooSmall(n)),
            OutSpec::Buffer(_) => {}
        }
        let mut op = s
            .end(OpKind::Digest)
            .ok_or(Error::OperationNotInitialized)?;
        let mut hh = op.hasher.take().ok_or(Error::OperationNotInitialized)?;
        if let Some(d) = data {
            hh.update(d);
        }
        Ok(Out::Data(Zeroizing::new(hh.finish())))
    }

    /// `C_DeriveKey` with `CKM_ECDH1_DERIVE`: a session secret key.
    pub fn derive(
        &self,
        h: CK_SESSION_HANDLE,
        mech: Mech,
        base: CK_OBJECT_HANDLE,
        template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)],
    ) -> Result<CK_OBJECT_HANDLE> {
        let Mech::Ecdh {
            kdf,
            shared,
            public,
        } = &mech
        else {
            return Err(Error::MechanismInvalid(0));
        };
        let key = self.object(h, base).map_err(|_| Error::KeyHandleInvalid)?;
        if key.class != CKO_PRIVATE_KEY {
            return Err(Error::KeyHandleInvalid);
        }
        let k = key_info(&key)?.clone();
        let PublicKey::Ec { curve, .. } = &k.public else {
            return Err(Error::KeyTypeInconsistent);
        };
        if !key.flag(CKA_DERIVE) {
            return Err(Error::KeyFunctionNotPermitted);
        }
        let peer = normalise_point(*curve, public)?;
        let (e, l) = self.session(h)?;
        let z = l
            .token
            .ecdh(&k, &peer)
            .inspect_err(|err| self.note_error(&e.slot, err))?;
        let spec = SecretSpec::from_template(template, Some(z.len()))?;
        let value = match kdf {
            Kdf::Null => {
                if spec.len > z.len() {
                    return Err(Error::TemplateInconsistent);
                }
                // Keep the rightmost bytes, as for a truncated shared secret (SP 800-56A).
                Zeroizing::new(z[z.len() - spec.len..].to_vec())
            }
            Kdf::X963(hash) => x963_kdf(*hash, &z, shared, spec.len),
        };
        self.add_session_object(h, spec.build(value))
    }

    /// `C_UnwrapKey` with an RSA private key: a session secret key.
    pub fn unwrap_key(
        &self,
        h: CK_SESSION_HANDLE,
        mech: Mech,
        unwrapping: CK_OBJECT_HANDLE,
        wrapped: &[u8],
        template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)],
    ) -> Result<CK_OBJECT_HANDLE> {
        if !matches!(mech, Mech::RsaPkcs | Mech::RsaOaep { .. }) {
            return Err(Error::MechanismInvalid(0));
        }
        let key = self
            .object(h, unwrapping)
            .map_err(|_| Error::UnwrappingKeyHandleInvalid)?;
        if key.class != CKO_PRIVATE_KEY || !key.flag(CKA_UNWRAP) {
            return Err(Error::KeyFunctionNotPermitted);
        }
        let k = key_info(&key)?.clone();
        if !matches!(k.public, PublicKey::Rsa { .. }) {
            return Err(Error::KeyTypeInconsistent);
        }
        let (e, l) = self.session(h)?;
        if k.always_authenticate {
            return Err(Error::UserNotLoggedIn);
        }
        let value = decrypt_block(&l, &k, &mech, wrapped, None)
            .map_err(|err| match err {
                Error::EncryptedDataInvalid => Error::WrappedKeyInvalid,
                Error::EncryptedDataLenRange => Error::WrappedKeyLenRange,
                other => other,
            })
            .inspect_err(|err| self.note_error(&e.slot, err))?;
        let spec = SecretSpec::from_template(template, Some(value.len()))?;
        if spec.len != value.len() {
            return Err(Error::TemplateInconsistent);
        }
        self.add_session_object(h, spec.build(value))
    }
}

/// Decrypt one RSA block with the token and remove its padding.
fn decrypt_block(
    l: &Arc<Loaded>,
    k: &KeyInfo,
    mech: &Mech,
    data: &[u8],
    pin: Option<&[u8]>,
) -> Result<Zeroizing<Vec<u8>>> {
    let n = k.public.modulus_len();
    if data.len() != n {
        return Err(Error::EncryptedDataLenRange);
    }
    if let PublicKey::Rsa { n: modulus, .. } = &k.public {
        if !padding::be_less_than(data, modulus) {
            return Err(Error::EncryptedDataInvalid);
        }
    }
    if let Some(r) = l.token.rsa_decrypt(k, mech, data) {
        return r;
    }
    let block = l.token.rsa_private(k, data, pin)?;
    Ok(match mech {
        Mech::RsaX509 => block,
        Mech::RsaPkcs => padding::pkcs1_type2_unpad(&block)?,
        Mech::RsaOaep { hash, mgf, label } => padding::oaep_unpad(&block, *hash, *mgf, label)?,
        _ => return Err(Error::MechanismInvalid(0)),
    })
}

/// Accept a peer point raw or wrapped in a DER OCTET STRING (both occur in the wild).
fn normalise_point(curve: crate::crypto::Curve, p: &[u8]) -> Result<Vec<u8>> {
    let raw_len = 2 * curve.field_len() + 1;
    let raw = if p.len() == raw_len {
        p
    } else if p.len() == raw_len + 2 && p[0] == 0x04 && p[1] as usize == raw_len {
        &p[2..]
    } else {
        return Err(Error::MechanismParamInvalid("ECDH public data"));
    };
    match PublicKey::ec_from_sec1(curve, raw) {
        Ok(PublicKey::Ec { point, .. }) => Ok(point),
        _ => Err(Error::MechanismParamInvalid(
            "ECDH public data is not a curve point",
        )),
    }
}

/// Largest secret key a derivation or unwrap may produce (bytes).
const MAX_SECRET_LEN: usize = 1024;

/// What a template asks of a new secret key.
struct SecretSpec {
    key_type: CK_KEY_TYPE,
    len: usize,
    label: Vec<u8>,
    id: Vec<u8>,
    sensitive: bool,
    extractable: bool,
    attrs: Vec<(CK_ATTRIBUTE_TYPE, bool)>,
}

impl SecretSpec {
    fn from_template(
        template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)],
        default_len: Option<usize>,
    ) -> Result<SecretSpec> {
        let mut spec = SecretSpec {
            key_type: CKK_GENERIC_SECRET,
            len: default_len.unwrap_or(0),
            label: Vec::new(),
            id: Vec::new(),
            sensitive: false,
            extractable: true,
            attrs: Vec::new(),
        };
        let mut len_given = false;
        for (t, v) in template {
            let b = || bool_from(v).ok_or(Error::AttributeValueInvalid);
            match *t {
                CKA_CLASS => {
                    if ulong_from(v) != Some(CKO_SECRET_KEY) {
                        return Err(Error::TemplateInconsistent);
                    }
                }
                CKA_KEY_TYPE => {
                    spec.key_type = ulong_from(v).ok_or(Error::AttributeValueInvalid)?
                }
                CKA_VALUE_LEN => {
                    let n = ulong_from(v).ok_or(Error::AttributeValueInvalid)?;
                    spec.len = usize::try_from(n).map_err(|_| Error::AttributeValueInvalid)?;
                    len_given = true;
                }
                CKA_TOKEN => {
                    if b()? {
                        return Err(Error::TemplateInconsistent);
                    }
                }
                CKA_LABEL => spec.label = v.clone(),
                CKA_ID => spec.id = v.clone(),
                CKA_SENSITIVE => spec.sensitive = b()?,
                CKA_EXTRACTABLE => spec.extractable = b()?,
                CKA_PRIVATE | CKA_MODIFIABLE => {
                    b()?;
                }
                CKA_ENCRYPT | CKA_DECRYPT | CKA_SIGN | CKA_VERIFY | CKA_WRAP | CKA_UNWRAP
                | CKA_DERIVE => spec.attrs.push((*t, b()?)),
                _ => return Err(Error::AttributeTypeInvalid),
            }
        }
        match spec.key_type {
            CKK_AES => {
                if !len_given {
                    spec.len = default_len.unwrap_or(0).min(32);
                }
                if ![16, 24, 32].contains(&spec.len) {
                    return Err(Error::TemplateInconsistent);
                }
            }
            CKK_DES3 if !len_given => spec.len = 24,
            CKK_GENERIC_SECRET | CKK_DES3 => {}
            _ => return Err(Error::TemplateInconsistent),
        }
        if spec.len == 0 {
            return Err(Error::TemplateIncomplete);
        }
        if spec.len > MAX_SECRET_LEN {
            return Err(Error::AttributeValueInvalid);
        }
        Ok(spec)
    }

    fn build(self, value: Zeroizing<Vec<u8>>) -> Object {
        let readable = !self.sensitive && self.extractable;
        let mut b = Object::builder(CKO_SECRET_KEY)
            .ulong(CKA_KEY_TYPE, self.key_type)
            .ulong(CKA_VALUE_LEN, value.len() as CK_ULONG)
            .flag(CKA_TOKEN, false)
            .flag(CKA_PRIVATE, false)
            .flag(CKA_MODIFIABLE, false)
            .flag(CKA_SENSITIVE, self.sensitive)
            .flag(CKA_EXTRACTABLE, self.extractable)
            .flag(CKA_LOCAL, false)
            .bytes(CKA_LABEL, &self.label)
            .bytes(CKA_ID, &self.id);
        for a in [
            CKA_ENCRYPT,
            CKA_DECRYPT,
            CKA_SIGN,
            CKA_VERIFY,
            CKA_WRAP,
            CKA_UNWRAP,
            CKA_DERIVE,
        ] {
            let v = self
                .attrs
                .iter()
                .find(|(t, _)| *t == a)
                .is_some_and(|x| x.1);
            b = b.flag(a, v);
        }
        b.secret(value, readable).build()
    }
}
