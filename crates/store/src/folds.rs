//! The folds of active calls, kept in the writer's memory.
//!
//! A call's fold is what its record is computed from; with the fold at hand, an event that
//! comes in order costs one `apply` instead of a read and parse. The cache holds only what
//! the committed (or about to commit) tables already say, so losing it loses nothing: a call
//! that is not in it is folded again from its events. What a job touched is forgotten if the
//! job is rolled back, and everything is forgotten if a commit fails.
//!
//! A call leaves the cache when it is finalized (or merged). When the cache is full, calls
//! not touched for twice its capacity are dropped to make room; if none are that old, the new
//! call is not kept (its events are folded from the table each time) and the calls already
//! kept stay. Evicting the least recently used instead would miss on every event when more
//! calls than the cache holds take turns, as calls in progress at once do.

use std::collections::HashMap;
use switchboard_engine::calls::CallFold;

/// The cache's tables hash with foldhash (seeded per process) rather than std's SipHash: a
/// few lookups by call id and alias are made for every event, and SipHash made them a
/// twentieth of the writer's time.
type Table<V> = HashMap<String, V, foldhash::fast::RandomState>;

/// An active call as the writer keeps it: its fold, the columns of its row that an
/// event's update compares against, so that update needs no read of the row first, and the
/// external ids its events used (as [`alias_key`]s), so the next event with one of them
/// finds the call without a look in `call_aliases`.
#[derive(Debug, Clone, Default)]
pub(crate) struct ActiveCall {
    pub(crate) fold: CallFold,
    pub(crate) row: CallRow,
    pub(crate) aliases: Vec<String>,
    /// How many of `aliases` (the first) the cache lists already: a put lists the rest, so
    /// an event costs the aliases it adds, not all the call's (a call of many legs has an
    /// alias per leg).
    pub(crate) listed: usize,
}

/// An external id of a call as the cache knows it: the account's and the alias.
pub(crate) fn alias_key(account: i64, alias: &str) -> String {
    format!("{account}:{alias}")
}

/// The columns of a call's row that the call's indexes cover, and the digest of the record
/// its last call log said (`calls.emitted_digest`), as the row stands.
#[derive(Debug, Clone, Default)]
pub(crate) struct CallRow {
    pub(crate) state: String,
    pub(crate) started_at: Option<i64>,
    pub(crate) finalize_at: Option<i64>,
    pub(crate) emitted: Option<String>,
    /// The row's rowid, by which an event's update finds a held call's row (`None` only in
    /// the row a finalization writes, which finds it by its id).
    pub(crate) rowid: Option<i64>,
}

/// How many calls' folds are kept by default. A fold of a call in progress takes about
/// 4 KiB of memory (its legs are most of it), so the default stays near 100 MiB at most;
/// calls beyond it are folded from their events again. (Each is boxed: 1.5 KiB of it is
/// inline, and a table of them inline would hold as much again in its empty slots, twice that
/// while it grows.)
pub const DEFAULT_CAPACITY: usize = 24_576;

pub(crate) struct FoldCache {
    folds: Table<(Box<ActiveCall>, u64)>,
    /// The aliases of the calls in `folds` (each call's `aliases`), to the call, as
    /// `call_aliases` says (an alias never moves to another call except by a merge, which
    /// forgets the merged call). An entry counts only while its call is held: a call taken
    /// out to be updated keeps its entries (no churn of strings per event), and one that a
    /// failed job never put back leaves entries that are ignored.
    calls_by_alias: Table<String>,
    /// Entries the running job added: dropped if it is rolled back.
    job_aliases: Vec<String>,
    capacity: usize,
    /// Counts every `put`, kept or not: a fold's age is how many puts ago it was touched.
    tick: u64,
    /// When a full cache may next look for old folds (a look costs a pass over the cache).
    next_look: u64,
    /// Calls whose fold changed in the running job.
    touched: Vec<String>,
}

impl FoldCache {
    pub(crate) fn new(capacity: usize) -> Self {
        FoldCache {
            folds: Table::default(),
            calls_by_alias: Table::default(),
            job_aliases: Vec::new(),
            capacity,
            tick: 0,
            next_look: 0,
            touched: Vec::new(),
        }
    }

    /// Takes a call out of the cache (to update it and put it back).
    pub(crate) fn take(&mut self, call_id: &str) -> Option<Box<ActiveCall>> {
        self.folds.remove(call_id).map(|(call, _)| call)
    }

    /// The call a held call's alias ([`alias_key`]) names.
    pub(crate) fn call_of(&self, key: &str) -> Option<&str> {
        self.calls_by_alias
            .get(key)
            .filter(|call| self.folds.contains_key(call.as_str()))
            .map(String::as_str)
    }

    fn unlist(&mut self, call: &ActiveCall) {
        for key in &call.aliases {
            self.calls_by_alias.remove(key);
        }
    }

    /// A call the cache holds, left in it as it is.
    pub(crate) fn peek(&self, call_id: &str) -> Option<&ActiveCall> {
        self.folds.get(call_id).map(|(call, _)| &**call)
    }

    /// Keeps a call as the running job left it, if there is room.
    pub(crate) fn put(&mut self, call_id: &str, mut call: Box<ActiveCall>) {
        self.tick += 1;
        if self.folds.len() >= self.capacity && !self.make_room() {
            return;
        }
        self.touched.push(call_id.to_string());
        let listed = call.listed.min(call.aliases.len());
        call.listed = call.aliases.len();
        for key in &call.aliases[listed..] {
            if self.calls_by_alias.get(key).map(String::as_str) != Some(call_id) {
                self.calls_by_alias.insert(key.clone(), call_id.to_string());
                self.job_aliases.push(key.clone());
            }
        }
        self.folds.insert(call_id.to_string(), (call, self.tick));
    }

    /// Forgets a call (it was finalized, or merged into another).
    pub(crate) fn forget(&mut self, call_id: &str) {
        if let Some(call) = self.take(call_id) {
            self.unlist(&call);
        }
    }

    /// Drops the folds not touched for twice the capacity; says whether there is room now.
    /// A look that finds none is not repeated for an eighth of the capacity's puts, so a full
    /// cache costs O(1) per put on average.
    fn make_room(&mut self) -> bool {
        if self.capacity == 0 {
            return false;
        }
        if self.tick >= self.next_look {
            let oldest_kept = self.tick.saturating_sub(2 * self.capacity as u64);
            let by_alias = &mut self.calls_by_alias;
            self.folds.retain(|_, (call, t)| {
                let kept = *t > oldest_kept;
                if !kept {
                    for key in &call.aliases {
                        by_alias.remove(key);
                    }
                }
                kept
            });
            self.next_look = self.tick + (self.capacity as u64 / 8).max(1);
        }
        self.folds.len() < self.capacity
    }

    /// The running job committed to its savepoint: its folds stand.
    pub(crate) fn job_done(&mut self) {
        self.touched.clear();
        self.job_aliases.clear();
    }

    /// The running job was rolled back: what it folded is forgotten.
    pub(crate) fn job_undone(&mut self) {
        for key in std::mem::take(&mut self.job_aliases) {
            self.calls_by_alias.remove(&key);
        }
        for id in std::mem::take(&mut self.touched) {
            self.forget(&id);
        }
    }

    /// The transaction did not commit: nothing in the cache can be trusted.
    pub(crate) fn clear(&mut self) {
        self.folds.clear();
        self.calls_by_alias.clear();
        self.job_aliases.clear();
        self.touched.clear();
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.folds.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_cache_keeps_its_calls_until_they_are_old() {
        let mut cache = FoldCache::new(4);
        for id in ["a", "b", "c", "d"] {
            cache.put(id, Box::default());
        }
        // Full: a new call is not kept, the kept ones stay.
        cache.put("e", Box::default());
        assert_eq!(cache.len(), 4);
        assert!(cache.take("e").is_none());
        // "a" is touched again and again; the others grow old (8 puts = twice the capacity).
        let mut a = cache.take("a").unwrap();
        for _ in 0..8 {
            cache.put("a", a);
            a = cache.take("a").unwrap();
        }
        cache.put("a", a);
        cache.put("f", Box::default());
        assert!(cache.take("f").is_some(), "old calls make room");
        assert!(cache.take("a").is_some(), "the busy call stays");
        assert!(cache.take("b").is_none());
    }

    #[test]
    fn calls_taking_turns_beyond_the_capacity_still_hit() {
        // Five calls in turn through a cache of four: four of them are found every round.
        let mut cache = FoldCache::new(4);
        let mut hits = 0;
        for round in 0..10 {
            for id in ["a", "b", "c", "d", "e"] {
                let fold = cache.take(id);
                if round > 0 && fold.is_some() {
                    hits += 1;
                }
                cache.put(id, fold.unwrap_or_default());
            }
        }
        assert_eq!(hits, 9 * 4);
    }

    #[test]
    fn a_cache_of_one_keeps_at_most_one() {
        let mut cache = FoldCache::new(1);
        cache.put("a", Box::default());
        cache.put("b", Box::default());
        assert_eq!(cache.len(), 1);
        let none = FoldCache::new(0).take("a");
        assert!(none.is_none());
    }

    #[test]
    fn a_forgotten_call_leaves_room() {
        let mut cache = FoldCache::new(2);
        cache.put("a", Box::default());
        cache.put("b", Box::default());
        cache.forget("a");
        cache.put("c", Box::default());
        assert!(cache.take("c").is_some());
    }

    #[test]
    fn a_rolled_back_job_forgets_what_it_folded() {
        let mut cache = FoldCache::new(8);
        cache.put("kept", Box::default());
        cache.job_done();
        cache.put("undone", Box::default());
        cache.job_undone();
        assert!(cache.take("kept").is_some());
        assert!(cache.take("undone").is_none());
    }

    fn known_by(aliases: &[&str]) -> Box<ActiveCall> {
        Box::new(ActiveCall {
            aliases: aliases.iter().map(|a| alias_key(1, a)).collect(),
            ..ActiveCall::default()
        })
    }

    #[test]
    fn a_held_call_answers_for_its_aliases_and_only_while_held() {
        let mut cache = FoldCache::new(2);
        cache.put("c1", known_by(&["x:1", "x:2"]));
        cache.put("c2", known_by(&["x:3"]));
        assert_eq!(cache.call_of(&alias_key(1, "x:2")), Some("c1"));
        assert_eq!(
            cache.call_of(&alias_key(2, "x:2")),
            None,
            "another account's"
        );
        // Taken out to be updated: not answered for until it is put back.
        let c1 = cache.take("c1").unwrap();
        assert_eq!(cache.call_of(&alias_key(1, "x:1")), None);
        cache.put("c1", c1);
        assert_eq!(cache.call_of(&alias_key(1, "x:1")), Some("c1"));
        // Forgotten (finalized or merged): its aliases go with it.
        cache.forget("c1");
        assert_eq!(cache.call_of(&alias_key(1, "x:1")), None);
        assert_eq!(cache.call_of(&alias_key(1, "x:3")), Some("c2"));
        // Not kept (the cache is full of recent calls): not answered for.
        cache.put("c3", known_by(&["x:4"]));
        cache.put("c4", known_by(&["x:5"]));
        assert_eq!(cache.call_of(&alias_key(1, "x:5")), None);
        // Dropped as old, rolled back, or the cache cleared: not answered for.
        cache.job_done();
        for _ in 0..4 {
            let c3 = cache.take("c3").unwrap();
            cache.put("c3", c3);
        }
        cache.put("c5", known_by(&["x:6"]));
        assert_eq!(cache.call_of(&alias_key(1, "x:3")), None, "c2 grew old");
        assert_eq!(cache.call_of(&alias_key(1, "x:6")), Some("c5"));
        cache.job_undone();
        assert_eq!(cache.call_of(&alias_key(1, "x:6")), None);
        assert_eq!(
            cache.call_of(&alias_key(1, "x:4")),
            None,
            "c3 was touched too"
        );
        cache.put("c6", known_by(&["x:7"]));
        cache.clear();
        assert_eq!(cache.call_of(&alias_key(1, "x:7")), None);
    }

    #[test]
    fn an_alias_a_rolled_back_job_added_is_not_answered_for_later() {
        let mut cache = FoldCache::new(8);
        cache.put("c1", known_by(&["x:1"]));
        cache.job_done();
        // A job adds an alias to the call, takes the call out again and fails.
        let mut c1 = cache.take("c1").unwrap();
        c1.aliases.push(alias_key(1, "x:2"));
        cache.put("c1", c1);
        let c1 = cache.take("c1").unwrap();
        cache.job_undone();
        // The call comes back (folded again) as the committed tables have it.
        drop(c1);
        cache.put("c1", known_by(&["x:1"]));
        assert_eq!(cache.call_of(&alias_key(1, "x:1")), Some("c1"));
        assert_eq!(cache.call_of(&alias_key(1, "x:2")), None);
    }
}
