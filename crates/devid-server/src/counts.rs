//! Listing totals, remembered per account and filter until the account's identities
//! change. Counting a million rows costs tens of milliseconds; a metrics pipeline pages
//! through the same filter thousands of times between two uploads.

use crate::account_cache::PerAccountCache;
use crate::cursor::FilterDigest;

/// Distinct filters whose totals are kept per account; beyond this the account's
/// totals start over.
const MAX_FILTERS_PER_ACCOUNT: usize = 256;
/// Accounts with totals kept; beyond this the least recently used account's go.
const MAX_ACCOUNTS: usize = 256;

#[derive(Debug)]
pub struct CountCache {
    entries: PerAccountCache<(i64, u64)>,
}

impl Default for CountCache {
    fn default() -> Self {
        Self { entries: PerAccountCache::new(MAX_FILTERS_PER_ACCOUNT, MAX_ACCOUNTS) }
    }
}

impl CountCache {
    /// The total for `filter` if it was counted at exactly `version`.
    pub fn get(&self, account: i64, filter: &FilterDigest, version: i64) -> Option<u64> {
        self.entries.read(account, filter, |(v, count)| (*v == version).then_some(*count))
    }

    /// Remembers a total counted after `version` was read: if a write slipped in
    /// between, the next reader sees a newer version and counts again.
    pub fn put(&self, account: i64, filter: FilterDigest, version: i64, count: u64) {
        self.entries.update(account, filter, || (version, count), |entry| *entry = (version, count));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use devid_store::IdentityQuery;

    fn filter(search: &str) -> FilterDigest {
        FilterDigest::of(&IdentityQuery { search: Some(search.into()), ..Default::default() })
    }

    #[test]
    fn a_total_is_served_only_for_its_version() {
        let cache = CountCache::default();
        cache.put(1, filter("a"), 7, 1000);
        assert_eq!(cache.get(1, &filter("a"), 7), Some(1000));
        assert_eq!(cache.get(1, &filter("a"), 8), None, "a newer version means a recount");
        assert_eq!(cache.get(2, &filter("a"), 7), None, "accounts are apart");
        assert_eq!(cache.get(1, &filter("b"), 7), None);
    }
}
