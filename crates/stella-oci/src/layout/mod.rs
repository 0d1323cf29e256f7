//! A local OCI image layout directory (image-spec `image-layout.md`): the
//! embedded default store. Stays valid for other tools (skopeo can copy from it).
//!
//! STUB: replaced by the layout store work (issue 2).

use std::path::{Path, PathBuf};

use stella_types::{Descriptor, Digest};
use tokio::io::AsyncWrite;

use crate::OciError;
use crate::store::*;

/// An OCI image layout directory.
#[derive(Debug, Clone)]
pub struct OciLayout {
    root: PathBuf,
}

impl OciLayout {
    /// Opens a layout, creating an empty one if `dir` does not exist.
    pub fn open_or_create(dir: &Path) -> Result<Self, OciError> {
        Ok(OciLayout { root: dir.to_path_buf() })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

fn todo_err() -> OciError {
    OciError::Protocol("OCI layout support is not available yet".into())
}

impl ContentRead for OciLayout {
    async fn resolve_tag(&self, _tag: &str) -> Result<Descriptor, OciError> { Err(todo_err()) }
    async fn fetch_manifest(&self, _d: &Digest) -> Result<FetchedManifest, OciError> { Err(todo_err()) }
    async fn manifest_exists(&self, _d: &Digest) -> Result<bool, OciError> { Err(todo_err()) }
    async fn blob_exists(&self, _d: &Digest) -> Result<bool, OciError> { Err(todo_err()) }
    async fn fetch_blob_to(&self, _d: &Descriptor, _s: &mut (dyn AsyncWrite + Unpin + Send)) -> Result<u64, OciError> { Err(todo_err()) }
}

impl ContentWrite for OciLayout {
    async fn push_blob(&self, _d: &Descriptor, _s: BlobSource<'_>, _p: &dyn Progress) -> Result<PushOutcome, OciError> { Err(todo_err()) }
    async fn push_manifest(&self, _m: &str, _b: &[u8], _t: Option<&str>) -> Result<Descriptor, OciError> { Err(todo_err()) }
    async fn delete_manifest(&self, _d: &Digest) -> Result<(), OciError> { Err(todo_err()) }
}

impl ReferrersRead for OciLayout {
    async fn referrers_mode(&self) -> Result<ReferrersMode, OciError> { Ok(ReferrersMode::Layout) }
    async fn list_referrers(&self, _s: &Digest, _a: &[String]) -> Result<ReferrerListing, OciError> { Err(todo_err()) }
}

impl ReferrersWrite for OciLayout {
    async fn add_referrer(&self, _s: &Descriptor, _r: &Descriptor) -> Result<(), OciError> { Err(todo_err()) }
    async fn remove_referrer(&self, _s: &Digest, _r: &Digest) -> Result<(), OciError> { Err(todo_err()) }
}
