//! Crypto backends. Only the aws-lc-rs backend exists today; a FIPS or
//! regional backend would be a sibling module exporting another
//! [`crate::CryptoProvider`] constant.

pub mod aws_lc;
