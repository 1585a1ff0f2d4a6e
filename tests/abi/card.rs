//! Tests against the virtual PIV card that scripts/test.sh provisions and
//! inserts in reader 0: PIN 123456; keys 9A RSA-2048 (CKA_ID 1), 9C P-256 (2),
//! 9D RSA-2048 (3), 9E P-256 (4), 82 RSA-2048 (5), 83 P-384 (6).
//!
//! No test enters a wrong PIN of valid length: the card allows three tries.

use std::collections::HashSet;
use std::io::Write;
use std::process::{Command, Stdio};

use cryptoki_sys::*;
use sha2::Digest;

use crate::ffi::{Attr, Mech, Module, Op, Out, Param, Ptrs};
use crate::{check_padded, expect, session_functions, ulong, Fixture, Sweep, PIN};

/// CKA_ID of each key slot.
const ID_9A: u8 = 1;
const ID_9C: u8 = 2;
const ID_9D: u8 = 3;
const ID_9E: u8 = 4;
const ID_83: u8 = 6;

/// An object handle no object gets.
const BAD_OBJECT: CK_OBJECT_HANDLE = 0xdead;

/// Functions the module does not implement: with a valid session they
/// answer CKR_FUNCTION_NOT_SUPPORTED whatever the other arguments are.
const UNSUPPORTED: &[&str] = &[
    "C_GetOperationState",
    "C_SetOperationState",
    "C_CreateObject",
    "C_CopyObject",
    "C_DigestKey",
    "C_SignRecoverInit",
    "C_SignRecover",
    "C_VerifyRecoverInit",
    "C_VerifyRecover",
    "C_DigestEncryptUpdate",
    "C_DecryptDigestUpdate",
    "C_SignEncryptUpdate",
    "C_DecryptVerifyUpdate",
    "C_GenerateKey",
    "C_GenerateKeyPair",
    "C_WrapKey",
    "C_LoginUser",
    "C_SessionCancel",
    "C_MessageEncryptInit",
    "C_EncryptMessage",
    "C_EncryptMessageBegin",
    "C_EncryptMessageNext",
    "C_MessageEncryptFinal",
    "C_MessageDecryptInit",
    "C_DecryptMessage",
    "C_DecryptMessageBegin",
    "C_DecryptMessageNext",
    "C_MessageDecryptFinal",
    "C_MessageSignInit",
    "C_SignMessage",
    "C_SignMessageBegin",
    "C_SignMessageNext",
    "C_MessageSignFinal",
    "C_MessageVerifyInit",
    "C_VerifyMessage",
    "C_VerifyMessageBegin",
    "C_VerifyMessageNext",
    "C_MessageVerifyFinal",
];

/// Session functions without pointer arguments, tested on their own.
const NO_POINTERS: &[&str] = &[
    "C_CloseSession",
    "C_Logout",
    "C_DestroyObject",
    "C_FindObjectsFinal",
    "C_GetFunctionStatus",
    "C_CancelFunction",
];

/// The initialised module and the slot holding the virtual card.
struct Card {
    fx: Fixture,
    m: &'static Module,
    slot: CK_SLOT_ID,
}

fn card() -> Card {
    let fx = Fixture::initialized();
    assert!(
        std::env::var_os("DCRED_TEST_ENV").is_some(),
        "needs the virtual card environment: run scripts/test.sh"
    );
    let (rv, _, slots) = fx.m.slot_list(true, Some(16));
    expect(rv, CKR_OK, "C_GetSlotList(CK_TRUE)");
    let slot = *slots.first().expect("a slot with the virtual card");
    Card { m: fx.m, fx, slot }
}

impl Card {
    /// A serial session, with extra flags.
    fn open(&self, flags: CK_FLAGS) -> CK_SESSION_HANDLE {
        let (rv, h) = self.m.open_session(self.slot, CKF_SERIAL_SESSION | flags);
        expect(rv, CKR_OK, "C_OpenSession");
        h
    }

    fn login(&self, h: CK_SESSION_HANDLE) {
        expect(self.m.login(h, CKU_USER, Some(PIN)), CKR_OK, "C_Login");
    }

    /// Every object matching a template.
    fn find(
        &self,
        h: CK_SESSION_HANDLE,
        t: &[(CK_ATTRIBUTE_TYPE, &[u8])],
    ) -> Vec<CK_OBJECT_HANDLE> {
        expect(self.m.find_init(h, t), CKR_OK, "C_FindObjectsInit");
        let (rv, found) = self.m.find(h, 100);
        expect(rv, CKR_OK, "C_FindObjects");
        expect(
            self.m.call("C_FindObjectsFinal", Ptrs::Null, &[h]),
            CKR_OK,
            "C_FindObjectsFinal",
        );
        found
    }

    /// The one object of a class with a CKA_ID.
    fn object(&self, h: CK_SESSION_HANDLE, class: CK_OBJECT_CLASS, id: u8) -> CK_OBJECT_HANDLE {
        let found = self.find(h, &[(CKA_CLASS, &ulong(class)), (CKA_ID, &[id])]);
        assert_eq!(
            found.len(),
            1,
            "one object of class {class} with CKA_ID {id}"
        );
        found[0]
    }

    fn finish(self) {
        self.fx.finish();
    }
}

fn sha256(data: &[u8]) -> Vec<u8> {
    sha2::Sha256::digest(data).to_vec()
}

/// PKCS#1 v1.5 encryption of `data` to a certificate of the test PKI, by openssl.
fn openssl_encrypt(slot: &str, data: &[u8]) -> Vec<u8> {
    let pki = std::env::var("DCRED_TEST_PKI").expect("DCRED_TEST_PKI (set by scripts/test.sh)");
    let cert = format!("{pki}/{slot}.cert.pem");
    let mut child = Command::new("openssl")
        .args(["pkeyutl", "-encrypt", "-certin", "-inkey", &cert])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run openssl");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(data)
        .expect("write to openssl");
    let out = child.wait_with_output().expect("openssl output");
    assert!(out.status.success(), "openssl pkeyutl -encrypt failed");
    out.stdout
}

#[test]
#[ignore = "needs the virtual card: run scripts/test.sh"]
fn valid_session_with_null_pointers_is_arguments_bad() {
    let c = card();
    let m = c.m;
    let h = c.open(CKF_RW_SESSION);
    c.login(h);
    let cert = c.object(h, CKO_CERTIFICATE, ID_9A);
    let pub9a = c.object(h, CKO_PUBLIC_KEY, ID_9A);
    let key9a = c.object(h, CKO_PRIVATE_KEY, ID_9A);
    let key9d = c.object(h, CKO_PRIVATE_KEY, ID_9D);
    let key83 = c.object(h, CKO_PRIVATE_KEY, ID_83);
    // Integer arguments after the session handle; every pointer is NULL.
    let table: Vec<(&str, Vec<CK_ULONG>)> = vec![
        ("C_SetPIN", vec![]),
        ("C_SetPIN", vec![6, 6]),
        ("C_GetSessionInfo", vec![]),
        ("C_Login", vec![CKU_USER]),
        ("C_Login", vec![CKU_USER, 6]),
        ("C_GetObjectSize", vec![cert]),
        ("C_GetAttributeValue", vec![cert, 1]),
        ("C_SetAttributeValue", vec![cert, 1]),
        ("C_FindObjectsInit", vec![1]),
        ("C_FindObjects", vec![]),
        ("C_FindObjects", vec![8]),
        ("C_EncryptInit", vec![pub9a]),
        ("C_Encrypt", vec![]),
        ("C_Encrypt", vec![16]),
        ("C_EncryptUpdate", vec![16]),
        ("C_EncryptFinal", vec![]),
        ("C_DecryptInit", vec![key9d]),
        ("C_Decrypt", vec![]),
        ("C_Decrypt", vec![256]),
        ("C_DecryptUpdate", vec![16]),
        ("C_DecryptFinal", vec![]),
        ("C_DigestInit", vec![]),
        ("C_Digest", vec![]),
        ("C_Digest", vec![16]),
        ("C_DigestUpdate", vec![16]),
        ("C_DigestFinal", vec![]),
        ("C_SignInit", vec![key9a]),
        ("C_Sign", vec![]),
        ("C_Sign", vec![32]),
        ("C_SignUpdate", vec![16]),
        ("C_SignFinal", vec![]),
        ("C_VerifyInit", vec![pub9a]),
        ("C_Verify", vec![32, 256]),
        ("C_VerifyUpdate", vec![16]),
        ("C_VerifyFinal", vec![256]),
        ("C_UnwrapKey", vec![key9d, 256, 2]),
        ("C_DeriveKey", vec![key83, 2]),
        ("C_SeedRandom", vec![16]),
        ("C_GenerateRandom", vec![16]),
    ];
    // Every session function is covered here or by another test.
    let covered: HashSet<&str> = table
        .iter()
        .map(|(n, _)| *n)
        .chain(UNSUPPORTED.iter().copied())
        .chain(NO_POINTERS.iter().copied())
        .chain(["C_InitPIN"])
        .collect();
    let all: HashSet<&str> = session_functions(m).into_iter().collect();
    let missing: Vec<_> = all.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "session functions not covered: {missing:?}"
    );
    let run = |state: &str, sweep: &mut Sweep| {
        for (name, rest) in &table {
            let ints: Vec<CK_ULONG> = std::iter::once(h).chain(rest.iter().copied()).collect();
            let rv = m.call(name, Ptrs::Null, &ints);
            sweep.check(
                format!("{name}{ints:x?} with NULL pointers, {state}"),
                rv,
                CKR_ARGUMENTS_BAD,
            );
        }
    };
    let mut sweep = Sweep::default();
    run("no operation active", &mut sweep);
    // Again with every kind of operation active.
    let sha = Mech::plain(CKM_SHA256_RSA_PKCS);
    expect(m.op_init(Op::Sign, h, &sha, key9a), CKR_OK, "C_SignInit");
    expect(
        m.op_init(Op::Verify, h, &sha, pub9a),
        CKR_OK,
        "C_VerifyInit",
    );
    let pkcs = Mech::plain(CKM_RSA_PKCS);
    expect(
        m.op_init(Op::Encrypt, h, &pkcs, pub9a),
        CKR_OK,
        "C_EncryptInit",
    );
    expect(
        m.op_init(Op::Decrypt, h, &pkcs, key9d),
        CKR_OK,
        "C_DecryptInit",
    );
    expect(
        m.op_init(Op::Digest, h, &Mech::plain(CKM_SHA256), 0),
        CKR_OK,
        "C_DigestInit",
    );
    expect(m.find_init(h, &[]), CKR_OK, "C_FindObjectsInit");
    run("every operation active", &mut sweep);
    sweep.done();
    // The session is still fine.
    let (rv, info) = m.session_info(h);
    expect(rv, CKR_OK, "C_GetSessionInfo after the sweep");
    assert_eq!(info.state, CKS_RW_USER_FUNCTIONS);
    c.finish();
}

#[test]
#[ignore = "needs the virtual card: run scripts/test.sh"]
fn open_session_flags_and_slots_without_token() {
    let c = card();
    let m = c.m;
    for flags in [0, CKF_RW_SESSION] {
        let (rv, _) = m.open_session(c.slot, flags);
        expect(
            rv,
            CKR_SESSION_PARALLEL_NOT_SUPPORTED,
            format!("C_OpenSession(flags {flags:#x})"),
        );
    }
    let ro = c.open(0);
    let rw = c.open(CKF_RW_SESSION);
    assert_ne!(ro, rw);
    for (h, state, flags) in [
        (ro, CKS_RO_PUBLIC_SESSION, CKF_SERIAL_SESSION),
        (
            rw,
            CKS_RW_PUBLIC_SESSION,
            CKF_SERIAL_SESSION | CKF_RW_SESSION,
        ),
    ] {
        let (rv, info) = m.session_info(h);
        expect(rv, CKR_OK, "C_GetSessionInfo");
        assert_eq!(
            (info.slotID, info.state, info.flags),
            (c.slot, state, flags)
        );
    }
    // Token information: blank-padded text, consistent flags.
    let (rv, t) = m.token_info(c.slot);
    expect(rv, CKR_OK, "C_GetTokenInfo");
    assert_eq!(
        check_padded(&t.label, "label"),
        "dcred test 9a",
        "label from the 9A certificate"
    );
    check_padded(&t.manufacturerID, "token manufacturerID");
    check_padded(&t.model, "model");
    check_padded(&t.serialNumber, "serialNumber");
    let want = CKF_TOKEN_INITIALIZED | CKF_LOGIN_REQUIRED | CKF_USER_PIN_INITIALIZED;
    assert_eq!(t.flags & want, want, "token flags {:#x}", t.flags);
    assert_eq!((t.ulMinPinLen, t.ulMaxPinLen), (6, 8), "PIV PIN lengths");
    let (rv, info) = m.slot_info(c.slot);
    expect(rv, CKR_OK, "C_GetSlotInfo");
    assert_ne!(
        info.flags & CKF_TOKEN_PRESENT,
        0,
        "slot flags {:#x}",
        info.flags
    );
    // C_CloseAllSessions closes both, and only those handles go invalid.
    expect(
        m.call("C_CloseAllSessions", Ptrs::Null, &[c.slot]),
        CKR_OK,
        "C_CloseAllSessions",
    );
    for h in [ro, rw] {
        expect(
            m.session_info(h).0,
            CKR_SESSION_HANDLE_INVALID,
            "C_GetSessionInfo after close-all",
        );
        expect(
            m.call("C_CloseSession", Ptrs::Null, &[h]),
            CKR_SESSION_HANDLE_INVALID,
            "C_CloseSession after close-all",
        );
    }
    // Readers without a card (vpcd has two, the card is in one).
    let (rv, _, all) = m.slot_list(false, Some(16));
    expect(rv, CKR_OK, "C_GetSlotList");
    for slot in all.into_iter().filter(|&s| s != c.slot) {
        let (rv, info) = m.slot_info(slot);
        expect(rv, CKR_OK, "C_GetSlotInfo on an empty reader");
        if info.flags & CKF_TOKEN_PRESENT != 0 {
            continue;
        }
        expect(
            m.token_info(slot).0,
            CKR_TOKEN_NOT_PRESENT,
            "C_GetTokenInfo without token",
        );
        let (rv, _) = m.open_session(slot, CKF_SERIAL_SESSION);
        expect(rv, CKR_TOKEN_NOT_PRESENT, "C_OpenSession without token");
        expect(
            m.call("C_CloseAllSessions", Ptrs::Null, &[slot]),
            CKR_OK,
            "C_CloseAllSessions, no token",
        );
    }
    c.finish();
}

#[test]
#[ignore = "needs the virtual card: run scripts/test.sh"]
fn invalid_object_and_key_handles() {
    let c = card();
    let m = c.m;
    let h = c.open(CKF_RW_SESSION);
    c.login(h);
    let mut sweep = Sweep::default();
    for o in [BAD_OBJECT, CK_INVALID_HANDLE] {
        let mut t = [Attr::buf(CKA_LABEL, 64)];
        sweep.check(
            format!("C_GetAttributeValue({o:#x})"),
            m.get_attrs(h, o, &mut t),
            CKR_OBJECT_HANDLE_INVALID,
        );
        sweep.check(
            format!("C_GetObjectSize({o:#x})"),
            m.object_size(h, o).0,
            CKR_OBJECT_HANDLE_INVALID,
        );
        let rv = m.call("C_DestroyObject", Ptrs::Null, &[h, o]);
        sweep.check(
            format!("C_DestroyObject({o:#x})"),
            rv,
            CKR_OBJECT_HANDLE_INVALID,
        );
        let rv = m.set_attrs(h, o, &[(CKA_LABEL, b"x")]);
        sweep.check(
            format!("C_SetAttributeValue({o:#x})"),
            rv,
            CKR_OBJECT_HANDLE_INVALID,
        );
        let pkcs = Mech::plain(CKM_RSA_PKCS);
        for op in [Op::Sign, Op::Decrypt, Op::Verify, Op::Encrypt] {
            let rv = m.op_init(op, h, &pkcs, o);
            sweep.check(
                format!("{op:?}Init with key {o:#x}"),
                rv,
                CKR_KEY_HANDLE_INVALID,
            );
        }
    }
    sweep.done();
    // The failed inits left nothing active.
    let (rv, _, _) = m.op(Op::Sign, h, b"data", Out::Query);
    expect(
        rv,
        CKR_OPERATION_NOT_INITIALIZED,
        "C_Sign after failed inits",
    );
    c.finish();
}

#[test]
#[ignore = "needs the virtual card: run scripts/test.sh"]
fn private_objects_vanish_on_logout() {
    let c = card();
    let m = c.m;
    let h = c.open(0);
    let private = ulong(CKO_PRIVATE_KEY);
    // Before login only the PIN-less 9E key is visible.
    assert_eq!(
        c.find(h, &[(CKA_CLASS, &private)]).len(),
        1,
        "private keys before login"
    );
    c.login(h);
    assert_eq!(
        c.find(h, &[(CKA_CLASS, &private)]).len(),
        6,
        "private keys after login"
    );
    let key = c.object(h, CKO_PRIVATE_KEY, ID_9A);
    let cert = c.object(h, CKO_CERTIFICATE, ID_9A);
    let mut t = [Attr::buf(CKA_LABEL, 64)];
    expect(
        m.get_attrs(h, key, &mut t),
        CKR_OK,
        "CKA_LABEL of the 9A key while logged in",
    );
    expect(m.call("C_Logout", Ptrs::Null, &[h]), CKR_OK, "C_Logout");
    let mut sweep = Sweep::default();
    let mut t = [Attr::buf(CKA_LABEL, 64)];
    sweep.check(
        "C_GetAttributeValue(9A key) after logout",
        m.get_attrs(h, key, &mut t),
        CKR_OBJECT_HANDLE_INVALID,
    );
    sweep.check(
        "C_GetObjectSize(9A key) after logout",
        m.object_size(h, key).0,
        CKR_OBJECT_HANDLE_INVALID,
    );
    let sha = Mech::plain(CKM_SHA256_RSA_PKCS);
    sweep.check(
        "C_SignInit(9A key) after logout",
        m.op_init(Op::Sign, h, &sha, key),
        CKR_KEY_HANDLE_INVALID,
    );
    let mut t = [Attr::buf(CKA_LABEL, 64)];
    sweep.check(
        "C_GetAttributeValue(9A certificate) after logout",
        m.get_attrs(h, cert, &mut t),
        CKR_OK,
    );
    sweep.done();
    assert_eq!(
        c.find(h, &[(CKA_CLASS, &private)]).len(),
        1,
        "private keys after logout"
    );
    c.finish();
}

#[test]
#[ignore = "needs the virtual card: run scripts/test.sh"]
fn get_attribute_value_fills_what_it_can() {
    let c = card();
    let m = c.m;
    let h = c.open(0);
    let cert = c.object(h, CKO_CERTIFICATE, ID_9A);
    // Size query: pValue NULL gives every length.
    let mut q = [
        Attr::query(CKA_CLASS),
        Attr::query(CKA_VALUE),
        Attr::query(CKA_LABEL),
    ];
    expect(m.get_attrs(h, cert, &mut q), CKR_OK, "size query");
    assert_eq!(q[0].len as usize, std::mem::size_of::<CK_ULONG>());
    let der_len = q[1].len as usize;
    assert!(der_len > 500, "certificate of {der_len} bytes");
    let label_len = q[2].len as usize;
    // A too-small buffer: that attribute unavailable, the others filled.
    let mut t = [
        Attr::buf(CKA_LABEL, label_len),
        Attr::buf(CKA_VALUE, 10),
        Attr::buf(CKA_ID, 8),
    ];
    expect(
        m.get_attrs(h, cert, &mut t),
        CKR_BUFFER_TOO_SMALL,
        "CKA_VALUE into 10 bytes",
    );
    assert_eq!(
        t[1].len, CK_UNAVAILABLE_INFORMATION,
        "ulValueLen of the short attribute"
    );
    assert!(
        t[0].value().starts_with(b"Certificate for"),
        "label still filled: {:?}",
        t[0].value()
    );
    assert_eq!(t[2].value(), [ID_9A], "CKA_ID still filled");
    // The right size works.
    let mut t = [Attr::buf(CKA_VALUE, der_len)];
    expect(
        m.get_attrs(h, cert, &mut t),
        CKR_OK,
        "CKA_VALUE into its size",
    );
    assert_eq!(t[0].value()[0], 0x30, "a DER SEQUENCE");
    // An attribute a certificate lacks.
    let mut t = [Attr::buf(CKA_MODULUS, 512), Attr::buf(CKA_ID, 8)];
    expect(
        m.get_attrs(h, cert, &mut t),
        CKR_ATTRIBUTE_TYPE_INVALID,
        "CKA_MODULUS of a certificate",
    );
    assert_eq!(t[0].len, CK_UNAVAILABLE_INFORMATION);
    assert_eq!(t[1].value(), [ID_9A], "CKA_ID still filled");
    // Sensitive attributes: CKA_VALUE of the PIN-less 9E key (no login)...
    let key9e = c.object(h, CKO_PRIVATE_KEY, ID_9E);
    let mut t = [
        Attr::buf(CKA_ID, 8),
        Attr::buf(CKA_VALUE, 256),
        Attr::buf(CKA_KEY_TYPE, 8),
    ];
    expect(
        m.get_attrs(h, key9e, &mut t),
        CKR_ATTRIBUTE_SENSITIVE,
        "CKA_VALUE of the 9E key",
    );
    assert_eq!(t[1].len, CK_UNAVAILABLE_INFORMATION);
    assert_eq!(t[0].value(), [ID_9E]);
    assert_eq!(t[2].value(), ulong(CKK_EC));
    // ... and CKA_PRIVATE_EXPONENT of the 9A key, also as a size query.
    c.login(h);
    let key9a = c.object(h, CKO_PRIVATE_KEY, ID_9A);
    let mut t = [
        Attr::buf(CKA_MODULUS, 256),
        Attr::buf(CKA_PRIVATE_EXPONENT, 256),
        Attr::buf(CKA_SIGN, 1),
    ];
    expect(
        m.get_attrs(h, key9a, &mut t),
        CKR_ATTRIBUTE_SENSITIVE,
        "CKA_PRIVATE_EXPONENT",
    );
    assert_eq!(t[1].len, CK_UNAVAILABLE_INFORMATION);
    assert_eq!(t[0].value().len(), 256, "modulus still filled");
    assert_eq!(t[2].value(), [CK_TRUE], "CKA_SIGN still filled");
    let mut q = [Attr::query(CKA_PRIVATE_EXPONENT), Attr::query(CKA_MODULUS)];
    expect(
        m.get_attrs(h, key9a, &mut q),
        CKR_ATTRIBUTE_SENSITIVE,
        "size query of a sensitive attribute",
    );
    assert_eq!((q[0].len, q[1].len), (CK_UNAVAILABLE_INFORMATION, 256));
    // Several problems at once: any of the three codes (PKCS#11 3.0 §5.7.5).
    let mut t = [
        Attr::buf(CKA_PRIVATE_EXPONENT, 256),
        Attr::buf(CKA_VALUE_LEN, 8),
        Attr::buf(CKA_MODULUS, 1),
    ];
    let rv = m.get_attrs(h, key9a, &mut t);
    let any = [
        CKR_ATTRIBUTE_SENSITIVE,
        CKR_ATTRIBUTE_TYPE_INVALID,
        CKR_BUFFER_TOO_SMALL,
    ];
    assert!(any.contains(&rv), "mixed template: {}", crate::rv_name(rv));
    assert!(
        t.iter().all(|a| a.len == CK_UNAVAILABLE_INFORMATION),
        "{t:?}"
    );
    // An empty template is fine; a NULL one with a count is not.
    expect(m.get_attrs(h, cert, &mut []), CKR_OK, "empty template");
    expect(
        m.call("C_GetAttributeValue", Ptrs::Null, &[h, cert, 3]),
        CKR_ARGUMENTS_BAD,
        "NULL template with count 3",
    );
    c.finish();
}

#[test]
#[ignore = "needs the virtual card: run scripts/test.sh"]
fn card_objects_are_read_only() {
    let c = card();
    let m = c.m;
    let h = c.open(CKF_RW_SESSION);
    c.login(h);
    for class in [CKO_CERTIFICATE, CKO_PUBLIC_KEY, CKO_PRIVATE_KEY] {
        let o = c.object(h, class, ID_9A);
        let rv = m.set_attrs(h, o, &[(CKA_LABEL, b"renamed")]);
        expect(
            rv,
            CKR_ATTRIBUTE_READ_ONLY,
            format!("C_SetAttributeValue(class {class})"),
        );
        let rv = m.call("C_DestroyObject", Ptrs::Null, &[h, o]);
        // The token is not CKF_WRITE_PROTECTED (session keys can be made):
        // card objects refuse the action itself.
        expect(
            rv,
            CKR_ACTION_PROHIBITED,
            format!("C_DestroyObject(class {class})"),
        );
        // Still there, unchanged.
        let mut t = [Attr::buf(CKA_LABEL, 64)];
        expect(m.get_attrs(h, o, &mut t), CKR_OK, "CKA_LABEL afterwards");
        assert_ne!(t[0].value(), b"renamed");
    }
    // In a read-only session token objects cannot be destroyed (§5.7.3).
    let ro = c.open(0);
    let cert = c.object(ro, CKO_CERTIFICATE, ID_9A);
    let rv = m.call("C_DestroyObject", Ptrs::Null, &[ro, cert]);
    expect(
        rv,
        CKR_SESSION_READ_ONLY,
        "C_DestroyObject in a read-only session",
    );
    c.finish();
}

#[test]
#[ignore = "needs the virtual card: run scripts/test.sh"]
fn find_objects_state_machine() {
    let c = card();
    let m = c.m;
    let h = c.open(0);
    let certs = ulong(CKO_CERTIFICATE);
    let (rv, _) = m.find(h, 10);
    expect(
        rv,
        CKR_OPERATION_NOT_INITIALIZED,
        "C_FindObjects without C_FindObjectsInit",
    );
    expect(
        m.call("C_FindObjectsFinal", Ptrs::Null, &[h]),
        CKR_OPERATION_NOT_INITIALIZED,
        "C_FindObjectsFinal without C_FindObjectsInit",
    );
    expect(
        m.call("C_FindObjectsInit", Ptrs::Null, &[h, 2]),
        CKR_ARGUMENTS_BAD,
        "C_FindObjectsInit(NULL template, count 2)",
    );
    expect(
        m.find_init(h, &[(CKA_CLASS, &certs)]),
        CKR_OK,
        "C_FindObjectsInit(certificates)",
    );
    expect(
        m.find_init(h, &[]),
        CKR_OPERATION_ACTIVE,
        "C_FindObjectsInit twice",
    );
    // One at a time.
    let mut seen = Vec::new();
    loop {
        let (rv, found) = m.find(h, 1);
        expect(rv, CKR_OK, "C_FindObjects(max 1)");
        match found[..] {
            [] => break,
            [o] => seen.push(o),
            _ => panic!("C_FindObjects(max 1) returned {found:?}"),
        }
        assert!(seen.len() <= 6, "more than 6 certificates: {seen:?}");
    }
    assert_eq!(seen.len(), 6, "certificates before login");
    assert_eq!(
        seen.iter().collect::<HashSet<_>>().len(),
        6,
        "distinct handles {seen:?}"
    );
    let (rv, found) = m.find(h, 10);
    expect(rv, CKR_OK, "C_FindObjects after the end");
    assert!(found.is_empty());
    let (rv, found) = m.find(h, 0);
    expect(rv, CKR_OK, "C_FindObjects(max 0)");
    assert!(found.is_empty());
    expect(
        m.call("C_FindObjectsFinal", Ptrs::Null, &[h]),
        CKR_OK,
        "C_FindObjectsFinal",
    );
    expect(
        m.call("C_FindObjectsFinal", Ptrs::Null, &[h]),
        CKR_OPERATION_NOT_INITIALIZED,
        "C_FindObjectsFinal twice",
    );
    let (rv, _) = m.find(h, 10);
    expect(
        rv,
        CKR_OPERATION_NOT_INITIALIZED,
        "C_FindObjects after C_FindObjectsFinal",
    );
    // Everything public, in one go: the profile, 6 certificates, 6 public keys, the 9E key.
    assert_eq!(c.find(h, &[]).len(), 14, "public objects");
    // A template nothing matches, and a value of the wrong size.
    assert!(c.find(h, &[(CKA_CLASS, &ulong(CKO_SECRET_KEY))]).is_empty());
    assert!(c.find(h, &[(CKA_CLASS, &[1])]).is_empty());
    // Both sessions search independently.
    let h2 = c.open(0);
    expect(
        m.find_init(h, &[(CKA_CLASS, &certs)]),
        CKR_OK,
        "C_FindObjectsInit in session 1",
    );
    expect(
        m.find_init(h2, &[(CKA_CLASS, &certs)]),
        CKR_OK,
        "C_FindObjectsInit in session 2",
    );
    assert_eq!(m.find(h2, 10).1.len(), 6);
    assert_eq!(m.find(h, 10).1.len(), 6);
    c.finish();
}

/// APDUs the virtual card has answered (scripts/test.sh writes the count).
fn apdus() -> Option<u64> {
    let f = std::env::var_os("DCRED_TEST_COUNT_FILE")?;
    std::fs::read_to_string(f).ok()?.trim().parse().ok()
}

#[test]
#[ignore = "needs the virtual card: run scripts/test.sh"]
fn login_errors_spend_no_pin_tries() {
    let c = card();
    let m = c.m;
    let h = c.open(0);
    expect(
        m.call("C_Logout", Ptrs::Null, &[h]),
        CKR_USER_NOT_LOGGED_IN,
        "C_Logout before C_Login",
    );
    let before = apdus();
    let mut sweep = Sweep::default();
    sweep.check(
        "C_Login(CKU_SO)",
        m.login(h, CKU_SO, Some(PIN)),
        CKR_USER_TYPE_INVALID,
    );
    sweep.check(
        "C_Login(user type 7)",
        m.login(h, 7, Some(PIN)),
        CKR_USER_TYPE_INVALID,
    );
    let rv = m.login(h, CKU_CONTEXT_SPECIFIC, Some(PIN));
    sweep.check(
        "C_Login(CKU_CONTEXT_SPECIFIC) with no operation",
        rv,
        CKR_OPERATION_NOT_INITIALIZED,
    );
    sweep.check(
        "C_Login(NULL PIN, 0)",
        m.login(h, CKU_USER, None),
        CKR_ARGUMENTS_BAD,
    );
    let rv = m.call("C_Login", Ptrs::Null, &[h, CKU_USER, 6]);
    sweep.check("C_Login(NULL PIN, 6)", rv, CKR_ARGUMENTS_BAD);
    for pin in [&b"12345"[..], b"123456789", b""] {
        let what = format!("C_Login with a {}-digit PIN", pin.len());
        sweep.check(what, m.login(h, CKU_USER, Some(pin)), CKR_PIN_LEN_RANGE);
    }
    // C_SetPIN in a read-only session, and to or from PINs of the wrong length.
    let rw = c.open(CKF_RW_SESSION);
    sweep.check(
        "C_SetPIN, read-only session",
        m.set_pin(h, PIN, PIN),
        CKR_SESSION_READ_ONLY,
    );
    sweep.check(
        "C_SetPIN to 9 digits",
        m.set_pin(rw, PIN, b"123456789"),
        CKR_PIN_LEN_RANGE,
    );
    sweep.check(
        "C_SetPIN to 5 digits",
        m.set_pin(rw, PIN, b"12345"),
        CKR_PIN_LEN_RANGE,
    );
    sweep.check(
        "C_SetPIN from 5 digits",
        m.set_pin(rw, b"12345", PIN),
        CKR_PIN_LEN_RANGE,
    );
    sweep.done();
    if let (Some(a), Some(b)) = (before, apdus()) {
        assert_eq!(a, b, "the refused logins sent APDUs to the card");
    }
    let (rv, info) = m.token_info(c.slot);
    expect(rv, CKR_OK, "C_GetTokenInfo");
    let low = CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_LOCKED;
    assert_eq!(
        info.flags & low,
        0,
        "PIN tries were spent: flags {:#x}",
        info.flags
    );
    let (rv, info) = m.session_info(h);
    expect(rv, CKR_OK, "C_GetSessionInfo");
    assert_eq!(info.state, CKS_RO_PUBLIC_SESSION, "still not logged in");
    // The right PIN, twice; login state is per token, so in another session too.
    c.login(h);
    expect(
        m.login(h, CKU_USER, Some(PIN)),
        CKR_USER_ALREADY_LOGGED_IN,
        "C_Login twice",
    );
    let h2 = c.open(0);
    expect(
        m.login(h2, CKU_USER, Some(PIN)),
        CKR_USER_ALREADY_LOGGED_IN,
        "C_Login in a second session",
    );
    assert_eq!(m.session_info(h2).1.state, CKS_RO_USER_FUNCTIONS);
    expect(m.call("C_Logout", Ptrs::Null, &[h2]), CKR_OK, "C_Logout");
    expect(
        m.call("C_Logout", Ptrs::Null, &[h]),
        CKR_USER_NOT_LOGGED_IN,
        "C_Logout twice",
    );
    assert_eq!(m.session_info(h).1.state, CKS_RO_PUBLIC_SESSION);
    // A context-specific login (9C) with a PIN of the wrong length or none.
    c.login(h);
    let key9c = c.object(h, CKO_PRIVATE_KEY, ID_9C);
    let ecdsa = Mech::plain(CKM_ECDSA_SHA256);
    expect(
        m.op_init(Op::Sign, h, &ecdsa, key9c),
        CKR_OK,
        "C_SignInit(9C)",
    );
    let before = apdus();
    let rv = m.login(h, CKU_CONTEXT_SPECIFIC, Some(b"12345"));
    expect(
        rv,
        CKR_PIN_LEN_RANGE,
        "context-specific login with 5 digits",
    );
    let rv = m.login(h, CKU_CONTEXT_SPECIFIC, None);
    expect(
        rv,
        CKR_ARGUMENTS_BAD,
        "context-specific login with a NULL PIN",
    );
    if let (Some(a), Some(b)) = (before, apdus()) {
        assert_eq!(
            a, b,
            "the refused context-specific logins sent APDUs to the card"
        );
    }
    let (rv, _, _) = m.op(Op::Sign, h, b"data", Out::Buf(64));
    expect(
        rv,
        CKR_USER_NOT_LOGGED_IN,
        "C_Sign with 9C without a context-specific login",
    );
    // Closing the last session logs the user out (PKCS#11 3.0 §5.6.2).
    for s in [h, h2, rw] {
        expect(
            m.call("C_CloseSession", Ptrs::Null, &[s]),
            CKR_OK,
            "C_CloseSession",
        );
    }
    let h = c.open(0);
    assert_eq!(
        m.session_info(h).1.state,
        CKS_RO_PUBLIC_SESSION,
        "after the last close"
    );
    // Re-read from the card: still no try spent.
    expect(m.finalize(false), CKR_OK, "C_Finalize");
    expect(m.initialize(crate::ffi::Init::Null), CKR_OK, "C_Initialize");
    let (rv, info) = m.token_info(c.slot);
    expect(rv, CKR_OK, "C_GetTokenInfo after re-initialisation");
    assert_eq!(
        info.flags & low,
        0,
        "PIN tries were spent: flags {:#x}",
        info.flags
    );
    c.finish();
}

#[test]
#[ignore = "needs the virtual card: run scripts/test.sh"]
fn sign_two_call_pattern_and_operation_state() {
    let c = card();
    let m = c.m;
    let h = c.open(0);
    c.login(h);
    let key = c.object(h, CKO_PRIVATE_KEY, ID_9A);
    let pubkey = c.object(h, CKO_PUBLIC_KEY, ID_9A);
    let mech = Mech::plain(CKM_SHA256_RSA_PKCS);
    let data = b"hostile input, friendly data";
    let (rv, _, _) = m.op(Op::Sign, h, data, Out::Buf(256));
    expect(
        rv,
        CKR_OPERATION_NOT_INITIALIZED,
        "C_Sign without C_SignInit",
    );
    expect(m.op_init(Op::Sign, h, &mech, key), CKR_OK, "C_SignInit");
    expect(
        m.op_init(Op::Sign, h, &mech, key),
        CKR_OPERATION_ACTIVE,
        "C_SignInit twice",
    );
    let (rv, len, _) = m.op(Op::Sign, h, data, Out::Query);
    expect(rv, CKR_OK, "C_Sign length query");
    assert_eq!(len, 256, "RSA-2048 signature length");
    let (rv, len, _) = m.op(Op::Sign, h, data, Out::Buf(10));
    expect(rv, CKR_BUFFER_TOO_SMALL, "C_Sign into 10 bytes");
    assert_eq!(len, 256, "length after CKR_BUFFER_TOO_SMALL");
    let (rv, len, sig) = m.op(Op::Sign, h, data, Out::Buf(300));
    expect(rv, CKR_OK, "C_Sign into 300 bytes");
    assert_eq!((len, sig.len()), (256, 256));
    let (rv, _, _) = m.op(Op::Sign, h, data, Out::Buf(256));
    expect(
        rv,
        CKR_OPERATION_NOT_INITIALIZED,
        "C_Sign after the signature",
    );
    expect(
        m.call("C_SignFinal", Ptrs::Null, &[h]),
        CKR_ARGUMENTS_BAD,
        "C_SignFinal(NULL, NULL)",
    );
    // The signature verifies through the module's C_Verify.
    let verify = |sig: &[u8]| {
        expect(
            m.op_init(Op::Verify, h, &mech, pubkey),
            CKR_OK,
            "C_VerifyInit",
        );
        m.verify(h, data, sig)
    };
    expect(verify(&sig), CKR_OK, "C_Verify");
    let mut bad = sig.clone();
    bad[7] ^= 1;
    expect(
        verify(&bad),
        CKR_SIGNATURE_INVALID,
        "C_Verify of a damaged signature",
    );
    expect(
        verify(&sig[..255]),
        CKR_SIGNATURE_LEN_RANGE,
        "C_Verify of a short signature",
    );
    // RSA PKCS#1 v1.5 is deterministic: signing again gives the same bytes.
    expect(m.op_init(Op::Sign, h, &mech, key), CKR_OK, "C_SignInit");
    let (rv, _, again) = m.op(Op::Sign, h, data, Out::Buf(256));
    expect(rv, CKR_OK, "C_Sign again");
    assert_eq!(again, sig, "RSA PKCS#1 v1.5 signatures are deterministic");
    c.finish();
}

#[test]
#[ignore = "needs the virtual card: run scripts/test.sh"]
fn decrypt_two_call_pattern() {
    let c = card();
    let m = c.m;
    let h = c.open(0);
    c.login(h);
    let key = c.object(h, CKO_PRIVATE_KEY, ID_9D);
    let secret = b"thirty-two bytes of session key!";
    let ct = openssl_encrypt("9d", secret);
    assert_eq!(ct.len(), 256);
    let mech = Mech::plain(CKM_RSA_PKCS);
    let (rv, _, _) = m.op(Op::Decrypt, h, &ct, Out::Buf(256));
    expect(
        rv,
        CKR_OPERATION_NOT_INITIALIZED,
        "C_Decrypt without C_DecryptInit",
    );
    expect(
        m.op_init(Op::Decrypt, h, &mech, key),
        CKR_OK,
        "C_DecryptInit",
    );
    expect(
        m.op_init(Op::Decrypt, h, &mech, key),
        CKR_OPERATION_ACTIVE,
        "C_DecryptInit twice",
    );
    let (rv, len, _) = m.op(Op::Decrypt, h, &ct, Out::Query);
    expect(rv, CKR_OK, "C_Decrypt length query");
    assert!(
        len >= secret.len() as CK_ULONG && len <= 256,
        "length query {len}"
    );
    let (rv, len, _) = m.op(Op::Decrypt, h, &ct, Out::Buf(10));
    expect(rv, CKR_BUFFER_TOO_SMALL, "C_Decrypt into 10 bytes");
    assert!(
        len >= secret.len() as CK_ULONG,
        "length after CKR_BUFFER_TOO_SMALL: {len}"
    );
    let (rv, len, pt) = m.op(Op::Decrypt, h, &ct, Out::Buf(len as usize));
    expect(rv, CKR_OK, "C_Decrypt into the length it asked for");
    assert_eq!((len as usize, &pt[..]), (secret.len(), &secret[..]));
    let (rv, _, _) = m.op(Op::Decrypt, h, &ct, Out::Buf(256));
    expect(
        rv,
        CKR_OPERATION_NOT_INITIALIZED,
        "C_Decrypt after the plaintext",
    );
    c.finish();
}

#[test]
#[ignore = "needs the virtual card: run scripts/test.sh"]
fn encrypt_two_call_pattern_round_trips() {
    let c = card();
    let m = c.m;
    let h = c.open(0);
    let pubkey = c.object(h, CKO_PUBLIC_KEY, ID_9D);
    let mech = Mech::plain(CKM_RSA_PKCS);
    let msg = b"for the key management key";
    let (rv, _, _) = m.op(Op::Encrypt, h, msg, Out::Query);
    expect(
        rv,
        CKR_OPERATION_NOT_INITIALIZED,
        "C_Encrypt without C_EncryptInit",
    );
    expect(
        m.op_init(Op::Encrypt, h, &mech, pubkey),
        CKR_OK,
        "C_EncryptInit",
    );
    expect(
        m.op_init(Op::Encrypt, h, &mech, pubkey),
        CKR_OPERATION_ACTIVE,
        "C_EncryptInit twice",
    );
    let (rv, len, _) = m.op(Op::Encrypt, h, msg, Out::Query);
    expect(rv, CKR_OK, "C_Encrypt length query");
    assert_eq!(len, 256);
    let (rv, len, _) = m.op(Op::Encrypt, h, msg, Out::Buf(10));
    expect(rv, CKR_BUFFER_TOO_SMALL, "C_Encrypt into 10 bytes");
    assert_eq!(len, 256);
    let (rv, _, ct) = m.op(Op::Encrypt, h, msg, Out::Buf(256));
    expect(rv, CKR_OK, "C_Encrypt");
    assert_eq!(ct.len(), 256);
    let (rv, _, _) = m.op(Op::Encrypt, h, msg, Out::Buf(256));
    expect(
        rv,
        CKR_OPERATION_NOT_INITIALIZED,
        "C_Encrypt after the ciphertext",
    );
    c.login(h);
    let key = c.object(h, CKO_PRIVATE_KEY, ID_9D);
    expect(
        m.op_init(Op::Decrypt, h, &mech, key),
        CKR_OK,
        "C_DecryptInit",
    );
    let (rv, _, pt) = m.op(Op::Decrypt, h, &ct, Out::Buf(256));
    expect(rv, CKR_OK, "C_Decrypt");
    assert_eq!(pt, msg);
    c.finish();
}

#[test]
#[ignore = "needs the virtual card: run scripts/test.sh"]
fn digest_two_call_pattern() {
    let c = card();
    let m = c.m;
    let h = c.open(0);
    let data = b"digest me";
    let mech = Mech::plain(CKM_SHA256);
    let (rv, _, _) = m.op(Op::Digest, h, data, Out::Buf(32));
    expect(
        rv,
        CKR_OPERATION_NOT_INITIALIZED,
        "C_Digest without C_DigestInit",
    );
    expect(m.op_init(Op::Digest, h, &mech, 0), CKR_OK, "C_DigestInit");
    expect(
        m.op_init(Op::Digest, h, &mech, 0),
        CKR_OPERATION_ACTIVE,
        "C_DigestInit twice",
    );
    let (rv, len, _) = m.op(Op::Digest, h, data, Out::Query);
    expect(rv, CKR_OK, "C_Digest length query");
    assert_eq!(len, 32);
    let (rv, len, _) = m.op(Op::Digest, h, data, Out::Buf(10));
    expect(rv, CKR_BUFFER_TOO_SMALL, "C_Digest into 10 bytes");
    assert_eq!(len, 32);
    let (rv, _, d) = m.op(Op::Digest, h, data, Out::Buf(64));
    expect(rv, CKR_OK, "C_Digest");
    assert_eq!(d, sha256(data));
    let (rv, _, _) = m.op(Op::Digest, h, data, Out::Buf(32));
    expect(
        rv,
        CKR_OPERATION_NOT_INITIALIZED,
        "C_Digest after the digest",
    );
    c.finish();
}

#[test]
#[ignore = "needs the virtual card: run scripts/test.sh"]
fn errors_end_the_operation() {
    let c = card();
    let m = c.m;
    let h = c.open(0);
    c.login(h);
    let pkcs = Mech::plain(CKM_RSA_PKCS);
    let key9a = c.object(h, CKO_PRIVATE_KEY, ID_9A);
    let key9d = c.object(h, CKO_PRIVATE_KEY, ID_9D);
    let pub9d = c.object(h, CKO_PUBLIC_KEY, ID_9D);
    let big = [0x55u8; 300];
    // C_Sign: 300 bytes do not fit a 2048-bit PKCS#1 block.
    expect(m.op_init(Op::Sign, h, &pkcs, key9a), CKR_OK, "C_SignInit");
    let (rv, _, _) = m.op(Op::Sign, h, &big, Out::Buf(256));
    expect(rv, CKR_DATA_LEN_RANGE, "C_Sign(CKM_RSA_PKCS, 300 bytes)");
    let (rv, _, _) = m.op(Op::Sign, h, b"short", Out::Buf(256));
    expect(rv, CKR_OPERATION_NOT_INITIALIZED, "C_Sign after the error");
    // C_Encrypt: the same for encryption.
    expect(
        m.op_init(Op::Encrypt, h, &pkcs, pub9d),
        CKR_OK,
        "C_EncryptInit",
    );
    let (rv, _, _) = m.op(Op::Encrypt, h, &big, Out::Buf(256));
    expect(rv, CKR_DATA_LEN_RANGE, "C_Encrypt(CKM_RSA_PKCS, 300 bytes)");
    let (rv, _, _) = m.op(Op::Encrypt, h, b"short", Out::Buf(256));
    expect(
        rv,
        CKR_OPERATION_NOT_INITIALIZED,
        "C_Encrypt after the error",
    );
    // C_Decrypt: a ciphertext of the wrong length.
    expect(
        m.op_init(Op::Decrypt, h, &pkcs, key9d),
        CKR_OK,
        "C_DecryptInit",
    );
    let (rv, _, _) = m.op(Op::Decrypt, h, &[1; 10], Out::Buf(256));
    expect(rv, CKR_ENCRYPTED_DATA_LEN_RANGE, "C_Decrypt of 10 bytes");
    let (rv, _, _) = m.op(Op::Decrypt, h, &[1; 256], Out::Buf(256));
    expect(
        rv,
        CKR_OPERATION_NOT_INITIALIZED,
        "C_Decrypt after the error",
    );
    // C_Verify ends the operation whatever the result.
    let pub9a = c.object(h, CKO_PUBLIC_KEY, ID_9A);
    expect(
        m.op_init(Op::Verify, h, &pkcs, pub9a),
        CKR_OK,
        "C_VerifyInit",
    );
    expect(
        m.verify(h, b"data", &[0; 256]),
        CKR_SIGNATURE_INVALID,
        "C_Verify of zeros",
    );
    expect(
        m.verify(h, b"data", &[0; 256]),
        CKR_OPERATION_NOT_INITIALIZED,
        "C_Verify after it",
    );
    c.finish();
}

#[test]
#[ignore = "needs the virtual card: run scripts/test.sh"]
fn mechanism_parameters_and_key_checks() {
    let c = card();
    let m = c.m;
    let h = c.open(0);
    c.login(h);
    let key9a = c.object(h, CKO_PRIVATE_KEY, ID_9A);
    let key9c = c.object(h, CKO_PRIVATE_KEY, ID_9C);
    let key9d = c.object(h, CKO_PRIVATE_KEY, ID_9D);
    let pub9d = c.object(h, CKO_PUBLIC_KEY, ID_9D);
    let key9e = c.object(h, CKO_PRIVATE_KEY, ID_9E);
    let plain = Mech::plain;
    let with = |mechanism, param| Mech { mechanism, param };
    let bytes = |n| Param::Bytes(vec![0; n]);
    let pss = |hash, mgf, salt| Param::Pss { hash, mgf, salt };
    let oaep = |hash, mgf| Param::Oaep { hash, mgf };
    const PARAM: CK_RV = CKR_MECHANISM_PARAM_INVALID;
    const TYPE: CK_RV = CKR_KEY_TYPE_INCONSISTENT;
    const MECH: CK_RV = CKR_MECHANISM_INVALID;
    use Op::{Decrypt, Digest, Encrypt, Sign};
    #[rustfmt::skip]
    let cases: Vec<(Op, Mech, CK_OBJECT_HANDLE, CK_RV)> = vec![
        // Missing, wrong-sized or wrong-valued parameters.
        (Decrypt, plain(CKM_RSA_PKCS_OAEP), key9d, PARAM),
        (Encrypt, plain(CKM_RSA_PKCS_OAEP), pub9d, PARAM),
        (Decrypt, with(CKM_RSA_PKCS_OAEP, bytes(7)), key9d, PARAM),
        (Decrypt, with(CKM_RSA_PKCS_OAEP, oaep(CKM_MD5, CKG_MGF1_SHA1)), key9d, PARAM),
        (Sign, plain(CKM_RSA_PKCS_PSS), key9a, PARAM),
        (Sign, with(CKM_RSA_PKCS_PSS, bytes(7)), key9a, PARAM),
        (Sign, with(CKM_RSA_PKCS_PSS, bytes(100)), key9a, PARAM),
        (Sign, with(CKM_RSA_PKCS_PSS, Param::NullWithLen(24)), key9a, PARAM),
        (Sign, with(CKM_RSA_PKCS_PSS, pss(CKM_SHA256, 0x77, 32)), key9a, PARAM),
        (Sign, with(CKM_SHA256_RSA_PKCS_PSS, pss(CKM_SHA_1, CKG_MGF1_SHA1, 20)), key9a, PARAM),
        (Sign, with(CKM_RSA_PKCS, bytes(4)), key9a, PARAM),
        // Mechanism and key type disagree.
        (Sign, plain(CKM_ECDSA), key9a, TYPE),
        (Sign, plain(CKM_ECDSA_SHA256), key9a, TYPE),
        (Sign, plain(CKM_RSA_PKCS), key9e, TYPE),
        (Decrypt, plain(CKM_RSA_PKCS), key9c, TYPE),
        // Mechanisms the token lacks, or not for this function.
        (Sign, plain(CKM_AES_ECB), key9a, MECH),
        (Decrypt, plain(CKM_AES_ECB), key9d, MECH),
        (Digest, plain(CKM_AES_ECB), 0, MECH),
        (Sign, plain(0xdead_beef), key9a, MECH),
        (Sign, plain(CKM_SHA256), key9e, MECH),
        (Digest, plain(CKM_RSA_PKCS), 0, MECH),
        (Decrypt, plain(CKM_SHA256_RSA_PKCS), key9d, MECH),
        // 9D is a key management key: CKA_SIGN is false.
        (Sign, plain(CKM_RSA_PKCS), key9d, CKR_KEY_FUNCTION_NOT_PERMITTED),
    ];
    let mut sweep = Sweep::default();
    for (op, mech, key, want) in &cases {
        let what = format!(
            "{op:?}Init({:#x}, {:?}) with key {key}",
            mech.mechanism, mech.param
        );
        sweep.check(&what, m.op_init(*op, h, mech, *key), *want);
        // A refused init leaves no operation behind.
        let rv = m.op(*op, h, b"x", Out::Query).0;
        sweep.check(
            format!("{op:?} after {what}"),
            rv,
            CKR_OPERATION_NOT_INITIALIZED,
        );
    }
    sweep.done();
    // The right parameters work.
    let good = with(
        CKM_SHA256_RSA_PKCS_PSS,
        pss(CKM_SHA256, CKG_MGF1_SHA256, 32),
    );
    expect(
        m.op_init(Sign, h, &good, key9a),
        CKR_OK,
        "C_SignInit(SHA256-RSA-PSS)",
    );
    let (rv, _, sig) = m.op(Sign, h, b"pss", Out::Buf(256));
    expect(rv, CKR_OK, "C_Sign(SHA256-RSA-PSS)");
    assert_eq!(sig.len(), 256);
    let good = with(CKM_RSA_PKCS_OAEP, oaep(CKM_SHA256, CKG_MGF1_SHA256));
    expect(
        m.op_init(Encrypt, h, &good, pub9d),
        CKR_OK,
        "C_EncryptInit(OAEP)",
    );
    let (rv, _, ct) = m.op(Encrypt, h, b"oaep", Out::Buf(256));
    expect(rv, CKR_OK, "C_Encrypt(OAEP)");
    expect(
        m.op_init(Decrypt, h, &good, key9d),
        CKR_OK,
        "C_DecryptInit(OAEP)",
    );
    let (rv, _, pt) = m.op(Decrypt, h, &ct, Out::Buf(256));
    expect(rv, CKR_OK, "C_Decrypt(OAEP)");
    assert_eq!(pt, b"oaep");
    c.finish();
}

#[test]
#[ignore = "needs the virtual card: run scripts/test.sh"]
fn unsupported_functions() {
    let c = card();
    let m = c.m;
    let h = c.open(CKF_RW_SESSION);
    let cert = c.object(h, CKO_CERTIFICATE, ID_9A);
    let mut sweep = Sweep::default();
    for name in UNSUPPORTED {
        // C_CopyObject gets a real object to copy; the rest only the session.
        let ints = if *name == "C_CopyObject" {
            vec![h, cert]
        } else {
            vec![h]
        };
        for ptrs in [Ptrs::Null, Ptrs::Scratch] {
            if ptrs == Ptrs::Scratch && ints.len() > 1 {
                continue;
            }
            let rv = m.call(name, ptrs, &ints);
            sweep.check(
                format!("{name} ({ptrs:?} pointers)"),
                rv,
                CKR_FUNCTION_NOT_SUPPORTED,
            );
        }
    }
    sweep.check(
        "C_InitToken",
        m.init_token(c.slot, PIN),
        CKR_FUNCTION_NOT_SUPPORTED,
    );
    for name in ["C_GetFunctionStatus", "C_CancelFunction"] {
        sweep.check(
            name,
            m.call(name, Ptrs::Null, &[h]),
            CKR_FUNCTION_NOT_PARALLEL,
        );
    }
    // C_InitPIN needs the SO, who cannot log in here.
    sweep.check(
        "C_InitPIN",
        m.call("C_InitPIN", Ptrs::Scratch, &[h]),
        CKR_USER_NOT_LOGGED_IN,
    );
    let rv = m.call("C_SeedRandom", Ptrs::Scratch, &[h]);
    sweep.check("C_SeedRandom", rv, CKR_RANDOM_SEED_NOT_SUPPORTED);
    let rv = m.call("C_GenerateRandom", Ptrs::Scratch, &[h]);
    sweep.check("C_GenerateRandom of 0 bytes", rv, CKR_OK);
    sweep.done();
    // The session survived all of it.
    expect(m.session_info(h).0, CKR_OK, "C_GetSessionInfo");
    expect(
        m.call("C_CloseSession", Ptrs::Null, &[h]),
        CKR_OK,
        "C_CloseSession",
    );
    c.finish();
}

/// PKCS#11 3.0 §5.8–5.14: a call to C_Encrypt, C_Decrypt, C_Digest or C_Sign
/// "always terminates the active … operation unless it returns
/// CKR_BUFFER_TOO_SMALL or is a successful call … to determine the length",
/// C_Verify always terminates it, and an error in a C_*Update terminates it.
#[test]
#[ignore = "needs the virtual card: run scripts/test.sh"]
fn regression_arguments_bad_ends_the_active_operation() {
    let c = card();
    let m = c.m;
    let h = c.open(0);
    c.login(h);
    let key9a = c.object(h, CKO_PRIVATE_KEY, ID_9A);
    let pub9a = c.object(h, CKO_PUBLIC_KEY, ID_9A);
    let key9d = c.object(h, CKO_PRIVATE_KEY, ID_9D);
    let sha = Mech::plain(CKM_SHA256_RSA_PKCS);
    let pkcs = Mech::plain(CKM_RSA_PKCS);
    let digest = Mech::plain(CKM_SHA256);
    // (operation, mechanism, key, failing call, its integer arguments after h)
    let cases: Vec<(Op, &Mech, CK_OBJECT_HANDLE, &str, Vec<CK_ULONG>)> = vec![
        (Op::Sign, &sha, key9a, "C_Sign", vec![]),
        (Op::Sign, &sha, key9a, "C_SignUpdate", vec![16]),
        (Op::Sign, &sha, key9a, "C_SignFinal", vec![]),
        (Op::Verify, &sha, pub9a, "C_Verify", vec![16, 256]),
        (Op::Verify, &sha, pub9a, "C_VerifyUpdate", vec![16]),
        (Op::Encrypt, &pkcs, pub9a, "C_Encrypt", vec![]),
        (Op::Encrypt, &pkcs, pub9a, "C_EncryptUpdate", vec![16]),
        (Op::Decrypt, &pkcs, key9d, "C_Decrypt", vec![]),
        (Op::Decrypt, &pkcs, key9d, "C_DecryptUpdate", vec![16]),
        (Op::Digest, &digest, 0, "C_Digest", vec![]),
        (Op::Digest, &digest, 0, "C_DigestUpdate", vec![16]),
    ];
    let mut sweep = Sweep::default();
    for (op, mech, key, name, rest) in cases {
        expect(m.op_init(op, h, mech, key), CKR_OK, format!("{op:?}Init"));
        let ints: Vec<CK_ULONG> = std::iter::once(h).chain(rest).collect();
        expect(
            m.call(name, Ptrs::Null, &ints),
            CKR_ARGUMENTS_BAD,
            format!("{name} with NULL pointers"),
        );
        // Ended: a new init is accepted (CKR_OPERATION_ACTIVE if not).
        let rv = m.op_init(op, h, mech, key);
        sweep.check(format!("{op:?}Init after {name} failed"), rv, CKR_OK);
        // Clean up whichever way it went.
        let _ = match op {
            Op::Verify => m.verify(h, b"x", &[0; 256]),
            op => m.op(op, h, b"x", Out::Buf(256)).0,
        };
    }
    sweep.done();
    c.finish();
}

/// PKCS#11 3.0 §5.6.11: "When C_Logout successfully executes, any of the
/// application's handles to private objects become invalid (even if a user
/// is later logged back into the token, those handles remain invalid)."
#[test]
#[ignore = "needs the virtual card: run scripts/test.sh"]
fn regression_private_handles_stay_invalid_after_logging_in_again() {
    let c = card();
    let m = c.m;
    let h = c.open(0);
    c.login(h);
    let old = c.object(h, CKO_PRIVATE_KEY, ID_9A);
    expect(m.call("C_Logout", Ptrs::Null, &[h]), CKR_OK, "C_Logout");
    c.login(h);
    let mut sweep = Sweep::default();
    let mut t = [Attr::buf(CKA_ID, 8)];
    let rv = m.get_attrs(h, old, &mut t);
    sweep.check(
        "C_GetAttributeValue(old 9A key handle)",
        rv,
        CKR_OBJECT_HANDLE_INVALID,
    );
    let sha = Mech::plain(CKM_SHA256_RSA_PKCS);
    let rv = m.op_init(Op::Sign, h, &sha, old);
    sweep.check("C_SignInit(old 9A key handle)", rv, CKR_KEY_HANDLE_INVALID);
    // The key itself is found again, under a handle that works.
    let new = c.object(h, CKO_PRIVATE_KEY, ID_9A);
    let mut t = [Attr::buf(CKA_ID, 8)];
    sweep.check(
        "C_GetAttributeValue(new 9A key handle)",
        m.get_attrs(h, new, &mut t),
        CKR_OK,
    );
    sweep.done();
    c.finish();
}

/// PKCS#11 3.0 §5.7.8: C_FindObjects returns up to ulMaxObjectCount handles;
/// any count the caller's array holds is valid, so a huge one after a first
/// batch must return the rest.
#[test]
#[ignore = "needs the virtual card: run scripts/test.sh"]
fn regression_find_objects_with_a_huge_max_count() {
    let c = card();
    let m = c.m;
    let h = c.open(0);
    let mut sweep = Sweep::default();
    for declared in [CK_ULONG::MAX, CK_ULONG::MAX - 1, 1 << 63] {
        expect(m.find_init(h, &[]), CKR_OK, "C_FindObjectsInit(all)");
        let (rv, first) = m.find(h, 2);
        expect(rv, CKR_OK, "C_FindObjects(max 2)");
        assert_eq!(first.len(), 2);
        let (rv, rest) = m.find_overstating(h, declared);
        sweep.check(
            format!("C_FindObjects(max {declared:#x}) after 2 of 14"),
            rv,
            CKR_OK,
        );
        if rv == CKR_OK {
            assert_eq!(rest.len(), 12, "the 12 public objects left");
        }
        expect(
            m.call("C_FindObjectsFinal", Ptrs::Null, &[h]),
            CKR_OK,
            "C_FindObjectsFinal",
        );
    }
    // From the start a huge count is fine already.
    expect(m.find_init(h, &[]), CKR_OK, "C_FindObjectsInit(all)");
    let (rv, all) = m.find_overstating(h, CK_ULONG::MAX);
    sweep.check("C_FindObjects(max CK_ULONG_MAX) from the start", rv, CKR_OK);
    assert_eq!(all.len(), 14);
    sweep.done();
    c.finish();
}

/// Sign and verify with CKM_RSA_PKCS_PSS and a salt length that cannot fit a
/// 2048-bit key: refused at init (CKR_MECHANISM_PARAM_INVALID) or at the
/// operation (CKR_DATA_LEN_RANGE / CKR_SIGNATURE_INVALID), never an internal error.
fn oversized_pss_salt(c: &Card, h: CK_SESSION_HANDLE, salt: CK_ULONG, sweep: &mut Sweep) {
    let m = c.m;
    let key = c.object(h, CKO_PRIVATE_KEY, ID_9A);
    let pubkey = c.object(h, CKO_PUBLIC_KEY, ID_9A);
    let param = Param::Pss {
        hash: CKM_SHA256,
        mgf: CKG_MGF1_SHA256,
        salt,
    };
    let mech = Mech {
        mechanism: CKM_RSA_PKCS_PSS,
        param,
    };
    let hash = sha256(b"salted");
    let init = [CKR_OK, CKR_MECHANISM_PARAM_INVALID];
    let rv = m.op_init(Op::Sign, h, &mech, key);
    sweep.check_any(format!("C_SignInit(PSS, sLen {salt:#x})"), rv, &init);
    if rv == CKR_OK {
        let rv = m.op(Op::Sign, h, &hash, Out::Buf(256)).0;
        let ok = [CKR_MECHANISM_PARAM_INVALID, CKR_DATA_LEN_RANGE];
        sweep.check_any(format!("C_Sign(PSS, sLen {salt:#x})"), rv, &ok);
    }
    let rv = m.op_init(Op::Verify, h, &mech, pubkey);
    sweep.check_any(format!("C_VerifyInit(PSS, sLen {salt:#x})"), rv, &init);
    if rv == CKR_OK {
        let rv = m.verify(h, &hash, &[0x5a; 256]);
        let ok = [CKR_MECHANISM_PARAM_INVALID, CKR_SIGNATURE_INVALID];
        sweep.check_any(format!("C_Verify(PSS, sLen {salt:#x})"), rv, &ok);
    }
}

#[test]
#[ignore = "needs the virtual card: run scripts/test.sh"]
fn pss_salt_longer_than_the_key_is_refused() {
    let c = card();
    let h = c.open(0);
    c.login(h);
    let mut sweep = Sweep::default();
    for salt in [223, 300, 1 << 40] {
        oversized_pss_salt(&c, h, salt, &mut sweep);
    }
    sweep.done();
    c.finish();
}

#[test]
#[ignore = "needs the virtual card: run scripts/test.sh"]
fn regression_pss_salt_length_near_the_maximum_is_refused() {
    let c = card();
    let h = c.open(0);
    c.login(h);
    let mut sweep = Sweep::default();
    for salt in [CK_ULONG::MAX, CK_ULONG::MAX - 33] {
        oversized_pss_salt(&c, h, salt, &mut sweep);
    }
    sweep.done();
    c.finish();
}

/// The environment variable naming the scenario [`child_scenario`] runs.
const CHILD: &str = "DCRED_ABI_CHILD";

/// Scenarios that may kill their process run here, in a child process that
/// [`run_child`] starts (this test binary, filtered to this test). Without
/// `DCRED_ABI_CHILD` this test does nothing.
#[test]
#[ignore = "needs the virtual card: run scripts/test.sh"]
fn child_scenario() {
    let Ok(name) = std::env::var(CHILD) else {
        return;
    };
    let rv = match name.as_str() {
        "derive-huge-secret" => derive_huge_secret(),
        other => panic!("unknown child scenario {other}"),
    };
    println!("{CHILD}_RV={rv:#x}");
}

/// Run a [`child_scenario`]: whether the child survived, and the CK_RV it reported.
fn run_child(scenario: &str) -> (std::process::ExitStatus, Option<CK_RV>, String) {
    let exe = std::env::current_exe().expect("test executable");
    let out = Command::new(exe)
        .args([
            "card::child_scenario",
            "--exact",
            "--include-ignored",
            "--nocapture",
        ])
        .env(CHILD, scenario)
        .output()
        .expect("run the child test process");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let rv = stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{CHILD}_RV=0x")))
        .and_then(|v| CK_RV::from_str_radix(v.trim(), 16).ok());
    let log = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    (out.status, rv, log)
}

/// ECDH with the P-384 key 83 and the X9.63 KDF into a generic secret of
/// 2^60 bytes (after checking that 32 bytes work).
fn derive_huge_secret() -> CK_RV {
    let c = card();
    let m = c.m;
    let h = c.open(0);
    c.login(h);
    let key = c.object(h, CKO_PRIVATE_KEY, ID_83);
    let pubkey = c.object(h, CKO_PUBLIC_KEY, ID_83);
    let mut t = [Attr::buf(CKA_EC_POINT, 128)];
    expect(m.get_attrs(h, pubkey, &mut t), CKR_OK, "CKA_EC_POINT of 83");
    let point = t[0].value().to_vec();
    let secret = |len: CK_ULONG| {
        let class = ulong(CKO_SECRET_KEY);
        let kind = ulong(CKK_GENERIC_SECRET);
        let len = ulong(len);
        let t: [(CK_ATTRIBUTE_TYPE, &[u8]); 3] = [
            (CKA_CLASS, &class),
            (CKA_KEY_TYPE, &kind),
            (CKA_VALUE_LEN, &len),
        ];
        m.derive_ecdh(h, key, CKD_SHA256_KDF, &point, &t).0
    };
    expect(secret(32), CKR_OK, "C_DeriveKey of a 32-byte secret");
    secret(1 << 60)
}

#[test]
#[ignore = "needs the virtual card: run scripts/test.sh"]
fn regression_derive_of_a_huge_secret_is_refused_and_survived() {
    let _serial = Fixture::uninitialized();
    assert!(
        std::env::var_os("DCRED_TEST_ENV").is_some(),
        "needs scripts/test.sh"
    );
    let (status, rv, log) = run_child("derive-huge-secret");
    assert!(
        status.success(),
        "the process did not survive ({status}):\n{log}"
    );
    let rv = rv.expect("the child reports a CK_RV");
    let refusals = [
        CKR_KEY_SIZE_RANGE,
        CKR_ATTRIBUTE_VALUE_INVALID,
        CKR_TEMPLATE_INCONSISTENT,
        CKR_HOST_MEMORY,
    ];
    assert!(
        refusals.contains(&rv),
        "C_DeriveKey(2^60 bytes): {}",
        crate::rv_name(rv)
    );
}
