//! The StellaBundle tar container as a public, format-neutral API, for
//! other archive formats built on the same rules (the Export Center's
//! exports): [`ArchiveReader`] is the hostile-archive reader of
//! [`crate::tarball`] (ustar only, regular files and directories only, no
//! links, devices, pax/GNU records, `..`, absolute paths, bad checksums or
//! truncation; one gzip member or zstd frame; decompressed bytes capped by
//! the reader's total and an expansion ratio until the caller declares the
//! archive size; nothing accepted after the end marker but record padding),
//! and [`ArchiveWriter`] the fixed-metadata ustar writer.
//!
//! What this module does not do: decide which names an archive may hold,
//! their order, or what they mean. That is the caller's format.

use std::io::{self, Read, Write};

use crate::error::BundleError;
use crate::tarball::{
    Capped, Compressor, EntryKind, ReadLimits, TarStream, WriteKind, io_to_bundle,
    open_decompressed, padding, ustar_header,
};

pub use crate::tarball::Compression;

/// One entry header of an archive being read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveEntry {
    /// The entry path, already checked for anything unsafe in any tar.
    pub path: String,
    /// Data bytes (0 for a directory).
    pub size: u64,
    /// A directory entry (else a regular file).
    pub is_dir: bool,
}

/// A streaming reader over one (optionally compressed) ustar archive.
pub struct ArchiveReader {
    tar: TarStream<Capped>,
    compression: Compression,
}

impl ArchiveReader {
    /// Detects the compression from the magic bytes and opens the stream.
    pub fn open<R: Read + 'static>(input: R, limits: ReadLimits) -> Result<Self, BundleError> {
        let (capped, compression) = open_decompressed(input, limits)?;
        Ok(ArchiveReader {
            tar: TarStream::new(capped),
            compression,
        })
    }

    /// The compression found.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Once the caller knows how large the archive may be (from a manifest
    /// read at its head), bounds the decompressed stream by `declared_total`
    /// tar bytes and stops applying the expansion ratio.
    pub fn bound_total(&mut self, declared_total: u64) {
        self.tar.inner_mut().bound_by_manifest(declared_total);
    }

    /// The next entry (skipping the rest of the previous one), or `None` at
    /// the end-of-archive marker.
    pub fn next_entry(&mut self) -> Result<Option<ArchiveEntry>, BundleError> {
        Ok(self.tar.next_header()?.map(|h| ArchiveEntry {
            path: h.path,
            size: h.size,
            is_dir: h.kind == EntryKind::Dir,
        }))
    }

    /// The data of the current entry; a short archive is an
    /// `UnexpectedEof` error (map it with [`ArchiveReader::io_error`]).
    pub fn data(&mut self) -> impl Read + '_ {
        self.tar.data()
    }

    /// Maps an I/O error raised while reading entry data to the bundle
    /// error codes (`truncated`, `too-large`, `expansion-ratio`, `corrupt`).
    pub fn io_error(context: &str, e: io::Error) -> BundleError {
        io_to_bundle(context, e)
    }

    /// After `next_entry` returned `None`: requires that nothing but record
    /// padding follows (no second member or frame, no trailing garbage).
    pub fn finish(mut self) -> Result<(), BundleError> {
        self.tar.expect_end_of_input()
    }
}

/// Size of one file entry in a tar stream: header, data, padding.
pub fn tar_entry_bytes(size: u64) -> u64 {
    512u64
        .saturating_add(size)
        .saturating_add(padding(size) as u64)
}

/// Bytes the reader accepts after the last entry: the end marker and one
/// record of padding slack.
pub const TAR_TRAILER_SLACK: u64 = 1024 + 10240;

/// A writer of ustar archives with fixed metadata (uid/gid 0, no owner
/// names, modes 0644/0755, one mtime), compressed reproducibly.
pub struct ArchiveWriter<W: Write> {
    out: Compressor<W>,
    mtime: u64,
}

impl<W: Write> ArchiveWriter<W> {
    pub fn new(out: W, compression: Compression, mtime: u64) -> io::Result<Self> {
        Ok(ArchiveWriter {
            out: Compressor::new(out, compression)?,
            mtime,
        })
    }

    /// A directory entry (`path` ends with `/`).
    pub fn dir(&mut self, path: &str) -> io::Result<()> {
        let h = ustar_header(path, 0, self.mtime, WriteKind::Dir)?;
        self.out.write_all(&h)
    }

    /// A file entry of exactly `size` bytes copied from `data`.
    pub fn file(&mut self, path: &str, size: u64, data: &mut dyn Read) -> io::Result<()> {
        let h = ustar_header(path, size, self.mtime, WriteKind::File)?;
        self.out.write_all(&h)?;
        let copied = io::copy(&mut data.take(size), &mut self.out)?;
        if copied != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{path}: {copied} bytes instead of {size}"),
            ));
        }
        self.out.write_all(&vec![0u8; padding(size)])
    }

    /// Writes the end-of-archive marker, finishes compression and returns the sink.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&[0u8; 1024])?;
        self.out.finish()
    }
}
