//! Protection of the service from its clients: a cap on uploads running at once and a
//! per-key request rate.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

/// Admits at most `capacity` uploads at once; the next ones wait up to `wait`, then are
/// told to come back (503 with Retry-After) instead of piling up in memory. Uploads that
/// declare a small body (`Content-Length` ≤ [`SMALL_UPLOAD_BYTES`]) have lanes of their
/// own, [`SMALL_LANES_PER_SLOT`] per slot: a sync job's ten-row PATCH then neither
/// waits behind a million-row file nor is limited to a handful at a time, while the
/// memory they can hold together stays small.
///
/// No account holds more than half of a lane (at least one slot): one account's many
/// uploads, however slowly their bodies arrive, leave the other half to other accounts.
#[derive(Debug)]
pub struct UploadGate {
    large: Lane,
    small: Lane,
    wait: Duration,
}

#[derive(Debug)]
struct Lane {
    all: Arc<Semaphore>,
    per_account: Mutex<HashMap<i64, Arc<Semaphore>>>,
    share: usize,
}

impl Lane {
    fn new(capacity: usize) -> Self {
        Self {
            all: Arc::new(Semaphore::new(capacity)),
            per_account: Mutex::new(HashMap::new()),
            share: (capacity / 2).max(1),
        }
    }

    fn account(&self, account: i64) -> Arc<Semaphore> {
        let mut per_account = self.per_account.lock().unwrap_or_else(|e| e.into_inner());
        per_account.entry(account).or_insert_with(|| Arc::new(Semaphore::new(self.share))).clone()
    }
}

/// An admitted upload; its slots are given back when this is dropped.
#[derive(Debug)]
pub struct UploadPermit {
    _account: OwnedSemaphorePermit,
    _lane: OwnedSemaphorePermit,
}

/// A body this size or smaller counts as a small upload (a few thousand rows).
pub const SMALL_UPLOAD_BYTES: u64 = 256 * 1024;
/// Small uploads admitted at once per configured upload slot.
pub const SMALL_LANES_PER_SLOT: usize = 16;

impl UploadGate {
    pub fn new(capacity: usize, wait: Duration) -> Self {
        let capacity = capacity.max(1);
        Self { large: Lane::new(capacity), small: Lane::new(capacity * SMALL_LANES_PER_SLOT), wait }
    }

    /// `declared_bytes`: the request's Content-Length, if it sent one. A body without
    /// one (chunked) may be of any size and takes a regular slot.
    pub async fn enter(&self, account: i64, declared_bytes: Option<u64>) -> Result<UploadPermit, ApiError> {
        let lane = match declared_bytes {
            Some(n) if n <= SMALL_UPLOAD_BYTES => &self.small,
            _ => &self.large,
        };
        let deadline = tokio::time::Instant::now() + self.wait;
        let own = lane.account(account);
        let retry_after = u64::from(crate::error::RETRY_AFTER_SECONDS);
        let busy = |whose: &str| ApiError {
            retry_after: Some(retry_after),
            ..ApiError::unavailable(format!(
                "The server is busy with other uploads{whose}; nothing was changed. Retry in {retry_after} s (the Retry-After header says the same), or raise --max-concurrent-uploads."
            ))
        };
        let account_permit = match tokio::time::timeout_at(deadline, own.acquire_owned()).await {
            Ok(Ok(permit)) => permit,
            _ => return Err(busy(" of this account (an account may run at most half of the upload slots at once)")),
        };
        match tokio::time::timeout_at(deadline, lane.all.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(UploadPermit { _account: account_permit, _lane: permit }),
            _ => Err(busy("")),
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
    slots: Arc<PerAccountSlots>,
    account: i64,
}

impl PerAccountSlots {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self { max: max.max(1), running: Mutex::new(HashMap::new()) })
    }

    /// A slot for `account`, or `None` when it already runs `max`.
    pub fn try_enter(self: &Arc<Self>, account: i64) -> Option<AccountSlot> {
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
        // Two accounts, each up to its half of the small lanes.
        for n in 0..SMALL_LANES_PER_SLOT {
            held.push(gate.enter(n as i64 % 2, small).await.expect("a small lane"));
        }
        assert!(gate.enter(2, small).await.is_err(), "the small lanes are bounded");
        let large = gate.enter(0, Some(SMALL_UPLOAD_BYTES + 1)).await.expect("the regular slot is still free");
        assert!(gate.enter(1, None).await.is_err(), "a body of unknown size takes a regular slot");
        drop(large);
        drop(held.pop());
        assert!(gate.enter(1, small).await.is_ok());
    }

    #[tokio::test]
    async fn one_account_holds_at_most_half_of_a_lane() {
        let gate = UploadGate::new(4, Duration::from_millis(20));
        let first = gate.enter(1, None).await.expect("first");
        let _second = gate.enter(1, None).await.expect("second");
        let refused = gate.enter(1, None).await.expect_err("a third is over the account's half");
        assert!(refused.message.contains("this account"), "{}", refused.message);
        let _other = gate.enter(2, None).await.expect("another account still gets in");
        drop(first);
        assert!(gate.enter(1, None).await.is_ok(), "a finished upload frees the account's slot");
    }
}
