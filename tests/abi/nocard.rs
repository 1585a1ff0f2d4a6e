//! Tests that need no card: initialisation, information, interfaces,
//! function lists, and invalid slot and session handles.

use std::collections::HashSet;
use std::ffi::CStr;

use cryptoki_sys::*;

use crate::ffi::{Init, Ptrs};
use crate::{check_padded, expect, session_functions, Fixture, Sweep, NON_SESSION};

/// Invalid session handles: `CK_INVALID_HANDLE` and one never handed out.
const BAD_SESSIONS: [CK_SESSION_HANDLE; 2] = [CK_INVALID_HANDLE, 0xdead_beef];

/// A slot id no reader gets.
const BAD_SLOT: CK_SLOT_ID = 0xdead;

/// Functions that work before `C_Initialize` (PKCS#11 3.0 §5.4).
const BEFORE_INIT_OK: [&str; 4] = [
    "C_Initialize",
    "C_GetFunctionList",
    "C_GetInterfaceList",
    "C_GetInterface",
];

#[test]
fn every_function_before_initialize_is_not_initialized() {
    let fx = Fixture::uninitialized();
    let m = fx.m;
    let mut sweep = Sweep::default();
    for f in m
        .funcs()
        .iter()
        .filter(|f| !BEFORE_INIT_OK.contains(&f.name))
    {
        sweep.check(
            f.name,
            f.call(Ptrs::Null, &[]),
            CKR_CRYPTOKI_NOT_INITIALIZED,
        );
    }
    // The 3.0 list has 92 entries; all but the four above need C_Initialize.
    assert_eq!(sweep.done(), 88, "functions swept");
    // Nothing above initialised the module by accident.
    expect(
        m.finalize(false),
        CKR_CRYPTOKI_NOT_INITIALIZED,
        "C_Finalize",
    );
    expect(
        m.initialize(Init::Null),
        CKR_OK,
        "C_Initialize after the sweep",
    );
    fx.finish();
}

#[test]
fn initialize_arguments() {
    let fx = Fixture::uninitialized();
    let m = fx.m;
    let args = |mutex, flags, reserved| Init::Args {
        mutex,
        flags,
        reserved,
    };
    // PKCS#11 3.0 §5.4.1: pReserved must be NULL; the callbacks all or none.
    let bad = [
        ("pReserved non-NULL", args([false; 4], 0, true)),
        (
            "pReserved non-NULL, OS locking",
            args([false; 4], CKF_OS_LOCKING_OK, true),
        ),
        (
            "CreateMutex only",
            args([true, false, false, false], 0, false),
        ),
        (
            "Create+DestroyMutex",
            args([true, true, false, false], 0, false),
        ),
        (
            "all but UnlockMutex",
            args([true, true, true, false], CKF_OS_LOCKING_OK, false),
        ),
        (
            "UnlockMutex only",
            args([false, false, false, true], 0, false),
        ),
    ];
    for (what, init) in bad {
        expect(
            m.initialize(init),
            CKR_ARGUMENTS_BAD,
            format!("C_Initialize({what})"),
        );
        // ... and the module stays uninitialised.
        expect(
            m.finalize(false),
            CKR_CRYPTOKI_NOT_INITIALIZED,
            format!("C_Finalize after {what}"),
        );
    }
    let good = [
        ("no callbacks, no flags", args([false; 4], 0, false)),
        ("OS locking", args([false; 4], CKF_OS_LOCKING_OK, false)),
        (
            "four dummy callbacks, OS locking",
            args([true; 4], CKF_OS_LOCKING_OK, false),
        ),
    ];
    for (what, init) in good {
        expect(m.initialize(init), CKR_OK, format!("C_Initialize({what})"));
        expect(m.get_info().0, CKR_OK, format!("C_GetInfo after {what}"));
        expect(
            m.finalize(false),
            CKR_OK,
            format!("C_Finalize after {what}"),
        );
    }
    // PKCS#11 3.0 §5.4.1 case 3: callbacks without CKF_OS_LOCKING_OK must be
    // used or refused; the module locks with OS primitives only, so it refuses.
    expect(
        m.initialize(args([true; 4], 0, false)),
        CKR_CANT_LOCK,
        "C_Initialize(four dummy callbacks, no OS locking)",
    );
    // An application that forbids library threads: the module needs none
    // (CKR_NEED_TO_CREATE_THREADS would also be a conforming answer).
    let rv = m.initialize(args([false; 4], CKF_LIBRARY_CANT_CREATE_OS_THREADS, false));
    expect(
        rv,
        CKR_OK,
        "C_Initialize(CKF_LIBRARY_CANT_CREATE_OS_THREADS)",
    );
    fx.finish();
}

#[test]
fn initialize_finalize_lifecycle() {
    let fx = Fixture::uninitialized();
    let m = fx.m;
    expect(m.initialize(Init::Null), CKR_OK, "C_Initialize");
    expect(
        m.initialize(Init::Null),
        CKR_CRYPTOKI_ALREADY_INITIALIZED,
        "second C_Initialize",
    );
    let with_args = Init::Args {
        mutex: [false; 4],
        flags: CKF_OS_LOCKING_OK,
        reserved: false,
    };
    expect(
        m.initialize(with_args),
        CKR_CRYPTOKI_ALREADY_INITIALIZED,
        "C_Initialize(args) again",
    );
    expect(m.finalize(true), CKR_ARGUMENTS_BAD, "C_Finalize(non-NULL)");
    expect(
        m.get_info().0,
        CKR_OK,
        "C_GetInfo after the refused C_Finalize",
    );
    expect(m.finalize(false), CKR_OK, "C_Finalize");
    expect(
        m.finalize(false),
        CKR_CRYPTOKI_NOT_INITIALIZED,
        "second C_Finalize",
    );
    expect(
        m.get_info().0,
        CKR_CRYPTOKI_NOT_INITIALIZED,
        "C_GetInfo after C_Finalize",
    );
    for round in 0..3 {
        expect(
            m.initialize(Init::Null),
            CKR_OK,
            format!("re-initialisation {round}"),
        );
        expect(
            m.get_info().0,
            CKR_OK,
            format!("C_GetInfo in round {round}"),
        );
        expect(
            m.finalize(false),
            CKR_OK,
            format!("C_Finalize in round {round}"),
        );
    }
    expect(m.initialize(Init::Null), CKR_OK, "C_Initialize");
    fx.finish();
}

#[test]
fn get_info() {
    let fx = Fixture::initialized();
    let m = fx.m;
    expect(
        m.call("C_GetInfo", Ptrs::Null, &[]),
        CKR_ARGUMENTS_BAD,
        "C_GetInfo(NULL)",
    );
    let (rv, info) = m.get_info();
    expect(rv, CKR_OK, "C_GetInfo");
    let v = info.cryptokiVersion;
    assert_eq!((v.major, v.minor), (3, 0), "cryptokiVersion");
    assert_eq!(info.flags, 0, "CK_INFO.flags must be zero");
    check_padded(&info.manufacturerID, "manufacturerID");
    check_padded(&info.libraryDescription, "libraryDescription");
    fx.finish();
}

#[test]
fn interface_list_two_call_pattern() {
    let fx = Fixture::uninitialized();
    let m = fx.m;
    // Works before C_Initialize (PKCS#11 3.0 §5.4.5).
    expect(
        m.call("C_GetInterfaceList", Ptrs::Null, &[]),
        CKR_ARGUMENTS_BAD,
        "C_GetInterfaceList(NULL, NULL)",
    );
    let (rv, n, _) = m.get_interface_list(None);
    expect(rv, CKR_OK, "C_GetInterfaceList size query");
    assert_eq!(n, 2, "interfaces: PKCS#11 3.0 and 2.40");
    let (rv, n, _) = m.get_interface_list(Some(1));
    expect(
        rv,
        CKR_BUFFER_TOO_SMALL,
        "C_GetInterfaceList with room for 1",
    );
    assert_eq!(n, 2, "count after CKR_BUFFER_TOO_SMALL");
    let (rv, n, list) = m.get_interface_list(Some(4));
    expect(rv, CKR_OK, "C_GetInterfaceList with room for 4");
    assert_eq!((n, list.len()), (2, 2));
    let mut versions: Vec<(u8, u8)> = list.iter().map(|i| i.version).collect();
    versions.sort_unstable();
    assert_eq!(versions, [(2, 40), (3, 0)]);
    for i in &list {
        assert_eq!(i.name, "PKCS 11", "{i:?}");
    }
    let v3 = list.iter().find(|i| i.version == (3, 0)).expect("3.0");
    assert_eq!(
        v3.list,
        m.list_300() as *const _ as usize,
        "3.0 list address"
    );
    let v2 = list.iter().find(|i| i.version == (2, 40)).expect("2.40");
    assert_eq!(
        v2.list,
        m.list_240() as *const _ as usize,
        "2.40 list address"
    );
    drop(fx);
}

/// What a `C_GetInterface` call asks for: (description, name, version, flags).
type Request<'a> = (&'a str, Option<&'a CStr>, Option<(u8, u8)>, CK_FLAGS);

#[test]
fn get_interface_variants() {
    let fx = Fixture::uninitialized();
    let m = fx.m;
    let pkcs11 = c"PKCS 11";
    let v3 = m.list_300() as *const _ as usize;
    let v2 = m.list_240() as *const _ as usize;
    let cases: [(Request, usize); 6] = [
        (("name, no version", Some(pkcs11), None, 0), v3),
        (("NULL name, no version", None, None, 0), v3),
        (("version 2.40", Some(pkcs11), Some((2, 40)), 0), v2),
        (("version 3.0", Some(pkcs11), Some((3, 0)), 0), v3),
        (("NULL name, version 2.40", None, Some((2, 40)), 0), v2),
        // NSS asks for a fork-safe interface.
        (
            (
                "CKF_INTERFACE_FORK_SAFE",
                Some(pkcs11),
                None,
                CKF_INTERFACE_FORK_SAFE,
            ),
            v3,
        ),
    ];
    for ((what, name, version, flags), list) in cases {
        let (rv, iface) = m.get_interface(name, version, flags);
        expect(rv, CKR_OK, format!("C_GetInterface({what})"));
        let iface = iface.expect("an interface");
        assert_eq!(iface.name, "PKCS 11", "{what}");
        assert_eq!(iface.list, list, "{what}: function list");
        assert_eq!(iface.flags & flags, flags, "{what}: flags");
        if let Some(v) = version {
            assert_eq!(iface.version, v, "{what}");
        }
    }
    let refused: [Request; 4] = [
        ("wrong name", Some(c"PKCS 12"), None, 0),
        ("empty name", Some(c""), None, 0),
        ("unknown version 9.9", Some(pkcs11), Some((9, 9)), 0),
        ("an unknown flag", None, None, 0x8000),
    ];
    for (what, name, version, flags) in refused {
        let (rv, iface) = m.get_interface(name, version, flags);
        expect(rv, CKR_ARGUMENTS_BAD, format!("C_GetInterface({what})"));
        assert!(iface.is_none(), "{what}");
    }
    expect(
        m.call("C_GetInterface", Ptrs::Null, &[]),
        CKR_ARGUMENTS_BAD,
        "C_GetInterface with ppInterface NULL",
    );
    drop(fx);
}

#[test]
fn function_lists_are_complete_and_agree() {
    let fx = Fixture::uninitialized();
    let m = fx.m;
    expect(
        m.call("C_GetFunctionList", Ptrs::Null, &[]),
        CKR_ARGUMENTS_BAD,
        "C_GetFunctionList(NULL)",
    );
    let (rv, l2) = m.get_function_list();
    expect(rv, CKR_OK, "C_GetFunctionList");
    let l2 = l2.expect("a list");
    assert!(
        std::ptr::eq(l2, m.list_240()),
        "the same static list every time"
    );
    assert_eq!(
        (l2.version.major, l2.version.minor),
        (2, 40),
        "C_GetFunctionList version"
    );
    let f2 = crate::ffi::funcs_240(l2);
    assert_eq!(f2.len(), 68);
    let null2: Vec<_> = f2
        .iter()
        .filter(|f| f.addr() == 0)
        .map(|f| f.name)
        .collect();
    assert!(null2.is_empty(), "NULL in the 2.40 list: {null2:?}");
    let l3 = m.list_300();
    assert_eq!((l3.version.major, l3.version.minor), (3, 0));
    assert_eq!(m.funcs().len(), 92);
    let null3: Vec<_> = m
        .funcs()
        .iter()
        .filter(|f| f.addr() == 0)
        .map(|f| f.name)
        .collect();
    assert!(null3.is_empty(), "NULL in the 3.0 list: {null3:?}");
    for f in &f2 {
        assert_eq!(
            f.addr(),
            m.func(f.name).addr(),
            "{} differs between the lists",
            f.name
        );
    }
    let names: HashSet<_> = m.funcs().iter().map(|f| f.name).collect();
    assert_eq!(names.len(), 92, "no duplicate names");
    drop(fx);
}

/// A reader slot, if pcscd has any (the module gives every reader a slot,
/// card or not).
fn any_slot(fx: &Fixture) -> Option<CK_SLOT_ID> {
    let (rv, _, slots) = fx.m.slot_list(false, Some(16));
    expect(rv, CKR_OK, "C_GetSlotList");
    if slots.is_empty() {
        eprintln!("no PC/SC reader: slot checks skipped (scripts/test.sh provides one)");
    }
    slots.first().copied()
}

#[test]
fn slot_list_and_mechanism_list() {
    let fx = Fixture::initialized();
    let m = fx.m;
    for present in [0, 1] {
        expect(
            m.call("C_GetSlotList", Ptrs::Null, &[present]),
            CKR_ARGUMENTS_BAD,
            format!("C_GetSlotList({present}, NULL, NULL)"),
        );
    }
    let (rv, all, _) = m.slot_list(false, None);
    expect(rv, CKR_OK, "C_GetSlotList size query");
    let (rv, with_token, _) = m.slot_list(true, None);
    expect(rv, CKR_OK, "C_GetSlotList(CK_TRUE) size query");
    assert!(
        with_token <= all,
        "{with_token} slots with a token of {all}"
    );
    let (rv, n, slots) = m.slot_list(false, Some(all as usize + 2));
    expect(rv, CKR_OK, "C_GetSlotList");
    assert_eq!((n, slots.len()), (all, all as usize));
    if all > 0 {
        let (rv, n, _) = m.slot_list(false, Some(0));
        expect(rv, CKR_BUFFER_TOO_SMALL, "C_GetSlotList with room for 0");
        assert_eq!(n, all, "count after CKR_BUFFER_TOO_SMALL");
    }
    let Some(slot) = any_slot(&fx) else {
        return fx.finish();
    };
    let (rv, info) = m.slot_info(slot);
    expect(rv, CKR_OK, "C_GetSlotInfo");
    check_padded(&info.slotDescription, "slotDescription");
    check_padded(&info.manufacturerID, "slot manufacturerID");
    let mut sweep = Sweep::default();
    for (name, ints) in [
        ("C_GetSlotInfo", vec![slot]),
        ("C_GetTokenInfo", vec![slot]),
        ("C_GetMechanismList", vec![slot]),
        ("C_GetMechanismInfo", vec![slot, CKM_RSA_PKCS]),
        ("C_OpenSession", vec![slot, CKF_SERIAL_SESSION]),
    ] {
        let rv = m.call(name, Ptrs::Null, &ints);
        sweep.check(
            format!("{name} with NULL pointers on slot {slot}"),
            rv,
            CKR_ARGUMENTS_BAD,
        );
    }
    sweep.done();
    let (rv, count, _) = m.mechanism_list(slot, None);
    expect(rv, CKR_OK, "C_GetMechanismList size query");
    assert!(count > 1, "{count} mechanisms");
    let (rv, n, _) = m.mechanism_list(slot, Some(1));
    expect(
        rv,
        CKR_BUFFER_TOO_SMALL,
        "C_GetMechanismList with room for 1",
    );
    assert_eq!(n, count, "needed count after CKR_BUFFER_TOO_SMALL");
    let (rv, n, mechs) = m.mechanism_list(slot, Some(count as usize));
    expect(rv, CKR_OK, "C_GetMechanismList");
    assert_eq!((n, mechs.len()), (count, count as usize));
    let unique: HashSet<_> = mechs.iter().collect();
    assert_eq!(unique.len(), mechs.len(), "duplicates in {mechs:x?}");
    for want in [
        CKM_RSA_PKCS,
        CKM_RSA_PKCS_PSS,
        CKM_RSA_PKCS_OAEP,
        CKM_ECDSA,
        CKM_SHA256,
    ] {
        assert!(mechs.contains(&want), "{want:#x} missing from {mechs:x?}");
    }
    for &mech in &mechs {
        let (rv, info) = m.mechanism_info(slot, mech);
        expect(rv, CKR_OK, format!("C_GetMechanismInfo({mech:#x})"));
        assert_ne!(info.flags, 0, "{mech:#x} has no flags");
        assert!(
            info.ulMinKeySize <= info.ulMaxKeySize,
            "{mech:#x}: {info:?}"
        );
    }
    for mech in [
        CKM_AES_ECB,
        CKM_RSA_PKCS_KEY_PAIR_GEN,
        0xdead_beef,
        CKM_VENDOR_DEFINED,
    ] {
        let (rv, _) = m.mechanism_info(slot, mech);
        expect(
            rv,
            CKR_MECHANISM_INVALID,
            format!("C_GetMechanismInfo({mech:#x})"),
        );
    }
    fx.finish();
}

#[test]
fn invalid_slot_ids() {
    let fx = Fixture::initialized();
    let m = fx.m;
    let mut sweep = Sweep::default();
    for slot in [BAD_SLOT, CK_SLOT_ID::MAX] {
        sweep.check(
            format!("C_GetSlotInfo({slot:#x})"),
            m.slot_info(slot).0,
            CKR_SLOT_ID_INVALID,
        );
        sweep.check(
            format!("C_GetTokenInfo({slot:#x})"),
            m.token_info(slot).0,
            CKR_SLOT_ID_INVALID,
        );
        for cap in [None, Some(64)] {
            let rv = m.mechanism_list(slot, cap).0;
            sweep.check(
                format!("C_GetMechanismList({slot:#x}, {cap:?})"),
                rv,
                CKR_SLOT_ID_INVALID,
            );
        }
        let rv = m.mechanism_info(slot, CKM_RSA_PKCS).0;
        sweep.check(
            format!("C_GetMechanismInfo({slot:#x})"),
            rv,
            CKR_SLOT_ID_INVALID,
        );
        for flags in [CKF_SERIAL_SESSION, CKF_SERIAL_SESSION | CKF_RW_SESSION] {
            let rv = m.open_session(slot, flags).0;
            sweep.check(
                format!("C_OpenSession({slot:#x}, {flags:#x})"),
                rv,
                CKR_SLOT_ID_INVALID,
            );
        }
        let rv = m.call("C_CloseAllSessions", Ptrs::Null, &[slot]);
        sweep.check(
            format!("C_CloseAllSessions({slot:#x})"),
            rv,
            CKR_SLOT_ID_INVALID,
        );
        let rv = m.init_token(slot, crate::PIN);
        sweep.check(format!("C_InitToken({slot:#x})"), rv, CKR_SLOT_ID_INVALID);
    }
    sweep.done();
    fx.finish();
}

/// Invalid slot and NULL pointer: both errors are in PKCS#11 3.0 §5.1.6, so
/// either may be returned (§5.1.7). This pins what the module does.
#[test]
fn invalid_slot_ids_with_null_pointers() {
    let fx = Fixture::initialized();
    let m = fx.m;
    let either = [CKR_ARGUMENTS_BAD, CKR_SLOT_ID_INVALID];
    let mut sweep = Sweep::default();
    for (name, ints, now) in [
        ("C_GetSlotInfo", vec![BAD_SLOT], CKR_ARGUMENTS_BAD),
        ("C_GetTokenInfo", vec![BAD_SLOT], CKR_ARGUMENTS_BAD),
        ("C_GetMechanismList", vec![BAD_SLOT], CKR_SLOT_ID_INVALID),
        (
            "C_GetMechanismInfo",
            vec![BAD_SLOT, CKM_RSA_PKCS],
            CKR_ARGUMENTS_BAD,
        ),
        (
            "C_OpenSession",
            vec![BAD_SLOT, CKF_SERIAL_SESSION],
            CKR_ARGUMENTS_BAD,
        ),
        ("C_InitToken", vec![BAD_SLOT, 6], CKR_SLOT_ID_INVALID),
    ] {
        let rv = m.call(name, Ptrs::Null, &ints);
        sweep.check_any(format!("{name} (spec)"), rv, &either);
        sweep.check(format!("{name} (module)"), rv, now);
    }
    sweep.done();
    fx.finish();
}

#[test]
fn invalid_session_handles() {
    let fx = Fixture::initialized();
    let m = fx.m;
    let names = session_functions(m);
    assert_eq!(names.len(), 77, "session functions in the 3.0 list");
    let mut sweep = Sweep::default();
    for h in BAD_SESSIONS {
        for name in &names {
            // Valid (scratch) pointers and zero lengths: only the handle is wrong.
            let rv = m.call(name, Ptrs::Scratch, &[h]);
            sweep.check(format!("{name}({h:#x}, …)"), rv, CKR_SESSION_HANDLE_INVALID);
        }
    }
    assert_eq!(sweep.done(), 2 * 77);
    // A handle that was valid once.
    if let Some(slot) = any_slot(&fx) {
        let (rv, h) = m.open_session(slot, CKF_SERIAL_SESSION);
        if rv == CKR_OK {
            expect(
                m.call("C_CloseSession", Ptrs::Null, &[h]),
                CKR_OK,
                "C_CloseSession",
            );
            expect(
                m.call("C_CloseSession", Ptrs::Null, &[h]),
                CKR_SESSION_HANDLE_INVALID,
                "C_CloseSession twice",
            );
            let (rv, _) = m.session_info(h);
            expect(
                rv,
                CKR_SESSION_HANDLE_INVALID,
                "C_GetSessionInfo on a closed session",
            );
        } else {
            expect(
                rv,
                CKR_TOKEN_NOT_PRESENT,
                "C_OpenSession on a reader without card",
            );
        }
    }
    fx.finish();
}

/// Invalid session handle and NULL pointers on every session function: the
/// process survives, and PKCS#11 3.0 §5.1.7's order holds — errors of §5.1.2
/// (CKR_SESSION_HANDLE_INVALID) take precedence over those of §5.1.6
/// (CKR_ARGUMENTS_BAD).
#[test]
fn regression_invalid_session_handle_takes_precedence_over_null_pointers() {
    let fx = Fixture::initialized();
    let m = fx.m;
    let mut sweep = Sweep::default();
    for h in BAD_SESSIONS {
        for name in session_functions(m) {
            let rv = m.call(name, Ptrs::Null, &[h]);
            sweep.check(
                format!("{name}({h:#x}, NULL…)"),
                rv,
                CKR_SESSION_HANDLE_INVALID,
            );
        }
    }
    sweep.done();
    fx.finish();
}

#[test]
fn wait_for_slot_event_arguments() {
    let fx = Fixture::initialized();
    let m = fx.m;
    expect(
        m.call("C_WaitForSlotEvent", Ptrs::Null, &[CKF_DONT_BLOCK]),
        CKR_ARGUMENTS_BAD,
        "C_WaitForSlotEvent(DONT_BLOCK, NULL, NULL)",
    );
    expect(
        m.call("C_WaitForSlotEvent", Ptrs::Scratch, &[CKF_DONT_BLOCK]),
        CKR_ARGUMENTS_BAD,
        "C_WaitForSlotEvent(DONT_BLOCK, &slot, pReserved non-NULL)",
    );
    fx.finish();
}

#[test]
fn non_session_list_matches_the_function_list() {
    let fx = Fixture::uninitialized();
    for name in NON_SESSION {
        fx.m.func(name); // panics for a name not in the list
    }
    drop(fx);
}
