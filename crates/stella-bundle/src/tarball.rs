//! The tar container of a StellaBundle: a strict ustar writer with fixed
//! metadata, a strict ustar reader that streams one entry at a time, the
//! compression layer (gzip, zstd, none; detected by magic bytes; exactly
//! one gzip member or zstd frame) and a reader that caps decompressed
//! bytes: by the reader's total and an expansion ratio until the bundle
//! manifest is known, then by the archive size it declares
//! ([`declared_tar_bytes`]). After the end marker only record padding and
//! then the end of the file are accepted.
//!
//! The reader accepts only what the writer produces: ustar headers with
//! valid checksums, regular files and directories, short names (no pax or
//! GNU extension records). It never touches the file system. Whether a name
//! is *allowed* in a bundle is decided by the caller (`reader`); this module
//! rejects only what is unsafe in any tar (links, devices, `..`, absolute
//! paths). Spec: POSIX.1-1988 ustar (`pax` utility, "ustar Interchange
//! Format").

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{BundleError, codes};

pub(crate) const BLOCK: usize = 512;

/// How the tar stream is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    Gzip,
    Zstd,
    None,
}

impl Compression {
    /// File name suffix for the default output name.
    pub fn extension(self) -> &'static str {
        match self {
            Compression::Gzip => ".tar.gz",
            Compression::Zstd => ".tar.zst",
            Compression::None => ".tar",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::None => "none",
        }
    }
}

/// Fixed gzip level (flate2 default) so output is reproducible.
pub const GZIP_LEVEL: u32 = 6;
/// Fixed zstd level; no content checksum, so output is reproducible.
pub const ZSTD_LEVEL: i32 = 6;
/// Most zstd worker threads an export uses. zstd's multithreaded mode
/// cuts the input into jobs by size, never by timing, so its output is
/// the same for any number of workers from 1 up (a test checks it).
pub const MAX_ZSTD_WORKERS: u32 = 4;

/// zstd workers for this machine: its parallelism, 1 to [`MAX_ZSTD_WORKERS`].
pub(crate) fn zstd_workers() -> u32 {
    std::thread::available_parallelism()
        .map(|n| u32::try_from(n.get()).unwrap_or(MAX_ZSTD_WORKERS))
        .unwrap_or(1)
        .clamp(1, MAX_ZSTD_WORKERS)
}

// ---------------------------------------------------------------- writing

/// Kind of entry the writer emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteKind {
    File,
    Dir,
}

fn put_octal(field: &mut [u8], value: u64) -> io::Result<()> {
    // Width - 1 octal digits, then NUL.
    let width = field.len() - 1;
    let s = format!("{value:0width$o}");
    if s.len() > width {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "value too large for a ustar field",
        ));
    }
    field[..width].copy_from_slice(s.as_bytes());
    field[width] = 0;
    Ok(())
}

/// One ustar header block with fixed uid/gid 0, empty owner names, the given
/// mtime and mode 0644 (files) or 0755 (directories).
pub(crate) fn ustar_header(
    path: &str,
    size: u64,
    mtime: u64,
    kind: WriteKind,
) -> io::Result<[u8; BLOCK]> {
    let mut h = [0u8; BLOCK];
    let bytes = path.as_bytes();
    if bytes.len() > 100 || bytes.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("tar path {path:?} does not fit ustar"),
        ));
    }
    h[..bytes.len()].copy_from_slice(bytes);
    let mode = match kind {
        WriteKind::File => 0o644,
        WriteKind::Dir => 0o755,
    };
    put_octal(&mut h[100..108], mode)?;
    put_octal(&mut h[108..116], 0)?;
    put_octal(&mut h[116..124], 0)?;
    put_octal(&mut h[124..136], size)?;
    put_octal(&mut h[136..148], mtime)?;
    h[156] = match kind {
        WriteKind::File => b'0',
        WriteKind::Dir => b'5',
    };
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    put_octal(&mut h[329..337], 0)?;
    put_octal(&mut h[337..345], 0)?;
    h[148..156].copy_from_slice(b"        ");
    let sum: u64 = h.iter().map(|b| u64::from(*b)).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    Ok(h)
}

/// Zero bytes needed after `size` bytes of data to reach a block boundary.
pub(crate) fn padding(size: u64) -> usize {
    let rem = (size % BLOCK as u64) as usize;
    if rem == 0 { 0 } else { BLOCK - rem }
}

/// The compressing sink under the tar stream.
pub(crate) enum Compressor<W: Write> {
    Gzip(flate2::write::GzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
    None(W),
}

impl<W: Write> Compressor<W> {
    pub(crate) fn new(out: W, c: Compression) -> io::Result<Self> {
        Self::with_zstd_workers(out, c, zstd_workers())
    }

    /// [`Compressor::new`] with a given number of zstd workers (at least 1:
    /// multithreaded mode, whose output does not depend on the count).
    pub(crate) fn with_zstd_workers(out: W, c: Compression, workers: u32) -> io::Result<Self> {
        Ok(match c {
            // GzBuilder defaults: mtime 0, no file name, no comment, OS 255.
            Compression::Gzip => Compressor::Gzip(
                flate2::GzBuilder::new().write(out, flate2::Compression::new(GZIP_LEVEL)),
            ),
            Compression::Zstd => {
                let mut e = zstd::stream::write::Encoder::new(out, ZSTD_LEVEL)?;
                e.multithread(workers.max(1))?;
                e.include_checksum(false)?;
                e.include_contentsize(false)?;
                Compressor::Zstd(e)
            }
            Compression::None => Compressor::None(out),
        })
    }

    pub(crate) fn finish(self) -> io::Result<W> {
        match self {
            Compressor::Gzip(e) => e.finish(),
            Compressor::Zstd(e) => e.finish(),
            Compressor::None(w) => Ok(w),
        }
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Compressor::Gzip(e) => e.write(buf),
            Compressor::Zstd(e) => e.write(buf),
            Compressor::None(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Compressor::Gzip(e) => e.flush(),
            Compressor::Zstd(e) => e.flush(),
            Compressor::None(w) => w.flush(),
        }
    }
}

// ---------------------------------------------------------------- reading

/// Caps on what a reader accepts from a bundle.
#[derive(Debug, Clone, Copy)]
pub struct ReadLimits {
    /// Largest decompressed / compressed ratio accepted once `ratio_grace_bytes` have been produced.
    pub max_expansion_ratio: u64,
    /// Decompressed bytes produced before the ratio is enforced.
    pub ratio_grace_bytes: u64,
    /// Largest decompressed tar accepted at all (tightened to what the bundle manifest declares once read).
    pub max_total_bytes: u64,
}

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits {
            max_expansion_ratio: crate::limits::MAX_EXPANSION_RATIO,
            ratio_grace_bytes: crate::limits::RATIO_GRACE_BYTES,
            max_total_bytes: crate::limits::MAX_BUNDLE_TAR_BYTES,
        }
    }
}

/// Counts bytes read from the (compressed) file; also into `shared` when
/// the decoder runs on its own thread ([`crate::pipe`]).
pub(crate) struct Counting {
    inner: Box<dyn Read>,
    count: u64,
    shared: Option<Arc<AtomicU64>>,
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        if let Some(shared) = &self.shared {
            shared.fetch_add(n as u64, Ordering::Relaxed);
        }
        Ok(n)
    }
}

/// The decompression layer: exactly one gzip member, exactly one zstd
/// frame, or the plain bytes. Each keeps the (buffered) compressed input
/// reachable so [`Decompressed::input_at_eof`] can tell whether anything
/// follows the member or frame.
pub(crate) enum Decompressed {
    Gzip(Box<flate2::bufread::GzDecoder<io::BufReader<Counting>>>),
    Zstd(Box<zstd::stream::read::Decoder<'static, io::BufReader<Counting>>>),
    Plain(io::BufReader<Counting>),
    /// Gzip or zstd decoded on another thread.
    Threaded(Box<crate::pipe::Pipe>),
}

impl Decompressed {
    fn input(&mut self) -> Option<&mut io::BufReader<Counting>> {
        match self {
            Decompressed::Gzip(d) => Some(d.get_mut()),
            Decompressed::Zstd(d) => Some(d.get_mut()),
            Decompressed::Plain(b) => Some(b),
            Decompressed::Threaded(_) => None,
        }
    }

    /// Compressed bytes read from the file so far.
    fn compressed_bytes(&mut self) -> u64 {
        match self {
            Decompressed::Threaded(p) => p.compressed_bytes(),
            other => other.input().map_or(0, |i| i.get_ref().count),
        }
    }

    /// True when the file holds nothing more (call after the decompressed
    /// stream ended: a second gzip member or zstd frame, or any trailing
    /// garbage, makes this false).
    pub(crate) fn input_at_eof(&mut self) -> io::Result<bool> {
        if let Decompressed::Threaded(p) = self {
            return p.input_at_eof();
        }
        match self.input() {
            Some(i) => Ok(io::BufRead::fill_buf(i)?.is_empty()),
            None => Ok(false),
        }
    }
}

impl Read for Decompressed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decompressed::Gzip(d) => d.read(buf),
            Decompressed::Zstd(d) => d.read(buf),
            Decompressed::Plain(b) => b.read(buf),
            Decompressed::Threaded(p) => p.read(buf),
        }
    }
}

/// The decompressed-stream error raised by [`Capped`]; recognised by
/// [`io_to_bundle`].
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
pub(crate) struct CapExceeded {
    pub code: &'static str,
    pub reason: String,
}

/// Caps decompressed bytes. Until the bundle manifest has been read, by
/// `max_total_bytes` and by the expansion ratio; once it has, by exactly the
/// tar size the manifest declares (see [`declared_tar_bytes`]), with no
/// ratio: an honest bundle of highly compressible evidence is not a bomb,
/// and the manifest already bounds what may come out.
pub(crate) struct Capped {
    inner: Decompressed,
    produced: u64,
    limits: ReadLimits,
    total_cap: u64,
    manifest_known: bool,
    /// The total cap is the size the bundle manifest declares (not the reader's own cap).
    cap_declared: bool,
}

impl Capped {
    /// Bounds the rest of the stream by what the bundle manifest declares and
    /// stops applying the expansion ratio.
    pub(crate) fn bound_by_manifest(&mut self, declared_total: u64) {
        if declared_total <= self.total_cap {
            self.total_cap = declared_total;
            self.cap_declared = true;
        }
        self.manifest_known = true;
    }

    /// Decompressed bytes produced so far (the tar offset).
    pub(crate) fn produced(&self) -> u64 {
        self.produced
    }

    /// True when nothing follows the gzip member / zstd frame / plain tar.
    pub(crate) fn input_at_eof(&mut self) -> io::Result<bool> {
        self.inner.input_at_eof()
    }

    fn exceeded(code: &'static str, reason: String) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, CapExceeded { code, reason })
    }
}

impl Read for Capped {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.produced += n as u64;
        let cap = self.total_cap;
        if self.produced > cap {
            let reason = if self.cap_declared {
                format!("the archive holds more than the {cap} bytes its bundle manifest declares")
            } else {
                format!("bundle expands to more than {cap} bytes")
            };
            return Err(Self::exceeded(codes::TOO_LARGE, reason));
        }
        if !self.manifest_known && self.produced > self.limits.ratio_grace_bytes {
            let c = self.inner.compressed_bytes().max(1);
            if self.produced / c > self.limits.max_expansion_ratio {
                return Err(Self::exceeded(
                    codes::EXPANSION_RATIO,
                    format!(
                        "decompression bomb: {} bytes from {c} compressed bytes before the bundle manifest exceeds the {}:1 expansion cap",
                        self.produced, self.limits.max_expansion_ratio
                    ),
                ));
            }
        }
        Ok(n)
    }
}

/// The most tar bytes a bundle may occupy: one header block per entry plus
/// its data padded to 512 bytes, the two-block end-of-archive marker, and
/// one 10240-byte record of slack for the zero padding other tar writers
/// add (11 KiB in all beyond the entries). `file_sizes` are the head files
/// (bundle manifest, signature, checksum list, `oci-layout`, `index.json`);
/// the two `blobs/` directory entries and one entry per artifact are added
/// here. This is the bound a reader holds the decompressed stream to once
/// the bundle manifest is known, and what an exporter checks before
/// writing.
pub fn declared_tar_bytes(file_sizes: &[u64], manifest: &crate::format::BundleManifest) -> u64 {
    let entry = |size: u64| {
        (BLOCK as u64)
            .saturating_add(size)
            .saturating_add(padding(size) as u64)
    };
    let mut total: u64 = 2 * BLOCK as u64; // the two directory entries
    for s in file_sizes {
        total = total.saturating_add(entry(*s));
    }
    for a in &manifest.artifacts {
        total = total.saturating_add(entry(a.size));
    }
    total.saturating_add(2 * BLOCK as u64 + RECORD)
}

/// Size of a tar record: GNU and BSD tar pad archives to a multiple of it.
pub(crate) const RECORD: u64 = 20 * BLOCK as u64;

/// Zero bytes a tar writer may add after the end marker at `offset`.
pub(crate) fn record_padding(offset: u64) -> u64 {
    (RECORD - offset % RECORD) % RECORD
}

/// Detects the compression from the first bytes and returns a capped
/// decompressed reader over `input`.
pub(crate) fn open_decompressed<R: Read + 'static>(
    mut input: R,
    limits: ReadLimits,
) -> Result<(Capped, Compression), BundleError> {
    let head = read_magic(&mut input)?;
    let (inner, compression) = decoder(head, input, None)?;
    Ok((capped(inner, limits), compression))
}

/// [`open_decompressed`] with gzip and zstd decoded on their own thread
/// ([`crate::pipe`]), overlapping decompression with what the reader does.
pub(crate) fn open_decompressed_threaded<R: Read + Send + 'static>(
    mut input: R,
    limits: ReadLimits,
) -> Result<(Capped, Compression), BundleError> {
    let head = read_magic(&mut input)?;
    if compression_of(&head) == Compression::None {
        let (inner, compression) = decoder(head, input, None)?;
        return Ok((capped(inner, limits), compression));
    }
    let compressed = Arc::new(AtomicU64::new(0));
    let shared = compressed.clone();
    let (pipe, compression) = crate::pipe::Pipe::spawn(input, compressed, move |input| {
        decoder(head, input, Some(shared))
    })?;
    Ok((
        capped(Decompressed::Threaded(Box::new(pipe)), limits),
        compression,
    ))
}

/// Up to the first 4 bytes of `input` (fewer only when it is shorter).
fn read_magic<R: Read>(input: &mut R) -> Result<Vec<u8>, BundleError> {
    let mut magic = [0u8; 4];
    let mut got = 0;
    while got < magic.len() {
        let n = input
            .read(&mut magic[got..])
            .map_err(|e| BundleError::io("reading bundle", e))?;
        if n == 0 {
            break;
        }
        got += n;
    }
    Ok(magic.get(..got).unwrap_or(&[]).to_vec())
}

fn compression_of(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// The decoder for the stream that starts with `head` and goes on with `input`.
fn decoder<R: Read + 'static>(
    head: Vec<u8>,
    input: R,
    shared: Option<Arc<AtomicU64>>,
) -> Result<(Decompressed, Compression), BundleError> {
    let compression = compression_of(&head);
    let counting = Counting {
        inner: Box::new(io::Cursor::new(head).chain(input)),
        count: 0,
        shared,
    };
    let buffered = io::BufReader::with_capacity(256 * 1024, counting);
    let inner = match compression {
        Compression::Gzip => {
            Decompressed::Gzip(Box::new(flate2::bufread::GzDecoder::new(buffered)))
        }
        Compression::Zstd => {
            let d = zstd::stream::read::Decoder::with_buffer(buffered).map_err(|e| {
                BundleError::unusable(codes::NOT_A_BUNDLE, format!("bad zstd stream: {e}"))
            })?;
            Decompressed::Zstd(Box::new(d.single_frame()))
        }
        Compression::None => Decompressed::Plain(buffered),
    };
    Ok((inner, compression))
}

fn capped(inner: Decompressed, limits: ReadLimits) -> Capped {
    Capped {
        inner,
        produced: 0,
        limits,
        total_cap: limits.max_total_bytes,
        manifest_known: false,
        cap_declared: false,
    }
}

/// Maps an I/O error from the decompressed stream to a bundle error,
/// recognising cap and digest errors raised by our own readers.
pub(crate) fn io_to_bundle(context: &str, e: io::Error) -> BundleError {
    if let Some(inner) = e.get_ref() {
        if let Some(c) = inner.downcast_ref::<CapExceeded>() {
            return BundleError::unusable(c.code, c.reason.clone());
        }
        if let Some(d) = inner.downcast_ref::<stella_types::DigestError>() {
            return BundleError::failed(codes::DIGEST_MISMATCH, format!("{context}: {d}"));
        }
    }
    if e.kind() == io::ErrorKind::UnexpectedEof {
        return BundleError::unusable(
            codes::TRUNCATED,
            format!("{context}: archive is truncated (an entry is shorter than its header says)"),
        );
    }
    BundleError::unusable(codes::CORRUPT, format!("{context}: {e}"))
}

/// What kind of entry a header announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryKind {
    File,
    Dir,
}

/// A validated header.
#[derive(Debug, Clone)]
pub(crate) struct EntryHeader {
    pub path: String,
    pub size: u64,
    pub kind: EntryKind,
}

fn parse_octal(field: &[u8], what: &str) -> Result<u64, BundleError> {
    let s: Vec<u8> = field.iter().copied().take_while(|b| *b != 0).collect();
    let s = std::str::from_utf8(&s)
        .map_err(|_| {
            BundleError::unusable(codes::CORRUPT, format!("tar header {what} is not octal"))
        })?
        .trim_matches(' ');
    if s.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(s, 8).map_err(|_| {
        BundleError::unusable(
            codes::CORRUPT,
            format!("tar header {what} {s:?} is not octal"),
        )
    })
}

fn cstr(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|b| *b == 0).unwrap_or(field.len());
    field.get(..end).unwrap_or(&[])
}

/// Checks a path from a tar header for anything unsafe in any tar.
pub(crate) fn check_path(path: &str) -> Result<(), BundleError> {
    if path.starts_with('/')
        || path.starts_with('\\')
        || path.contains(':') && path.len() > 1 && path.as_bytes().get(1) == Some(&b':')
    {
        return Err(BundleError::unusable(
            codes::ABSOLUTE_PATH,
            format!("entry {path:?} has an absolute path"),
        ));
    }
    if path.contains('\\') || path.contains('\0') {
        return Err(BundleError::unusable(
            codes::BAD_PATH,
            format!("entry {path:?} has a backslash or NUL in its path"),
        ));
    }
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    for comp in trimmed.split('/') {
        if comp == ".." {
            return Err(BundleError::unusable(
                codes::PATH_TRAVERSAL,
                format!("entry {path:?} climbs out of the bundle with '..'"),
            ));
        }
        if comp.is_empty() || comp == "." {
            return Err(BundleError::unusable(
                codes::BAD_PATH,
                format!("entry {path:?} has an empty or '.' path component"),
            ));
        }
    }
    Ok(())
}

/// Reads one ustar archive entry by entry, never buffering entry data.
pub(crate) struct TarStream<R> {
    inner: R,
    /// Bytes of the current entry not yet consumed, plus its padding.
    remaining: u64,
    pad: usize,
    done: bool,
}

impl<R: Read> TarStream<R> {
    pub(crate) fn new(inner: R) -> Self {
        TarStream {
            inner,
            remaining: 0,
            pad: 0,
            done: false,
        }
    }

    fn skip(&mut self, mut n: u64) -> Result<(), BundleError> {
        let mut buf = [0u8; 8192];
        while n > 0 {
            let want = n.min(buf.len() as u64) as usize;
            let chunk = buf.get_mut(..want).unwrap_or(&mut []);
            self.inner
                .read_exact(chunk)
                .map_err(|e| io_to_bundle("reading bundle", e))?;
            n -= want as u64;
        }
        Ok(())
    }

    /// Skips what is left of the current entry.
    pub(crate) fn skip_rest(&mut self) -> Result<(), BundleError> {
        let n = self.remaining + self.pad as u64;
        self.remaining = 0;
        self.pad = 0;
        self.skip(n)
    }

    /// The next entry's header, or `None` at the end-of-archive marker.
    pub(crate) fn next_header(&mut self) -> Result<Option<EntryHeader>, BundleError> {
        if self.done {
            return Ok(None);
        }
        self.skip_rest()?;
        let mut h = [0u8; BLOCK];
        self.inner.read_exact(&mut h).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                BundleError::unusable(
                    codes::TRUNCATED,
                    "archive ends without an end-of-archive marker",
                )
            } else {
                io_to_bundle("reading bundle", e)
            }
        })?;
        if h.iter().all(|b| *b == 0) {
            let mut h2 = [0u8; BLOCK];
            self.inner
                .read_exact(&mut h2)
                .map_err(|e| io_to_bundle("reading end-of-archive marker", e))?;
            if !h2.iter().all(|b| *b == 0) {
                return Err(BundleError::unusable(
                    codes::CORRUPT,
                    "a zero block inside the archive",
                ));
            }
            self.done = true;
            return Ok(None);
        }
        // Checksum (sum of the header with the checksum field as spaces).
        let stored = parse_octal(&h[148..156], "checksum")?;
        let mut sum: u64 = 0;
        for (i, b) in h.iter().enumerate() {
            sum += if (148..156).contains(&i) {
                32
            } else {
                u64::from(*b)
            };
        }
        if sum != stored {
            return Err(BundleError::unusable(
                codes::CORRUPT,
                "tar header checksum is wrong (not a tar, or corrupted)",
            ));
        }
        let magic = &h[257..263];
        if magic != b"ustar\0" && magic != b"ustar " {
            return Err(BundleError::unusable(
                codes::CORRUPT,
                "tar header is not ustar",
            ));
        }
        let name = cstr(&h[0..100]);
        let prefix = cstr(&h[345..500]);
        let mut raw = Vec::new();
        if !prefix.is_empty() {
            raw.extend_from_slice(prefix);
            raw.push(b'/');
        }
        raw.extend_from_slice(name);
        let path = String::from_utf8(raw)
            .map_err(|_| BundleError::unusable(codes::BAD_PATH, "entry path is not UTF-8"))?;
        let kind = match h[156] {
            b'0' | 0 | b'7' => EntryKind::File,
            b'5' => EntryKind::Dir,
            b'1' => {
                return Err(BundleError::unusable(
                    codes::LINK,
                    format!("entry {path:?} is a hard link"),
                ));
            }
            b'2' => {
                return Err(BundleError::unusable(
                    codes::LINK,
                    format!("entry {path:?} is a symbolic link"),
                ));
            }
            b'3' | b'4' => {
                return Err(BundleError::unusable(
                    codes::SPECIAL_FILE,
                    format!("entry {path:?} is a device"),
                ));
            }
            b'6' => {
                return Err(BundleError::unusable(
                    codes::SPECIAL_FILE,
                    format!("entry {path:?} is a FIFO"),
                ));
            }
            b'x' | b'g' | b'L' | b'K' => {
                return Err(BundleError::unusable(
                    codes::UNSUPPORTED_ENTRY,
                    format!(
                        "entry {path:?} is a pax/GNU extension record, which StellaBundles never use"
                    ),
                ));
            }
            t => {
                return Err(BundleError::unusable(
                    codes::UNSUPPORTED_ENTRY,
                    format!("entry {path:?} has unsupported type {:?}", t as char),
                ));
            }
        };
        if h[124] & 0x80 != 0 {
            return Err(BundleError::unusable(
                codes::CORRUPT,
                format!("entry {path:?} uses a base-256 size"),
            ));
        }
        let size = parse_octal(&h[124..136], "size")?;
        check_path(&path)?;
        if kind == EntryKind::Dir && size != 0 {
            return Err(BundleError::unusable(
                codes::CORRUPT,
                format!("directory {path:?} has a non-zero size"),
            ));
        }
        self.remaining = size;
        self.pad = padding(size);
        Ok(Some(EntryHeader { path, size, kind }))
    }

    /// The reader under the tar stream.
    pub(crate) fn inner_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Reads the data of the current entry (up to its size), then its padding.
    pub(crate) fn data(&mut self) -> EntryData<'_, R> {
        EntryData { stream: self }
    }
}

impl TarStream<Capped> {
    /// Called after the end-of-archive marker: accepts only the zero
    /// padding a tar writer adds up to its record size, then requires the
    /// end of the decompressed stream and of the file (no second gzip member
    /// or zstd frame, no trailing garbage). A bundle is exactly what its
    /// manifest lists; anything after it could be read by other tools.
    pub(crate) fn expect_end_of_input(&mut self) -> Result<(), BundleError> {
        if !self.done {
            return Err(BundleError::InvalidInput(
                "the end of the archive was not reached".into(),
            ));
        }
        let trailing = |what: &str| {
            BundleError::unusable(
                codes::TRAILING_DATA,
                format!(
                    "{what} after the end of the archive (a bundle holds nothing but its listed entries)"
                ),
            )
        };
        let mut allowed = record_padding(self.inner.produced());
        let mut buf = [0u8; BLOCK];
        loop {
            let n = match self.inner.read(&mut buf) {
                Ok(n) => n,
                Err(e) => {
                    if e.get_ref().is_some_and(|i| i.is::<CapExceeded>()) {
                        return Err(trailing("data"));
                    }
                    return Err(io_to_bundle("reading the end of the bundle", e));
                }
            };
            if n == 0 {
                break;
            }
            let chunk = buf.get(..n).unwrap_or(&[]);
            if n as u64 > allowed || chunk.iter().any(|b| *b != 0) {
                return Err(trailing("data"));
            }
            allowed -= n as u64;
        }
        match self.inner.input_at_eof() {
            Ok(true) => Ok(()),
            Ok(false) => Err(trailing("another compressed stream or garbage")),
            Err(e) => Err(io_to_bundle("reading the end of the bundle", e)),
        }
    }
}

/// Reader over the data of the current entry. A short archive is an
/// `UnexpectedEof` error, never a silent short read.
pub(crate) struct EntryData<'a, R> {
    stream: &'a mut TarStream<R>,
}

impl<R: Read> Read for EntryData<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.stream.remaining == 0 {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(self.stream.remaining) as usize;
        let chunk = buf.get_mut(..want).unwrap_or(&mut []);
        let n = self.stream.inner.read(chunk)?;
        if n == 0 && want > 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "archive is truncated",
            ));
        }
        self.stream.remaining -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_matches_system_tar_fields() {
        let h = ustar_header("blobs/sha256/abc", 1234, 1_700_000_000, WriteKind::File).unwrap();
        let mut data = h.to_vec();
        data.extend(vec![7u8; 1234]);
        data.extend(vec![0u8; padding(1234)]);
        data.extend(vec![0u8; 1024]);
        let mut t = TarStream::new(&data[..]);
        let e = t.next_header().unwrap().unwrap();
        assert_eq!(e.path, "blobs/sha256/abc");
        assert_eq!(e.size, 1234);
        let mut out = Vec::new();
        t.data().read_to_end(&mut out).unwrap();
        assert_eq!(out.len(), 1234);
        assert!(t.next_header().unwrap().is_none());
        // The tar crate agrees on every field.
        let th = tar::Header::from_byte_slice(&h);
        assert_eq!(th.size().unwrap(), 1234);
        assert_eq!(th.mtime().unwrap(), 1_700_000_000);
        assert_eq!(th.mode().unwrap(), 0o644);
        assert!(th.as_ustar().is_some());
        assert_eq!(th.entry_type(), tar::EntryType::Regular);
    }

    #[test]
    fn path_checks() {
        assert!(check_path("blobs/sha256/x").is_ok());
        assert_eq!(
            check_path("../x").unwrap_err().code(),
            codes::PATH_TRAVERSAL
        );
        assert_eq!(
            check_path("a/../../x").unwrap_err().code(),
            codes::PATH_TRAVERSAL
        );
        assert_eq!(
            check_path("/etc/passwd").unwrap_err().code(),
            codes::ABSOLUTE_PATH
        );
        assert_eq!(check_path("C:/x").unwrap_err().code(), codes::ABSOLUTE_PATH);
        assert_eq!(check_path("a//b").unwrap_err().code(), codes::BAD_PATH);
        assert_eq!(check_path("./a").unwrap_err().code(), codes::BAD_PATH);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod zstd_multithread_tests {
    use super::*;

    /// 40 MiB that compress about 3:1 (several zstd jobs at level 6).
    fn sample() -> Vec<u8> {
        let mut out = Vec::with_capacity(40 << 20);
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        while out.len() < 40 << 20 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let word = format!("{{\"pkg\":\"p{}\",\"v\":{}}},", x >> 52, (x >> 20) & 0xff);
            out.extend_from_slice(word.as_bytes());
        }
        out
    }

    fn compress(input: &[u8], workers: u32) -> Vec<u8> {
        let mut c = Compressor::with_zstd_workers(Vec::new(), Compression::Zstd, workers).unwrap();
        for chunk in input.chunks(64 * 1024) {
            c.write_all(chunk).unwrap();
        }
        c.finish().unwrap()
    }

    #[test]
    fn multithreaded_zstd_output_does_not_depend_on_the_worker_count() {
        let input = sample();
        let one = compress(&input, 1);
        assert_eq!(one, compress(&input, 2));
        assert_eq!(one, compress(&input, MAX_ZSTD_WORKERS));
        assert!(one.len() < input.len() / 2, "{} bytes", one.len());
        // One frame that decodes to the input (what the reader requires).
        let mut frames = 0;
        let mut rest: &[u8] = &one;
        while !rest.is_empty() {
            let size = zstd::zstd_safe::find_frame_compressed_size(rest).unwrap();
            rest = &rest[size..];
            frames += 1;
        }
        assert_eq!(frames, 1);
        assert!(zstd::stream::decode_all(one.as_slice()).unwrap() == input);
        // The export path picks a count for this machine, same bytes.
        let mut c = Compressor::new(Vec::new(), Compression::Zstd).unwrap();
        for chunk in input.chunks(1 << 20) {
            c.write_all(chunk).unwrap();
        }
        assert_eq!(c.finish().unwrap(), one);
    }
}
