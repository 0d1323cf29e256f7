//! Size caps applied to data that comes from outside (registries, bundles,
//! files the user names). One place, so reviewers can see every bound.

/// Largest manifest or index Stella buffers (distribution's own limit is 4 MiB).
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;
/// Largest referrers index (API page or fallback tag) Stella buffers.
pub const MAX_REFERRERS_INDEX_BYTES: u64 = 16 * 1024 * 1024;
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
