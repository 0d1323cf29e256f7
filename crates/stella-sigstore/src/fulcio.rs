//! What sigstore reads from certificates beyond RFC 5280 path validation
//! (which is stella-crypto's one validator): the signer identity (URI and
//! e-mail SANs, Fulcio's otherName), the OIDC issuer extensions (v1 raw
//! bytes, v2 DER UTF8String), and the OIDs involved. Reads only.

use const_oid::ObjectIdentifier;
use der::Decode;
use stella_crypto::x509::Certificate;

use crate::error::SigstoreError;

/// Embedded SCT list (RFC 6962).
pub const OID_SCT_LIST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.11129.2.4.2");
/// id-kp-codeSigning.
pub const OID_EKU_CODE_SIGNING: ObjectIdentifier = stella_crypto::oids::KP_CODE_SIGNING;
/// id-kp-timeStamping.
pub const OID_EKU_TIME_STAMPING: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.8");
/// Fulcio OIDC issuer, v1 (raw bytes).
pub const OID_FULCIO_ISSUER_V1: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.1");
/// Fulcio OIDC issuer, v2 (DER UTF8String).
pub const OID_FULCIO_ISSUER_V2: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.8");
/// Fulcio otherName SAN (e.g. usernames).
pub const OID_FULCIO_OTHERNAME_SAN: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.7");

fn unusable(e: impl std::fmt::Display) -> SigstoreError {
    SigstoreError::unusable(format!("certificate: {e}"))
}

/// Subject alternative names that can name a signer: URIs, e-mail
/// addresses, then Fulcio otherName values.
pub fn sans(cert: &Certificate) -> Result<Vec<String>, SigstoreError> {
    let san = cert.subject_alt_names().map_err(unusable)?;
    let mut out = san.uris;
    out.extend(san.emails);
    out.extend(
        cert.other_name_sans(&OID_FULCIO_OTHERNAME_SAN)
            .map_err(unusable)?,
    );
    Ok(out)
}

/// The OIDC issuer from Fulcio's extensions (v2 preferred, else v1).
pub fn oidc_issuer(cert: &Certificate) -> Result<Option<String>, SigstoreError> {
    if let Some((_, value)) = cert.extension(&OID_FULCIO_ISSUER_V2) {
        let s = der::asn1::Utf8StringRef::from_der(value).map_err(unusable)?;
        return Ok(Some(s.as_str().to_string()));
    }
    if let Some((_, value)) = cert.extension(&OID_FULCIO_ISSUER_V1) {
        return String::from_utf8(value.to_vec())
            .map(Some)
            .map_err(|_| unusable("issuer is not UTF-8"));
    }
    Ok(None)
}
