//! Object identifiers used by the key and certificate code (RFC 5280, 5480,
//! 8410, 8017, 8018). Plain constants, no logic.

use const_oid::ObjectIdentifier as Oid;

/// id-ecPublicKey.
pub const EC_PUBLIC_KEY: Oid = Oid::new_unwrap("1.2.840.10045.2.1");
/// prime256v1 / secp256r1.
pub const SECP256R1: Oid = Oid::new_unwrap("1.2.840.10045.3.1.7");
/// secp384r1.
pub const SECP384R1: Oid = Oid::new_unwrap("1.3.132.0.34");
/// secp521r1.
pub const SECP521R1: Oid = Oid::new_unwrap("1.3.132.0.35");
/// id-Ed25519.
pub const ED25519: Oid = Oid::new_unwrap("1.3.101.112");
/// rsaEncryption.
pub const RSA_ENCRYPTION: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
/// RSASSA-PSS.
pub const RSASSA_PSS: Oid = Oid::new_unwrap("1.2.840.113549.1.1.10");
/// sha256WithRSAEncryption.
pub const SHA256_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.11");
/// sha384WithRSAEncryption.
pub const SHA384_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.12");
/// sha512WithRSAEncryption.
pub const SHA512_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.13");
/// ecdsa-with-SHA256.
pub const ECDSA_WITH_SHA256: Oid = Oid::new_unwrap("1.2.840.10045.4.3.2");
/// ecdsa-with-SHA384.
pub const ECDSA_WITH_SHA384: Oid = Oid::new_unwrap("1.2.840.10045.4.3.3");
/// ecdsa-with-SHA512.
pub const ECDSA_WITH_SHA512: Oid = Oid::new_unwrap("1.2.840.10045.4.3.4");
/// id-sha256.
pub const SHA256: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.1");
/// id-sha384.
pub const SHA384: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.2");
/// id-sha512.
pub const SHA512: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.3");
/// id-PBES2.
pub const PBES2: Oid = Oid::new_unwrap("1.2.840.113549.1.5.13");
/// id-PBKDF2.
pub const PBKDF2: Oid = Oid::new_unwrap("1.2.840.113549.1.5.12");
/// hmacWithSHA1.
pub const HMAC_SHA1: Oid = Oid::new_unwrap("1.2.840.113549.2.7");
/// hmacWithSHA256.
pub const HMAC_SHA256: Oid = Oid::new_unwrap("1.2.840.113549.2.9");
/// hmacWithSHA384.
pub const HMAC_SHA384: Oid = Oid::new_unwrap("1.2.840.113549.2.10");
/// hmacWithSHA512.
pub const HMAC_SHA512: Oid = Oid::new_unwrap("1.2.840.113549.2.11");
/// aes128-CBC.
pub const AES128_CBC: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.2");
/// aes256-CBC.
pub const AES256_CBC: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.42");
/// id-ce-basicConstraints.
pub const BASIC_CONSTRAINTS: Oid = Oid::new_unwrap("2.5.29.19");
/// id-ce-keyUsage.
pub const KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.15");
/// id-ce-extKeyUsage.
pub const EXT_KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.37");
/// id-ce-subjectAltName.
pub const SUBJECT_ALT_NAME: Oid = Oid::new_unwrap("2.5.29.17");
/// id-ce-certificatePolicies.
pub const CERTIFICATE_POLICIES: Oid = Oid::new_unwrap("2.5.29.32");
/// id-ce-subjectKeyIdentifier.
pub const SUBJECT_KEY_ID: Oid = Oid::new_unwrap("2.5.29.14");
/// id-ce-authorityKeyIdentifier.
pub const AUTHORITY_KEY_ID: Oid = Oid::new_unwrap("2.5.29.35");
/// id-kp-codeSigning.
pub const KP_CODE_SIGNING: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.3");
/// anyExtendedKeyUsage.
pub const ANY_EXTENDED_KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.37.0");
