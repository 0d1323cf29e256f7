//! A few Postgres connections kept beside sqlx's pool for the
//! one-statement tenant reads (migration 0011's functions).
//!
//! Why: sqlx 0.8 pings every connection it takes back into its pool, a
//! round trip of its own after each use. For a read that is itself one
//! round trip, that doubles the database's and the server's network work
//! per request (measured: two `sendto` per metadata GET instead of one).
//! A connection here goes back to the lane without a ping once its
//! statement completed. Like the pool, the lane pings a connection before
//! reuse only when it has been idle for [`PING_WHEN_IDLE_FOR`], and
//! replaces one that fails the ping (a restarted database).
//!
//! A connection whose statement failed, or whose caller was cancelled
//! mid-statement, is dropped, never reused: it may be half-way through a
//! result. That is why only single statements that leave no session state
//! behind may run here (the 0011 functions set the tenant with
//! `set_config(…, true)`, local to their own implicit transaction).
//! Transactions and writes use the pool.
//!
//! The lane's connections count against the configured maximum: the store
//! splits `pool.maxConnections` between the pool and the lane.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgArguments, PgConnectOptions, PgConnection, PgRow};
use sqlx::query::Query;
use sqlx::{ConnectOptions, Connection, Postgres};
use tokio::sync::{Semaphore, SemaphorePermit};

use super::PING_WHEN_IDLE_FOR;
use crate::StoreError;

pub(super) struct ReadLane {
    options: PgConnectOptions,
    size: u32,
    permits: Semaphore,
    /// Connections not in use, the most recently used last.
    idle: Mutex<Vec<IdleConnection>>,
    acquire_timeout: Duration,
}

struct IdleConnection {
    connection: PgConnection,
    since: Instant,
}

/// One connection lent out; closed when the lease is dropped, unless
/// [`Lease::give_back`] returns it after a completed statement.
struct Lease<'a> {
    lane: &'a ReadLane,
    connection: PgConnection,
    _permit: SemaphorePermit<'a>,
}

impl ReadLane {
    pub(super) fn new(options: PgConnectOptions, size: u32, acquire_timeout: Duration) -> Self {
        Self {
            options,
            size,
            permits: Semaphore::new(size as usize),
            idle: Mutex::new(Vec::new()),
            acquire_timeout,
        }
    }

    pub(super) async fn fetch_optional(
        &self,
        query: Query<'_, Postgres, PgArguments>,
    ) -> Result<Option<PgRow>, StoreError> {
        let mut lease = self.lease().await?;
        let row = query.fetch_optional(&mut lease.connection).await?;
        lease.give_back();
        Ok(row)
    }

    pub(super) async fn fetch_all(
        &self,
        query: Query<'_, Postgres, PgArguments>,
    ) -> Result<Vec<PgRow>, StoreError> {
        let mut lease = self.lease().await?;
        let rows = query.fetch_all(&mut lease.connection).await?;
        lease.give_back();
        Ok(rows)
    }

    /// (connections open, of which idle), approximately: a lease still
    /// connecting counts as open.
    pub(super) fn stats(&self) -> (u32, u32) {
        let idle = self.idle.lock().map_or(0, |v| v.len());
        let idle = u32::try_from(idle).unwrap_or(u32::MAX);
        let lent = self
            .size
            .saturating_sub(u32::try_from(self.permits.available_permits()).unwrap_or(u32::MAX));
        (idle.saturating_add(lent), idle)
    }

    /// Closes the idle connections and lends no more.
    pub(super) async fn close(&self) {
        self.permits.close();
        let idle = self
            .idle
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default();
        for c in idle {
            let _ = c.connection.close().await;
        }
    }

    async fn lease(&self) -> Result<Lease<'_>, StoreError> {
        let deadline = tokio::time::Instant::now() + self.acquire_timeout;
        let permit = tokio::time::timeout_at(deadline, self.permits.acquire())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
            .map_err(|_| sqlx::Error::PoolClosed)?;
        loop {
            let next = self.idle.lock().ok().and_then(|mut v| v.pop());
            let Some(mut idle) = next else { break };
            if idle.since.elapsed() < PING_WHEN_IDLE_FOR {
                return Ok(self.lent(idle.connection, permit));
            }
            let pinged = tokio::time::timeout_at(deadline, idle.connection.ping()).await;
            if matches!(pinged, Ok(Ok(()))) {
                return Ok(self.lent(idle.connection, permit));
            }
            // A dead connection (the database restarted): try the next.
        }
        let connection = tokio::time::timeout_at(deadline, self.options.connect())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)??;
        Ok(self.lent(connection, permit))
    }

    fn lent<'a>(&'a self, connection: PgConnection, permit: SemaphorePermit<'a>) -> Lease<'a> {
        Lease {
            lane: self,
            connection,
            _permit: permit,
        }
    }
}

impl Lease<'_> {
    /// Returns the connection to the lane: only after a statement that
    /// completed, so it is at a clean protocol boundary. The permit is
    /// released after the push, so a waiter finds the connection idle.
    fn give_back(self) {
        let Lease {
            lane,
            connection,
            _permit,
        } = self;
        if let Ok(mut idle) = lane.idle.lock() {
            idle.push(IdleConnection {
                connection,
                since: Instant::now(),
            });
        }
    }
}
