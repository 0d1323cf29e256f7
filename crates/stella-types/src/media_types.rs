//! Media type and annotation names from the OCI image spec v1.1, Docker,
//! DSSE, in-toto and sigstore, in one place.

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_TAR_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

pub const DOCKER_MANIFEST_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Every manifest media type Stella reads; sent as `Accept` when fetching
/// manifests (distribution 2.8 only returns what is listed here).
pub const MANIFEST_ACCEPT: &[&str] = &[
    OCI_MANIFEST,
    OCI_INDEX,
    DOCKER_MANIFEST_V2,
    DOCKER_MANIFEST_LIST,
];

pub const DSSE_ENVELOPE: &str = "application/vnd.dsse.envelope.v1+json";
pub const IN_TOTO_JSON: &str = "application/vnd.in-toto+json";
pub const SIGSTORE_BUNDLE_V03: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// The empty JSON config blob (`{}`) that artifacts without a config use.
pub const EMPTY_JSON: &[u8] = b"{}";
pub const EMPTY_JSON_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

/// Annotation keys.
pub mod annotations {
    pub const TITLE: &str = "org.opencontainers.image.title";
    pub const CREATED: &str = "org.opencontainers.image.created";
    pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
    pub const SIGSTORE_PREDICATE_TYPE: &str = "dev.sigstore.bundle.predicateType";
    pub const SIGSTORE_CONTENT: &str = "dev.sigstore.bundle.content";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Digest;

    #[test]
    fn empty_json_digest_is_right() {
        assert_eq!(Digest::sha256_of(EMPTY_JSON).to_string(), EMPTY_JSON_DIGEST);
    }
}
