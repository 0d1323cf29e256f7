//! An OCI distribution registry repository: auth, blobs, manifests, referrers
//! API with the referrers tag schema fallback.
