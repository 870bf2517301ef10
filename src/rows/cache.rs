//! What this session already knows about `lock_rows` targets: what a relation and key column
//! resolve to, and the prepared locking statements, so that a repeated call reads no catalog
//! and plans nothing. DDL on a relation (a relcache invalidation) forgets what is known about
//! it; a change to any schema (a rename moves qualified names) forgets everything.

use super::target::Target;
use crate::pg::invalidation;
use pgrx::pg_sys;
use pgrx::spi::OwnedPreparedStatement;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// A relation and the key column asked for (`None`: its primary key's).
pub type TargetKey = (pg_sys::Oid, Option<String>);

/// What a locking statement depends on besides its target: the lock strength (as in
/// `FOR <name>`), whether it is NOWAIT, and the type of the ids array.
pub type StatementKey = (&'static str, bool, pg_sys::Oid);

struct Entry {
    target: Rc<Target>,
    statements: HashMap<StatementKey, Rc<OwnedPreparedStatement>>,
}

/// What invalidations made stale since the cache was last used: a short list of relations,
/// collapsing to "everything" past [`Invalidated::MAX_RELATIONS`], so that a session that never
/// calls `lock_rows` again does not collect the relid of every later invalidation.
#[derive(Debug, PartialEq, Eq)]
enum Invalidated {
    Relations(Vec<pg_sys::Oid>),
    Everything,
}

impl Invalidated {
    const MAX_RELATIONS: usize = 32;

    const fn nothing() -> Invalidated {
        Invalidated::Relations(Vec::new())
    }

    /// `relid` changed (InvalidOid: every relation did).
    fn note(&mut self, relid: pg_sys::Oid) {
        match self {
            Invalidated::Relations(_) if relid == pg_sys::InvalidOid => *self = Invalidated::Everything,
            Invalidated::Relations(relids) if relids.contains(&relid) => {}
            Invalidated::Relations(relids) if relids.len() < Self::MAX_RELATIONS => relids.push(relid),
            Invalidated::Relations(_) => *self = Invalidated::Everything,
            Invalidated::Everything => {}
        }
    }
}

thread_local! {
    static ENTRIES: RefCell<HashMap<TargetKey, Entry>> = RefCell::new(HashMap::new());
    static INVALIDATED: RefCell<Invalidated> = const { RefCell::new(Invalidated::nothing()) };
}

/// The target for `key`, resolved by `resolve` the first time.
pub fn target<E>(key: &TargetKey, resolve: impl FnOnce() -> Result<Target, E>) -> Result<Rc<Target>, E> {
    forget_invalidated();
    if let Some(target) = ENTRIES.with_borrow(|e| e.get(key).map(|entry| entry.target.clone())) {
        return Ok(target);
    }
    let target = Rc::new(resolve()?);
    let entry = Entry { target: target.clone(), statements: HashMap::new() };
    ENTRIES.with_borrow_mut(|e| e.insert(key.clone(), entry));
    Ok(target)
}

/// The statement for (`target`, `statement`), prepared by `prepare` the first time.
pub fn statement<E>(
    target: &TargetKey,
    statement: StatementKey,
    prepare: impl FnOnce() -> Result<OwnedPreparedStatement, E>,
) -> Result<Rc<OwnedPreparedStatement>, E> {
    let known =
        ENTRIES.with_borrow(|e| e.get(target).and_then(|entry| entry.statements.get(&statement).cloned()));
    if let Some(known) = known {
        return Ok(known);
    }
    let prepared = Rc::new(prepare()?);
    ENTRIES.with_borrow_mut(|e| {
        if let Some(entry) = e.get_mut(target) {
            entry.statements.insert(statement, prepared.clone());
        }
    });
    Ok(prepared)
}

/// Drop what invalidations made stale. Plans are freed here, outside the callbacks, which
/// must not do such work.
fn forget_invalidated() {
    let invalidated = INVALIDATED.with_borrow_mut(|i| std::mem::replace(i, Invalidated::nothing()));
    let stale: Vec<Entry> = ENTRIES.with_borrow_mut(|entries| match invalidated {
        Invalidated::Everything => entries.drain().map(|(_, entry)| entry).collect(),
        Invalidated::Relations(relids) if relids.is_empty() => Vec::new(),
        Invalidated::Relations(relids) => {
            let keys: Vec<TargetKey> =
                entries.keys().filter(|(relid, _)| relids.contains(relid)).cloned().collect();
            keys.iter().filter_map(|key| entries.remove(key)).collect()
        }
    });
    drop(stale);
}

fn on_relation_change(relid: pg_sys::Oid) {
    // Nothing cached, nothing to forget (a session that never called lock_rows).
    if ENTRIES.with(|e| e.try_borrow().is_ok_and(|entries| entries.is_empty())) {
        return;
    }
    INVALIDATED.with_borrow_mut(|i| i.note(relid));
}

fn on_schema_change() {
    INVALIDATED.with_borrow_mut(|i| *i = Invalidated::Everything);
}

/// Called once from `_PG_init`.
pub fn install_callbacks() {
    invalidation::register(invalidation::Callbacks {
        relation_changed: on_relation_change,
        schema_changed: on_schema_change,
    });
}

#[cfg(test)]
mod tests {
    use super::Invalidated;
    use pgrx::pg_sys::{self, Oid};

    #[test]
    fn invalidations_stay_bounded() {
        let mut invalidated = Invalidated::nothing();
        invalidated.note(Oid::from_u32(7));
        invalidated.note(Oid::from_u32(7));
        assert_eq!(invalidated, Invalidated::Relations(vec![Oid::from_u32(7)]));
        for relid in 0..1_000_000u32 {
            invalidated.note(Oid::from_u32(100 + relid));
        }
        assert_eq!(invalidated, Invalidated::Everything, "collapsed, not a million relids");
        let mut one_global = Invalidated::nothing();
        one_global.note(pg_sys::InvalidOid);
        assert_eq!(one_global, Invalidated::Everything);
    }
}
