//! Session state: open operations, the find cursor and session objects.

use std::sync::Arc;

use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::mechanism::Mech;
use super::object::Object;
use crate::crypto::Hasher;

/// An active cryptographic operation.
pub struct Operation {
    /// The mechanism.
    pub mech: Mech,
    /// The key object (absent for digests).
    pub key: Option<Arc<Object>>,
    /// Running hash for hash-and-sign mechanisms and digests.
    pub hasher: Option<Hasher>,
    /// Accumulated input for single-shot mechanisms fed through `*Update`.
    pub data: Zeroizing<Vec<u8>>,
    /// `*Update` has been called.
    pub multipart: bool,
    /// PIN given by a context-specific login for this operation.
    pub context_pin: Option<Zeroizing<Vec<u8>>>,
    /// A computed result kept after `CKR_BUFFER_TOO_SMALL`.
    pub result: Option<Zeroizing<Vec<u8>>>,
}

impl std::fmt::Debug for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operation")
            .field("mech", &self.mech)
            .field("multipart", &self.multipart)
            .finish_non_exhaustive()
    }
}

impl Operation {
    /// A fresh operation.
    pub fn new(mech: Mech, key: Option<Arc<Object>>) -> Self {
        let hasher = mech.message_hash().map(Hasher::new);
        Operation {
            mech,
            key,
            hasher,
            data: Zeroizing::new(Vec::new()),
            multipart: false,
            context_pin: None,
            result: None,
        }
    }

    /// Feed message data.
    pub fn update(&mut self, data: &[u8]) {
        self.multipart = true;
        match &mut self.hasher {
            Some(h) => h.update(data),
            None => self.data.extend_from_slice(data),
        }
    }
}

/// The kinds of operation a session can hold at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// `C_Sign*`.
    Sign,
    /// `C_Verify*`.
    Verify,
    /// `C_Encrypt*`.
    Encrypt,
    /// `C_Decrypt*`.
    Decrypt,
    /// `C_Digest*`.
    Digest,
}

/// An ongoing `C_FindObjects` search.
#[derive(Debug, Default)]
pub struct Find {
    /// Matching handles, computed at `C_FindObjectsInit`.
    pub handles: Vec<CK_OBJECT_HANDLE>,
    /// How many have been returned.
    pub pos: usize,
}

/// A session.
#[derive(Debug)]
pub struct Session {
    /// The slot the session belongs to.
    pub slot: CK_SLOT_ID,
    /// Read-write session.
    pub rw: bool,
    /// Active search.
    pub find: Option<Find>,
    ops: [Option<Operation>; 5],
    /// Session objects (derived and unwrapped keys).
    pub objects: Vec<(CK_OBJECT_HANDLE, Arc<Object>)>,
}

impl Session {
    /// A new session on a slot.
    pub fn new(slot: CK_SLOT_ID, rw: bool) -> Self {
        Session {
            slot,
            rw,
            find: None,
            ops: Default::default(),
            objects: Vec::new(),
        }
    }

    /// The active operation of a kind.
    pub fn op(&mut self, kind: OpKind) -> Option<&mut Operation> {
        self.ops[kind as usize].as_mut()
    }

    /// Start an operation; fails if one of the same kind is active.
    pub fn start(&mut self, kind: OpKind, op: Operation) -> super::Result<()> {
        let slot = &mut self.ops[kind as usize];
        if slot.is_some() {
            return Err(super::Error::OperationActive);
        }
        *slot = Some(op);
        Ok(())
    }

    /// End (and wipe) the operation of a kind.
    pub fn end(&mut self, kind: OpKind) -> Option<Operation> {
        self.ops[kind as usize].take()
    }

    /// Any operation using a key that needs a context-specific login.
    pub fn op_needing_context_login(&mut self) -> Option<&mut Operation> {
        self.ops.iter_mut().flatten().find(|op| {
            op.key
                .as_ref()
                .and_then(|k| k.key.as_ref())
                .is_some_and(|k| k.always_authenticate)
        })
    }

    /// Drop every operation (logout, errors).
    pub fn end_all(&mut self) {
        for op in self.ops.iter_mut() {
            *op = None;
        }
        self.find = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_operation_per_kind() {
        let mut s = Session::new(1, false);
        s.start(
            OpKind::Digest,
            Operation::new(Mech::Digest(crate::crypto::HashAlg::Sha256), None),
        )
        .unwrap();
        assert_eq!(
            s.start(OpKind::Digest, Operation::new(Mech::RsaPkcs, None))
                .unwrap_err(),
            super::super::Error::OperationActive
        );
        s.start(OpKind::Sign, Operation::new(Mech::RsaPkcs, None))
            .unwrap();
        assert!(s.end(OpKind::Digest).is_some());
        assert!(s.op(OpKind::Digest).is_none());
        assert!(s.op(OpKind::Sign).is_some());
    }
}
