//! Deep `pageIndex` pages without deep scans. An offset page costs a walk over every
//! row before it (page 5000 of 100: half a million index entries). Clients of the
//! Harness API page by `pageIndex`, so the server remembers, per account and filter,
//! the keyset position at offsets it has already reached, valid until the account's
//! identities change. A later request starts from the nearest remembered position at
//! or before its offset and skips only the difference: paging page after page becomes
//! one short step each, and a repeated deep page costs what a cursor page costs.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use devid_store::query::CursorKey;

/// Filters (per account) with remembered positions; beyond this the cache starts over.
const MAX_FILTERS: usize = 64;
/// Positions per filter; beyond this every other one is dropped, so they stay spread
/// over the whole range. A position holds at most a 254-character email and a
/// 255-character identity key, so the cache stays under ~32 MiB even when every one
/// is as long as allowed (about 2 MiB with ordinary values).
const MAX_POSITIONS: usize = 256;

/// Per (account, filter): the identities version they were seen at, and the keyset
/// position at each remembered offset.
type Positions = HashMap<(i64, u64), (i64, BTreeMap<u64, CursorKey>)>;

#[derive(Debug, Default)]
pub struct OffsetAnchors {
    entries: Mutex<Positions>,
}

impl OffsetAnchors {
    /// The remembered position nearest at or before `offset` (the keyset position
    /// after row `offset - 1`), if one was stored at exactly `version`.
    pub fn nearest(&self, account: i64, filter: u64, version: i64, offset: u64) -> Option<(u64, CursorKey)> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (stored_version, positions) = entries.get(&(account, filter))?;
        if *stored_version != version {
            return None;
        }
        positions.range(..=offset).next_back().map(|(at, cursor)| (*at, cursor.clone()))
    }

    /// Remembers that the rows from `offset` on start after `cursor`, as seen after
    /// `version` was read: if a write slipped in between, later readers see a newer
    /// version and do not use it.
    pub fn put(&self, account: i64, filter: u64, version: i64, offset: u64, cursor: CursorKey) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_FILTERS && !entries.contains_key(&(account, filter)) {
            entries.clear();
        }
        let (stored_version, positions) =
            entries.entry((account, filter)).or_insert_with(|| (version, BTreeMap::new()));
        if *stored_version != version {
            *stored_version = version;
            positions.clear();
        }
        positions.insert(offset, cursor);
        if positions.len() > MAX_POSITIONS {
            *positions = std::mem::take(positions).into_iter().step_by(2).collect();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u64) -> CursorKey {
        CursorKey { value: Some(format!("e{n:06}")), integration_id: 1, identity_key: format!("k{n}") }
    }

    #[test]
    fn the_nearest_position_at_or_before_the_offset_of_the_same_version() {
        let anchors = OffsetAnchors::default();
        anchors.put(1, 9, 5, 100, key(99));
        anchors.put(1, 9, 5, 300, key(299));
        assert_eq!(anchors.nearest(1, 9, 5, 50), None);
        assert_eq!(anchors.nearest(1, 9, 5, 100), Some((100, key(99))));
        assert_eq!(anchors.nearest(1, 9, 5, 299), Some((100, key(99))));
        assert_eq!(anchors.nearest(1, 9, 5, 5000), Some((300, key(299))));
        assert_eq!(anchors.nearest(1, 9, 6, 300), None, "a change of the identities forgets them");
        assert_eq!(anchors.nearest(2, 9, 5, 300), None, "accounts are apart");
        assert_eq!(anchors.nearest(1, 8, 5, 300), None, "filters are apart");
        anchors.put(1, 9, 6, 200, key(199));
        assert_eq!(anchors.nearest(1, 9, 6, 300), Some((200, key(199))), "old positions are gone");
    }

    #[test]
    fn positions_stay_bounded_and_spread() {
        let anchors = OffsetAnchors::default();
        for page in 1..=10_000u64 {
            anchors.put(1, 1, 1, page * 100, key(page * 100 - 1));
        }
        let entries = anchors.entries.lock().expect("lock");
        let positions = &entries[&(1, 1)].1;
        assert!(positions.len() <= MAX_POSITIONS);
        assert!(positions.keys().next().is_some_and(|first| *first < 100 * 100), "early positions survive");
        drop(entries);
        assert!(anchors.nearest(1, 1, 1, 999_900).is_some());
        for filter in 0..(MAX_FILTERS as u64 + 5) {
            anchors.put(1, filter + 10, 1, 100, key(99));
        }
        assert!(anchors.entries.lock().map(|e| e.len()).unwrap_or(usize::MAX) <= MAX_FILTERS);
    }
}
