//! Deep `pageIndex` pages without deep scans. An offset page costs a walk over every
//! row before it (page 5000 of 100: half a million index entries). Clients of the
//! Harness API page by `pageIndex`, so the server remembers, per account and filter,
//! the keyset position at offsets it has already reached, valid until the account's
//! identities change. A later request starts from the nearest remembered position at
//! or before its offset and skips only the difference: paging page after page becomes
//! one short step each, and a repeated deep page costs what a cursor page costs.

use std::collections::BTreeMap;

use devid_store::query::CursorKey;

use crate::account_cache::PerAccountCache;
use crate::cursor::FilterDigest;

/// Filters with remembered positions per account; beyond this the account's start over.
const MAX_FILTERS_PER_ACCOUNT: usize = 8;
/// Accounts with remembered positions; beyond this the least recently used account's go.
const MAX_ACCOUNTS: usize = 64;
/// Positions per filter; beyond this every other one is dropped, so they stay spread
/// over the whole range. A position holds at most a 254-character email and a
/// 255-character identity key, so a filter's positions stay under ~130 KiB even when
/// every one is as long as allowed (about 16 KiB with ordinary values), and the whole
/// cache under ~70 MiB (a few MiB in practice).
const MAX_POSITIONS: usize = 256;

/// Per (account, filter): the identities version they were seen at, and the keyset
/// position at each remembered offset.
#[derive(Debug)]
pub struct OffsetAnchors {
    entries: PerAccountCache<(i64, BTreeMap<u64, CursorKey>)>,
}

impl Default for OffsetAnchors {
    fn default() -> Self {
        Self { entries: PerAccountCache::new(MAX_FILTERS_PER_ACCOUNT, MAX_ACCOUNTS) }
    }
}

impl OffsetAnchors {
    /// The remembered position nearest at or before `offset` (the keyset position
    /// after row `offset - 1`), if one was stored at exactly `version`.
    pub fn nearest(&self, account: i64, filter: &FilterDigest, version: i64, offset: u64) -> Option<(u64, CursorKey)> {
        self.entries.read(account, filter, |(stored_version, positions)| {
            if *stored_version != version {
                return None;
            }
            positions.range(..=offset).next_back().map(|(at, cursor)| (*at, cursor.clone()))
        })
    }

    /// Remembers that the rows from `offset` on start after `cursor`, as seen after
    /// `version` was read: if a write slipped in between, later readers see a newer
    /// version and do not use it.
    pub fn put(&self, account: i64, filter: FilterDigest, version: i64, offset: u64, cursor: CursorKey) {
        self.entries.update(
            account,
            filter,
            || (version, BTreeMap::new()),
            |(stored_version, positions)| {
                if *stored_version != version {
                    *stored_version = version;
                    positions.clear();
                }
                positions.insert(offset, cursor);
                if positions.len() > MAX_POSITIONS {
                    *positions = std::mem::take(positions).into_iter().step_by(2).collect();
                }
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use devid_store::IdentityQuery;

    fn key(n: u64) -> CursorKey {
        CursorKey { value: Some(format!("e{n:06}")), integration_id: 1, identity_key: format!("k{n}") }
    }

    fn f(n: u64) -> FilterDigest {
        FilterDigest::of(&IdentityQuery { integration_ids: vec![n as i64], ..Default::default() })
    }

    #[test]
    fn the_nearest_position_at_or_before_the_offset_of_the_same_version() {
        let anchors = OffsetAnchors::default();
        anchors.put(1, f(9), 5, 100, key(99));
        anchors.put(1, f(9), 5, 300, key(299));
        assert_eq!(anchors.nearest(1, &f(9), 5, 50), None);
        assert_eq!(anchors.nearest(1, &f(9), 5, 100), Some((100, key(99))));
        assert_eq!(anchors.nearest(1, &f(9), 5, 299), Some((100, key(99))));
        assert_eq!(anchors.nearest(1, &f(9), 5, 5000), Some((300, key(299))));
        assert_eq!(anchors.nearest(1, &f(9), 6, 300), None, "a change of the identities forgets them");
        assert_eq!(anchors.nearest(2, &f(9), 5, 300), None, "accounts are apart");
        assert_eq!(anchors.nearest(1, &f(8), 5, 300), None, "filters are apart");
        anchors.put(1, f(9), 6, 200, key(199));
        assert_eq!(anchors.nearest(1, &f(9), 6, 300), Some((200, key(199))), "old positions are gone");
    }

    #[test]
    fn positions_stay_bounded_and_spread() {
        let anchors = OffsetAnchors::default();
        for page in 1..=10_000u64 {
            anchors.put(1, f(1), 1, page * 100, key(page * 100 - 1));
        }
        assert!(anchors.nearest(1, &f(1), 1, 100 * 100 - 1).is_some(), "early positions survive");
        assert!(anchors.nearest(1, &f(1), 1, 999_900).is_some());
        let count = anchors.entries.read(1, &f(1), |(_, p)| Some(p.len())).unwrap_or(usize::MAX);
        assert!(count <= MAX_POSITIONS, "{count}");
    }

    #[test]
    fn another_accounts_queries_leave_an_accounts_positions_alone() {
        let anchors = OffsetAnchors::default();
        anchors.put(1, f(1), 1, 5000, key(4999));
        for filter in 0..1000 {
            anchors.put(2, f(filter + 10), 1, 100, key(99));
        }
        assert_eq!(anchors.nearest(1, &f(1), 1, 5000), Some((5000, key(4999))));
    }
}
