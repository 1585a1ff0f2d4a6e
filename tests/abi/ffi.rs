//! The only `unsafe` code of the suite: loading the built module with
//! libloading and calling its PKCS#11 functions through its function lists.
//!
//! Two ways in, both safe to use from the tests:
//! - [`Func::call`] calls any function of a list with every pointer argument
//!   NULL ([`Ptrs::Null`]) or pointing at its own zeroed scratch buffer
//!   ([`Ptrs::Scratch`]), and the integer arguments given in order (missing
//!   ones are 0). The sweeps over all ~90 functions feed hostile input this
//!   way without a wrapper per function.
//! - Typed wrappers ([`Module::op`], [`Module::get_attrs`] …) for the calls
//!   that need real buffers: every pointer they pass comes from a live Rust
//!   value at least as long as the length passed with it.
//!
//! The `// SAFETY:` comments rely on what PKCS#11 promises of the module:
//! the function lists and interfaces it hands out are static, it writes no
//! more than the lengths it is given, and it rejects NULL where NULL is not
//! allowed without dereferencing it. The last is the contract under test.

#![allow(unsafe_code)]
#![warn(clippy::undocumented_unsafe_blocks)]

use std::ffi::{c_void, CStr};
use std::mem::size_of;
use std::path::PathBuf;
use std::ptr::null_mut;
use std::sync::OnceLock;

use cryptoki_sys::*;

/// What the pointer arguments of a [`Func::call`] are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ptrs {
    /// Every pointer is NULL.
    Null,
    /// Every pointer points at its own zeroed, 8-byte aligned 4 KiB buffer.
    /// Only the first integer argument may be given and the others are 0:
    /// the first is a handle, slot id or flags in every PKCS#11 function,
    /// never a length, so every length is 0.
    Scratch,
}

const SCRATCH_WORDS: usize = 512;
type Scratch = Box<[u64; SCRATCH_WORDS]>;

/// A parameter type that [`Func::call`] can make up.
pub trait Arg: Sized + 'static {
    /// The next argument: an integer from `ints`, or a pointer per `ptrs`.
    fn make(ints: &mut std::slice::Iter<'_, CK_ULONG>, ptrs: Ptrs, keep: &mut Vec<Scratch>)
        -> Self;
}

impl Arg for CK_ULONG {
    fn make(ints: &mut std::slice::Iter<'_, CK_ULONG>, _: Ptrs, _: &mut Vec<Scratch>) -> Self {
        ints.next().copied().unwrap_or(0)
    }
}

impl Arg for CK_BBOOL {
    fn make(ints: &mut std::slice::Iter<'_, CK_ULONG>, _: Ptrs, _: &mut Vec<Scratch>) -> Self {
        CK_BBOOL::try_from(ints.next().copied().unwrap_or(0)).expect("a CK_BBOOL value")
    }
}

impl<T: 'static> Arg for *mut T {
    fn make(_: &mut std::slice::Iter<'_, CK_ULONG>, ptrs: Ptrs, keep: &mut Vec<Scratch>) -> Self {
        match ptrs {
            Ptrs::Null => null_mut(),
            Ptrs::Scratch => {
                let mut b: Scratch = Box::new([0; SCRATCH_WORDS]);
                let p = b.as_mut_ptr().cast::<T>();
                keep.push(b); // moving the box does not move its contents
                p
            }
        }
    }
}

/// Callback pointers (`CK_NOTIFY`) are always NULL.
impl<T: 'static> Arg for Option<T> {
    fn make(_: &mut std::slice::Iter<'_, CK_ULONG>, _: Ptrs, _: &mut Vec<Scratch>) -> Self {
        None
    }
}

/// A PKCS#11 function pointer [`Func::call`] can call with made-up arguments.
pub trait Call: Copy + Send + Sync + 'static {
    /// Call with pointers per `ptrs` and the integers `ints` in order.
    fn call(self, ptrs: Ptrs, ints: &[CK_ULONG]) -> CK_RV;
    /// The function's address.
    fn addr(self) -> usize;
}

macro_rules! impl_call {
    ($($a:ident),+) => {
        impl<$($a: Arg),+> Call for unsafe extern "C" fn($($a),+) -> CK_RV {
            #[allow(non_snake_case)]
            fn call(self, ptrs: Ptrs, ints: &[CK_ULONG]) -> CK_RV {
                assert!(
                    ptrs == Ptrs::Null || ints.len() <= 1,
                    "scratch pointers go with zero lengths: give at most the first integer"
                );
                let mut it = ints.iter();
                let mut keep = Vec::new();
                $(let $a = $a::make(&mut it, ptrs, &mut keep);)+
                assert!(it.next().is_none(), "more integers than integer parameters");
                // SAFETY: `self` comes from the module's function list, typed
                // with the prototype cryptoki-sys declares for it. Each pointer
                // is NULL (which the module must reject unread) or points at a
                // distinct zeroed 4 KiB buffer in `keep`, alive until after the
                // call and larger than any PKCS#11 structure; with scratch
                // buffers every length is 0 (only the first integer, never a
                // length, may be given: asserted above), so the module reads
                // or writes at most one structure through each.
                let rv = unsafe { self($($a),+) };
                drop(keep);
                rv
            }
            fn addr(self) -> usize {
                self as usize
            }
        }
    };
}

impl_call!(A);
impl_call!(A, B);
impl_call!(A, B, C);
impl_call!(A, B, C, D);
impl_call!(A, B, C, D, E);
impl_call!(A, B, C, D, E, F);
impl_call!(A, B, C, D, E, F, G);
impl_call!(A, B, C, D, E, F, G, H);
impl_call!(A, B, C, D, E, F, G, H, I);

type Caller = Box<dyn Fn(Ptrs, &[CK_ULONG]) -> CK_RV + Send + Sync>;

/// One entry of a function list.
pub struct Func {
    /// `C_…`.
    pub name: &'static str,
    addr: usize,
    caller: Option<Caller>,
}

impl Func {
    fn new<F: Call>(name: &'static str, f: Option<F>) -> Func {
        Func {
            name,
            addr: f.map_or(0, Call::addr),
            caller: f.map(|f| Box::new(move |p: Ptrs, i: &[CK_ULONG]| f.call(p, i)) as Caller),
        }
    }

    /// The function's address (0 for a NULL entry).
    pub fn addr(&self) -> usize {
        self.addr
    }

    /// Call with pointers per `ptrs` and the integer arguments `ints`.
    pub fn call(&self, ptrs: Ptrs, ints: &[CK_ULONG]) -> CK_RV {
        let c = self.caller.as_ref();
        c.unwrap_or_else(|| panic!("{} is NULL in the function list", self.name))(ptrs, ints)
    }
}

macro_rules! funcs {
    ($list:expr; $($name:ident),+) => {
        vec![$(Func::new(stringify!($name), $list.$name)),+]
    };
}

/// The 2.40 functions, in list order, followed by `$extra`.
macro_rules! funcs_240_and {
    ($list:expr $(, $extra:ident)*) => {
        funcs!($list;
            C_Initialize, C_Finalize, C_GetInfo, C_GetFunctionList, C_GetSlotList,
            C_GetSlotInfo, C_GetTokenInfo, C_GetMechanismList, C_GetMechanismInfo, C_InitToken,
            C_InitPIN, C_SetPIN, C_OpenSession, C_CloseSession, C_CloseAllSessions,
            C_GetSessionInfo, C_GetOperationState, C_SetOperationState, C_Login, C_Logout,
            C_CreateObject, C_CopyObject, C_DestroyObject, C_GetObjectSize, C_GetAttributeValue,
            C_SetAttributeValue, C_FindObjectsInit, C_FindObjects, C_FindObjectsFinal,
            C_EncryptInit, C_Encrypt, C_EncryptUpdate, C_EncryptFinal, C_DecryptInit, C_Decrypt,
            C_DecryptUpdate, C_DecryptFinal, C_DigestInit, C_Digest, C_DigestUpdate, C_DigestKey,
            C_DigestFinal, C_SignInit, C_Sign, C_SignUpdate, C_SignFinal, C_SignRecoverInit,
            C_SignRecover, C_VerifyInit, C_Verify, C_VerifyUpdate, C_VerifyFinal,
            C_VerifyRecoverInit, C_VerifyRecover, C_DigestEncryptUpdate, C_DecryptDigestUpdate,
            C_SignEncryptUpdate, C_DecryptVerifyUpdate, C_GenerateKey, C_GenerateKeyPair,
            C_WrapKey, C_UnwrapKey, C_DeriveKey, C_SeedRandom, C_GenerateRandom,
            C_GetFunctionStatus, C_CancelFunction, C_WaitForSlotEvent $(, $extra)*)
    };
}

/// Every entry of a 2.40 function list.
pub fn funcs_240(l: &CK_FUNCTION_LIST) -> Vec<Func> {
    funcs_240_and!(l)
}

/// Every entry of a 3.0 function list.
pub fn funcs_300(l: &CK_FUNCTION_LIST_3_0) -> Vec<Func> {
    funcs_240_and! {
        l, C_GetInterfaceList, C_GetInterface, C_LoginUser, C_SessionCancel,
        C_MessageEncryptInit, C_EncryptMessage, C_EncryptMessageBegin, C_EncryptMessageNext,
        C_MessageEncryptFinal, C_MessageDecryptInit, C_DecryptMessage, C_DecryptMessageBegin,
        C_DecryptMessageNext, C_MessageDecryptFinal, C_MessageSignInit, C_SignMessage,
        C_SignMessageBegin, C_SignMessageNext, C_MessageSignFinal, C_MessageVerifyInit,
        C_VerifyMessage, C_VerifyMessageBegin, C_VerifyMessageNext, C_MessageVerifyFinal
    }
}

/// The loaded module.
pub struct Module {
    /// Kept loaded for the whole process: the lists below point into it.
    _lib: libloading::Library,
    v3: &'static CK_FUNCTION_LIST_3_0,
    v2: &'static CK_FUNCTION_LIST,
    funcs: Vec<Func>,
}

/// The module, loaded once per process (and never unloaded).
pub fn module() -> &'static Module {
    static M: OnceLock<Module> = OnceLock::new();
    M.get_or_init(Module::load)
}

/// The module, found from this test executable (`target/<profile>/deps/abi-<hash>`).
///
/// `target/<profile>/deps/libdcred_pkcs11.so` is the cdylib cargo built for
/// this test run. Cargo copies it up to `target/<profile>/` only when the
/// library itself is a build root (`cargo build`), so after a plain
/// `cargo test --test abi` that copy can be older than the source; it is
/// the fallback.
fn library_path() -> PathBuf {
    let exe = std::env::current_exe().expect("path of the test executable");
    let deps = exe.parent().expect("target/<profile>/deps");
    let candidates = [
        deps.to_path_buf(),
        deps.parent().expect("target/<profile>").to_path_buf(),
    ];
    candidates
        .iter()
        .map(|d| d.join("libdcred_pkcs11.so"))
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!(
                "libdcred_pkcs11.so missing next to {}: build the crate",
                exe.display()
            )
        })
}

/// A function pointer from a list, or a panic naming it.
macro_rules! fp {
    ($self:ident . $name:ident) => {
        $self
            .v3
            .$name
            .expect(concat!(stringify!($name), " is NULL"))
    };
}

/// Handles [`Module::find_overstating`] really has room for.
pub const FIND_ROOM: usize = 4096;

/// A byte `pReserved` may point at (the module must not look at it).
static RESERVED: u8 = 0;

/// Arguments for `C_Initialize`.
#[derive(Debug, Clone, Copy)]
pub enum Init {
    /// `pInitArgs` NULL.
    Null,
    /// A `CK_C_INITIALIZE_ARGS` with the dummy mutex callbacks selected by
    /// `mutex` (create, destroy, lock, unlock), `flags`, and `pReserved`
    /// non-NULL when `reserved`.
    Args {
        mutex: [bool; 4],
        flags: CK_FLAGS,
        reserved: bool,
    },
}

extern "C" fn create_mutex(pp: *mut *mut c_void) -> CK_RV {
    if pp.is_null() {
        return CKR_ARGUMENTS_BAD;
    }
    // SAFETY: PKCS#11 passes a valid location for the new mutex; ours is a
    // non-NULL token nobody dereferences.
    unsafe { pp.write(std::ptr::addr_of!(RESERVED).cast_mut().cast()) };
    CKR_OK
}

extern "C" fn mutex_op(m: *mut c_void) -> CK_RV {
    if m.is_null() {
        CKR_MUTEX_BAD
    } else {
        CKR_OK
    }
}

/// An entry of `C_GetInterfaceList` or the answer of `C_GetInterface`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Iface {
    /// `pInterfaceName`.
    pub name: String,
    /// The version at the start of `pFunctionList`.
    pub version: (u8, u8),
    /// `flags`.
    pub flags: CK_FLAGS,
    /// `pFunctionList` as an address.
    pub list: usize,
}

fn read_iface(i: &CK_INTERFACE) -> Iface {
    assert!(!i.pInterfaceName.is_null() && !i.pFunctionList.is_null());
    // SAFETY: the module's interfaces name themselves with a static
    // NUL-terminated string and point at a static function list, and every
    // PKCS#11 function list starts with its CK_VERSION.
    let (name, v) = unsafe {
        (
            CStr::from_ptr(i.pInterfaceName.cast_const().cast()),
            i.pFunctionList.cast::<CK_VERSION>().read(),
        )
    };
    Iface {
        name: name.to_string_lossy().into_owned(),
        version: (v.major, v.minor),
        flags: i.flags,
        list: i.pFunctionList as usize,
    }
}

/// A mechanism parameter.
#[derive(Debug, Clone)]
pub enum Param {
    /// `pParameter` NULL, length 0.
    None,
    /// `pParameter` NULL with this length.
    NullWithLen(CK_ULONG),
    /// Arbitrary bytes (a wrong-sized structure).
    Bytes(Vec<u8>),
    /// `CK_RSA_PKCS_PSS_PARAMS`.
    Pss {
        hash: CK_MECHANISM_TYPE,
        mgf: CK_RSA_PKCS_MGF_TYPE,
        salt: CK_ULONG,
    },
    /// `CK_RSA_PKCS_OAEP_PARAMS` with an empty label.
    Oaep {
        hash: CK_MECHANISM_TYPE,
        mgf: CK_RSA_PKCS_MGF_TYPE,
    },
}

/// A `CK_MECHANISM`.
#[derive(Debug, Clone)]
pub struct Mech {
    /// `mechanism`.
    pub mechanism: CK_MECHANISM_TYPE,
    /// The parameter.
    pub param: Param,
}

impl Mech {
    /// A mechanism without parameter.
    pub fn plain(mechanism: CK_MECHANISM_TYPE) -> Mech {
        Mech {
            mechanism,
            param: Param::None,
        }
    }
}

/// The operation a typed crypto wrapper drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Sign,
    Verify,
    Encrypt,
    Decrypt,
    Digest,
}

/// How a single-part operation gets its output buffer.
#[derive(Debug, Clone, Copy)]
pub enum Out {
    /// NULL buffer: a length query.
    Query,
    /// A buffer of this many bytes (and `*pulLen` set to it).
    Buf(usize),
}

/// One attribute of a `C_GetAttributeValue` template.
#[derive(Debug, Clone)]
pub struct Attr {
    /// `type`.
    pub kind: CK_ATTRIBUTE_TYPE,
    /// The buffer (`pValue` NULL when `None`).
    pub buf: Option<Vec<u8>>,
    /// `ulValueLen` after the call.
    pub len: CK_ULONG,
}

impl Attr {
    /// A size query (`pValue` NULL).
    pub fn query(kind: CK_ATTRIBUTE_TYPE) -> Attr {
        Attr {
            kind,
            buf: None,
            len: 0,
        }
    }

    /// A buffer of `n` bytes.
    pub fn buf(kind: CK_ATTRIBUTE_TYPE, n: usize) -> Attr {
        Attr {
            kind,
            buf: Some(vec![0; n]),
            len: 0,
        }
    }

    /// The value the module wrote (panics if `len` does not describe one).
    pub fn value(&self) -> &[u8] {
        let b = self.buf.as_deref().expect("a buffer");
        let n = usize::try_from(self.len).expect("a length");
        assert!(n <= b.len(), "{:#x}: ulValueLen {n} > buffer", self.kind);
        &b[..n]
    }
}

/// An input template: `pValue` points at the (only read) bytes.
fn template(t: &[(CK_ATTRIBUTE_TYPE, &[u8])]) -> Vec<CK_ATTRIBUTE> {
    t.iter()
        .map(|(k, v)| CK_ATTRIBUTE {
            type_: *k,
            pValue: v.as_ptr().cast_mut().cast(),
            ulValueLen: v.len() as CK_ULONG,
        })
        .collect()
}

/// A two-call list: NULL array when `cap` is `None`, else an array of `cap`
/// entries (at least one is allocated) and `*pulCount = cap`.
fn two_call<T: Copy>(
    blank: T,
    cap: Option<usize>,
    f: impl FnOnce(*mut T, &mut CK_ULONG) -> CK_RV,
) -> (CK_RV, CK_ULONG, Vec<T>) {
    let mut buf = vec![blank; cap.unwrap_or(0).max(1)];
    let mut count = cap.unwrap_or(0) as CK_ULONG;
    let p = if cap.is_some() {
        buf.as_mut_ptr()
    } else {
        null_mut()
    };
    let rv = f(p, &mut count);
    let n = if rv == CKR_OK && cap.is_some() {
        usize::try_from(count).expect("count").min(cap.unwrap_or(0))
    } else {
        0
    };
    buf.truncate(n);
    (rv, count, buf)
}

impl Module {
    fn load() -> Module {
        let path = library_path();
        // SAFETY: this runs the library's initialisers; libdcred_pkcs11.so is
        // this workspace's Rust cdylib, whose initialisers have no preconditions.
        let lib = unsafe { libloading::Library::new(&path) }
            .unwrap_or_else(|e| panic!("dlopen {}: {e}", path.display()));
        // SAFETY: both symbols are the module's C_GetFunctionList and
        // C_GetInterface, declared with their PKCS#11 prototypes.
        let (get_list, get_iface) = unsafe {
            (
                *lib.get::<CK_C_GetFunctionList>(b"C_GetFunctionList\0")
                    .expect("C_GetFunctionList exported"),
                *lib.get::<CK_C_GetInterface>(b"C_GetInterface\0")
                    .expect("C_GetInterface exported"),
            )
        };
        let mut v2: *mut CK_FUNCTION_LIST = null_mut();
        let mut iface: *mut CK_INTERFACE = null_mut();
        // SAFETY: the out pointers are live locals; NULL name and version ask
        // for the default interface (PKCS#11 3.0 §5.4.6).
        let (rv2, rv3) = unsafe {
            (
                get_list.expect("C_GetFunctionList")(&mut v2),
                get_iface.expect("C_GetInterface")(null_mut(), null_mut(), &mut iface, 0),
            )
        };
        assert_eq!(
            (rv2, rv3),
            (CKR_OK, CKR_OK),
            "C_GetFunctionList, C_GetInterface"
        );
        // SAFETY: on CKR_OK the module returned its static function list and
        // interface; they live as long as the library, which stays loaded.
        let (v2, iface): (&'static CK_FUNCTION_LIST, &'static CK_INTERFACE) = unsafe {
            (
                v2.as_ref().expect("list"),
                iface.as_ref().expect("interface"),
            )
        };
        let default = read_iface(iface);
        assert_eq!(
            default.version,
            (3, 0),
            "the default interface is PKCS#11 3.0"
        );
        // SAFETY: a 3.0 "PKCS 11" interface points at a CK_FUNCTION_LIST_3_0
        // (PKCS#11 3.0 §5.4.6), static as above.
        let v3: &'static CK_FUNCTION_LIST_3_0 =
            unsafe { &*iface.pFunctionList.cast::<CK_FUNCTION_LIST_3_0>() };
        Module {
            _lib: lib,
            v3,
            v2,
            funcs: funcs_300(v3),
        }
    }

    /// The 3.0 list from `C_GetInterface(NULL, NULL, &iface, 0)`.
    pub fn list_300(&self) -> &'static CK_FUNCTION_LIST_3_0 {
        self.v3
    }

    /// The 2.40 list from `C_GetFunctionList` at load time.
    pub fn list_240(&self) -> &'static CK_FUNCTION_LIST {
        self.v2
    }

    /// Every function of the 3.0 list.
    pub fn funcs(&self) -> &[Func] {
        &self.funcs
    }

    /// A function of the 3.0 list by name.
    pub fn func(&self, name: &str) -> &Func {
        self.funcs
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("{name} is not in the 3.0 function list"))
    }

    /// Call a function by name (see [`Func::call`]).
    pub fn call(&self, name: &str, ptrs: Ptrs, ints: &[CK_ULONG]) -> CK_RV {
        self.func(name).call(ptrs, ints)
    }

    /// `C_Initialize`.
    pub fn initialize(&self, init: Init) -> CK_RV {
        let mut args;
        let p = match init {
            Init::Null => null_mut(),
            Init::Args {
                mutex: [c, d, l, u],
                flags,
                reserved,
            } => {
                args = CK_C_INITIALIZE_ARGS {
                    CreateMutex: if c { Some(create_mutex) } else { None },
                    DestroyMutex: if d { Some(mutex_op) } else { None },
                    LockMutex: if l { Some(mutex_op) } else { None },
                    UnlockMutex: if u { Some(mutex_op) } else { None },
                    flags,
                    pReserved: if reserved {
                        std::ptr::addr_of!(RESERVED).cast_mut().cast()
                    } else {
                        null_mut()
                    },
                };
                std::ptr::addr_of_mut!(args).cast::<c_void>()
            }
        };
        // SAFETY: `p` is NULL or a live CK_C_INITIALIZE_ARGS whose callbacks
        // have the PKCS#11 prototypes and whose pReserved is NULL or a static.
        unsafe { fp!(self.C_Initialize)(p) }
    }

    /// `C_Finalize`, with `pReserved` non-NULL when `reserved`.
    pub fn finalize(&self, reserved: bool) -> CK_RV {
        let p = if reserved {
            std::ptr::addr_of!(RESERVED).cast_mut().cast()
        } else {
            null_mut()
        };
        // SAFETY: pReserved is NULL or points at a static byte.
        unsafe { fp!(self.C_Finalize)(p) }
    }

    /// `C_GetInfo`, into a zeroed `CK_INFO`.
    pub fn get_info(&self) -> (CK_RV, CK_INFO) {
        let mut info = CK_INFO::default();
        // SAFETY: a live CK_INFO.
        let rv = unsafe { fp!(self.C_GetInfo)(&mut info) };
        (rv, info)
    }

    /// `C_GetFunctionList`.
    pub fn get_function_list(&self) -> (CK_RV, Option<&'static CK_FUNCTION_LIST>) {
        let mut l: *mut CK_FUNCTION_LIST = null_mut();
        // SAFETY: a live out pointer.
        let rv = unsafe { fp!(self.C_GetFunctionList)(&mut l) };
        // SAFETY: non-NULL only when the module stored its static list.
        (rv, unsafe { l.as_ref() })
    }

    /// `C_GetInterfaceList` with an array of `cap` entries (NULL when `None`).
    pub fn get_interface_list(&self, cap: Option<usize>) -> (CK_RV, CK_ULONG, Vec<Iface>) {
        let blank = CK_INTERFACE {
            pInterfaceName: null_mut(),
            pFunctionList: null_mut(),
            flags: 0,
        };
        let (rv, n, list) = two_call(blank, cap, |p, n| {
            // SAFETY: `p` is NULL or valid for `*n` entries (two_call).
            unsafe { fp!(self.C_GetInterfaceList)(p, n) }
        });
        (rv, n, list.iter().map(read_iface).collect())
    }

    /// `C_GetInterface`.
    pub fn get_interface(
        &self,
        name: Option<&CStr>,
        version: Option<(u8, u8)>,
        flags: CK_FLAGS,
    ) -> (CK_RV, Option<Iface>) {
        let mut v = version.map(|(major, minor)| CK_VERSION { major, minor });
        let vp = v.as_mut().map_or(null_mut(), |v| v as *mut CK_VERSION);
        let np = name.map_or(null_mut(), |n| n.as_ptr().cast_mut().cast());
        let mut out: *mut CK_INTERFACE = null_mut();
        // SAFETY: the name is NULL or a live NUL-terminated string (only read),
        // the version NULL or a live local, the out pointer a live local.
        let rv = unsafe { fp!(self.C_GetInterface)(np, vp, &mut out, flags) };
        // SAFETY: non-NULL only when the module stored one of its static interfaces.
        let iface = unsafe { out.as_ref() };
        (rv, iface.filter(|_| rv == CKR_OK).map(read_iface))
    }

    /// `C_GetSlotList` with an array of `cap` entries (NULL when `None`).
    pub fn slot_list(
        &self,
        present: bool,
        cap: Option<usize>,
    ) -> (CK_RV, CK_ULONG, Vec<CK_SLOT_ID>) {
        two_call(0, cap, |p, n| {
            // SAFETY: `p` is NULL or valid for `*n` entries (two_call).
            unsafe { fp!(self.C_GetSlotList)(present.into(), p, n) }
        })
    }

    /// `C_GetSlotInfo`, into a zeroed `CK_SLOT_INFO`.
    pub fn slot_info(&self, slot: CK_SLOT_ID) -> (CK_RV, CK_SLOT_INFO) {
        let mut info = CK_SLOT_INFO {
            slotDescription: [0; 64],
            manufacturerID: [0; 32],
            flags: 0,
            hardwareVersion: CK_VERSION::default(),
            firmwareVersion: CK_VERSION::default(),
        };
        // SAFETY: a live CK_SLOT_INFO.
        let rv = unsafe { fp!(self.C_GetSlotInfo)(slot, &mut info) };
        (rv, info)
    }

    /// `C_GetTokenInfo`, into a zeroed `CK_TOKEN_INFO`.
    pub fn token_info(&self, slot: CK_SLOT_ID) -> (CK_RV, CK_TOKEN_INFO) {
        let mut info = CK_TOKEN_INFO::default();
        // SAFETY: a live CK_TOKEN_INFO.
        let rv = unsafe { fp!(self.C_GetTokenInfo)(slot, &mut info) };
        (rv, info)
    }

    /// `C_GetMechanismList` with an array of `cap` entries (NULL when `None`).
    pub fn mechanism_list(
        &self,
        slot: CK_SLOT_ID,
        cap: Option<usize>,
    ) -> (CK_RV, CK_ULONG, Vec<CK_MECHANISM_TYPE>) {
        two_call(0, cap, |p, n| {
            // SAFETY: `p` is NULL or valid for `*n` entries (two_call).
            unsafe { fp!(self.C_GetMechanismList)(slot, p, n) }
        })
    }

    /// `C_GetMechanismInfo`.
    pub fn mechanism_info(
        &self,
        slot: CK_SLOT_ID,
        m: CK_MECHANISM_TYPE,
    ) -> (CK_RV, CK_MECHANISM_INFO) {
        let mut info = CK_MECHANISM_INFO::default();
        // SAFETY: a live CK_MECHANISM_INFO.
        let rv = unsafe { fp!(self.C_GetMechanismInfo)(slot, m, &mut info) };
        (rv, info)
    }

    /// `C_InitToken` with a PIN and a blank 32-byte label.
    pub fn init_token(&self, slot: CK_SLOT_ID, pin: &[u8]) -> CK_RV {
        let label = [b' '; 32];
        // SAFETY: the PIN is valid for its length and the label for 32 bytes;
        // the module only reads them.
        unsafe {
            fp!(self.C_InitToken)(
                slot,
                pin.as_ptr().cast_mut(),
                pin.len() as CK_ULONG,
                label.as_ptr().cast_mut(),
            )
        }
    }

    /// `C_OpenSession` without notification callback.
    pub fn open_session(&self, slot: CK_SLOT_ID, flags: CK_FLAGS) -> (CK_RV, CK_SESSION_HANDLE) {
        let mut h = CK_INVALID_HANDLE;
        // SAFETY: a live out location; pApplication and Notify may be NULL.
        let rv = unsafe { fp!(self.C_OpenSession)(slot, flags, null_mut(), None, &mut h) };
        (rv, h)
    }

    /// `C_GetSessionInfo`.
    pub fn session_info(&self, h: CK_SESSION_HANDLE) -> (CK_RV, CK_SESSION_INFO) {
        let mut info = CK_SESSION_INFO::default();
        // SAFETY: a live CK_SESSION_INFO.
        let rv = unsafe { fp!(self.C_GetSessionInfo)(h, &mut info) };
        (rv, info)
    }

    /// `C_Login`; `pin` `None` passes NULL with length 0.
    pub fn login(&self, h: CK_SESSION_HANDLE, user: CK_USER_TYPE, pin: Option<&[u8]>) -> CK_RV {
        let (p, n) = pin.map_or((null_mut(), 0), |p| (p.as_ptr().cast_mut(), p.len()));
        // SAFETY: the PIN is NULL or valid for its length; the module only reads it.
        unsafe { fp!(self.C_Login)(h, user, p, n as CK_ULONG) }
    }

    /// `C_SetPIN`.
    pub fn set_pin(&self, h: CK_SESSION_HANDLE, old: &[u8], new: &[u8]) -> CK_RV {
        let (o, n) = (old.len() as CK_ULONG, new.len() as CK_ULONG);
        // SAFETY: both PINs are valid for their lengths; the module only reads them.
        unsafe { fp!(self.C_SetPIN)(h, old.as_ptr().cast_mut(), o, new.as_ptr().cast_mut(), n) }
    }

    /// `C_FindObjectsInit` with an input template.
    pub fn find_init(&self, h: CK_SESSION_HANDLE, t: &[(CK_ATTRIBUTE_TYPE, &[u8])]) -> CK_RV {
        let mut t = template(t);
        // SAFETY: `t` holds its length of attributes, each valid for its
        // ulValueLen bytes; the module only reads them.
        unsafe { fp!(self.C_FindObjectsInit)(h, t.as_mut_ptr(), t.len() as CK_ULONG) }
    }

    /// `C_FindObjects` with room for `max` handles.
    pub fn find(&self, h: CK_SESSION_HANDLE, max: usize) -> (CK_RV, Vec<CK_OBJECT_HANDLE>) {
        let mut buf = vec![CK_INVALID_HANDLE; max.max(1)];
        let mut n: CK_ULONG = 0;
        // SAFETY: `buf` holds at least `max` handles; `n` is a live local.
        let rv = unsafe { fp!(self.C_FindObjects)(h, buf.as_mut_ptr(), max as CK_ULONG, &mut n) };
        let n = usize::try_from(n).expect("count");
        assert!(
            n <= max,
            "C_FindObjects returned {n} > ulMaxObjectCount {max}"
        );
        buf.truncate(if rv == CKR_OK { n } else { 0 });
        (rv, buf)
    }

    /// `C_FindObjects` declaring room for `declared` handles (say
    /// `CK_ULONG::MAX`) in a buffer of [`FIND_ROOM`].
    pub fn find_overstating(
        &self,
        h: CK_SESSION_HANDLE,
        declared: CK_ULONG,
    ) -> (CK_RV, Vec<CK_OBJECT_HANDLE>) {
        let mut buf = vec![CK_INVALID_HANDLE; FIND_ROOM];
        let mut n: CK_ULONG = 0;
        // SAFETY: the module writes one handle per object the search still has
        // to return, and a token of this module holds at most 73 objects (24
        // PIV key slots × certificate, public and private key, plus the
        // profile object), far fewer than FIND_ROOM; `n` is a live local.
        let rv = unsafe { fp!(self.C_FindObjects)(h, buf.as_mut_ptr(), declared, &mut n) };
        let n = usize::try_from(n).expect("count");
        assert!(n <= FIND_ROOM, "C_FindObjects claims {n} handles");
        buf.truncate(if rv == CKR_OK { n } else { 0 });
        (rv, buf)
    }

    /// `C_GetAttributeValue`; each [`Attr::len`] gets the returned ulValueLen.
    pub fn get_attrs(
        &self,
        h: CK_SESSION_HANDLE,
        o: CK_OBJECT_HANDLE,
        attrs: &mut [Attr],
    ) -> CK_RV {
        let mut raw: Vec<CK_ATTRIBUTE> = attrs
            .iter_mut()
            .map(|a| CK_ATTRIBUTE {
                type_: a.kind,
                ulValueLen: a.buf.as_ref().map_or(0, |b| b.len() as CK_ULONG),
                pValue: a.buf.as_mut().map_or(null_mut(), |b| b.as_mut_ptr().cast()),
            })
            .collect();
        // SAFETY: `raw` holds its length of attributes; each pValue is NULL or
        // valid for ulValueLen writes into its Attr's buffer, alive and not
        // otherwise touched until the call returns.
        let rv =
            unsafe { fp!(self.C_GetAttributeValue)(h, o, raw.as_mut_ptr(), raw.len() as CK_ULONG) };
        for (a, r) in attrs.iter_mut().zip(&raw) {
            a.len = r.ulValueLen;
        }
        rv
    }

    /// `C_SetAttributeValue` with an input template.
    pub fn set_attrs(
        &self,
        h: CK_SESSION_HANDLE,
        o: CK_OBJECT_HANDLE,
        t: &[(CK_ATTRIBUTE_TYPE, &[u8])],
    ) -> CK_RV {
        let mut t = template(t);
        // SAFETY: as for find_init.
        unsafe { fp!(self.C_SetAttributeValue)(h, o, t.as_mut_ptr(), t.len() as CK_ULONG) }
    }

    /// `C_DeriveKey` with `CKM_ECDH1_DERIVE` (no shared data) and a template.
    pub fn derive_ecdh(
        &self,
        h: CK_SESSION_HANDLE,
        base: CK_OBJECT_HANDLE,
        kdf: CK_EC_KDF_TYPE,
        public: &[u8],
        t: &[(CK_ATTRIBUTE_TYPE, &[u8])],
    ) -> (CK_RV, CK_OBJECT_HANDLE) {
        let mut params = CK_ECDH1_DERIVE_PARAMS {
            kdf,
            ulSharedDataLen: 0,
            pSharedData: null_mut(),
            ulPublicDataLen: public.len() as CK_ULONG,
            pPublicData: public.as_ptr().cast_mut(),
        };
        let mut mech = CK_MECHANISM {
            mechanism: CKM_ECDH1_DERIVE,
            pParameter: std::ptr::addr_of_mut!(params).cast(),
            ulParameterLen: size_of::<CK_ECDH1_DERIVE_PARAMS>() as CK_ULONG,
        };
        let mut t = template(t);
        let mut key = CK_INVALID_HANDLE;
        // SAFETY: the mechanism, its parameter, the peer point and the template
        // are live locals or borrows valid for the lengths given (only read);
        // `key` is a live out location.
        let rv = unsafe {
            fp!(self.C_DeriveKey)(
                h,
                &mut mech,
                base,
                t.as_mut_ptr(),
                t.len() as CK_ULONG,
                &mut key,
            )
        };
        (rv, key)
    }

    /// `C_GetObjectSize`.
    pub fn object_size(&self, h: CK_SESSION_HANDLE, o: CK_OBJECT_HANDLE) -> (CK_RV, CK_ULONG) {
        let mut n = 0;
        // SAFETY: a live out location.
        let rv = unsafe { fp!(self.C_GetObjectSize)(h, o, &mut n) };
        (rv, n)
    }

    /// `C_SignInit`, `C_VerifyInit`, `C_EncryptInit`, `C_DecryptInit` or
    /// `C_DigestInit` (which takes no key).
    pub fn op_init(&self, op: Op, h: CK_SESSION_HANDLE, m: &Mech, key: CK_OBJECT_HANDLE) -> CK_RV {
        let (mut pss, mut oaep, mut bytes);
        let (p, len): (*mut c_void, CK_ULONG) = match &m.param {
            Param::None => (null_mut(), 0),
            Param::NullWithLen(n) => (null_mut(), *n),
            Param::Bytes(b) => {
                bytes = b.clone();
                (bytes.as_mut_ptr().cast(), b.len() as CK_ULONG)
            }
            Param::Pss { hash, mgf, salt } => {
                pss = CK_RSA_PKCS_PSS_PARAMS {
                    hashAlg: *hash,
                    mgf: *mgf,
                    sLen: *salt,
                };
                let n = size_of::<CK_RSA_PKCS_PSS_PARAMS>() as CK_ULONG;
                (std::ptr::addr_of_mut!(pss).cast(), n)
            }
            Param::Oaep { hash, mgf } => {
                oaep = CK_RSA_PKCS_OAEP_PARAMS {
                    hashAlg: *hash,
                    mgf: *mgf,
                    source: CKZ_DATA_SPECIFIED,
                    pSourceData: null_mut(),
                    ulSourceDataLen: 0,
                };
                let n = size_of::<CK_RSA_PKCS_OAEP_PARAMS>() as CK_ULONG;
                (std::ptr::addr_of_mut!(oaep).cast(), n)
            }
        };
        let mut mech = CK_MECHANISM {
            mechanism: m.mechanism,
            pParameter: p,
            ulParameterLen: len,
        };
        // SAFETY: `mech` is a live CK_MECHANISM whose pParameter is NULL or
        // valid for ulParameterLen bytes of a live local; the module only reads it.
        unsafe {
            match op {
                Op::Sign => fp!(self.C_SignInit)(h, &mut mech, key),
                Op::Verify => fp!(self.C_VerifyInit)(h, &mut mech, key),
                Op::Encrypt => fp!(self.C_EncryptInit)(h, &mut mech, key),
                Op::Decrypt => fp!(self.C_DecryptInit)(h, &mut mech, key),
                Op::Digest => fp!(self.C_DigestInit)(h, &mut mech),
            }
        }
    }

    /// Single-part `C_Verify`.
    pub fn verify(&self, h: CK_SESSION_HANDLE, data: &[u8], sig: &[u8]) -> CK_RV {
        // SAFETY: both buffers are valid for their lengths; the module only
        // reads them (the prototype lacks const).
        unsafe {
            fp!(self.C_Verify)(
                h,
                data.as_ptr().cast_mut(),
                data.len() as CK_ULONG,
                sig.as_ptr().cast_mut(),
                sig.len() as CK_ULONG,
            )
        }
    }

    /// Single-part `C_Sign`, `C_Encrypt`, `C_Decrypt` or `C_Digest`: the
    /// result, the returned `*pulLen`, and the output bytes on `CKR_OK`.
    pub fn op(
        &self,
        op: Op,
        h: CK_SESSION_HANDLE,
        data: &[u8],
        out: Out,
    ) -> (CK_RV, CK_ULONG, Vec<u8>) {
        let f = match op {
            Op::Sign => fp!(self.C_Sign),
            Op::Encrypt => fp!(self.C_Encrypt),
            Op::Decrypt => fp!(self.C_Decrypt),
            Op::Digest => fp!(self.C_Digest),
            Op::Verify => panic!("C_Verify has no output"),
        };
        let cap = match out {
            Out::Query => 0,
            Out::Buf(n) => n,
        };
        let mut buf = vec![0u8; cap.max(1)];
        let mut len = cap as CK_ULONG;
        let p = match out {
            Out::Query => null_mut(),
            Out::Buf(_) => buf.as_mut_ptr(),
        };
        // SAFETY: `data` is valid for its length (only read: the prototype
        // lacks const), `p` NULL or valid for `len` writes, `len` a live local.
        let rv = unsafe {
            f(
                h,
                data.as_ptr().cast_mut(),
                data.len() as CK_ULONG,
                p,
                &mut len,
            )
        };
        let n = match out {
            Out::Buf(_) if rv == CKR_OK => usize::try_from(len).expect("length"),
            _ => 0,
        };
        assert!(n <= cap, "the module claims {n} bytes written into {cap}");
        buf.truncate(n);
        (rv, len, buf)
    }
}
