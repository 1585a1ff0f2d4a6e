//! The core error type and its single mapping to `CK_RV`.
//!
//! Every layer below the core (the PIV driver, the crypto helpers) has its own
//! error enum that converts into [`Error`]; only [`rv`] turns an error into a
//! PKCS#11 return value. Messages never carry a PIN, key material or a secret.

use std::fmt;

use cryptoki_sys::*;

/// Vendor-defined return value: the derived credential is revoked, or the PIV
/// card it was derived from is revoked or expired (include/dcred_pkcs11.h).
pub const DCRED_CKR_CREDENTIAL_REVOKED: CK_RV = CKR_VENDOR_DEFINED | 0x0dc0_0001;

/// Result alias for the core.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything the core can report to a PKCS#11 caller.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A pointer or length argument is unusable (the text says which).
    ArgumentsBad(&'static str),
    /// `C_Initialize` has not been called (or the process forked since).
    NotInitialized,
    /// `C_Initialize` was called twice.
    AlreadyInitialized,
    /// The application asked for locking we cannot provide.
    CantLock,
    /// No slot with this id.
    SlotIdInvalid(CK_SLOT_ID),
    /// The slot has no token.
    TokenNotPresent,
    /// A card is in the slot but it is not a token this module knows (no PIV application).
    TokenNotRecognized,
    /// The token went away during the call or since the session was opened.
    DeviceRemoved,
    /// The card or reader failed (text: what failed, never data).
    DeviceError(String),
    /// The card does not have room or the function failed for a card reason.
    FunctionFailed(String),
    /// A bug or impossible state (text says where).
    GeneralError(String),
    /// Not a session handle of ours.
    SessionHandleInvalid,
    /// `CKF_SERIAL_SESSION` was not set.
    SessionParallelNotSupported,
    /// The token is read-only; a read-write session was requested.
    TokenWriteProtected,
    /// The object may not be changed or destroyed (card objects).
    ActionProhibited,
    /// The session is read-only.
    SessionReadOnly,
    /// Not an object handle visible to this session.
    ObjectHandleInvalid,
    /// Not a key handle usable here.
    KeyHandleInvalid,
    /// The key type does not fit the mechanism.
    KeyTypeInconsistent,
    /// The key does not allow this function (CKA_SIGN false, …).
    KeyFunctionNotPermitted,
    /// Mechanism unknown or not allowed for this function.
    MechanismInvalid(CK_MECHANISM_TYPE),
    /// The mechanism parameter is missing, the wrong size or has a bad value.
    MechanismParamInvalid(&'static str),
    /// An operation of this kind is already active in the session.
    OperationActive,
    /// No operation of this kind is active in the session.
    OperationNotInitialized,
    /// The output buffer is too small; the required size is carried.
    BufferTooSmall(usize),
    /// The attribute type is not valid for the object.
    AttributeTypeInvalid,
    /// An attribute value in a template is invalid.
    AttributeValueInvalid,
    /// The attribute cannot be modified.
    AttributeReadOnly,
    /// The attribute is sensitive and cannot be revealed.
    AttributeSensitive,
    /// A template lacks a required attribute.
    TemplateIncomplete,
    /// A template contradicts itself or the mechanism.
    TemplateInconsistent,
    /// Login required.
    UserNotLoggedIn,
    /// The user is already logged in.
    UserAlreadyLoggedIn,
    /// The user type is not supported.
    UserTypeInvalid,
    /// Only the user role exists on these tokens.
    UserPinNotInitialized,
    /// Wrong PIN.
    PinIncorrect,
    /// The PIN is blocked.
    PinLocked,
    /// The derived credential is revoked (or its PIV card is): vendor-defined
    /// `DCRED_CKR_CREDENTIAL_REVOKED`.
    CredentialRevoked,
    /// The PIN has the wrong length.
    PinLenRange,
    /// The PIN has invalid characters.
    PinInvalid,
    /// Input data has the wrong length.
    DataLenRange,
    /// Input data is invalid.
    DataInvalid,
    /// The ciphertext is invalid (padding check failed).
    EncryptedDataInvalid,
    /// The ciphertext has the wrong length.
    EncryptedDataLenRange,
    /// Signature verification failed.
    SignatureInvalid,
    /// The signature has the wrong length.
    SignatureLenRange,
    /// The unwrapping key handle is not usable.
    UnwrappingKeyHandleInvalid,
    /// The wrapped key is invalid.
    WrappedKeyInvalid,
    /// The wrapped key has the wrong length.
    WrappedKeyLenRange,
    /// The function is not supported by this module.
    FunctionNotSupported,
    /// Legacy parallel-function calls.
    FunctionNotParallel,
    /// `C_WaitForSlotEvent` with `CKF_DONT_BLOCK` found no event.
    NoEvent,
    /// The module is being finalized (a blocked wait was cancelled).
    Cancelled,
    /// Random number generation failed.
    RandomFailed,
    /// The generator cannot be seeded.
    RandomSeedNotSupported,
    /// The key size is not supported.
    KeySizeRange,
    /// The curve or domain parameters are not supported.
    DomainParamsInvalid,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ArgumentsBad(what) => write!(f, "bad argument: {what}"),
            Error::SlotIdInvalid(id) => write!(f, "no slot {id}"),
            Error::DeviceError(what) => write!(f, "device error: {what}"),
            Error::FunctionFailed(what) => write!(f, "function failed: {what}"),
            Error::GeneralError(what) => write!(f, "internal error: {what}"),
            Error::MechanismInvalid(m) => write!(f, "mechanism {m:#x} not supported here"),
            Error::MechanismParamInvalid(what) => write!(f, "mechanism parameter: {what}"),
            Error::BufferTooSmall(n) => write!(f, "buffer too small, {n} bytes needed"),
            other => write!(f, "{}", rv_name(rv(other))),
        }
    }
}

impl std::error::Error for Error {}

/// The one place where an error becomes a `CK_RV`.
pub fn rv(e: &Error) -> CK_RV {
    match e {
        Error::ArgumentsBad(_) => CKR_ARGUMENTS_BAD,
        Error::NotInitialized => CKR_CRYPTOKI_NOT_INITIALIZED,
        Error::AlreadyInitialized => CKR_CRYPTOKI_ALREADY_INITIALIZED,
        Error::CantLock => CKR_CANT_LOCK,
        Error::SlotIdInvalid(_) => CKR_SLOT_ID_INVALID,
        Error::TokenNotPresent => CKR_TOKEN_NOT_PRESENT,
        Error::TokenNotRecognized => CKR_TOKEN_NOT_RECOGNIZED,
        Error::DeviceRemoved => CKR_DEVICE_REMOVED,
        Error::DeviceError(_) => CKR_DEVICE_ERROR,
        Error::FunctionFailed(_) => CKR_FUNCTION_FAILED,
        Error::GeneralError(_) => CKR_GENERAL_ERROR,
        Error::SessionHandleInvalid => CKR_SESSION_HANDLE_INVALID,
        Error::SessionParallelNotSupported => CKR_SESSION_PARALLEL_NOT_SUPPORTED,
        Error::TokenWriteProtected => CKR_TOKEN_WRITE_PROTECTED,
        Error::ActionProhibited => CKR_ACTION_PROHIBITED,
        Error::SessionReadOnly => CKR_SESSION_READ_ONLY,
        Error::ObjectHandleInvalid => CKR_OBJECT_HANDLE_INVALID,
        Error::KeyHandleInvalid => CKR_KEY_HANDLE_INVALID,
        Error::KeyTypeInconsistent => CKR_KEY_TYPE_INCONSISTENT,
        Error::KeyFunctionNotPermitted => CKR_KEY_FUNCTION_NOT_PERMITTED,
        Error::MechanismInvalid(_) => CKR_MECHANISM_INVALID,
        Error::MechanismParamInvalid(_) => CKR_MECHANISM_PARAM_INVALID,
        Error::OperationActive => CKR_OPERATION_ACTIVE,
        Error::OperationNotInitialized => CKR_OPERATION_NOT_INITIALIZED,
        Error::BufferTooSmall(_) => CKR_BUFFER_TOO_SMALL,
        Error::AttributeTypeInvalid => CKR_ATTRIBUTE_TYPE_INVALID,
        Error::AttributeValueInvalid => CKR_ATTRIBUTE_VALUE_INVALID,
        Error::AttributeReadOnly => CKR_ATTRIBUTE_READ_ONLY,
        Error::AttributeSensitive => CKR_ATTRIBUTE_SENSITIVE,
        Error::TemplateIncomplete => CKR_TEMPLATE_INCOMPLETE,
        Error::TemplateInconsistent => CKR_TEMPLATE_INCONSISTENT,
        Error::UserNotLoggedIn => CKR_USER_NOT_LOGGED_IN,
        Error::UserAlreadyLoggedIn => CKR_USER_ALREADY_LOGGED_IN,
        Error::UserTypeInvalid => CKR_USER_TYPE_INVALID,
        Error::UserPinNotInitialized => CKR_USER_PIN_NOT_INITIALIZED,
        Error::PinIncorrect => CKR_PIN_INCORRECT,
        Error::PinLocked => CKR_PIN_LOCKED,
        Error::CredentialRevoked => DCRED_CKR_CREDENTIAL_REVOKED,
        Error::PinLenRange => CKR_PIN_LEN_RANGE,
        Error::PinInvalid => CKR_PIN_INVALID,
        Error::DataLenRange => CKR_DATA_LEN_RANGE,
        Error::DataInvalid => CKR_DATA_INVALID,
        Error::EncryptedDataInvalid => CKR_ENCRYPTED_DATA_INVALID,
        Error::EncryptedDataLenRange => CKR_ENCRYPTED_DATA_LEN_RANGE,
        Error::SignatureInvalid => CKR_SIGNATURE_INVALID,
        Error::SignatureLenRange => CKR_SIGNATURE_LEN_RANGE,
        Error::UnwrappingKeyHandleInvalid => CKR_UNWRAPPING_KEY_HANDLE_INVALID,
        Error::WrappedKeyInvalid => CKR_WRAPPED_KEY_INVALID,
        Error::WrappedKeyLenRange => CKR_WRAPPED_KEY_LEN_RANGE,
        Error::FunctionNotSupported => CKR_FUNCTION_NOT_SUPPORTED,
        Error::FunctionNotParallel => CKR_FUNCTION_NOT_PARALLEL,
        Error::NoEvent => CKR_NO_EVENT,
        // PKCS#11 3.0 §5.5: a wait cancelled by C_Finalize reports "not initialized".
        Error::Cancelled => CKR_CRYPTOKI_NOT_INITIALIZED,
        Error::RandomFailed => CKR_FUNCTION_FAILED,
        Error::RandomSeedNotSupported => CKR_RANDOM_SEED_NOT_SUPPORTED,
        Error::KeySizeRange => CKR_KEY_SIZE_RANGE,
        Error::DomainParamsInvalid => CKR_DOMAIN_PARAMS_INVALID,
    }
}

impl From<&Error> for CK_RV {
    fn from(e: &Error) -> CK_RV {
        rv(e)
    }
}

/// A readable name for a return value, for logs.
pub fn rv_name(rv: CK_RV) -> &'static str {
    match rv {
        CKR_OK => "CKR_OK",
        CKR_ARGUMENTS_BAD => "CKR_ARGUMENTS_BAD",
        CKR_CRYPTOKI_NOT_INITIALIZED => "CKR_CRYPTOKI_NOT_INITIALIZED",
        CKR_CRYPTOKI_ALREADY_INITIALIZED => "CKR_CRYPTOKI_ALREADY_INITIALIZED",
        CKR_CANT_LOCK => "CKR_CANT_LOCK",
        CKR_SLOT_ID_INVALID => "CKR_SLOT_ID_INVALID",
        CKR_TOKEN_NOT_PRESENT => "CKR_TOKEN_NOT_PRESENT",
        CKR_TOKEN_NOT_RECOGNIZED => "CKR_TOKEN_NOT_RECOGNIZED",
        CKR_DEVICE_REMOVED => "CKR_DEVICE_REMOVED",
        CKR_DEVICE_ERROR => "CKR_DEVICE_ERROR",
        CKR_FUNCTION_FAILED => "CKR_FUNCTION_FAILED",
        CKR_GENERAL_ERROR => "CKR_GENERAL_ERROR",
        CKR_SESSION_HANDLE_INVALID => "CKR_SESSION_HANDLE_INVALID",
        CKR_SESSION_PARALLEL_NOT_SUPPORTED => "CKR_SESSION_PARALLEL_NOT_SUPPORTED",
        CKR_TOKEN_WRITE_PROTECTED => "CKR_TOKEN_WRITE_PROTECTED",
        CKR_ACTION_PROHIBITED => "CKR_ACTION_PROHIBITED",
        CKR_SESSION_READ_ONLY => "CKR_SESSION_READ_ONLY",
        CKR_OBJECT_HANDLE_INVALID => "CKR_OBJECT_HANDLE_INVALID",
        CKR_KEY_HANDLE_INVALID => "CKR_KEY_HANDLE_INVALID",
        CKR_KEY_TYPE_INCONSISTENT => "CKR_KEY_TYPE_INCONSISTENT",
        CKR_KEY_FUNCTION_NOT_PERMITTED => "CKR_KEY_FUNCTION_NOT_PERMITTED",
        CKR_MECHANISM_INVALID => "CKR_MECHANISM_INVALID",
        CKR_MECHANISM_PARAM_INVALID => "CKR_MECHANISM_PARAM_INVALID",
        CKR_OPERATION_ACTIVE => "CKR_OPERATION_ACTIVE",
        CKR_OPERATION_NOT_INITIALIZED => "CKR_OPERATION_NOT_INITIALIZED",
        CKR_BUFFER_TOO_SMALL => "CKR_BUFFER_TOO_SMALL",
        CKR_ATTRIBUTE_TYPE_INVALID => "CKR_ATTRIBUTE_TYPE_INVALID",
        CKR_ATTRIBUTE_VALUE_INVALID => "CKR_ATTRIBUTE_VALUE_INVALID",
        CKR_ATTRIBUTE_READ_ONLY => "CKR_ATTRIBUTE_READ_ONLY",
        CKR_ATTRIBUTE_SENSITIVE => "CKR_ATTRIBUTE_SENSITIVE",
        CKR_TEMPLATE_INCOMPLETE => "CKR_TEMPLATE_INCOMPLETE",
        CKR_TEMPLATE_INCONSISTENT => "CKR_TEMPLATE_INCONSISTENT",
        CKR_USER_NOT_LOGGED_IN => "CKR_USER_NOT_LOGGED_IN",
        CKR_USER_ALREADY_LOGGED_IN => "CKR_USER_ALREADY_LOGGED_IN",
        CKR_USER_TYPE_INVALID => "CKR_USER_TYPE_INVALID",
        CKR_USER_PIN_NOT_INITIALIZED => "CKR_USER_PIN_NOT_INITIALIZED",
        CKR_PIN_INCORRECT => "CKR_PIN_INCORRECT",
        CKR_PIN_LOCKED => "CKR_PIN_LOCKED",
        DCRED_CKR_CREDENTIAL_REVOKED => "DCRED_CKR_CREDENTIAL_REVOKED",
        CKR_PIN_LEN_RANGE => "CKR_PIN_LEN_RANGE",
        CKR_PIN_INVALID => "CKR_PIN_INVALID",
        CKR_DATA_LEN_RANGE => "CKR_DATA_LEN_RANGE",
        CKR_DATA_INVALID => "CKR_DATA_INVALID",
        CKR_ENCRYPTED_DATA_INVALID => "CKR_ENCRYPTED_DATA_INVALID",
        CKR_ENCRYPTED_DATA_LEN_RANGE => "CKR_ENCRYPTED_DATA_LEN_RANGE",
        CKR_SIGNATURE_INVALID => "CKR_SIGNATURE_INVALID",
        CKR_SIGNATURE_LEN_RANGE => "CKR_SIGNATURE_LEN_RANGE",
        CKR_WRAPPED_KEY_INVALID => "CKR_WRAPPED_KEY_INVALID",
        CKR_UNWRAPPING_KEY_HANDLE_INVALID => "CKR_UNWRAPPING_KEY_HANDLE_INVALID",
        CKR_WRAPPED_KEY_LEN_RANGE => "CKR_WRAPPED_KEY_LEN_RANGE",
        CKR_FUNCTION_NOT_SUPPORTED => "CKR_FUNCTION_NOT_SUPPORTED",
        CKR_FUNCTION_NOT_PARALLEL => "CKR_FUNCTION_NOT_PARALLEL",
        CKR_NO_EVENT => "CKR_NO_EVENT",
        CKR_RANDOM_SEED_NOT_SUPPORTED => "CKR_RANDOM_SEED_NOT_SUPPORTED",
        CKR_KEY_SIZE_RANGE => "CKR_KEY_SIZE_RANGE",
        CKR_DOMAIN_PARAMS_INVALID => "CKR_DOMAIN_PARAMS_INVALID",
        _ => "CKR_(other)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_too_small_carries_size_and_maps() {
        let e = Error::BufferTooSmall(256);
        assert_eq!(rv(&e), CKR_BUFFER_TOO_SMALL);
        assert!(e.to_string().contains("256"));
    }

    #[test]
    fn cancelled_wait_reports_not_initialized() {
        assert_eq!(rv(&Error::Cancelled), CKR_CRYPTOKI_NOT_INITIALIZED);
    }

    #[test]
    fn every_named_rv_round_trips_through_rv_name() {
        for e in [Error::PinLocked, Error::PinIncorrect, Error::DeviceRemoved] {
            assert!(rv_name(rv(&e)).starts_with("CKR_"));
            assert_ne!(rv_name(rv(&e)), "CKR_(other)");
        }
    }
}
