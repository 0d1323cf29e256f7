//! Shared state handed to every handler.

use std::sync::Arc;

use stella_store::Store;

use crate::auth::Authority;
use crate::config::ServerConfig;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;

/// Cloned for every request and middleware, so one reference count, not
/// one per field; reads go through `Deref` to [`AppParts`].
#[derive(Clone)]
pub struct AppState(Arc<AppParts>);

impl AppState {
    pub fn new(parts: AppParts) -> Self {
        Self(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppParts;
    fn deref(&self) -> &AppParts {
        &self.0
    }
}

pub struct AppParts {
    pub store: Store,
    pub config: Arc<ServerConfig>,
    pub authority: Arc<Authority>,
    pub metrics: Arc<Metrics>,
    pub limiter: Arc<RateLimiter>,
    /// Bounds how many uploads are read and inserted at once.
    pub upload_permits: Arc<tokio::sync::Semaphore>,
    /// Export Center jobs (`POST /exports`).
    pub exports: Arc<crate::exports::ExportService>,
    /// Parsed scanner reports by (tenant, referrer digest), for reports
    /// and previews (`reports.cacheMaxEntries`, `reports.cacheMaxBytes`).
    pub report_cache: Arc<stella_report::cache::ScannerCache>,
}

/// How many uploads are read (body streamed to a temp file, then read back
/// and inserted) at the same time; the others wait before their first body
/// byte, with their bodies in the kernel's socket buffers. Each holds about
/// one network read of buffers while streaming and, at the 1 MiB cap, a few
/// MiB while inserting, so this bounds upload memory. A client that sends
/// its body slowly keeps its slot until the request timeout (408).
pub const CONCURRENT_UPLOADS: usize = 4;
