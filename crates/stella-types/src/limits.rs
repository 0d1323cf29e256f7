//! Size caps applied to data that comes from outside (registries, bundles,
//! files the user names). One place, so reviewers can see every bound.

/// Largest manifest or index Stella buffers (distribution's own limit is 4 MiB).
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;
/// Largest referrers index (API page or fallback tag) Stella buffers.
pub const MAX_REFERRERS_INDEX_BYTES: u64 = 16 * 1024 * 1024;
/// Largest referrers tag-schema index (the image index tagged `<alg>-<hex>`)
/// Stella writes. It is stored and fetched as a manifest (by Stella, by
/// registries, by skopeo), so the manifest cap applies: an index over it
/// is refused before anything is written.
pub const MAX_TAG_SCHEMA_INDEX_BYTES: u64 = MAX_MANIFEST_BYTES;
/// Largest OCI image layout `index.json` Stella reads, and therefore writes.
pub const MAX_LAYOUT_INDEX_BYTES: u64 = 16 * 1024 * 1024;
/// Largest JSON document read whole (DSSE envelope, sigstore bundle, policy, trusted root).
pub const MAX_JSON_DOCUMENT_BYTES: u64 = 32 * 1024 * 1024;
/// Largest DSSE payload accepted.
pub const MAX_DSSE_PAYLOAD_BYTES: u64 = 16 * 1024 * 1024;
/// Pages of a paginated registry answer followed before giving up.
pub const MAX_PAGES: usize = 1000;
/// Referrers reported for one subject before giving up.
pub const MAX_REFERRERS_PER_SUBJECT: usize = 100_000;
/// Depth of the referrers graph walked by default.
pub const DEFAULT_REFERRER_DEPTH: usize = 4;
/// Deepest referrers graph walked at all.
pub const MAX_REFERRER_DEPTH: usize = 16;
/// Error bodies from a registry read for the error message.
pub const MAX_ERROR_BODY_BYTES: u64 = 16 * 1024;
