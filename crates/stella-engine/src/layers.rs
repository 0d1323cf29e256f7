//! Reading the layers of a referrer that hold an attestation. Which layers
//! those are is decided by `stella_types::media_types::attestation_layers`
//! (the one rule every command uses): by media type, or, for a generic
//! layer type under an attestation `artifactType` (what `oras attach` and
//! other generic clients push), by content.
//!
//! Not here: verifying what was read.

use stella_oci::OciError;
use stella_oci::store::ContentRead;
use stella_types::limits::MAX_JSON_DOCUMENT_BYTES;
pub use stella_types::media_types::{AttestationLayer, MAX_GENERIC_LAYERS, attestation_layers};

/// Reads an attestation layer, refusing more than the JSON document cap.
pub async fn read_layer<S: ContentRead>(
    store: &S,
    layer: &AttestationLayer,
) -> Result<Vec<u8>, OciError> {
    store
        .fetch_blob_bytes(&layer.descriptor, MAX_JSON_DOCUMENT_BYTES)
        .await
}
