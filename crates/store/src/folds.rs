//! The folds of active calls, kept in the writer's memory.
//!
//! A call's fold is what its record is computed from; with the fold at hand, an event that
//! comes in order costs one `apply` instead of a read and parse. The cache holds only what
//! the committed (or about to commit) tables already say, so losing it loses nothing: a call
//! that is not in it is folded again from its events. What a job touched is forgotten if the
//! job is rolled back, and everything is forgotten if a commit fails.

use std::collections::HashMap;
use switchboard_engine::calls::CallFold;

/// How many calls' folds are kept by default. A fold takes about 6 KiB of memory, so the
/// default stays near 100 MiB at most; calls beyond it are folded from their events again.
pub const DEFAULT_CAPACITY: usize = 16_384;

pub(crate) struct FoldCache {
    folds: HashMap<String, (CallFold, u64)>,
    capacity: usize,
    tick: u64,
    /// Calls whose fold changed in the running job.
    touched: Vec<String>,
}

impl FoldCache {
    pub(crate) fn new(capacity: usize) -> Self {
        FoldCache {
            folds: HashMap::new(),
            capacity,
            tick: 0,
            touched: Vec::new(),
        }
    }

    /// Takes a call's fold out of the cache (to update it and put it back).
    pub(crate) fn take(&mut self, call_id: &str) -> Option<CallFold> {
        self.folds.remove(call_id).map(|(fold, _)| fold)
    }

    /// Keeps a call's fold as the running job left it.
    pub(crate) fn put(&mut self, call_id: &str, fold: CallFold) {
        if self.capacity == 0 {
            return;
        }
        self.tick += 1;
        self.touched.push(call_id.to_string());
        self.folds.insert(call_id.to_string(), (fold, self.tick));
        if self.folds.len() > self.capacity {
            self.shed();
        }
    }

    /// Forgets a call (it was merged into another).
    pub(crate) fn forget(&mut self, call_id: &str) {
        self.folds.remove(call_id);
    }

    /// Drops the least recently used half, so eviction costs O(1) per insert on average.
    fn shed(&mut self) {
        let keep = self.capacity / 2;
        if keep == 0 {
            self.folds.clear();
            return;
        }
        let mut ticks: Vec<u64> = self.folds.values().map(|(_, t)| *t).collect();
        let cut_at = ticks.len() - keep;
        let (_, cut, _) = ticks.select_nth_unstable(cut_at);
        let cut = *cut;
        self.folds.retain(|_, (_, t)| *t >= cut);
    }

    /// The running job committed to its savepoint: its folds stand.
    pub(crate) fn job_done(&mut self) {
        self.touched.clear();
    }

    /// The running job was rolled back: what it folded is forgotten.
    pub(crate) fn job_undone(&mut self) {
        for id in std::mem::take(&mut self.touched) {
            self.folds.remove(&id);
        }
    }

    /// The transaction did not commit: nothing in the cache can be trusted.
    pub(crate) fn clear(&mut self) {
        self.folds.clear();
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
    fn sheds_the_least_recently_used_half_when_full() {
        let mut cache = FoldCache::new(4);
        for id in ["a", "b", "c", "d"] {
            cache.put(id, CallFold::default());
        }
        // Using "a" again makes it the most recent.
        let a = cache.take("a").unwrap();
        cache.put("a", a);
        cache.put("e", CallFold::default());
        assert_eq!(cache.len(), 2);
        assert!(cache.take("a").is_some());
        assert!(cache.take("e").is_some());
        assert!(cache.take("b").is_none());
    }

    #[test]
    fn a_cache_of_one_keeps_at_most_one() {
        let mut cache = FoldCache::new(1);
        cache.put("a", CallFold::default());
        cache.put("b", CallFold::default());
        assert!(cache.len() <= 1);
    }

    #[test]
    fn a_rolled_back_job_forgets_what_it_folded() {
        let mut cache = FoldCache::new(8);
        cache.put("kept", CallFold::default());
        cache.job_done();
        cache.put("undone", CallFold::default());
        cache.job_undone();
        assert!(cache.take("kept").is_some());
        assert!(cache.take("undone").is_none());
    }
}
