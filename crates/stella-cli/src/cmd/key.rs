//! `stella key ...`: key generation, plus the key-loading helpers the attest
//! and verify commands share (private-key passphrase from `STELLA_PASSWORD`
//! or a terminal prompt; public keys and CA certificates from PEM files).

use std::io::{IsTerminal, Write};
use std::path::Path;

use anyhow::Context;
use stella_crypto::x509::Certificate;
use stella_crypto::{CryptoError, KeyKind, PrivateKey, PublicKey};

use crate::cli::{KeyAlgorithm, KeyCommand, KeyGenerateArgs};
use crate::exit::Outcome;

/// Largest key or certificate file read.
const MAX_PEM_FILE_BYTES: u64 = 1024 * 1024;

pub fn run(command: KeyCommand) -> anyhow::Result<Outcome> {
    match command {
        KeyCommand::Generate(args) => generate(args),
    }
}

fn generate(args: KeyGenerateArgs) -> anyhow::Result<Outcome> {
    let kind = match args.algorithm {
        KeyAlgorithm::EcdsaP256 => KeyKind::EcdsaP256,
        KeyAlgorithm::Ed25519 => KeyKind::Ed25519,
    };
    for p in [&args.output_key, &args.output_pub] {
        if p.exists() {
            anyhow::bail!("{} already exists; refusing to overwrite it", p.display());
        }
    }
    if args.output_key == args.output_pub {
        anyhow::bail!("--output-key and --output-pub name the same file");
    }
    let key = PrivateKey::generate(kind).context("key generation failed")?;
    let private_pem = key.to_pkcs8_pem()?;
    write_private(&args.output_key, private_pem.as_bytes())
        .with_context(|| format!("cannot write {}", args.output_key.display()))?;
    std::fs::write(&args.output_pub, key.public_key().to_pem())
        .with_context(|| format!("cannot write {}", args.output_pub.display()))?;
    println!(
        "generated {kind} key: private {} public {} (keyid sha256:{})",
        args.output_key.display(),
        args.output_pub.display(),
        key.public_key().keyid()
    );
    Ok(Outcome::Success)
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn read_text(path: &Path, what: &str) -> anyhow::Result<String> {
    let bytes = super::read_capped(path, MAX_PEM_FILE_BYTES)
        .with_context(|| format!("cannot read {what} {}", path.display()))?;
    String::from_utf8(bytes).with_context(|| format!("{what} {} is not PEM text", path.display()))
}

/// Loads a private key; an encrypted one is decrypted with STELLA_PASSWORD or,
/// on a terminal, a prompt.
pub fn load_private_key(path: &Path) -> anyhow::Result<PrivateKey> {
    let pem = read_text(path, "private key")?;
    let ctx = || format!("cannot load private key {}", path.display());
    match PrivateKey::from_pkcs8_pem(&pem, None) {
        Ok(k) => Ok(k),
        Err(CryptoError::PassphraseRequired) => {
            let pass = match std::env::var("STELLA_PASSWORD") {
                Ok(p) => p,
                Err(_) if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() => {
                    rpassword::prompt_password(format!("Passphrase for {}: ", path.display()))
                        .context("cannot read the passphrase")?
                }
                Err(_) => {
                    return Err(anyhow::Error::new(CryptoError::PassphraseRequired))
                        .context("set STELLA_PASSWORD, or run on a terminal to be asked")
                        .with_context(ctx);
                }
            };
            PrivateKey::from_pkcs8_pem(&pem, Some(pass.as_bytes())).with_context(ctx)
        }
        Err(e) => Err(anyhow::Error::new(e)).with_context(ctx),
    }
}

/// Loads a `PUBLIC KEY` PEM file.
pub fn load_public_key(path: &Path) -> anyhow::Result<PublicKey> {
    let pem = read_text(path, "public key")?;
    PublicKey::from_pem(&pem).with_context(|| format!("cannot load public key {}", path.display()))
}

/// Loads every certificate of a PEM file (at least one).
pub fn load_certificates(path: &Path, what: &str) -> anyhow::Result<Vec<Certificate>> {
    let pem = read_text(path, what)?;
    let certs = Certificate::pem_chain(&pem)
        .with_context(|| format!("cannot load {what} {}", path.display()))?;
    if certs.is_empty() {
        anyhow::bail!("{what} {} holds no CERTIFICATE PEM block", path.display());
    }
    Ok(certs)
}
