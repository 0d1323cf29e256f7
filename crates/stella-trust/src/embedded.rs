//! The Sigstore public-good TUF `root.json` compiled into the binary: the
//! default starting point of `stella trust update` against the public-good
//! mirror. It is data that comes from the Sigstore project, so it is built
//! in only with the `embedded-public-good-root` cargo feature and the file
//! `data/public-good-root.json` (see `data/README.md`). Without them this
//! returns `None` and the first update needs `--tuf-root`.

/// The embedded public-good TUF root, if this build carries one.
pub fn public_good_root() -> Option<&'static [u8]> {
    EMBEDDED
}

#[cfg(feature = "embedded-public-good-root")]
const EMBEDDED: Option<&'static [u8]> = Some(include_bytes!("../data/public-good-root.json"));

#[cfg(not(feature = "embedded-public-good-root"))]
const EMBEDDED: Option<&'static [u8]> = None;
