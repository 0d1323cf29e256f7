//! The Sigstore public-good TUF `root.json` compiled into the binary: the
//! default starting point of `stella trust update` against the public-good
//! mirror. It is data from the Sigstore project (`data/public-good-root.json`,
//! where it came from is in `data/README.md`), built in by the
//! `embedded-public-good-root` cargo feature (on by default in stella-cli). A build without that feature
//! returns `None` and its first update needs `--tuf-root`.
//!
//! The bytes are not checked here: `tough` verifies them as TUF root
//! metadata (self-signed to its own threshold) when an update starts from
//! them, and rotates to every later root the mirror publishes.

/// The embedded public-good TUF root, if this build carries one.
pub fn public_good_root() -> Option<&'static [u8]> {
    EMBEDDED
}

#[cfg(feature = "embedded-public-good-root")]
const EMBEDDED: Option<&'static [u8]> = Some(include_bytes!("../data/public-good-root.json"));

#[cfg(not(feature = "embedded-public-good-root"))]
const EMBEDDED: Option<&'static [u8]> = None;
