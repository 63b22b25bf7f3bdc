//! Protection of the service from its clients: a cap on uploads running at once and a
//! per-key request rate.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

/// Admits at most `capacity` uploads at once; the next ones wait up to `wait`, then are
/// told to come back (503 with Retry-After) instead of piling up in memory. Uploads that
/// declare a small body (`Content-Length` ≤ [`SMALL_UPLOAD_BYTES`]) have lanes of their
/// own, [`SMALL_LANES_PER_SLOT`] per slot: a sync job's ten-row PATCH then neither
/// waits behind a million-row file nor is limited to a handful at a time, while the
/// memory they can hold together stays small.
#[derive(Debug)]
pub struct UploadGate {
    large: std::sync::Arc<Semaphore>,
    small: std::sync::Arc<Semaphore>,
    wait: Duration,
}

/// A body this size or smaller counts as a small upload (a few thousand rows).
pub const SMALL_UPLOAD_BYTES: u64 = 256 * 1024;
/// Small uploads admitted at once per configured upload slot.
pub const SMALL_LANES_PER_SLOT: usize = 16;

impl UploadGate {
    pub fn new(capacity: usize, wait: Duration) -> Self {
        let capacity = capacity.max(1);
        Self {
            large: std::sync::Arc::new(Semaphore::new(capacity)),
            small: std::sync::Arc::new(Semaphore::new(capacity * SMALL_LANES_PER_SLOT)),
            wait,
        }
    }

    /// `declared_bytes`: the request's Content-Length, if it sent one. A body without
    /// one (chunked) may be of any size and takes a regular slot.
    pub async fn enter(&self, declared_bytes: Option<u64>) -> Result<OwnedSemaphorePermit, ApiError> {
        let lane = match declared_bytes {
            Some(n) if n <= SMALL_UPLOAD_BYTES => &self.small,
            _ => &self.large,
        };
        match tokio::time::timeout(self.wait, lane.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(ApiError::unavailable(
                "The server is busy with other uploads; nothing was changed. Retry after the time in the Retry-After header, or raise --max-concurrent-uploads.",
            )),
        }
    }
}

/// Work an account may run at once (CSV downloads): a bound per account, so one
/// account's many requests cannot take what others need.
#[derive(Debug)]
pub struct PerAccountSlots {
    max: usize,
    running: Mutex<HashMap<i64, usize>>,
}

/// One running piece of work; its slot is freed when this is dropped.
#[derive(Debug)]
pub struct AccountSlot {
    slots: std::sync::Arc<PerAccountSlots>,
    account: i64,
}

impl PerAccountSlots {
    pub fn new(max: usize) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self { max: max.max(1), running: Mutex::new(HashMap::new()) })
    }

    /// A slot for `account`, or `None` when it already runs `max`.
    pub fn try_enter(self: &std::sync::Arc<Self>, account: i64) -> Option<AccountSlot> {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let count = running.entry(account).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(AccountSlot { slots: self.clone(), account })
    }
}

impl Drop for AccountSlot {
    fn drop(&mut self) {
        let mut running = self.slots.running.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = running.get_mut(&self.account) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                running.remove(&self.account);
            }
        }
    }
}

/// A token bucket per API key: `per_minute` requests a minute, refilled continuously,
/// with a burst of the same size. Kept per process: with several replicas the limit
/// applies at each.
#[derive(Debug)]
pub struct RateLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

/// Keys tracked before idle buckets are dropped.
const MAX_BUCKETS: usize = 100_000;

impl RateLimiter {
    pub fn new(per_minute: u32) -> Self {
        Self { per_minute, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one request from `key_id`'s bucket, or says how many seconds until one is
    /// available.
    pub fn check(&self, key_id: &str) -> Result<(), u64> {
        self.take(key_id, true)
    }

    /// Whether `key` has a request left, without taking it; else the seconds to wait.
    pub fn peek(&self, key: &str) -> Result<(), u64> {
        self.take(key, false)
    }

    fn take(&self, key_id: &str, consume: bool) -> Result<(), u64> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let capacity = f64::from(self.per_minute);
        let per_second = capacity / 60.0;
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(key_id) {
            buckets.retain(|_, (_, at)| now.duration_since(*at) < Duration::from_secs(60));
        }
        let (tokens, at) = buckets.entry(key_id.to_string()).or_insert((capacity, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * per_second).min(capacity);
        *at = now;
        if *tokens >= 1.0 {
            if consume {
                *tokens -= 1.0;
            }
            Ok(())
        } else {
            Err(((1.0 - *tokens) / per_second).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_its_burst_then_waits() {
        let limiter = RateLimiter::new(3);
        assert!(limiter.check("a").is_ok());
        assert!(limiter.check("a").is_ok());
        assert!(limiter.check("a").is_ok());
        let wait = limiter.check("a").expect_err("limited");
        assert!((1..=20).contains(&wait), "{wait}");
        assert!(limiter.check("b").is_ok(), "keys have their own buckets");
        assert!(RateLimiter::new(0).check("a").is_ok(), "0 disables the limit");
    }

    #[test]
    fn peeking_takes_nothing() {
        let limiter = RateLimiter::new(2);
        for _ in 0..10 {
            assert!(limiter.peek("a").is_ok());
        }
        assert!(limiter.check("a").is_ok());
        assert!(limiter.check("a").is_ok());
        assert!(limiter.peek("a").is_err(), "both taken");
    }

    #[test]
    fn an_account_runs_at_most_its_slots_and_others_are_untouched() {
        let slots = PerAccountSlots::new(2);
        let a1 = slots.try_enter(1).expect("first");
        let _a2 = slots.try_enter(1).expect("second");
        assert!(slots.try_enter(1).is_none(), "account 1 is at its bound");
        assert!(slots.try_enter(2).is_some(), "account 2 has its own");
        drop(a1);
        assert!(slots.try_enter(1).is_some(), "a finished download frees its slot");
    }

    #[tokio::test]
    async fn small_uploads_have_their_own_bounded_lanes() {
        let gate = UploadGate::new(1, Duration::from_millis(20));
        let small = Some(SMALL_UPLOAD_BYTES);
        let mut held = Vec::new();
        for _ in 0..SMALL_LANES_PER_SLOT {
            held.push(gate.enter(small).await.expect("a small lane"));
        }
        assert!(gate.enter(small).await.is_err(), "the small lanes are bounded");
        let large = gate.enter(Some(SMALL_UPLOAD_BYTES + 1)).await.expect("the regular slot is still free");
        assert!(gate.enter(None).await.is_err(), "a body of unknown size takes a regular slot");
        drop(large);
        drop(held.pop());
        assert!(gate.enter(small).await.is_ok());
    }
}
