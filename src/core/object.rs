//! Objects and their attributes.
//!
//! Attribute values are stored already encoded the way PKCS#11 returns them
//! (`CK_ULONG` in native byte order, `CK_BBOOL` as one byte), so
//! `C_GetAttributeValue` is a copy. Sensitive values are never stored in the
//! attribute table: asking for them yields [`Lookup::Sensitive`].

use cryptoki_sys::*;
use zeroize::Zeroizing;

use crate::crypto::PublicKey;

/// Attributes that exist on private keys but are never revealed.
const PRIVATE_SENSITIVE: &[CK_ATTRIBUTE_TYPE] = &[
    CKA_VALUE,
    CKA_PRIVATE_EXPONENT,
    CKA_PRIME_1,
    CKA_PRIME_2,
    CKA_EXPONENT_1,
    CKA_EXPONENT_2,
    CKA_COEFFICIENT,
];

/// What an attribute lookup found.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// The encoded value.
    Value(&'a [u8]),
    /// The attribute exists but may not be revealed.
    Sensitive,
    /// The object has no such attribute.
    Invalid,
}

/// What a private key needs for the token to use it.
#[derive(Debug, Clone)]
pub struct KeyInfo {
    /// Token-specific key reference (for PIV: the key reference, 0x9A…).
    pub key_ref: u8,
    /// The matching public key (from the certificate).
    pub public: PublicKey,
    /// Whether each use needs a context-specific login (PIV 9C).
    pub always_authenticate: bool,
}

/// A PKCS#11 object.
pub struct Object {
    /// `CKA_CLASS`.
    pub class: CK_OBJECT_CLASS,
    /// Encoded attributes, sorted by type.
    attrs: Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)>,
    /// `CKA_PRIVATE`: visible only to a logged-in user.
    pub private: bool,
    /// For key objects: what the key is (public part).
    pub key: Option<KeyInfo>,
    /// For secret keys created in a session: the key value.
    pub secret: Option<Zeroizing<Vec<u8>>>,
    /// Whether `secret` may be read through `CKA_VALUE`.
    pub secret_readable: bool,
}

impl std::fmt::Debug for Object {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Object")
            .field("class", &self.class)
            .field("attributes", &self.attrs.len())
            .field("private", &self.private)
            .finish_non_exhaustive()
    }
}

impl Object {
    /// Start building an object of a class.
    pub fn builder(class: CK_OBJECT_CLASS) -> ObjectBuilder {
        ObjectBuilder {
            obj: Object {
                class,
                attrs: Vec::new(),
                private: false,
                key: None,
                secret: None,
                secret_readable: false,
            },
        }
        .ulong(CKA_CLASS, class)
    }

    /// Look an attribute up.
    pub fn attribute(&self, t: CK_ATTRIBUTE_TYPE) -> Lookup<'_> {
        if t == CKA_VALUE {
            if let Some(secret) = &self.secret {
                return if self.secret_readable {
                    Lookup::Value(secret)
                } else {
                    Lookup::Sensitive
                };
            }
        }
        match self.attrs.binary_search_by_key(&t, |(k, _)| *k) {
            Ok(i) => Lookup::Value(&self.attrs[i].1),
            Err(_) if self.class == CKO_PRIVATE_KEY && PRIVATE_SENSITIVE.contains(&t) => {
                Lookup::Sensitive
            }
            Err(_) => Lookup::Invalid,
        }
    }

    /// Does the object match a template (every attribute present and byte-equal)?
    pub fn matches(&self, template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)]) -> bool {
        template.iter().all(|(t, v)| match self.attribute(*t) {
            Lookup::Value(mine) => mine == v.as_slice(),
            _ => false,
        })
    }

    /// A boolean attribute (false when absent).
    pub fn flag(&self, t: CK_ATTRIBUTE_TYPE) -> bool {
        matches!(self.attribute(t), Lookup::Value([1]))
    }

    /// Approximate size in bytes, for `C_GetObjectSize`.
    pub fn size(&self) -> usize {
        self.attrs.iter().map(|(_, v)| v.len() + 16).sum()
    }
}

/// Builds an [`Object`] attribute by attribute.
pub struct ObjectBuilder {
    obj: Object,
}

impl ObjectBuilder {
    /// Set a raw byte attribute.
    pub fn bytes(mut self, t: CK_ATTRIBUTE_TYPE, v: &[u8]) -> Self {
        match self.obj.attrs.binary_search_by_key(&t, |(k, _)| *k) {
            Ok(i) => self.obj.attrs[i].1 = v.to_vec(),
            Err(i) => self.obj.attrs.insert(i, (t, v.to_vec())),
        }
        self
    }

    /// Set a `CK_ULONG` attribute.
    pub fn ulong(self, t: CK_ATTRIBUTE_TYPE, v: CK_ULONG) -> Self {
        self.bytes(t, &v.to_ne_bytes())
    }

    /// Set a `CK_BBOOL` attribute.
    pub fn flag(mut self, t: CK_ATTRIBUTE_TYPE, v: bool) -> Self {
        if t == CKA_PRIVATE {
            self.obj.private = v;
        }
        self.bytes(t, &[v as u8])
    }

    /// Attach key information.
    pub fn key(mut self, key: KeyInfo) -> Self {
        self.obj.key = Some(key);
        self
    }

    /// Attach a secret value (session secret keys).
    pub fn secret(mut self, value: Zeroizing<Vec<u8>>, readable: bool) -> Self {
        self.obj.secret = Some(value);
        self.obj.secret_readable = readable;
        self
    }

    /// Finish.
    pub fn build(self) -> Object {
        self.obj
    }
}

/// Encode a `CK_ULONG` the way attributes carry it.
pub fn ulong_bytes(v: CK_ULONG) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

/// Decode a `CK_ULONG` attribute value.
pub fn ulong_from(v: &[u8]) -> Option<CK_ULONG> {
    let arr: [u8; std::mem::size_of::<CK_ULONG>()] = v.try_into().ok()?;
    Some(CK_ULONG::from_ne_bytes(arr))
}

/// Decode a `CK_BBOOL` attribute value.
pub fn bool_from(v: &[u8]) -> Option<bool> {
    match v {
        [0] => Some(false),
        [_] => Some(true),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_stay_sorted_and_replace() {
        let o = Object::builder(CKO_CERTIFICATE)
            .bytes(CKA_LABEL, b"a")
            .flag(CKA_TOKEN, true)
            .bytes(CKA_ID, &[1])
            .bytes(CKA_LABEL, b"b")
            .build();
        assert!(o.attrs.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(o.attribute(CKA_LABEL), Lookup::Value(b"b"));
        assert_eq!(o.attribute(CKA_MODULUS), Lookup::Invalid);
        assert!(o.flag(CKA_TOKEN));
    }

    #[test]
    fn private_key_values_are_sensitive() {
        let o = Object::builder(CKO_PRIVATE_KEY).build();
        assert_eq!(o.attribute(CKA_PRIVATE_EXPONENT), Lookup::Sensitive);
        assert_eq!(o.attribute(CKA_VALUE), Lookup::Sensitive);
        assert_eq!(o.attribute(CKA_SUBJECT), Lookup::Invalid);
    }

    #[test]
    fn secret_value_readable_only_when_allowed() {
        let s = Object::builder(CKO_SECRET_KEY)
            .secret(Zeroizing::new(vec![1, 2]), false)
            .build();
        assert_eq!(s.attribute(CKA_VALUE), Lookup::Sensitive);
        let r = Object::builder(CKO_SECRET_KEY)
            .secret(Zeroizing::new(vec![1, 2]), true)
            .build();
        assert_eq!(r.attribute(CKA_VALUE), Lookup::Value(&[1, 2]));
    }

    #[test]
    fn template_matching() {
        let o = Object::builder(CKO_CERTIFICATE).bytes(CKA_ID, &[1]).build();
        assert!(o.matches(&[(CKA_CLASS, ulong_bytes(CKO_CERTIFICATE))]));
        assert!(!o.matches(&[(CKA_ID, vec![2])]));
        assert!(!o.matches(&[(CKA_MODULUS, vec![2])]));
        assert!(o.matches(&[]));
    }
}
