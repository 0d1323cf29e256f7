//! Generated TLS material for tests: a throw-away CA and a server certificate for
//! `127.0.0.1` and `localhost`, written as PEM files into a directory.
//!
//! Also produces the self-signed token-signing certificate used by [`crate::token`].
//! Keys are ECDSA P-256 (rcgen's default). Nothing here is meant for production.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

use crate::TestkitError;

fn cert_err(e: rcgen::Error) -> TestkitError {
    TestkitError::Cert(e.to_string())
}

/// Paths of generated TLS files.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The CA certificate (PEM) clients must trust.
    pub ca_pem: PathBuf,
    /// The server certificate (PEM).
    pub cert_pem: PathBuf,
    /// The server private key (PKCS#8 PEM).
    pub key_pem: PathBuf,
}

/// Generates a CA and a server certificate (SANs: `localhost`, `127.0.0.1`) into `dir`.
pub fn generate_server_tls(dir: &Path) -> Result<TlsFiles, TestkitError> {
    let ca_key = KeyPair::generate().map_err(cert_err)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(cert_err)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "stella-testkit CA");
    ca_params.distinguished_name = dn;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(cert_err)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().map_err(cert_err)?;
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).map_err(cert_err)?;
    params
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "localhost");
    params.distinguished_name = dn;
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = params.signed_by(&server_key, &issuer).map_err(cert_err)?;

    let files = TlsFiles {
        ca_pem: dir.join("ca.pem"),
        cert_pem: dir.join("server.pem"),
        key_pem: dir.join("server-key.pem"),
    };
    write(&files.ca_pem, &ca_cert.pem())?;
    write(&files.cert_pem, &server_cert.pem())?;
    write(&files.key_pem, &server_key.serialize_pem())?;
    Ok(files)
}

/// A self-signed signing certificate (no EKU, so Go's verifier accepts it for any usage).
pub struct SigningCert {
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PKCS#8 DER.
    pub key_pkcs8_der: Vec<u8>,
}

/// Generates a self-signed ECDSA P-256 certificate for signing tokens.
pub fn generate_signing_cert(common_name: &str) -> Result<SigningCert, TestkitError> {
    let key = KeyPair::generate().map_err(cert_err)?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(cert_err)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let cert = params.self_signed(&key).map_err(cert_err)?;
    Ok(SigningCert {
        cert_der: cert.der().to_vec(),
        cert_pem: cert.pem(),
        key_pkcs8_der: key.serialize_der(),
    })
}

pub(crate) fn write(path: &Path, contents: &str) -> Result<(), TestkitError> {
    std::fs::write(path, contents)
        .map_err(|e| TestkitError::io(format!("writing {}", path.display()), e))
}
