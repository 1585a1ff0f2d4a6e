/*
 * dcred_pkcs11.h — constants of the dcred PKCS#11 module beyond the standard
 * (use with the OASIS pkcs11.h headers).
 */
#ifndef DCRED_PKCS11_H
#define DCRED_PKCS11_H

/*
 * CKA_ID of the objects of a PIV key slot (certificate, public key, private key
 * share it). The convention is OpenSC's, so tools that know PIV find the keys.
 */
#define DCRED_ID_PIV_AUTHENTICATION   0x01 /* key reference 9A */
#define DCRED_ID_DIGITAL_SIGNATURE    0x02 /* 9C, CKA_ALWAYS_AUTHENTICATE */
#define DCRED_ID_KEY_MANAGEMENT       0x03 /* 9D */
#define DCRED_ID_CARD_AUTHENTICATION  0x04 /* 9E, usable without the PIN */
#define DCRED_ID_RETIRED_FIRST        0x05 /* 82; retired key n (1..20) is 0x04 + n */

/*
 * Vendor-defined return value: the derived credential is revoked on the
 * back-end (its KWK is destroyed), or the PIV card it was derived from is
 * revoked or expired. Returned by C_Login on a derived-credential slot.
 */
#define DCRED_CKR_CREDENTIAL_REVOKED  (CKR_VENDOR_DEFINED | 0x0DC00001UL)

#endif /* DCRED_PKCS11_H */
