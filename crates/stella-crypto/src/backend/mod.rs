//! Crypto backends, and the one place the default provider is assembled.
//! Only the aws-lc-rs backend exists today; a FIPS or regional backend would
//! be a sibling module exporting another [`crate::CryptoProvider`] constant.
//! Backends depend on the traits of [`crate::provider`], never the reverse.

pub mod aws_lc;

use crate::provider::CryptoProvider;

/// The default provider (aws-lc-rs).
pub fn default_provider() -> &'static CryptoProvider {
    &aws_lc::PROVIDER
}
