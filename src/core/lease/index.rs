//! The token index of the shared lease table: an open-addressing hash table from a lease's
//! token to its slot in the table, kept beside the table in shared memory (a fixed array, no
//! heap), so that a backend finds a lease by its token without scanning every lease.
//!
//! Linear probing with backward-shift deletion (no tombstones: a table that lives as long as
//! the server never degrades). The array has at least twice as many buckets as the table has
//! slots, so it is never more than half full and a probe is short.

/// One bucket: `token` 0 is empty (tokens start at 1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Entry {
    pub token: i64,
    pub slot: u32,
}

/// How many buckets an index for `capacity` leases has: a power of two, at least twice it.
pub fn buckets_for(capacity: usize) -> usize {
    (capacity.max(1) * 2).next_power_of_two()
}

/// The bucket a token's probe starts at (Fibonacci hashing: tokens are sequential, and the
/// multiplication spreads them over the high bits, which the shift keeps).
fn home(token: i64, buckets: usize) -> usize {
    let bits = buckets.trailing_zeros();
    if bits == 0 {
        return 0;
    }
    ((token as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)) as usize
}

fn position(entries: &[Entry], token: i64) -> Option<usize> {
    debug_assert!(entries.len().is_power_of_two());
    let mask = entries.len() - 1;
    let mut i = home(token, entries.len());
    for _ in 0..entries.len() {
        match entries[i].token {
            0 => return None,
            t if t == token => return Some(i),
            _ => i = (i + 1) & mask,
        }
    }
    None
}

/// The slot of `token`, if it is in the index.
pub fn find(entries: &[Entry], token: i64) -> Option<u32> {
    position(entries, token).map(|i| entries[i].slot)
}

/// Add `token` at `slot`, or move it there if it is already in the index. The index must have
/// an empty bucket (it has, when sized by [`buckets_for`] for the table it indexes).
pub fn insert(entries: &mut [Entry], token: i64, slot: u32) {
    assert!(token != 0, "token 0 marks an empty bucket");
    let mask = entries.len() - 1;
    let mut i = home(token, entries.len());
    for _ in 0..entries.len() {
        if entries[i].token == 0 || entries[i].token == token {
            entries[i] = Entry { token, slot };
            return;
        }
        i = (i + 1) & mask;
    }
    panic!("the token index is full");
}

/// Take `token` out of the index: its slot, if it was there. The entries after it in its
/// cluster move back, so that every probe still finds what it looks for.
pub fn remove(entries: &mut [Entry], token: i64) -> Option<u32> {
    let mut hole = position(entries, token)?;
    let slot = entries[hole].slot;
    let mask = entries.len() - 1;
    let mut next = (hole + 1) & mask;
    while entries[next].token != 0 {
        let wanted = home(entries[next].token, entries.len());
        // The entry at `next` may fill the hole if its probe started at or before the hole
        // (cyclically): between its home and `next`, the hole comes first.
        let distance_to_hole = hole.wrapping_sub(wanted) & mask;
        let distance_to_next = next.wrapping_sub(wanted) & mask;
        if distance_to_hole <= distance_to_next {
            entries[hole] = entries[next];
            hole = next;
        }
        next = (next + 1) & mask;
    }
    entries[hole] = Entry::default();
    Some(slot)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A small deterministic generator, so that a failure replays.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            self.0 >> 33
        }
    }

    fn check(entries: &[Entry], model: &HashMap<i64, u32>) {
        for (&token, &slot) in model {
            assert_eq!(find(entries, token), Some(slot), "token {token}");
        }
        assert_eq!(entries.iter().filter(|e| e.token != 0).count(), model.len());
    }

    #[test]
    fn sizes_are_powers_of_two_at_least_twice_the_capacity() {
        for capacity in [1, 2, 3, 1000, 1024, 100_000] {
            let buckets = buckets_for(capacity);
            assert!(buckets.is_power_of_two() && buckets >= 2 * capacity, "{capacity}: {buckets}");
        }
    }

    #[test]
    fn every_sequence_of_inserts_and_removes_matches_a_map() {
        // Every capacity up to 16, tokens from a small range so that probes collide and wrap
        // around the end of the array, and many random sequences of operations.
        for capacity in 1..=16usize {
            for seed in 0..200u64 {
                let mut random = Lcg(seed * 1000 + capacity as u64);
                let mut entries = vec![Entry::default(); buckets_for(capacity)];
                let mut model: HashMap<i64, u32> = HashMap::new();
                for _ in 0..200 {
                    let token = 1 + (random.next() % (3 * capacity as u64)) as i64;
                    if random.next().is_multiple_of(2)
                        && (model.len() < capacity || model.contains_key(&token))
                    {
                        let slot = (random.next() % capacity as u64) as u32;
                        insert(&mut entries, token, slot);
                        model.insert(token, slot);
                    } else {
                        assert_eq!(remove(&mut entries, token), model.remove(&token), "remove {token}");
                    }
                    check(&entries, &model);
                    assert_eq!(find(&entries, 0), None);
                }
            }
        }
    }

    #[test]
    fn sequential_tokens_of_a_full_table_stay_findable() {
        let capacity = 100_000;
        let mut entries = vec![Entry::default(); buckets_for(capacity)];
        let first = 1i64 << 40;
        for i in 0..capacity as i64 {
            insert(&mut entries, first + i, i as u32);
        }
        for i in (0..capacity as i64).step_by(2) {
            assert_eq!(remove(&mut entries, first + i), Some(i as u32));
        }
        for i in 0..capacity as i64 {
            let expected = (i % 2 == 1).then_some(i as u32);
            assert_eq!(find(&entries, first + i), expected);
        }
        // The longest probe stays short: sequential tokens spread well.
        let mut longest = 0;
        let mask = entries.len() - 1;
        for (i, e) in entries.iter().enumerate().filter(|(_, e)| e.token != 0) {
            longest = longest.max(i.wrapping_sub(home(e.token, entries.len())) & mask);
        }
        assert!(longest < 64, "longest probe {longest}");
    }
}
