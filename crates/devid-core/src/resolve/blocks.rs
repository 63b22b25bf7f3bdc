//! Aliases grouped by a shared key, the unit inside which aliases are compared.
//!
//! One sorted list of (key, alias) pairs rather than a map of vectors: at a million
//! aliases a map gave each key its own node and its own vector, hundreds of MiB for
//! what is here 24 bytes an entry. Blocks come in key order with their members in alias
//! order, so the links found (and so the clustering) do not depend on hashing.

pub(super) struct Blocks<K> {
    keys: Vec<K>,
    members: Vec<usize>,
}

impl<K: Ord + Copy> Blocks<K> {
    pub(super) fn of(entries: impl Iterator<Item = (K, usize)>) -> Self {
        let mut pairs: Vec<(K, usize)> = entries.collect();
        pairs.sort_unstable();
        let (keys, members) = pairs.into_iter().unzip();
        Blocks { keys, members }
    }

    /// Each key with its members, in key order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (K, &[usize])> + '_ {
        let mut start = 0;
        std::iter::from_fn(move || {
            let key = *self.keys.get(start)?;
            let end = start + self.keys[start..].partition_point(|k| *k == key);
            let members = &self.members[start..end];
            start = end;
            Some((key, members))
        })
    }

    /// The members of `key`'s block, if it has any.
    pub(super) fn get(&self, key: K) -> Option<&[usize]> {
        let start = self.keys.partition_point(|k| *k < key);
        let end = start + self.keys[start..].partition_point(|k| *k == key);
        (end > start).then(|| &self.members[start..end])
    }
}

/// A block key for text: an FNV-1a hash of the parts, each ended by a separator, 8
/// bytes where a million aliases' strings would cost tens of MiB at the engine's peak. A
/// collision only compares two aliases more: whoever reads a block checks each pair
/// against the text itself.
pub(super) fn text_key(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in parts.iter().flat_map(|p| p.iter().copied().chain([0x1f])) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_come_in_key_order_with_members_in_alias_order() {
        let blocks = Blocks::of([("b", 3), ("a", 2), ("b", 0), ("c", 1), ("a", 4)].into_iter());
        let seen: Vec<(&str, Vec<usize>)> = blocks.iter().map(|(k, m)| (k, m.to_vec())).collect();
        assert_eq!(seen, vec![("a", vec![2, 4]), ("b", vec![0, 3]), ("c", vec![1])]);
        assert_eq!(blocks.get("b"), Some(&[0, 3][..]));
        assert_eq!(blocks.get("bb"), None);
        assert_eq!(blocks.get("0"), None);
        assert!(Blocks::<u64>::of(std::iter::empty()).iter().next().is_none());
    }
}
