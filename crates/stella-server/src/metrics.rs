//! Prometheus metrics: requests by route, method and status; latency
//! histograms by route; database pool gauges (sampled at scrape time);
//! export jobs: duration by profile, bytes written, failures by reason;
//! the report cache of parsed scanner reports: lookups by result, size.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProfileLabels {
    profile: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

/// Report cache metrics (`POST /api/v1/reports`, `POST /policy/preview`).
struct ReportCacheMetrics {
    lookups: Family<ResultLabels, Counter>,
    entries: Gauge,
    bytes: Gauge,
}

impl ReportCacheMetrics {
    fn register(registry: &mut Registry) -> Self {
        let m = Self {
            lookups: Family::default(),
            entries: Gauge::default(),
            bytes: Gauge::default(),
        };
        registry.register(
            "report_cache_lookups",
            "Lookups of parsed scanner reports in the report cache, by result (hit, miss)",
            m.lookups.clone(),
        );
        registry.register(
            "report_cache_entries",
            "Parsed scanner reports held by the report cache",
            m.entries.clone(),
        );
        registry.register(
            "report_cache_bytes",
            "Estimated memory of the report cache's entries",
            m.bytes.clone(),
        );
        m
    }
}

/// Export job metrics.
struct ExportMetrics {
    duration: Family<ProfileLabels, Histogram>,
    bytes: Counter,
    failures: Family<ReasonLabels, Counter>,
}

fn export_histogram() -> Histogram {
    Histogram::new([0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0])
}

impl ExportMetrics {
    fn register(registry: &mut Registry) -> Self {
        let m = Self {
            duration: Family::new_with_constructor(export_histogram as fn() -> Histogram),
            bytes: Counter::default(),
            failures: Family::default(),
        };
        registry.register(
            "export_duration_seconds",
            "Wall time of succeeded export jobs by profile",
            m.duration.clone(),
        );
        registry.register(
            "export_written_bytes",
            "Bytes of export files written by succeeded jobs",
            m.bytes.clone(),
        );
        registry.register(
            "export_failures",
            "Failed export jobs by reason code",
            m.failures.clone(),
        );
        m
    }
}

pub struct Metrics {
    registry: Registry,
    exports: ExportMetrics,
    report_cache: ReportCacheMetrics,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    pool_open: Gauge,
    pool_idle: Gauge,
}

fn latency_histogram() -> Histogram {
    Histogram::new([
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
    ])
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("stella");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let pool_open = Gauge::default();
        let pool_idle = Gauge::default();
        registry.register(
            "http_requests",
            "HTTP requests by route, method and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            latency.clone(),
        );
        registry.register(
            "db_pool_connections",
            "Open database connections",
            pool_open.clone(),
        );
        registry.register(
            "db_pool_idle_connections",
            "Idle database connections",
            pool_idle.clone(),
        );
        let exports = ExportMetrics::register(&mut registry);
        let report_cache = ReportCacheMetrics::register(&mut registry);
        Self {
            registry,
            exports,
            report_cache,
            requests,
            latency,
            pool_open,
            pool_idle,
        }
    }

    pub fn observe(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let labels = RequestLabels {
            route: route.into(),
            method: method.into(),
            status,
        };
        self.requests.get_or_create(&labels).inc();
        self.latency
            .get_or_create(&RouteLabels {
                route: route.into(),
            })
            .observe(seconds);
    }

    /// A succeeded export job: its duration and file size.
    pub fn export_finished(&self, profile: &str, seconds: f64, bytes: u64) {
        self.exports
            .duration
            .get_or_create(&ProfileLabels {
                profile: profile.into(),
            })
            .observe(seconds);
        self.exports.bytes.inc_by(bytes);
    }

    /// A failed export job, by its reason code (a bounded set).
    pub fn export_failed(&self, reason: &str) {
        self.exports
            .failures
            .get_or_create(&ReasonLabels {
                reason: reason.into(),
            })
            .inc();
    }

    /// A report cache lookup.
    pub fn report_cache_lookup(&self, hit: bool) {
        let result = if hit { "hit" } else { "miss" };
        self.report_cache
            .lookups
            .get_or_create(&ResultLabels { result })
            .inc();
    }

    /// The report cache's size after a change.
    pub fn report_cache_size(&self, entries: usize, bytes: u64) {
        self.report_cache
            .entries
            .set(i64::try_from(entries).unwrap_or(i64::MAX));
        self.report_cache
            .bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// The exposition text, with pool gauges set to `(open, idle)`.
    pub fn render(&self, pool: (u32, u32)) -> String {
        self.pool_open.set(i64::from(pool.0));
        self.pool_idle.set(i64::from(pool.1));
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
