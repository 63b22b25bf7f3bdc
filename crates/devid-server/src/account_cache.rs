//! A cache kept apart per account: each account has its own bounded set of entries,
//! so one account's many distinct queries evict only its own entries, never another
//! account's. Accounts beyond the bound give way least recently used first.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::cursor::FilterDigest;

#[derive(Debug)]
pub struct PerAccountCache<V> {
    inner: Mutex<Accounts<V>>,
    max_filters: usize,
    max_accounts: usize,
}

#[derive(Debug)]
struct Accounts<V> {
    clock: u64,
    by_account: HashMap<i64, AccountEntries<V>>,
}

#[derive(Debug)]
struct AccountEntries<V> {
    last_used: u64,
    by_filter: HashMap<FilterDigest, V>,
}

impl<V> PerAccountCache<V> {
    /// At most `max_filters` entries per account and `max_accounts` accounts.
    pub fn new(max_filters: usize, max_accounts: usize) -> Self {
        Self {
            inner: Mutex::new(Accounts { clock: 0, by_account: HashMap::new() }),
            max_filters: max_filters.max(1),
            max_accounts: max_accounts.max(1),
        }
    }

    /// Runs `f` on the account's entry for `filter`, if there is one.
    pub fn read<R>(&self, account: i64, filter: &FilterDigest, f: impl FnOnce(&V) -> Option<R>) -> Option<R> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.clock += 1;
        let now = inner.clock;
        let entries = inner.by_account.get_mut(&account)?;
        entries.last_used = now;
        entries.by_filter.get(filter).and_then(f)
    }

    /// Runs `f` on the account's entry for `filter`, made by `make` when missing. An
    /// account at its bound starts over; a new account beyond the bound evicts the one
    /// used least recently.
    pub fn update(&self, account: i64, filter: FilterDigest, make: impl FnOnce() -> V, f: impl FnOnce(&mut V)) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.clock += 1;
        let now = inner.clock;
        if !inner.by_account.contains_key(&account)
            && inner.by_account.len() >= self.max_accounts
            && let Some(oldest) = inner.by_account.iter().min_by_key(|(_, e)| e.last_used).map(|(a, _)| *a)
        {
            inner.by_account.remove(&oldest);
        }
        let entries = inner
            .by_account
            .entry(account)
            .or_insert_with(|| AccountEntries { last_used: now, by_filter: HashMap::new() });
        entries.last_used = now;
        if entries.by_filter.len() >= self.max_filters && !entries.by_filter.contains_key(&filter) {
            entries.by_filter.clear();
        }
        f(entries.by_filter.entry(filter).or_insert_with(make));
    }

    #[cfg(test)]
    pub fn sizes(&self) -> (usize, usize) {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        (inner.by_account.len(), inner.by_account.values().map(|e| e.by_filter.len()).max().unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use devid_store::IdentityQuery;

    fn filter(n: usize) -> FilterDigest {
        FilterDigest::of(&IdentityQuery { search: Some(format!("f{n}")), ..Default::default() })
    }

    #[test]
    fn one_accounts_many_filters_never_evict_another_accounts_entries() {
        let cache = PerAccountCache::<u64>::new(4, 8);
        cache.update(1, filter(0), || 41, |v| *v += 1);
        for n in 0..100 {
            cache.update(2, filter(n), || 0, |_| {});
        }
        assert_eq!(cache.read(1, &filter(0), |v| Some(*v)), Some(42), "account 1 keeps its entry");
        assert!(cache.sizes().1 <= 4, "each account is bounded");
    }

    #[test]
    fn accounts_beyond_the_bound_give_way_least_recently_used_first() {
        let cache = PerAccountCache::<u64>::new(4, 2);
        cache.update(1, filter(0), || 1, |_| {});
        cache.update(2, filter(0), || 2, |_| {});
        assert_eq!(cache.read(1, &filter(0), |v| Some(*v)), Some(1));
        cache.update(3, filter(0), || 3, |_| {});
        assert_eq!(cache.read(2, &filter(0), |v| Some(*v)), None, "the least recently used account went");
        assert_eq!(cache.read(1, &filter(0), |v| Some(*v)), Some(1));
        assert_eq!(cache.sizes().0, 2);
    }
}
