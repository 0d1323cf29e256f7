//! Caps applied when reading a bundle (in addition to `stella_types::limits`).

/// Largest decompressed/compressed ratio accepted (SBOM JSON compresses
/// 10-30x; a run of zeros over 1000x).
pub const MAX_EXPANSION_RATIO: u64 = 200;
/// Decompressed bytes read before the ratio is enforced (small inputs have noisy ratios).
pub const RATIO_GRACE_BYTES: u64 = 64 * 1024 * 1024;
/// Largest decompressed tar accepted before the bundle manifest says better (1 TiB).
pub const MAX_BUNDLE_TAR_BYTES: u64 = 1 << 40;
/// Largest bundle manifest or checksum list.
pub const MAX_BUNDLE_MANIFEST_BYTES: u64 = stella_types::limits::MAX_JSON_DOCUMENT_BYTES;
/// Largest `index.json` or `oci-layout` file.
pub const MAX_LAYOUT_FILE_BYTES: u64 = stella_types::limits::MAX_REFERRERS_INDEX_BYTES;
/// Most artifacts (manifests + blobs) one bundle may list.
pub const MAX_ARTIFACTS: usize = 1_000_000;
/// Total bytes of manifests kept in memory (parsed) while verifying.
pub const MAX_MANIFEST_BYTES_TOTAL: u64 = 256 * 1024 * 1024;
