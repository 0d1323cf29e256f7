//! Signing a predicate about an image and pushing it as an OCI 1.1
//! referrer of the image: an in-toto Statement v1 in a DSSE envelope,
//! wrapped in a sigstore bundle (artifactType and layer media type = the
//! bundle media type, cosign's `dev.sigstore.bundle.predicateType` and
//! `dev.sigstore.bundle.content` annotations). `stella attest`, `stella
//! verify image --attach-verdict` and the service's `POST /api/v1/reports`
//! with `attach: true` all push through here.
//!
//! Not here: reading keys or the clock (the caller hands in the key and
//! the optional `org.opencontainers.image.created` time), choosing the
//! registry credentials (they are the store's).

use std::collections::BTreeMap;

use stella_attest::sign::SignedAttestation;
use stella_crypto::PrivateKey;
use stella_crypto::x509::Certificate;
use stella_oci::OciError;
use stella_oci::artifact::{ArtifactSpec, LayerSource, push_referrer};
use stella_oci::store::{ContentRead, ContentWrite, Progress, ReferrersRead, ReferrersWrite};
use stella_types::media_types::annotations;
use stella_types::{Descriptor, Digest, Reference};
use time::OffsetDateTime;

/// Why an attestation could not be attached.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// Signing the statement failed.
    #[error("cannot sign the attestation")]
    Sign(#[source] stella_attest::AttestError),
    /// The store refused or failed the push.
    #[error("cannot push the attestation")]
    Push(#[source] OciError),
}

impl PublishError {
    /// The store error underneath, if any.
    pub fn store_error(&self) -> Option<&OciError> {
        match self {
            PublishError::Push(e) => Some(e),
            PublishError::Sign(_) => None,
        }
    }
}

/// The subject name written into a statement: the repository (registry)
/// or the layout directory's name, without tag or digest.
pub fn subject_name(reference: &Reference) -> String {
    match reference {
        Reference::Registry(r) => format!("{}/{}", r.registry, r.repository),
        Reference::Layout(l) => l
            .dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| l.dir.display().to_string()),
    }
}

/// What to sign and attach.
pub struct Attachment<'a> {
    /// The image reference (for the statement's subject name).
    pub reference: &'a Reference,
    /// The resolved image the referrer points at.
    pub subject: &'a Descriptor,
    pub predicate_type: &'a str,
    pub predicate: serde_json::Value,
    pub key: &'a PrivateKey,
    /// Leaf first, then intermediates; empty for a bare key.
    pub certificates: &'a [Certificate],
    /// Stamped as `org.opencontainers.image.created` when given.
    pub created: Option<OffsetDateTime>,
}

/// A signed, pushed attestation.
pub struct Attached {
    /// The referrer manifest digest.
    pub digest: Digest,
    pub signed: SignedAttestation,
}

/// Signs `a.predicate` about `a.subject` and pushes it as a referrer.
pub async fn sign_and_attach<S>(
    store: &S,
    a: Attachment<'_>,
    progress: &dyn Progress,
) -> Result<Attached, PublishError>
where
    S: ContentRead + ContentWrite + ReferrersRead + ReferrersWrite + ?Sized,
{
    let signed = stella_attest::sign::attest(
        &subject_name(a.reference),
        &a.subject.digest,
        a.predicate_type,
        a.predicate,
        a.key,
        a.certificates,
    )
    .map_err(PublishError::Sign)?;
    let digest = push_signed(store, a.subject, &signed, a.created, progress).await?;
    Ok(Attached { digest, signed })
}

/// Pushes an already signed attestation as a referrer of `image`; returns
/// the referrer manifest digest.
pub async fn push_signed<S>(
    store: &S,
    image: &Descriptor,
    signed: &SignedAttestation,
    created: Option<OffsetDateTime>,
    progress: &dyn Progress,
) -> Result<Digest, PublishError>
where
    S: ContentRead + ContentWrite + ReferrersRead + ReferrersWrite + ?Sized,
{
    let mut ann = BTreeMap::new();
    ann.insert(
        annotations::SIGSTORE_PREDICATE_TYPE.to_string(),
        signed.statement.predicate_type.clone(),
    );
    ann.insert(
        annotations::SIGSTORE_CONTENT.to_string(),
        "dsse-envelope".to_string(),
    );
    if let Some(t) = created {
        ann.insert(
            annotations::CREATED.to_string(),
            stella_types::timestamp::rfc3339(t),
        );
    }
    let spec = ArtifactSpec {
        artifact_type: signed.media_type.clone(),
        layers: vec![LayerSource::Bytes {
            bytes: signed.bundle_json.clone(),
            media_type: signed.media_type.clone(),
            title: None,
        }],
        annotations: ann,
    };
    let pushed = push_referrer(store, image, &spec, progress)
        .await
        .map_err(PublishError::Push)?;
    Ok(pushed.descriptor.digest)
}
