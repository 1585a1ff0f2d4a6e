//! Shared fixture for the integration tests: the built module, the virtual
//! card environment started by scripts/test.sh, and helpers.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

/// The card PIN provisioned by scripts/test.sh.
pub const PIN: &str = "123456";

/// PKCS#11 state is per process: tests take this lock.
static SERIAL: Mutex<()> = Mutex::new(());

/// Serialise a test.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// target/<profile>/libdcred_pkcs11.so, next to this test executable's deps/ folder.
pub fn module_path() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>");
    let p = dir.join("libdcred_pkcs11.so");
    assert!(
        p.exists(),
        "{} missing: build the workspace first",
        p.display()
    );
    p
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The virtual card environment must be up (scripts/test.sh starts it).
pub fn require_env() {
    assert!(
        std::env::var_os("DCRED_TEST_ENV").is_some(),
        "needs the virtual card environment: run scripts/test.sh"
    );
}

/// The initialised module; `C_Finalize` is called when it goes out of scope
/// (also when a test panics), so every test starts from a clean module.
pub struct Ctx(pub Pkcs11);

impl std::ops::Deref for Ctx {
    type Target = Pkcs11;
    fn deref(&self) -> &Pkcs11 {
        &self.0
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        // Already finalised by the test itself is fine.
        let _ = self.0.clone().finalize();
    }
}

/// Load and initialise the module.
pub fn init() -> Ctx {
    let p = Pkcs11::new(module_path()).expect("load module");
    p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .expect("C_Initialize");
    Ctx(p)
}

/// The first slot with a token.
pub fn card_slot(p: &Pkcs11) -> Slot {
    *p.get_slots_with_token()
        .expect("C_GetSlotList")
        .first()
        .expect("a slot with the virtual card")
}

/// A logged-in session on the card.
pub fn login(p: &Pkcs11) -> Session {
    let s = p.open_rw_session(card_slot(p)).expect("C_OpenSession");
    s.login(UserType::User, Some(&AuthPin::new(PIN.into())))
        .expect("C_Login");
    s
}

/// The object of a class with a CKA_ID.
pub fn object(s: &Session, class: ObjectClass, id: u8) -> ObjectHandle {
    let found = s
        .find_objects(&[Attribute::Class(class), Attribute::Id(vec![id])])
        .expect("C_FindObjects");
    assert_eq!(found.len(), 1, "one {class:?} with id {id:02x}");
    found[0]
}

/// A byte attribute of an object.
pub fn bytes(s: &Session, o: ObjectHandle, t: AttributeType) -> Vec<u8> {
    let attrs = s.get_attributes(o, &[t]).expect("C_GetAttributeValue");
    match attrs.into_iter().next() {
        Some(Attribute::Value(v))
        | Some(Attribute::EcPoint(v))
        | Some(Attribute::Modulus(v))
        | Some(Attribute::EcParams(v)) => v,
        other => panic!("unexpected attribute {other:?}"),
    }
}

/// APDUs the virtual card has answered so far.
pub fn apdus() -> u64 {
    std::env::var_os("DCRED_TEST_COUNT_FILE")
        .and_then(|f| std::fs::read_to_string(f).ok())
        .and_then(|s| s.trim().parse().ok())
        .expect("DCRED_TEST_COUNT_FILE readable")
}

/// Remove or insert the virtual card in reader 0.
pub fn card(op: &str) {
    let state = std::env::var("DCRED_TEST_CARD_STATE").expect("DCRED_TEST_CARD_STATE");
    let count = std::env::var("DCRED_TEST_COUNT_FILE").unwrap_or_default();
    let st = std::process::Command::new("bash")
        .arg(repo().join("scripts/card-ctl.sh"))
        .args([op, "0", &state, &count])
        .status()
        .expect("run card-ctl.sh");
    assert!(st.success(), "card-ctl.sh {op} failed");
}
