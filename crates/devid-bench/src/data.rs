//! Deterministic, realistic identities: N rows over five integrations and N/5
//! developers, shaped like what each source system really uses.

/// The integrations every benchmark database gets, in id order.
pub const INTEGRATIONS: [(i64, &str); 5] =
    [(1, "GITHUB"), (2, "JIRA"), (3, "BITBUCKET_CLOUD"), (4, "GITLAB_CLOUD"), (5, "CUSTOM")];

const FIRST: [&str; 16] = [
    "jane", "john", "aarav", "mei", "olu", "sofia", "lukas", "amara", "diego", "yuki", "fatima", "noah", "ines",
    "ravi", "elena", "kwame",
];
const LAST: [&str; 16] = [
    "doe", "smith", "patel", "chen", "okafor", "garcia", "muller", "nakamura", "silva", "haddad", "kowalski",
    "ivanova", "mensah", "tanaka", "rossi", "dubois",
];

#[derive(Debug, Clone)]
pub struct Row {
    pub email: String,
    pub integration_id: i64,
    pub identity: String,
}

pub struct Dataset {
    pub rows: Vec<Row>,
    pub developers: usize,
}

/// xorshift64*: tiny, fast and the same on every machine, unlike a library RNG whose
/// stream may change between versions.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number below `n`.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True `percent` times in a hundred.
    pub(crate) fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn uuid(&mut self) -> String {
        let (a, b) = (self.next(), self.next());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            (b >> 48) & 0x3fff | 0x8000,
            b & 0xffff_ffff_ffff
        )
    }
}

pub fn email_of(developer: usize) -> String {
    format!("{}.{}{developer}@company.com", FIRST[developer % 16], LAST[(developer / 16) % 16])
}

impl Dataset {
    pub fn generate(rows: usize, seed: u64) -> Dataset {
        let developers = rows.div_ceil(INTEGRATIONS.len()).max(1);
        let mut rng = Rng(seed.max(1));
        let mut out = Vec::with_capacity(rows);
        'outer: for developer in 0..developers {
            let (first, last) = (FIRST[developer % 16], LAST[(developer / 16) % 16]);
            let email = email_of(developer);
            for (integration_id, _) in INTEGRATIONS {
                if out.len() == rows {
                    break 'outer;
                }
                let identity = match integration_id {
                    1 => format!("{}{}-{developer}", capitalise(first), last),
                    2 if developer % 3 == 0 => format!("JIRAUSER{}", 100_000 + developer),
                    2 => rng.uuid(),
                    3 => format!("{{{}}}", rng.uuid()),
                    4 => format!("{} {} {developer}", capitalise(first), capitalise(last)),
                    _ => format!("emp-{developer:07}"),
                };
                out.push(Row { email: email.clone(), integration_id, identity });
            }
        }
        Dataset { rows: out, developers }
    }

    /// The same rows with one in `every` moved to the next developer's email.
    pub fn with_reassignments(&self, every: usize) -> Vec<Row> {
        self.rows
            .iter()
            .enumerate()
            .map(|(i, row)| {
                if i % every == 0 {
                    let developer = i / INTEGRATIONS.len();
                    Row { email: email_of((developer + 1) % self.developers.max(2)), ..row.clone() }
                } else {
                    row.clone()
                }
            })
            .collect()
    }

    pub fn csv(&self, rows: &[Row]) -> Vec<u8> {
        let mut out = Vec::with_capacity(rows.len() * 64);
        out.extend_from_slice(b"email,integrationId,identity\n");
        let mut writer = csv::Writer::from_writer(out);
        for r in rows {
            let id = r.integration_id.to_string();
            let _ = writer.write_record([r.email.as_str(), id.as_str(), r.identity.as_str()]);
        }
        writer.into_inner().unwrap_or_default()
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_deterministic_and_shaped() {
        let a = Dataset::generate(1000, 7);
        let b = Dataset::generate(1000, 7);
        assert_eq!(a.rows.len(), 1000);
        assert_eq!(a.developers, 200);
        assert!(a.rows.iter().zip(&b.rows).all(|(x, y)| x.identity == y.identity && x.email == y.email));
        assert!(a.rows.iter().any(|r| r.integration_id == 4 && r.identity.contains(' ')));
        let moved = a.with_reassignments(10);
        let changed = a.rows.iter().zip(&moved).filter(|(x, y)| x.email != y.email).count();
        assert_eq!(changed, 100);
        let keys: std::collections::HashSet<(i64, String)> =
            a.rows.iter().map(|r| (r.integration_id, r.identity.to_lowercase())).collect();
        assert_eq!(keys.len(), 1000, "every identity is distinct");
    }
}
