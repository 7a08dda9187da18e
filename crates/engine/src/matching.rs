//! Listener matching: which listeners an event goes to.
//!
//! A listener matches when it has not expired, the event concerns its extension (for
//! extension-level listeners), any one of its subscriptions matches (every tag of that
//! subscription is on the event) and every one of its filters passes. Subscriptions are
//! indexed by one of their tags, so the cost per event grows with the listeners that share a
//! tag with it, not with all listeners of the account.

use crate::schedule::WeeklySchedule;
use jiff::Timestamp;
use std::collections::HashMap;
use switchboard_model::{normalize_number, Dialect, Event};

/// A `%`-wildcard pattern over a normalized number (`+1555%`, `%1234`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberPattern {
    parts: Vec<String>,
    anchored_start: bool,
    anchored_end: bool,
}

impl NumberPattern {
    pub fn parse(pattern: &str) -> NumberPattern {
        let trimmed = pattern.trim();
        NumberPattern {
            parts: trimmed
                .split('%')
                .filter(|p| !p.is_empty())
                .map(normalize_number)
                .collect(),
            anchored_start: !trimmed.starts_with('%'),
            anchored_end: !trimmed.ends_with('%'),
        }
    }

    pub fn matches(&self, number: &str) -> bool {
        let mut rest = number;
        let count = self.parts.len();
        for (i, part) in self.parts.iter().enumerate() {
            let first = i == 0;
            let last = i + 1 == count;
            if first && self.anchored_start {
                match rest.strip_prefix(part.as_str()) {
                    Some(r) => rest = r,
                    None => return false,
                }
                if last && self.anchored_end {
                    return rest.is_empty();
                }
                continue;
            }
            if last && self.anchored_end {
                return rest.ends_with(part.as_str());
            }
            match rest.find(part.as_str()) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
        if count == 0 {
            // A pattern of only `%` matches anything; an empty pattern matches nothing.
            return !(self.anchored_start && self.anchored_end) || number.is_empty();
        }
        !self.anchored_end || rest.is_empty()
    }
}

/// The rule of a `number` filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NumberRule {
    Eq(String),
    In(Vec<String>),
    Match(NumberPattern),
}

impl NumberRule {
    fn accepts(&self, number: &str) -> bool {
        match self {
            NumberRule::Eq(n) => normalize_number(n) == number,
            NumberRule::In(ns) => ns.iter().any(|n| normalize_number(n) == number),
            NumberRule::Match(p) => p.matches(number),
        }
    }
}

/// What one filter tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterRule {
    /// A `number` filter: some party's number matches.
    Number(NumberRule),
    /// A `schedule` filter: the event happened inside the schedule's hours.
    Schedule(WeeklySchedule),
}

/// One filter of a listener; `negate` is Phone.com's `not_logic`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterSpec {
    pub rule: FilterRule,
    pub negate: bool,
}

impl FilterSpec {
    fn passes(&self, numbers: &[String], occurred_at: Timestamp) -> bool {
        let hit = match &self.rule {
            FilterRule::Number(rule) => numbers.iter().any(|n| rule.accepts(n)),
            FilterRule::Schedule(schedule) => schedule.contains(occurred_at),
        };
        hit != self.negate
    }
}

/// Everything matching needs to know of one listener.
#[derive(Debug, Clone)]
pub struct ListenerSpec {
    pub id: i64,
    /// The callback deliveries go to: the listener's own, or its fallback while it is off.
    pub callback_id: i64,
    /// That callback is switched off and has no fallback on: its deliveries are written to
    /// wait until it is switched on again.
    pub waits: bool,
    /// That callback's `rate-limit`: at most `.0` events per `.1` seconds.
    pub rate_limit: Option<(u64, u64)>,
    pub extension_id: Option<i64>,
    pub dialect: Dialect,
    pub expires_at: Option<Timestamp>,
    /// Each subscription's tags.
    pub subscriptions: Vec<Vec<String>>,
    pub filters: Vec<FilterSpec>,
}

/// The listeners of one account, indexed by subscription tag.
#[derive(Debug, Default, Clone)]
pub struct ListenerIndex {
    listeners: Vec<ListenerSpec>,
    by_tag: HashMap<String, Vec<(usize, usize)>>,
}

/// Tags that nearly every event of its family carries: a poor key for the index.
const COMMON: &[&str] = &["call", "inbound", "outbound", "first-leg", "not-first-leg"];

impl ListenerIndex {
    pub fn build(listeners: Vec<ListenerSpec>) -> ListenerIndex {
        let mut by_tag: HashMap<String, Vec<(usize, usize)>> = HashMap::new();
        for (li, listener) in listeners.iter().enumerate() {
            for (si, tags) in listener.subscriptions.iter().enumerate() {
                let key = tags
                    .iter()
                    .find(|t| !COMMON.contains(&t.as_str()))
                    .or_else(|| tags.first());
                if let Some(key) = key {
                    by_tag.entry(key.clone()).or_default().push((li, si));
                }
            }
        }
        ListenerIndex { listeners, by_tag }
    }

    pub fn len(&self) -> usize {
        self.listeners.len()
    }

    pub fn is_empty(&self) -> bool {
        self.listeners.is_empty()
    }

    /// The listeners the event goes to, each once, in listener order.
    pub fn matching(&self, event: &Event, now: Timestamp) -> Vec<&ListenerSpec> {
        let mut hits: Vec<usize> = Vec::new();
        for tag in &event.tags {
            let Some(entries) = self.by_tag.get(tag) else {
                continue;
            };
            for &(li, si) in entries {
                let wanted = &self.listeners[li].subscriptions[si];
                if wanted.iter().all(|t| event.tags.contains(t)) {
                    hits.push(li);
                }
            }
        }
        if hits.is_empty() {
            return Vec::new();
        }
        // A listener whose several subscriptions match is one hit.
        hits.sort_unstable();
        hits.dedup();
        let parties = event.parties();
        let numbers: Vec<String> = parties
            .iter()
            .filter_map(|p| p.number.as_deref())
            .map(normalize_number)
            .collect();
        hits.into_iter()
            .map(|li| &self.listeners[li])
            .filter(|l| l.expires_at.is_none_or(|at| at > now))
            .filter(|l| match l.extension_id {
                None => true,
                Some(ext) => {
                    let ext = ext.to_string();
                    parties.iter().any(|p| p.extension_id_is(&ext))
                }
            })
            .filter(|l| {
                l.filters
                    .iter()
                    .all(|f| f.passes(&numbers, event.fact.occurred_at))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        let p = NumberPattern::parse("+1555%");
        assert!(p.matches("+15551234567"));
        assert!(!p.matches("+14441234567"));
        let p = NumberPattern::parse("%4567");
        assert!(p.matches("+15551234567"));
        assert!(!p.matches("+15551234568"));
        let p = NumberPattern::parse("+1%12%67");
        assert!(p.matches("+15551234567"));
        assert!(!p.matches("+15559994567"));
        let p = NumberPattern::parse("+15551234567");
        assert!(p.matches("+15551234567"));
        assert!(!p.matches("+155512345678"));
        assert!(NumberPattern::parse("%").matches("+1"));
        assert!(NumberPattern::parse("%555%").matches("+15551"));
    }
}
