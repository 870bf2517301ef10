//! Plain-timing micro-benchmark of the pure planner and key function (no server, no Criterion).
//!
//! A bench target without a harness, so `make test` never runs it (clippy only checks it) and
//! reports nothing skipped; `make bench` (`scripts/bench.sh`) runs it in release mode:
//!
//! ```text
//! cargo bench -p lockhier-core --bench plan_timing
//! ```
//!
//! Each figure is the best of several rounds of many operations (the minimum is the least
//! disturbed by other work on the machine), with ids varied per operation so nothing is
//! computed once and reused. Lines starting with `plan_timing:` are what `bench.sh` collects.

use lockhier_core::key::{KeyKind, Target};
use lockhier_core::plan::Plan;
use lockhier_core::{Classes, Mode, Node, Request};
use std::hint::black_box;
use std::time::Instant;

const OPS_PER_ROUND: u64 = 200_000;
const ROUNDS: usize = 7;

/// Nanoseconds per call of `op(i)`: best and median over the rounds.
fn time(mut op: impl FnMut(u64) -> i64) -> (f64, f64) {
    // Warm-up: caches, branch predictors, CPU frequency.
    let mut sink = 0i64;
    for i in 0..OPS_PER_ROUND / 4 {
        sink = sink.wrapping_add(op(i));
    }
    let mut per_op: Vec<f64> = (0..ROUNDS)
        .map(|round| {
            let base = round as u64 * OPS_PER_ROUND;
            let start = Instant::now();
            for i in base..base + OPS_PER_ROUND {
                sink = sink.wrapping_add(op(black_box(i)));
            }
            start.elapsed().as_nanos() as f64 / OPS_PER_ROUND as f64
        })
        .collect();
    black_box(sink);
    per_op.sort_by(f64::total_cmp);
    (per_op[0], per_op[ROUNDS / 2])
}

fn report(name: &str, (best, median): (f64, f64)) -> f64 {
    println!("plan_timing: {name:<44} {best:8.1} ns/op (best of {ROUNDS}), {median:8.1} ns/op (median)");
    best
}

/// A field id spread over a realistic id range, so keys differ from call to call.
fn ids(i: u64) -> (i64, i64, i64) {
    let i = i as i64;
    (1 + i % 97, 1 + i % 1_009, 1 + i)
}

/// The sum of a plan's keys, so the optimiser cannot drop any step.
fn checksum(plan: &Plan) -> i64 {
    plan.steps().iter().fold(plan.steps().len() as i64, |acc, s| acc.wrapping_add(s.key))
}

fn main() {
    let update = Classes::parse_one("field__update").unwrap();
    let update_name = update.names()[0];
    let import = Classes::parse_many(
        ["field__deletion", "field__type_update", "field__incompatible_update"].map(Some),
    )
    .unwrap();

    // Sanity: the shapes timed are the ones the design describes.
    let sample = Request { node: Node::field(7, 12, 99), classes: update.clone(), mode: Mode::Exclusive };
    assert_eq!(Plan::of(&sample).steps().len(), 8);
    let sample_all = Request { node: Node::field(7, 12, 99), classes: Classes::All, mode: Mode::Exclusive };
    assert_eq!(Plan::of(&sample_all).steps().len(), 10);

    let field_class = report(
        "plan field, one class, exclusive (8 keys)",
        time(|i| {
            let (a, t, f) = ids(i);
            let request =
                Request { node: Node::field(a, t, f), classes: update.clone(), mode: Mode::Exclusive };
            checksum(&Plan::of(black_box(&request)))
        }),
    );
    let field_all = report(
        "plan field, all, exclusive (10 keys)",
        time(|i| {
            let (a, t, f) = ids(i);
            let request =
                Request { node: Node::field(a, t, f), classes: Classes::All, mode: Mode::Exclusive };
            checksum(&Plan::of(black_box(&request)))
        }),
    );
    report(
        "plan table, 3 classes, share (12 keys)",
        time(|i| {
            let (a, t, _) = ids(i);
            let request = Request { node: Node::table(a, t), classes: import.clone(), mode: Mode::Share };
            checksum(&Plan::of(black_box(&request)))
        }),
    );
    report(
        "plan application, all, share (4 keys)",
        time(|i| {
            let (a, _, _) = ids(i);
            let request = Request { node: Node::application(a), classes: Classes::All, mode: Mode::Share };
            checksum(&Plan::of(black_box(&request)))
        }),
    );
    report(
        "parse class + plan field (one class, excl.)",
        time(|i| {
            let (a, t, f) = ids(i);
            let classes = Classes::parse_one(black_box("Field__Update")).unwrap();
            let request = Request { node: Node::field(a, t, f), classes, mode: Mode::Exclusive };
            checksum(&Plan::of(black_box(&request)))
        }),
    );
    let key_class = report(
        "key: field node, class field__update",
        time(|i| {
            let (a, t, f) = ids(i);
            Target { node: Node::field(a, t, f).into(), kind: KeyKind::Class(&update_name) }.key()
        }),
    );
    report(
        "key: field node, all",
        time(|i| {
            let (a, t, f) = ids(i);
            Target { node: Node::field(a, t, f).into(), kind: KeyKind::All }.key()
        }),
    );
    report(
        "key: global, all",
        time(|i| Target { node: Node::GLOBAL.into(), kind: KeyKind::All }.key() ^ black_box(i as i64)),
    );

    // A field plan is 8 or 10 hashes of at most 75 bytes and a few stores: far below the
    // microseconds a lock-manager round trip costs. 1 µs leaves room for a busy machine.
    assert!(field_class < 1_000.0, "a one-class field plan costs {field_class:.0} ns");
    assert!(field_all < 1_000.0, "an all-classes field plan costs {field_all:.0} ns");
    assert!(key_class < 200.0, "a key costs {key_class:.0} ns");
}
