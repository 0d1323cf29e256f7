//! The safe streaming bundle reader: one pass over the tar, never touching
//! the file system. [`BundleReader::open`] reads and checks the head of the
//! bundle (bundle manifest, optional signature, checksum list, `oci-layout`,
//! `index.json`); [`BundleReader::next_blob`] then yields each blob with a
//! reader that checks its size and digest as it streams.
//!
//! Hard problems (hostile or malformed input) are errors
//! ([`BundleError::Unusable`]); content that does not match the bundle's own
//! claims (checksum list, layout index, a blob's digest or size, a missing
//! or extra blob) is a [`BundleError::VerificationFailed`] that leaves the
//! stream usable, so a verifier can report every problem in one pass.

use std::collections::BTreeSet;
use std::io::{self, Read};
use std::path::Path;

use stella_types::{Digest, ImageIndex, VerifyingReader};

use crate::error::{BundleError, codes};
use crate::format::*;
use crate::limits::{MAX_BUNDLE_MANIFEST_BYTES, MAX_LAYOUT_FILE_BYTES};
use crate::tarball::{
    Capped, Compression, EntryData, EntryHeader, EntryKind, ReadLimits, TarStream,
    declared_tar_bytes, io_to_bundle, open_decompressed, open_decompressed_threaded,
};

/// Largest `oci-layout` file.
const OCI_LAYOUT_CAP: u64 = 4096;

/// An open bundle positioned before its first blob.
pub struct BundleReader {
    tar: TarStream<Capped>,
    compression: Compression,
    manifest: BundleManifest,
    manifest_bytes: Vec<u8>,
    signature: Option<Vec<u8>>,
    index: ImageIndex,
    soft_failures: Vec<BundleError>,
    seen_paths: BTreeSet<String>,
    seen_blobs: BTreeSet<Digest>,
    last_verified: bool,
    ended: bool,
}

fn read_small(
    tar: &mut TarStream<Capped>,
    h: &EntryHeader,
    cap: u64,
) -> Result<Vec<u8>, BundleError> {
    if h.size > cap {
        return Err(BundleError::unusable(
            codes::TOO_LARGE,
            format!("{} is {} bytes, over the {cap}-byte limit", h.path, h.size),
        ));
    }
    let mut buf = Vec::with_capacity(h.size as usize);
    tar.data()
        .read_to_end(&mut buf)
        .map_err(|e| io_to_bundle(&h.path, e))?;
    Ok(buf)
}

impl BundleReader {
    /// Opens a bundle file.
    pub fn open_path(path: &Path, limits: ReadLimits) -> Result<Self, BundleError> {
        let f = std::fs::File::open(path)
            .map_err(|e| BundleError::io(format!("opening {}", path.display()), e))?;
        // A file can move to another thread: gzip and zstd are decoded on
        // their own thread, overlapping with hashing.
        let (stream, compression) =
            open_decompressed_threaded(io::BufReader::with_capacity(1 << 20, f), limits)?;
        Self::from_stream(stream, compression, limits)
    }

    /// Reads and checks the head of a bundle from any byte stream.
    pub fn open<R: Read + 'static>(input: R, limits: ReadLimits) -> Result<Self, BundleError> {
        let (stream, compression) = open_decompressed(input, limits)?;
        Self::from_stream(stream, compression, limits)
    }

    /// Reads and checks the head of a bundle from its decompressed stream.
    fn from_stream(
        stream: Capped,
        compression: Compression,
        limits: ReadLimits,
    ) -> Result<Self, BundleError> {
        let mut tar = TarStream::new(stream);
        let mut seen_paths = BTreeSet::new();
        let next_file = |tar: &mut TarStream<Capped>,
                         seen: &mut BTreeSet<String>|
         -> Result<EntryHeader, BundleError> {
            let h = tar.next_header()?.ok_or_else(|| {
                BundleError::unusable(
                    codes::NOT_A_BUNDLE,
                    "archive ends before the bundle head is complete",
                )
            })?;
            if !seen.insert(h.path.trim_end_matches('/').to_string()) {
                return Err(BundleError::unusable(
                    codes::DUPLICATE_ENTRY,
                    format!("entry {:?} appears twice", h.path),
                ));
            }
            if h.kind == EntryKind::Dir {
                return Err(BundleError::unusable(
                    codes::NOT_A_BUNDLE,
                    format!("directory {:?} before the bundle head is complete", h.path),
                ));
            }
            Ok(h)
        };
        let h = next_file(&mut tar, &mut seen_paths).map_err(|e| match e {
            BundleError::Unusable {
                code: codes::CORRUPT | codes::TRUNCATED,
                reason,
            } => BundleError::unusable(
                codes::NOT_A_BUNDLE,
                format!("not a StellaBundle (not a tar?): {reason}"),
            ),
            other => other,
        })?;
        if h.path != MANIFEST_NAME {
            return Err(BundleError::unusable(
                codes::NOT_A_BUNDLE,
                format!(
                    "not a StellaBundle: first entry is {:?}, expected {MANIFEST_NAME}",
                    h.path
                ),
            ));
        }
        let manifest_bytes = read_small(&mut tar, &h, MAX_BUNDLE_MANIFEST_BYTES)?;
        let manifest = BundleManifest::parse(&manifest_bytes)?;
        // From here on the manifest bounds the stream (the other head files
        // counted at their caps until their sizes are known) and no ratio applies.
        let head_caps = [
            manifest_bytes.len() as u64,
            MAX_LAYOUT_FILE_BYTES,
            MAX_BUNDLE_MANIFEST_BYTES,
            OCI_LAYOUT_CAP,
            MAX_LAYOUT_FILE_BYTES,
        ];
        tar.inner_mut()
            .bound_by_manifest(declared_tar_bytes(&head_caps, &manifest));
        let mut h = next_file(&mut tar, &mut seen_paths)?;
        let mut signature = None;
        if h.path == SIGNATURE_NAME {
            signature = Some(read_small(&mut tar, &h, MAX_LAYOUT_FILE_BYTES)?);
            h = next_file(&mut tar, &mut seen_paths)?;
        }
        if h.path != CHECKSUMS_NAME {
            return Err(BundleError::unusable(
                codes::NOT_A_BUNDLE,
                format!("entry {:?} where {CHECKSUMS_NAME} must come", h.path),
            ));
        }
        let sums_bytes = read_small(&mut tar, &h, MAX_BUNDLE_MANIFEST_BYTES)?;
        let sums = parse_checksums(&sums_bytes)?;
        let h = next_file(&mut tar, &mut seen_paths)?;
        if h.path != OCI_LAYOUT_NAME {
            return Err(BundleError::unusable(
                codes::NOT_A_BUNDLE,
                format!("entry {:?} where {OCI_LAYOUT_NAME} must come", h.path),
            ));
        }
        let layout_bytes = read_small(&mut tar, &h, OCI_LAYOUT_CAP)?;
        let layout: serde_json::Value = serde_json::from_slice(&layout_bytes).map_err(|e| {
            BundleError::unusable(codes::LAYOUT, format!("{OCI_LAYOUT_NAME} is not JSON: {e}"))
        })?;
        if layout.get("imageLayoutVersion").and_then(|v| v.as_str()) != Some("1.0.0") {
            return Err(BundleError::unusable(
                codes::LAYOUT,
                format!("{OCI_LAYOUT_NAME} does not declare imageLayoutVersion 1.0.0"),
            ));
        }
        let h = next_file(&mut tar, &mut seen_paths)?;
        if h.path != INDEX_NAME {
            return Err(BundleError::unusable(
                codes::NOT_A_BUNDLE,
                format!("entry {:?} where {INDEX_NAME} must come", h.path),
            ));
        }
        let index_bytes = read_small(&mut tar, &h, MAX_LAYOUT_FILE_BYTES)?;
        let index: ImageIndex = serde_json::from_slice(&index_bytes).map_err(|e| {
            BundleError::unusable(
                codes::LAYOUT,
                format!("{INDEX_NAME} is not an image index: {e}"),
            )
        })?;

        let mut soft_failures = Vec::new();
        // Checksum list against the actual head files and the declared blobs.
        let mut expected: Vec<(String, String)> = vec![
            (
                MANIFEST_NAME.into(),
                Digest::sha256_of(&manifest_bytes).hex().into(),
            ),
            (
                OCI_LAYOUT_NAME.into(),
                Digest::sha256_of(&layout_bytes).hex().into(),
            ),
            (
                INDEX_NAME.into(),
                Digest::sha256_of(&index_bytes).hex().into(),
            ),
        ];
        if let Some(sig) = &signature {
            expected.push((SIGNATURE_NAME.into(), Digest::sha256_of(sig).hex().into()));
        }
        for a in &manifest.artifacts {
            expected.push((blob_path(&a.digest), a.digest.hex().into()));
        }
        expected.sort();
        check_sums(&expected, &sums, &mut soft_failures);
        check_index(&manifest, &index, &mut soft_failures);

        // Bound the rest of the stream by what the manifest declares.
        let head_sizes: Vec<u64> = [&manifest_bytes, &sums_bytes, &layout_bytes, &index_bytes]
            .iter()
            .map(|b| b.len() as u64)
            .chain(signature.as_ref().map(|s| s.len() as u64))
            .collect();
        let declared = declared_tar_bytes(&head_sizes, &manifest);
        if declared > limits.max_total_bytes {
            return Err(BundleError::unusable(
                codes::TOO_LARGE,
                format!(
                    "the bundle manifest declares {declared} bytes of archive, over this reader's {}-byte cap",
                    limits.max_total_bytes
                ),
            ));
        }
        tar.inner_mut().bound_by_manifest(declared);

        Ok(BundleReader {
            tar,
            compression,
            manifest,
            manifest_bytes,
            signature,
            index,
            soft_failures,
            seen_paths,
            seen_blobs: BTreeSet::new(),
            last_verified: true,
            ended: false,
        })
    }

    pub fn manifest(&self) -> &BundleManifest {
        &self.manifest
    }
    /// The exact bytes of `stella-bundle.json` (what a signature covers).
    pub fn manifest_bytes(&self) -> &[u8] {
        &self.manifest_bytes
    }
    pub fn signature(&self) -> Option<&[u8]> {
        self.signature.as_deref()
    }
    pub fn index(&self) -> &ImageIndex {
        &self.index
    }
    pub fn compression(&self) -> Compression {
        self.compression
    }
    /// Verification failures found while opening (checksum list, layout index).
    pub fn take_soft_failures(&mut self) -> Vec<BundleError> {
        std::mem::take(&mut self.soft_failures)
    }

    /// The next blob, or `None` at the end of the archive. A
    /// `VerificationFailed` error (extra blob, size mismatch) leaves the
    /// reader usable: call `next_blob` again to continue.
    pub fn next_blob(&mut self) -> Result<Option<BlobEntry<'_>>, BundleError> {
        if !self.last_verified {
            return Err(BundleError::InvalidInput(
                "previous blob was not finished".into(),
            ));
        }
        if self.ended {
            return Ok(None);
        }
        loop {
            let Some(h) = self.tar.next_header()? else {
                self.tar.expect_end_of_input()?;
                self.ended = true;
                return Ok(None);
            };
            let key = h.path.trim_end_matches('/').to_string();
            if !self.seen_paths.insert(key.clone()) {
                return Err(BundleError::unusable(
                    codes::DUPLICATE_ENTRY,
                    format!("entry {:?} appears twice", h.path),
                ));
            }
            if h.kind == EntryKind::Dir {
                if key == BLOBS_DIR.trim_end_matches('/')
                    || key == BLOBS_SHA256_DIR.trim_end_matches('/')
                {
                    continue;
                }
                return Err(BundleError::unusable(
                    codes::UNEXPECTED_ENTRY,
                    format!("unexpected directory {:?}", h.path),
                ));
            }
            let Some(digest) = digest_from_blob_path(&h.path) else {
                return Err(BundleError::unusable(
                    codes::UNEXPECTED_ENTRY,
                    format!("unexpected entry {:?}", h.path),
                ));
            };
            let Some(entry) = self.manifest.artifact(&digest).cloned() else {
                self.tar.skip_rest()?;
                return Err(BundleError::failed(
                    codes::EXTRA_BLOB,
                    format!("blob {digest} is in the archive but not in the bundle manifest"),
                ));
            };
            if h.size != entry.size {
                self.tar.skip_rest()?;
                self.seen_blobs.insert(digest.clone());
                return Err(BundleError::failed(
                    codes::SIZE_MISMATCH,
                    format!(
                        "blob {digest} is {} bytes in the archive, {} in the bundle manifest",
                        h.size, entry.size
                    ),
                ));
            }
            self.seen_blobs.insert(digest.clone());
            self.last_verified = false;
            let reader = VerifyingReader::new(self.tar.data(), digest, entry.size);
            return Ok(Some(BlobEntry {
                artifact: entry,
                reader,
                verified: &mut self.last_verified,
            }));
        }
    }

    /// Blobs the bundle manifest lists that the archive did not hold (call after `next_blob` returned `None`).
    pub fn missing_blobs(&self) -> Vec<&ArtifactEntry> {
        self.manifest
            .artifacts
            .iter()
            .filter(|a| !self.seen_blobs.contains(&a.digest))
            .collect()
    }
}

fn check_sums(
    expected: &[(String, String)],
    listed: &[(String, String)],
    failures: &mut Vec<BundleError>,
) {
    let mut e = expected.iter().peekable();
    let mut l = listed.iter().peekable();
    loop {
        match (e.peek(), l.peek()) {
            (None, None) => break,
            (Some(x), Some(y)) if x.0 == y.0 => {
                if x.1 != y.1 {
                    failures.push(BundleError::failed(
                        codes::CHECKSUM_LIST,
                        format!("{CHECKSUMS_NAME} disagrees with the bundle about {}", x.0),
                    ));
                }
                e.next();
                l.next();
            }
            (Some(x), y) if y.is_none_or(|y| x.0 < y.0) => {
                failures.push(BundleError::failed(
                    codes::CHECKSUM_LIST,
                    format!("{CHECKSUMS_NAME} does not list {}", x.0),
                ));
                e.next();
            }
            (_, Some(y)) => {
                failures.push(BundleError::failed(
                    codes::CHECKSUM_LIST,
                    format!(
                        "{CHECKSUMS_NAME} lists {} which the bundle does not hold",
                        y.0
                    ),
                ));
                l.next();
            }
            (Some(_), None) => {
                e.next();
            }
        }
    }
}

fn check_index(manifest: &BundleManifest, index: &ImageIndex, failures: &mut Vec<BundleError>) {
    let mut subject_tagged = false;
    for d in &index.manifests {
        match manifest.artifact(&d.digest) {
            Some(a) if a.role.is_manifest() && a.size == d.size && a.media_type == d.media_type => {
                if a.role == Role::Subject
                    && d.annotation(stella_types::media_types::annotations::REF_NAME) == Some(manifest.subject.tag.as_str())
                {
                    subject_tagged = true;
                }
            }
            _ => failures.push(BundleError::failed(
                codes::LAYOUT,
                format!("{INDEX_NAME} lists {} which the bundle manifest does not describe as a manifest of that size and type", d.digest),
            )),
        }
    }
    if !subject_tagged {
        failures.push(BundleError::failed(
            codes::LAYOUT,
            format!(
                "{INDEX_NAME} does not list the subject under tag {:?}",
                manifest.subject.tag
            ),
        ));
    }
}

/// One blob streaming out of the bundle. Read it to the end (or call
/// [`BlobEntry::finish`]) to have its digest and size checked.
pub struct BlobEntry<'a> {
    pub artifact: ArtifactEntry,
    reader: VerifyingReader<EntryData<'a, Capped>>,
    verified: &'a mut bool,
}

impl Read for BlobEntry<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reader.read(buf)
    }
}

impl BlobEntry<'_> {
    /// Reads the rest (discarding it) and checks size and digest. A digest
    /// mismatch is `VerificationFailed` and leaves the reader usable.
    pub fn finish(mut self) -> Result<(), BundleError> {
        // Large reads: fewer trips through the decompression and cap layers.
        let mut buf = vec![0u8; 256 * 1024];
        let res = loop {
            match self.reader.read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        match res {
            Ok(()) => {
                *self.verified = true;
                Ok(())
            }
            Err(e) => {
                let err = io_to_bundle(&format!("blob {}", self.artifact.digest), e);
                // A digest mismatch is found at the end, after every byte was read: the stream is aligned.
                if err.is_verification_failure() {
                    *self.verified = true;
                }
                Err(err)
            }
        }
    }

    /// Reads the whole blob into memory (caller checked the size) and verifies it.
    pub fn read_all(mut self) -> Result<Vec<u8>, BundleError> {
        let mut buf = Vec::with_capacity(self.artifact.size as usize);
        match self.reader.read_to_end(&mut buf) {
            Ok(_) => {
                *self.verified = true;
                Ok(buf)
            }
            Err(e) => {
                let err = io_to_bundle(&format!("blob {}", self.artifact.digest), e);
                if err.is_verification_failure() {
                    *self.verified = true;
                }
                Err(err)
            }
        }
    }
}
