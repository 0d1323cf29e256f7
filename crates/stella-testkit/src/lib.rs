//! Test-only helpers for Stella's registry tests. Never shipped.
//!
//! - [`distribution`]: launches real Debian `docker-registry` (distribution 2.8.2) processes on a
//!   free loopback port, optionally with htpasswd auth, token auth (with the in-process
//!   [`token`] server) or TLS (with a generated CA, see [`tls`]).
//! - [`spec_registry`]: an in-process, in-memory registry following the OCI distribution spec
//!   v1.1, including the Referrers API that distribution 2.8 lacks, with fault injection.
//! - [`blob_faults`]: a read-only registry that dies or stalls in the middle of one blob.
//! - [`cli`]: runs the built `stella` binary and checks exit codes, the one-line error
//!   contract and JSON output.
//! - [`fuzz_corpus`]: the committed fuzz seed corpora, replayed by each crate's `tests/fuzz_corpus.rs`.
//! - [`fixtures`]: images in any store, layouts made by python, tars made by GNU tar,
//!   single-layer referrers, base64, and an organisation PKI made by openssl.
//! - [`mem_store`]: an in-memory store implementing `stella_oci`'s store traits.
//! - [`postgres`]: throwaway Postgres clusters (Debian `postgresql`, `initdb` + `pg_ctl` on a
//!   free loopback port) and databases provisioned with an owner and a service role.
//!
//! Quick start:
//!
//! ```no_run
//! # fn main() -> Result<(), stella_testkit::TestkitError> {
//! let reg = stella_testkit::DistributionRegistry::start_plain()?;
//! let image = format!("{}/demo/app:v1", reg.host_port()); // use with --plain-http
//! # let _ = image;
//! let spec = stella_testkit::SpecRegistry::start(stella_testkit::SpecConfig {
//!     page_size: Some(10),
//!     ..Default::default()
//! });
//! # let _ = spec;
//! # Ok(()) }
//! ```
//!
//! Both kinds run independently of the caller's async runtime (the registry is a child
//! process; servers run on their own thread and runtime), so they work from `#[test]` and
//! `#[tokio::test]` alike, and stop when dropped.
//!
//! What this crate does not do: it never talks to the network beyond 127.0.0.1, and it is not
//! hardened against hostile input (it only serves tests).

#![forbid(unsafe_code)]

pub mod blob_faults;
pub mod cli;
pub mod distribution;
pub mod error;
pub mod fixtures;
pub mod fuzz_corpus;
pub mod hostile;
pub mod mem_store;
pub mod net;
pub mod postgres;
mod server;
pub mod spec_registry;
pub mod tls;
pub mod token;

pub use distribution::{DistributionAuth, DistributionConfig, DistributionRegistry};
pub use error::TestkitError;
pub use spec_registry::{RequestRecord, SpecConfig, SpecRegistry};
pub use token::TokenServer;
