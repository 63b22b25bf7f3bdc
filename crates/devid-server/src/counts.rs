//! Listing totals, remembered per account and filter until the account's identities
//! change. Counting a million rows costs tens of milliseconds; a metrics pipeline pages
//! through the same filter thousands of times between two uploads.

use std::collections::HashMap;
use std::sync::Mutex;

/// Distinct (account, filter) totals kept; beyond this the cache starts over.
const MAX_ENTRIES: usize = 4096;

#[derive(Debug, Default)]
pub struct CountCache {
    entries: Mutex<HashMap<(i64, u64), (i64, u64)>>,
}

impl CountCache {
    /// The total for `filter` if it was counted at exactly `version`.
    pub fn get(&self, account: i64, filter: u64, version: i64) -> Option<u64> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(&(account, filter)).filter(|(v, _)| *v == version).map(|(_, count)| *count)
    }

    /// Remembers a total counted after `version` was read: if a write slipped in
    /// between, the next reader sees a newer version and counts again.
    pub fn put(&self, account: i64, filter: u64, version: i64, count: u64) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&(account, filter)) {
            entries.clear();
        }
        entries.insert((account, filter), (version, count));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_total_is_served_only_for_its_version() {
        let cache = CountCache::default();
        cache.put(1, 42, 7, 1000);
        assert_eq!(cache.get(1, 42, 7), Some(1000));
        assert_eq!(cache.get(1, 42, 8), None, "a newer version means a recount");
        assert_eq!(cache.get(2, 42, 7), None, "accounts are apart");
        assert_eq!(cache.get(1, 43, 7), None);
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = CountCache::default();
        for f in 0..(MAX_ENTRIES as u64 + 10) {
            cache.put(1, f, 1, f);
        }
        assert!(cache.entries.lock().map(|e| e.len()).unwrap_or(usize::MAX) <= MAX_ENTRIES);
    }
}
