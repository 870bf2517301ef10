//! Request -> plan: the (key, lock mode) pairs that are acquired for it, in canonical order.
//!
//! This is `docs/lock-model.md` transcribed; pure Rust, proven against the oracle
//! ([`Request::conflicts_with`]) over every pair of requests of a small tree in the tests below.

use crate::class::Classes;
use crate::key::{KeyKind, Target};
use crate::lockmode::LockMode;
use crate::request::{Mode, Request};
use crate::scope::{Node, Place, Scope};

/// One lock of a plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step<'r> {
    pub target: Target<'r>,
    pub mode: LockMode,
    pub key: i64,
}

/// A single-class plan never takes more than this many locks (a field request on all classes in
/// exclusive mode does), so plans that size live on the stack.
pub const MAX_SINGLE_CLASS_STEPS: usize = 10;

const PLACEHOLDER: Step<'static> = Step {
    target: Target { node: Place::Tree(Node::GLOBAL), kind: KeyKind::All },
    mode: LockMode::RowShare,
    key: 0,
};

/// The steps of a request, root to leaf; per node: `all`, the markers, the classes sorted.
/// That one order for every request keeps waits short and deadlocks between requests rare.
pub struct Plan<'r> {
    inline: [Step<'r>; MAX_SINGLE_CLASS_STEPS],
    len: usize,
    /// Used instead of `inline` once a multi-class plan outgrows it.
    spilled: Vec<Step<'r>>,
}

fn intention(mode: Mode) -> LockMode {
    match mode {
        Mode::Share => LockMode::RowShare,
        Mode::Exclusive => LockMode::RowExclusive,
    }
}

fn main_mode(mode: Mode) -> LockMode {
    match mode {
        Mode::Share => LockMode::Share,
        Mode::Exclusive => LockMode::Exclusive,
    }
}

impl<'r> Plan<'r> {
    pub fn of(request: &'r Request) -> Plan<'r> {
        Plan::of_scope(&request.scope, &request.classes, request.mode)
    }

    /// The plan of a request on any scope: a path's plan is a node's, with the path's
    /// prefixes for ancestors below the global scope.
    pub fn of_scope(scope: &'r Scope, classes: &'r Classes, mode: Mode) -> Plan<'r> {
        match scope {
            Scope::Tree(node) => Plan::build(
                node.ancestors().map(Place::Tree),
                Place::Tree(*node),
                node.is_leaf(),
                classes,
                mode,
            ),
            Scope::Path(path) => {
                let ancestors =
                    std::iter::once(Place::Tree(Node::GLOBAL)).chain(path.ancestors().map(Place::Path));
                Plan::build(ancestors, Place::Path(path.whole()), path.is_leaf(), classes, mode)
            }
        }
    }

    /// `ancestors` root first, then the scope itself (`node`); see `docs/lock-model.md`.
    fn build(
        ancestors: impl Iterator<Item = Place<'r>>,
        node: Place<'r>,
        leaf: bool,
        classes: &'r Classes,
        mode: Mode,
    ) -> Plan<'r> {
        let mut plan = Plan { inline: [PLACEHOLDER; MAX_SINGLE_CLASS_STEPS], len: 0, spilled: Vec::new() };
        let intent = intention(mode);
        match classes {
            Classes::All => {
                for ancestor in ancestors {
                    plan.push(ancestor, KeyKind::All, intent);
                    if mode == Mode::Exclusive {
                        plan.push(ancestor, KeyKind::ShareMarker, LockMode::RowExclusive);
                    }
                    plan.push(ancestor, KeyKind::ExclusiveMarker, LockMode::RowExclusive);
                }
                plan.push(node, KeyKind::All, main_mode(mode));
            }
            named => {
                for ancestor in ancestors {
                    plan.push(ancestor, KeyKind::All, intent);
                    for class in named.names() {
                        plan.push(ancestor, KeyKind::Class(class), intent);
                    }
                }
                plan.push(node, KeyKind::All, intent);
                if !leaf {
                    let marker = match mode {
                        Mode::Share => KeyKind::ShareMarker,
                        Mode::Exclusive => KeyKind::ExclusiveMarker,
                    };
                    plan.push(node, marker, LockMode::Share);
                }
                for class in named.names() {
                    plan.push(node, KeyKind::Class(class), main_mode(mode));
                }
            }
        }
        plan
    }

    pub fn steps(&self) -> &[Step<'r>] {
        if self.spilled.is_empty() {
            &self.inline[..self.len]
        } else {
            &self.spilled
        }
    }

    fn push(&mut self, node: Place<'r>, kind: KeyKind<'r>, mode: LockMode) {
        let target = Target { node, kind };
        let step = Step { target, mode, key: target.key() };
        if self.spilled.is_empty() && self.len < MAX_SINGLE_CLASS_STEPS {
            self.inline[self.len] = step;
            self.len += 1;
        } else {
            if self.spilled.is_empty() {
                self.spilled.extend_from_slice(&self.inline[..self.len]);
            }
            self.spilled.push(step);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Whether two holders of these plans would block each other in the lock manager.
    pub fn plans_conflict(a: &Plan, b: &Plan) -> bool {
        a.steps().iter().any(|x| b.steps().iter().any(|y| x.key == y.key && x.mode.conflicts_with(y.mode)))
    }

    /// The tree of the issue: global, 2 applications, 2 tables each, 2 fields each (15 nodes).
    fn universe() -> Vec<Node> {
        let mut nodes = vec![Node::GLOBAL];
        for a in 1..=2 {
            nodes.push(Node::application(a));
            for t in 1..=2 {
                nodes.push(Node::table(a, t));
                for f in 1..=2 {
                    nodes.push(Node::field(a, t, f));
                }
            }
        }
        nodes
    }

    fn requests(class_sets: &[&[&str]]) -> Vec<Request> {
        let mut out = Vec::new();
        for node in universe() {
            for classes in class_sets {
                for mode in [Mode::Share, Mode::Exclusive] {
                    let classes = Classes::parse_many(classes.iter().map(|c| Some(*c))).unwrap();
                    out.push(Request { scope: Scope::Tree(node), classes, mode });
                }
            }
        }
        out
    }

    /// Every ordered pair: the plans conflict exactly when the oracle says the requests do.
    fn assert_agrees_with_oracle(requests: &[Request]) -> usize {
        let plans: Vec<Plan> = requests.iter().map(Plan::of).collect();
        let mut checked = 0;
        for (a, plan_a) in requests.iter().zip(&plans) {
            for (b, plan_b) in requests.iter().zip(&plans) {
                assert_eq!(
                    plans_conflict(plan_a, plan_b),
                    a.conflicts_with(b),
                    "plans disagree with the oracle for {a} / {b}"
                );
                checked += 1;
            }
        }
        checked
    }

    #[test]
    fn single_class_plans_agree_with_the_oracle_on_every_pair() {
        let requests = requests(&[&["all"], &["a"], &["b"]]);
        assert_eq!(requests.len(), 90);
        assert_eq!(assert_agrees_with_oracle(&requests), 8_100);
    }

    #[test]
    fn multi_class_plans_agree_with_the_oracle_on_every_pair() {
        let sets: &[&[&str]] = &[
            &["all"],
            &["a"],
            &["b"],
            &["c"],
            &["a", "b"],
            &["a", "c"],
            &["b", "c"],
            &["a", "b", "c"],
            &["a", "all"],
        ];
        let requests = requests(sets);
        assert_eq!(assert_agrees_with_oracle(&requests), 270 * 270);
    }

    #[test]
    fn without_markers_the_scheme_is_wrong_as_the_design_says() {
        let requests = requests(&[&["all"], &["a"], &["b"]]);
        let without_markers = |r: &Request| -> Vec<(i64, LockMode)> {
            Plan::of(r)
                .steps()
                .iter()
                .filter(|s| matches!(s.target.kind, KeyKind::All | KeyKind::Class(_)))
                .map(|s| (s.key, s.mode))
                .collect()
        };
        let mut wrong = 0;
        for a in &requests {
            for b in &requests {
                let (pa, pb) = (without_markers(a), without_markers(b));
                let conflict = pa.iter().any(|x| pb.iter().any(|y| x.0 == y.0 && x.1.conflicts_with(y.1)));
                if conflict != a.conflicts_with(b) {
                    assert!(!conflict, "intention locks alone never over-lock");
                    wrong += 1;
                }
            }
        }
        assert_eq!(wrong, 408);
    }

    #[test]
    fn single_class_plans_take_at_most_ten_locks() {
        let requests = requests(&[&["all"], &["a"]]);
        let max = requests.iter().map(|r| Plan::of(r).steps().len()).max().unwrap();
        assert_eq!(max, MAX_SINGLE_CLASS_STEPS);
    }

    #[test]
    fn keys_are_distinct_across_the_universe() {
        let requests = requests(&[&["all"], &["a", "b"]]);
        let mut keys_by_target = std::collections::HashMap::new();
        for request in &requests {
            for step in Plan::of(request).steps() {
                let described = format!("{:?}", step.target);
                let previous = keys_by_target.insert(step.key, described.clone());
                assert!(previous.is_none() || previous.as_ref() == Some(&described), "collision");
            }
        }
    }

    #[test]
    fn plans_follow_the_canonical_order() {
        fn rank<'r>(s: &Step<'r>) -> (usize, (i32, &'r str)) {
            let kind = match s.target.kind {
                KeyKind::All => (0, ""),
                KeyKind::ShareMarker => (1, ""),
                KeyKind::ExclusiveMarker => (2, ""),
                KeyKind::Class(c) => (3, c.as_str()),
            };
            (s.target.node.depth(), kind)
        }
        for request in requests(&[&["all"], &["b", "a", "c"]]) {
            let plan = Plan::of(&request);
            let ranks: Vec<_> = plan.steps().iter().map(rank).collect();
            assert!(ranks.windows(2).all(|w| w[0] < w[1]), "{request}: {ranks:?}");
            let keys: HashSet<i64> = plan.steps().iter().map(|s| s.key).collect();
            assert_eq!(keys.len(), plan.steps().len(), "no key twice in one plan");
        }
    }

    /// A plan as the design writes it: `IX application 7 all`, one line a step.
    fn read(plan: &Plan) -> Vec<String> {
        plan.steps()
            .iter()
            .map(|s| format!("{} {} {}", s.mode.role(), s.target.node, s.target.kind.name()))
            .collect()
    }

    #[test]
    fn field_update_plan_reads_as_the_design() {
        let request = Request {
            scope: Scope::Tree(Node::field(7, 12, 99)),
            classes: Classes::parse_one("field__update").unwrap(),
            mode: Mode::Exclusive,
        };
        let plan = Plan::of(&request);
        assert_eq!(
            read(&plan),
            [
                "IX the global scope all",
                "IX the global scope class",
                "IX application 7 all",
                "IX application 7 class",
                "IX table 12 (application 7) all",
                "IX table 12 (application 7) class",
                "IX field 99 (table 12, application 7) all",
                "X field 99 (table 12, application 7) class",
            ]
        );
    }

    #[test]
    fn large_multi_class_plans_spill_to_the_heap_intact() {
        let names: Vec<String> = (0..20).map(|i| format!("c{i:02}")).collect();
        let request = Request {
            scope: Scope::Tree(Node::field(1, 2, 3)),
            classes: Classes::parse_many(names.iter().map(|n| Some(n.as_str()))).unwrap(),
            mode: Mode::Share,
        };
        let plan = Plan::of(&request);
        // 3 ancestors x (all + 20 classes) + the field's all + 20 classes.
        assert_eq!(plan.steps().len(), 3 * 21 + 1 + 20);
        assert_eq!(plan.steps()[0].target.kind, KeyKind::All);
        assert_eq!(plan.steps().last().unwrap().mode, LockMode::Share);
    }

    /// A request on any scope, for the oracle over paths.
    struct Scoped {
        scope: Scope,
        classes: Classes,
        mode: Mode,
    }

    impl Scoped {
        fn plan(&self) -> Plan<'_> {
            Plan::of_scope(&self.scope, &self.classes, self.mode)
        }

        /// The oracle: the lock model's rule, with the global scope above both trees.
        fn conflicts_with(&self, other: &Scoped) -> bool {
            crate::request::conflict(
                self.scope.overlaps(&other.scope),
                (&self.classes, self.mode),
                (&other.classes, other.mode),
            )
        }
    }

    /// Paths of every depth from 1 to the greatest: a line of descent `a/a/...`, and at each
    /// depth a sibling that leaves it (`a/.../b`), so that every pair of depths meets as
    /// ancestor, descendant, sibling and cousin; beside the global scope and a numeric node.
    fn path_universe() -> Vec<Scope> {
        use crate::path::{Path, MAX_DEPTH};
        let mut scopes = vec![Scope::Tree(Node::GLOBAL), Scope::Tree(Node::field(1, 1, 1))];
        for depth in 1..=MAX_DEPTH {
            let line = vec!["a"; depth];
            scopes.push(Scope::Path(Path::parse(line.iter().copied()).unwrap()));
            let mut sibling = line.clone();
            sibling[depth - 1] = "b";
            scopes.push(Scope::Path(Path::parse(sibling.iter().copied()).unwrap()));
        }
        scopes
    }

    #[test]
    fn path_plans_agree_with_the_oracle_on_every_pair_at_every_depth() {
        let sets: &[&[&str]] = &[&["all"], &["a"], &["b"], &["a", "b"], &["b", "c"]];
        let mut requests = Vec::new();
        for scope in path_universe() {
            for classes in sets {
                for mode in [Mode::Share, Mode::Exclusive] {
                    let classes = Classes::parse_many(classes.iter().map(|c| Some(*c))).unwrap();
                    requests.push(Scoped { scope: scope.clone(), classes, mode });
                }
            }
        }
        let plans: Vec<Plan> = requests.iter().map(Scoped::plan).collect();
        let mut pairs = 0;
        for (a, plan_a) in requests.iter().zip(&plans) {
            for (b, plan_b) in requests.iter().zip(&plans) {
                assert_eq!(
                    plans_conflict(plan_a, plan_b),
                    a.conflicts_with(b),
                    "plans disagree with the oracle for {} {} {:?} / {} {} {:?}",
                    a.scope.place(),
                    a.classes,
                    a.mode,
                    b.scope.place(),
                    b.classes,
                    b.mode
                );
                pairs += 1;
            }
        }
        assert_eq!(pairs, 180 * 180, "18 scopes x 5 class sets x 2 modes, every ordered pair");
    }

    #[test]
    fn a_path_plan_reads_as_a_node_plan() {
        let scope = Scope::Path(crate::path::Path::parse(["sites", "c0a8", "backups"]).unwrap());
        let classes = Classes::parse_one("backup").unwrap();
        let plan = Plan::of_scope(&scope, &classes, Mode::Exclusive);
        assert_eq!(
            read(&plan),
            [
                "IX the global scope all",
                "IX the global scope class",
                "IX \"sites\" all",
                "IX \"sites\" class",
                "IX \"sites/c0a8\" all",
                "IX \"sites/c0a8\" class",
                "IX \"sites/c0a8/backups\" all",
                "S \"sites/c0a8/backups\" exclusive marker",
                "X \"sites/c0a8/backups\" class",
            ]
        );
    }
}
