//! The PIV card, through a PKCS#11 module (ours by default; OpenSC's works
//! too): find the card's token, log in, read the PIV Authentication
//! certificate (CKA_ID 01 = key 9A) and sign with its key.

use std::path::{Path, PathBuf};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use dcred_protocol::messages::PivSigAlg;

use crate::CliError;

/// A logged-in session on the card.
pub struct Card {
    _ctx: Pkcs11,
    session: Session,
    key: ObjectHandle,
    /// The PIV Authentication certificate, DER.
    pub cert: Vec<u8>,
    /// The token's label and slot description, for progress lines.
    pub name: String,
    rsa: bool,
}

/// The PKCS#11 module to use.
pub fn module_path(given: Option<&Path>) -> Result<PathBuf, CliError> {
    if let Some(p) = given {
        return Ok(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("DCRED_MODULE") {
        return Ok(p.into());
    }
    let exe = std::env::current_exe()?;
    let p = exe
        .parent()
        .map(|d| d.join("libdcred_pkcs11.so"))
        .ok_or_else(|| CliError("cannot locate the PKCS#11 module; use --module".into()))?;
    Ok(p)
}

impl Card {
    /// Open the first hardware token (or the one labelled `token`, or the one in
    /// the reader whose name contains `reader`) and log in.
    pub fn open(
        module: &Path,
        token: Option<&str>,
        reader: Option<&str>,
        pin: &str,
    ) -> Result<Card, CliError> {
        let ctx =
            Pkcs11::new(module).map_err(|e| CliError(format!("{}: {e}", module.display())))?;
        ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))?;
        let mut chosen = None;
        for slot in ctx.get_slots_with_token()? {
            let info = ctx.get_token_info(slot)?;
            let slot_info = ctx.get_slot_info(slot)?;
            let hw = slot_info.hardware_slot();
            let label = info.label().trim().to_string();
            let desc = slot_info.slot_description().trim().to_string();
            if token.is_some_and(|t| t != label)
                || reader.is_some_and(|r| !desc.contains(r))
                || (token.is_none() && !hw)
            {
                continue;
            }
            chosen = Some((slot, format!("'{label}' in {desc}")));
            break;
        }
        let (slot, name) = chosen.ok_or_else(|| {
            CliError(match (token, reader) {
                (Some(t), _) => format!("no token labelled '{t}'"),
                (None, Some(r)) => format!("no PIV card in a reader named like '{r}'"),
                (None, None) => "no PIV card found (is it in the reader?)".into(),
            })
        })?;
        let session = ctx.open_ro_session(slot)?;
        session
            .login(UserType::User, Some(&AuthPin::new(pin.into())))
            .map_err(|e| CliError(format!("card PIN: {e}")))?;
        let find = |class| {
            session
                .find_objects(&[Attribute::Class(class), Attribute::Id(vec![1])])
                .map_err(CliError::from)
                .and_then(|v| {
                    v.first().copied().ok_or_else(|| {
                        CliError("the card has no PIV Authentication key (9A)".into())
                    })
                })
        };
        let cert_obj = find(ObjectClass::CERTIFICATE)?;
        let key = find(ObjectClass::PRIVATE_KEY)?;
        let cert = match session
            .get_attributes(cert_obj, &[AttributeType::Value])?
            .pop()
        {
            Some(Attribute::Value(v)) => v,
            _ => return Err(CliError("cannot read the 9A certificate".into())),
        };
        let rsa = matches!(
            session
                .get_attributes(key, &[AttributeType::KeyType])?
                .pop(),
            Some(Attribute::KeyType(KeyType::RSA))
        );
        Ok(Card {
            _ctx: ctx,
            session,
            key,
            cert,
            name,
            rsa,
        })
    }

    /// Sign `msg` with the 9A key, in the form the back-end verifies.
    pub fn sign(&self, msg: &[u8]) -> Result<(PivSigAlg, Vec<u8>), CliError> {
        if self.rsa {
            let sig = self
                .session
                .sign(&Mechanism::Sha256RsaPkcs, self.key, msg)?;
            return Ok((PivSigAlg::RsaPkcs1Sha256, sig));
        }
        let raw = self.session.sign(&Mechanism::EcdsaSha256, self.key, msg)?;
        let der = match raw.len() {
            64 => p256::ecdsa::Signature::from_slice(&raw).map(|s| s.to_der().as_bytes().to_vec()),
            96 => p384::ecdsa::Signature::from_slice(&raw).map(|s| s.to_der().as_bytes().to_vec()),
            n => return Err(CliError(format!("unexpected ECDSA signature length {n}"))),
        }
        .map_err(|_| CliError("the card returned a malformed ECDSA signature".into()))?;
        Ok((PivSigAlg::EcdsaSha256, der))
    }
}
