//! Error type of stella-sigstore: unusable input (exit 2) versus failed
//! verification (exit 1). The message is one line naming the failed step.

/// Why a bundle did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SigstoreError {
    /// The input cannot be used: malformed bundle/trusted root/key, unsupported
    /// version or algorithm, missing required material. Maps to exit code 2.
    #[error("{0}")]
    Unusable(String),
    /// The input is well-formed but does not verify (signature, proof,
    /// time, trust or policy). Maps to exit code 1.
    #[error("{0}")]
    Failed(String),
    /// The bundle's signer is of another kind than the policy asks for (a
    /// managed key where a certificate identity is required, or the
    /// reverse): a verification failure (exit 1). Callers may add how to
    /// ask for the other kind in their own words.
    #[error("bundle is signed with {found}, but {wanted} was required")]
    WrongSignerKind {
        found: SignerKind,
        wanted: SignerKind,
    },
}

/// What signs a bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignerKind {
    /// A managed key (`publicKey` in the bundle).
    ManagedKey,
    /// A certificate (keyless: Fulcio identity).
    Certificate,
}

impl std::fmt::Display for SignerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SignerKind::ManagedKey => "a managed key (publicKey)",
            SignerKind::Certificate => "a certificate identity",
        })
    }
}

impl SigstoreError {
    pub fn unusable(msg: impl Into<String>) -> Self {
        SigstoreError::Unusable(msg.into())
    }
    pub fn failed(msg: impl Into<String>) -> Self {
        SigstoreError::Failed(msg.into())
    }
    pub fn is_unusable(&self) -> bool {
        matches!(self, SigstoreError::Unusable(_))
    }
    /// Prefixes the message with a context (the verification step).
    pub fn context(self, ctx: &str) -> Self {
        match self {
            SigstoreError::Unusable(m) => SigstoreError::Unusable(format!("{ctx}: {m}")),
            SigstoreError::Failed(m) => SigstoreError::Failed(format!("{ctx}: {m}")),
            e @ SigstoreError::WrongSignerKind { .. } => {
                SigstoreError::Failed(format!("{ctx}: {e}"))
            }
        }
    }
}

impl From<stella_crypto::CryptoError> for SigstoreError {
    /// A signature or certificate that does not verify is a failure (exit 1);
    /// unparseable or unsupported material is unusable input (exit 2).
    fn from(e: stella_crypto::CryptoError) -> Self {
        if e.is_verification_failure() {
            SigstoreError::Failed(e.to_string())
        } else {
            SigstoreError::Unusable(e.to_string())
        }
    }
}
