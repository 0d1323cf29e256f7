//! Shared state handed to every handler.

use std::sync::Arc;

use stella_store::Store;

use crate::auth::Authority;
use crate::config::ServerConfig;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<ServerConfig>,
    pub authority: Arc<Authority>,
    pub metrics: Arc<Metrics>,
    pub limiter: Arc<RateLimiter>,
    /// Bounds how many upload payloads are held in memory at once.
    pub upload_permits: Arc<tokio::sync::Semaphore>,
    /// Export Center jobs (`POST /exports`).
    pub exports: Arc<crate::exports::ExportService>,
}

/// How many uploads may hold their payload in memory (read back from the
/// temp file and inserted) at the same time; the rest wait on disk. At the
/// 1 MiB cap this bounds upload memory to a few MiB per permit.
pub const CONCURRENT_PAYLOAD_INSERTS: usize = 4;
