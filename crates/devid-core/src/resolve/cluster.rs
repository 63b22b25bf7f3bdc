//! Links into people: union-find over the candidate links, strongest tier first, under
//! the constraints no rule may break (cannot-links, one developer per person) and the
//! blast-radius limit.

use super::{Candidate, Clustering, Link, Options, Rule, Tier};

/// What holds whatever the rules say.
#[derive(Debug, Clone, Default)]
pub struct Constraints {
    /// Aliases that are one person before any rule runs (the emails of one account,
    /// the identities of one developer), with the rule that says why.
    pub tied: Vec<(usize, usize, Rule)>,
    /// Pairs a person said are different people: never joined, directly or through
    /// others.
    pub cannot_link: Vec<(usize, usize)>,
    /// Aliases that stand for an existing developer: two of them never join, since
    /// merging developers is not a link.
    pub anchors: Vec<usize>,
    /// What each alias counts towards `max_aliases` (an identity counts, a second email
    /// of the same account does not); every alias counts one when empty.
    pub weights: Vec<usize>,
}

struct Forest {
    parent: Vec<usize>,
    size: Vec<usize>,
    anchored: Vec<bool>,
    /// For each root, the aliases its members may never join.
    apart: Vec<Vec<usize>>,
}

impl Forest {
    fn root(&mut self, mut x: usize) -> usize {
        while self.parent[x] != x {
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }

    /// Why `ra` and `rb` may not join, if they may not.
    fn forbidden(&mut self, ra: usize, rb: usize) -> bool {
        if self.anchored[ra] && self.anchored[rb] {
            return true;
        }
        let (small, other) = if self.apart[ra].len() <= self.apart[rb].len() { (ra, rb) } else { (rb, ra) };
        let partners = self.apart[small].clone();
        partners.into_iter().any(|p| self.root(p) == other)
    }

    fn join(&mut self, ra: usize, rb: usize) {
        let (keep, gone) = if ra < rb { (ra, rb) } else { (rb, ra) };
        self.parent[gone] = keep;
        self.size[keep] += self.size[gone];
        self.anchored[keep] |= self.anchored[gone];
        let moved = std::mem::take(&mut self.apart[gone]);
        self.apart[keep].extend(moved);
    }
}

/// Applies ties, then links strongest first (auto, then review up to `max_tier`), each
/// in the order found. A link is skipped when it would join what must stay apart or
/// grow a person past the limit; `describe` gives an applied link its matched value.
pub(super) fn apply(
    count: usize,
    candidates: Vec<Candidate>,
    describe: impl Fn(&Candidate) -> String,
    constraints: &Constraints,
    max_tier: Tier,
    options: Options,
) -> Clustering {
    let mut forest = Forest {
        parent: (0..count).collect(),
        size: if constraints.weights.len() == count { constraints.weights.clone() } else { vec![1; count] },
        anchored: vec![false; count],
        apart: vec![Vec::new(); count],
    };
    for &a in constraints.anchors.iter().filter(|&&a| a < count) {
        forest.anchored[a] = true;
    }
    for &(a, b) in constraints.cannot_link.iter().filter(|(a, b)| *a < count && *b < count) {
        forest.apart[a].push(b);
        forest.apart[b].push(a);
    }
    let mut tier: Vec<Option<Tier>> = vec![None; count];
    let mut links = Vec::new();
    for &(a, b, rule) in constraints.tied.iter().filter(|(a, b, _)| *a < count && *b < count) {
        let (ra, rb) = (forest.root(a), forest.root(b));
        if ra != rb {
            forest.join(ra, rb);
            links.push(Link { a, b, rule, tier: Tier::Auto, value: String::new() });
        }
    }
    let tied = links.len();
    // Tier by tier, each in the order found: a stable sort by tier without the sort's
    // buffer, half the candidates again at a million aliases.
    let tiers = [Tier::Auto, Tier::Review].into_iter().filter(|t| *t <= max_tier);
    for found in tiers.flat_map(|t| candidates.iter().filter(move |c| c.tier == t)) {
        let (ra, rb) = (forest.root(found.a), forest.root(found.b));
        if ra == rb || forest.size[ra] + forest.size[rb] > options.max_aliases || forest.forbidden(ra, rb) {
            continue;
        }
        forest.join(ra, rb);
        links.push(Link { a: found.a, b: found.b, rule: found.rule, tier: found.tier, value: describe(found) });
    }
    let person: Vec<usize> = (0..count).map(|i| forest.root(i)).collect();
    for link in &links[tied..] {
        let p = person[link.a];
        tier[p] = Some(tier[p].map_or(link.tier, |t: Tier| t.max(link.tier)));
    }
    let tier = (0..count).map(|i| tier[person[i]]).collect();
    Clustering { person, tier, links }
}
