//! The UTC offsets a contributor's activity was recorded in (git keeps one per commit).
//! Two accounts of one name that work from the same time zones are far likelier one
//! person than two namesakes on different continents, so the matcher reads them; the
//! set is kept per contributor and source, and nothing else is inferred from it.
//!
//! Every offset in use is a whole quarter hour from −12:00 to +14:00: 105 of them, so a
//! set is two words of bits, whatever the activity.

use std::fmt;

/// The smallest offset in use, in minutes.
pub const MIN_OFFSET_MINUTES: i16 = -12 * 60;
/// The largest offset in use, in minutes.
pub const MAX_OFFSET_MINUTES: i16 = 14 * 60;
const STEP_MINUTES: i16 = 15;

/// A set of UTC offsets, bit `i` standing for −12:00 plus `i` quarter hours.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct UtcOffsets([u64; 2]);

impl UtcOffsets {
    pub fn is_empty(&self) -> bool {
        self.0 == [0, 0]
    }

    /// Adds `minutes`; `false` (and nothing added) when it is not an offset in use.
    pub fn insert(&mut self, minutes: i16) -> bool {
        let Some(bit) = bit_of(minutes) else { return false };
        self.0[bit / 64] |= 1 << (bit % 64);
        true
    }

    pub fn of(minutes: i16) -> Option<Self> {
        let mut set = Self::default();
        set.insert(minutes).then_some(set)
    }

    pub fn union(&self, other: &Self) -> Self {
        Self([self.0[0] | other.0[0], self.0[1] | other.0[1]])
    }

    /// The offsets in minutes, smallest first.
    pub fn minutes(&self) -> impl Iterator<Item = i16> + '_ {
        (0..128usize)
            .filter(|bit| self.0[bit / 64] & (1 << (bit % 64)) != 0)
            .map(|bit| MIN_OFFSET_MINUTES + bit as i16 * STEP_MINUTES)
    }

    /// The stored form: the offsets as `±HH:MM` separated by spaces, empty for none.
    pub fn encode(&self) -> String {
        self.minutes().map(format_offset).collect::<Vec<_>>().join(" ")
    }

    /// Reads [`UtcOffsets::encode`]'s form; what is not an offset in use is skipped
    /// (devid never writes it), so a damaged value costs matching evidence, not a read.
    pub fn decode(text: &str) -> Self {
        let mut set = Self::default();
        for part in text.split_whitespace() {
            if let Ok(minutes) = parse_offset(part) {
                set.insert(minutes);
            }
        }
        set
    }
}

impl fmt::Debug for UtcOffsets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UtcOffsets[{}]", self.encode())
    }
}

fn bit_of(minutes: i16) -> Option<usize> {
    let in_range = (MIN_OFFSET_MINUTES..=MAX_OFFSET_MINUTES).contains(&minutes);
    (in_range && minutes % STEP_MINUTES == 0).then(|| ((minutes - MIN_OFFSET_MINUTES) / STEP_MINUTES) as usize)
}

/// `+01:00`, `-05:30`, `+00:00`.
pub fn format_offset(minutes: i16) -> String {
    let sign = if minutes < 0 { '-' } else { '+' };
    let m = minutes.unsigned_abs();
    format!("{sign}{:02}:{:02}", m / 60, m % 60)
}

/// An offset as RFC 3339 and git write it: `+01:00`, `-0530`, `Z`. It must be one in
/// use: a whole quarter hour from −12:00 to +14:00. A bare number is refused: minutes or
/// hours, nobody reading it could tell.
pub fn parse_offset(text: &str) -> Result<i16, String> {
    let text = text.trim();
    let minutes = if text.eq_ignore_ascii_case("z") {
        Some(0)
    } else if let Some(rest) = text.strip_prefix(['+', '-']).filter(|r| r.len() == 4 || r.len() == 5) {
        let digits: String = rest.chars().filter(|c| *c != ':').collect();
        let well_formed = digits.len() == 4
            && digits.bytes().all(|b| b.is_ascii_digit())
            && (rest.len() == 4 || rest.as_bytes()[2] == b':');
        match (well_formed, digits.get(..2), digits.get(2..)) {
            (true, Some(h), Some(m)) => match (h.parse::<i16>(), m.parse::<i16>()) {
                (Ok(h), Ok(m)) if m < 60 => Some(if text.starts_with('-') { -(h * 60 + m) } else { h * 60 + m }),
                _ => None,
            },
            _ => None,
        }
    } else {
        None
    };
    let Some(minutes) = minutes else {
        return Err(format!("`{text}` is not a UTC offset; write it as +01:00, -05:30 or Z"));
    };
    if bit_of(minutes).is_none() {
        return Err(format!(
            "`{text}` is not a UTC offset in use: offsets are whole quarter hours from -12:00 to +14:00"
        ));
    }
    Ok(minutes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_read_in_every_usual_spelling() {
        assert_eq!(parse_offset("+01:00"), Ok(60));
        assert_eq!(parse_offset("-0530"), Ok(-330));
        assert_eq!(parse_offset("+05:45"), Ok(345));
        assert_eq!(parse_offset("Z"), Ok(0));
        assert_eq!(parse_offset("-00:00"), Ok(0));
        assert_eq!(parse_offset(" -12:00 "), Ok(-720));
        assert_eq!(parse_offset("+14:00"), Ok(840));
    }

    #[test]
    fn what_is_no_offset_in_use_is_refused_with_a_reason() {
        for bad in
            ["+1:00", "+01:60", "01:00", "+0100x", "abc", "", "+01-00", "+15:00", "-12:15", "+00:07", "60", "+60"]
        {
            let reason = parse_offset(bad).expect_err(bad);
            assert!(reason.contains("UTC offset"), "{bad}: {reason}");
        }
    }

    #[test]
    fn a_set_keeps_each_offset_once_in_order_and_survives_its_stored_form() {
        let mut set = UtcOffsets::default();
        assert!(set.is_empty());
        for m in [120, -300, 60, 120, 840, -720, 345] {
            assert!(set.insert(m));
        }
        assert!(!set.insert(7));
        assert!(!set.insert(900));
        assert_eq!(set.minutes().collect::<Vec<_>>(), vec![-720, -300, 60, 120, 345, 840]);
        assert_eq!(set.encode(), "-12:00 -05:00 +01:00 +02:00 +05:45 +14:00");
        assert_eq!(UtcOffsets::decode(&set.encode()), set);
        assert_eq!(UtcOffsets::decode("+01:00 nonsense +99:00"), UtcOffsets::of(60).unwrap_or_default());
        let other = UtcOffsets::of(-240).unwrap_or_default();
        assert_eq!(set.union(&other).minutes().count(), 7);
    }
}
