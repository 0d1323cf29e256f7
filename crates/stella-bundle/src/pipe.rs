//! Decompression on its own thread: the reader of a compressed bundle file
//! hashes (and parses) one chunk while the next is being decompressed, like
//! `gzip -dc bundle.tar.gz | sha256sum`, instead of doing both in turn.
//!
//! The thread owns the file and the decoder and hands over chunks of at
//! most [`CHUNK`] bytes through a channel of [`DEPTH`] chunks, so it never
//! runs more than about 1 MiB ahead of the reader: the caps and the
//! expansion ratio are still applied by the reader ([`super::tarball::Capped`])
//! to what it takes, and a reader that stops (an error, a cap, a drop)
//! stops the thread at its next hand-over. The end of the stream carries
//! whether the file ended there too (no second gzip member or zstd frame,
//! no trailing bytes), checked on the thread that owns the input.
//!
//! This module does not detect the compression or decode anything itself
//! (`tarball` does); uncompressed bundles are read without a thread.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use crate::error::BundleError;
use crate::tarball::{Compression, Decompressed};

/// Largest chunk handed from the decompression thread to the reader.
pub(crate) const CHUNK: usize = 256 * 1024;
/// Chunks in flight between the two threads.
pub(crate) const DEPTH: usize = 4;

enum Piece {
    Data(Vec<u8>),
    /// The decompressed stream ended; whether the file ended with it.
    End(io::Result<bool>),
    Failed(io::Error),
}

/// The reader's end of a decompression thread.
pub(crate) struct Pipe {
    pieces: Receiver<Piece>,
    current: Vec<u8>,
    pos: usize,
    end: Option<io::Result<bool>>,
    compressed: Arc<AtomicU64>,
}

impl Pipe {
    /// Starts a thread that builds a decoder with `open` (on that thread:
    /// decoders need not be `Send`) over `input` and decompresses it.
    /// `compressed` is the count of file bytes the decoder has read, kept
    /// by `open`'s input.
    pub(crate) fn spawn<R, F>(
        input: R,
        compressed: Arc<AtomicU64>,
        open: F,
    ) -> Result<(Pipe, Compression), BundleError>
    where
        R: Read + Send + 'static,
        F: FnOnce(R) -> Result<(Decompressed, Compression), BundleError> + Send + 'static,
    {
        let (tx, pieces) = sync_channel(DEPTH);
        let (head_tx, head) = sync_channel(1);
        std::thread::Builder::new()
            .name("stella-bundle-decompress".into())
            .spawn(move || match open(input) {
                Ok((mut decoder, compression)) => {
                    if head_tx.send(Ok(compression)).is_ok() {
                        pump(&mut decoder, &tx);
                    }
                }
                Err(e) => {
                    let _ = head_tx.send(Err(e));
                }
            })
            .map_err(|e| BundleError::io("starting the decompression thread", e))?;
        let compression = head.recv().map_err(|_| {
            BundleError::io(
                "starting the decompression thread",
                io::Error::other("the thread stopped"),
            )
        })??;
        Ok((
            Pipe {
                pieces,
                current: Vec::new(),
                pos: 0,
                end: None,
                compressed,
            },
            compression,
        ))
    }

    /// Compressed bytes the decoder has read from the file so far.
    pub(crate) fn compressed_bytes(&self) -> u64 {
        self.compressed.load(Ordering::Relaxed)
    }

    /// Whether the file ended with the decompressed stream (call after a
    /// read returned 0). Before that, or a second time: false.
    pub(crate) fn input_at_eof(&mut self) -> io::Result<bool> {
        self.end.take().unwrap_or(Ok(false))
    }
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(rest) = self.current.get(self.pos..)
                && !rest.is_empty()
            {
                let n = rest.len().min(buf.len());
                buf.get_mut(..n)
                    .unwrap_or(&mut [])
                    .copy_from_slice(rest.get(..n).unwrap_or(&[]));
                self.pos += n;
                return Ok(n);
            }
            if self.end.is_some() {
                return Ok(0);
            }
            match self.pieces.recv() {
                Ok(Piece::Data(chunk)) => {
                    self.current = chunk;
                    self.pos = 0;
                }
                Ok(Piece::End(at_eof)) => {
                    self.end = Some(at_eof);
                    return Ok(0);
                }
                Ok(Piece::Failed(e)) => return Err(e),
                Err(_) => return Err(io::Error::other("the decompression thread stopped")),
            }
        }
    }
}

/// Decompresses everything into the channel; stops when the reader is gone.
/// Bytes decoded before an error are handed over before the error, so the
/// reader sees the error where a decoder on its own thread would.
fn pump(decoder: &mut Decompressed, tx: &SyncSender<Piece>) {
    loop {
        let mut chunk = vec![0u8; CHUNK];
        let (filled, failure) = fill(decoder, &mut chunk);
        if filled > 0 {
            chunk.truncate(filled);
            if tx.send(Piece::Data(chunk)).is_err() {
                return;
            }
        }
        if let Some(e) = failure {
            let _ = tx.send(Piece::Failed(e));
            return;
        }
        if filled == 0 {
            let _ = tx.send(Piece::End(decoder.input_at_eof()));
            return;
        }
    }
}

/// Reads into `chunk` until it is full, the stream ends or an error.
fn fill(decoder: &mut Decompressed, chunk: &mut [u8]) -> (usize, Option<io::Error>) {
    let mut filled = 0;
    while let Some(space) = chunk.get_mut(filled..) {
        if space.is_empty() {
            break;
        }
        match decoder.read(space) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (filled, Some(e)),
        }
    }
    (filled, None)
}
