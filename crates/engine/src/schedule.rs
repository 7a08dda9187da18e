//! Weekly schedules: the hours, in a time zone, that a `schedule` filter lets events through.
//!
//! A schedule is a time zone and a list of ranges, each naming the weekdays it starts on and
//! its local start and end (`"09:00"`–`"17:00"`). A range whose end is not after its start
//! runs past midnight into the next day (`"22:00"`–`"06:00"` on `fri` covers Friday night
//! and early Saturday); `"24:00"` ends a range at midnight. The start is inside a range, the
//! end is not. A local time that a clock change skips or repeats is judged by the wall clock
//! the zone shows at that instant, as a person in that zone would read it.

use jiff::civil::Weekday;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde_json::Value;

const MINUTES_PER_DAY: u16 = 24 * 60;

/// The day names a range may use, Monday first; also accepted in full (`monday`).
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const FULL_DAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// A schedule that could not be read: the field at fault (relative to the schedule's own
/// body) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ScheduleError {
    pub field: String,
    pub message: String,
}

fn fault(field: impl Into<String>, message: impl Into<String>) -> ScheduleError {
    ScheduleError {
        field: field.into(),
        message: message.into(),
    }
}

/// One weekly range.
#[derive(Debug, Clone, PartialEq, Eq)]
struct WeeklyRange {
    /// Indexed Monday first: the days the range starts on.
    days: [bool; 7],
    /// Minutes after local midnight.
    from: u16,
    to: u16,
}

impl WeeklyRange {
    fn overnight(&self) -> bool {
        self.to <= self.from
    }

    fn covers(&self, day: usize, minute: u16) -> bool {
        let yesterday = (day + 6) % 7;
        if self.overnight() {
            (self.days[day] && minute >= self.from) || (self.days[yesterday] && minute < self.to)
        } else {
            self.days[day] && minute >= self.from && minute < self.to
        }
    }
}

/// A weekly schedule in a time zone.
#[derive(Debug, Clone)]
pub struct WeeklySchedule {
    zone: TimeZone,
    ranges: Vec<WeeklyRange>,
}

impl PartialEq for WeeklySchedule {
    fn eq(&self, other: &WeeklySchedule) -> bool {
        self.zone.iana_name() == other.zone.iana_name() && self.ranges == other.ranges
    }
}

impl Eq for WeeklySchedule {}

/// `"HH:MM"` as minutes after midnight; `"24:00"` only where `end` allows it.
fn clock(text: &str, end: bool) -> Option<u16> {
    let (h, m) = text.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let h: u16 = h.parse().ok()?;
    let m: u16 = m.parse().ok()?;
    match (h, m) {
        (24, 0) if end => Some(MINUTES_PER_DAY),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

fn day_index(name: &str) -> Option<usize> {
    let lower = name.to_ascii_lowercase();
    DAYS.iter()
        .position(|d| *d == lower)
        .or_else(|| FULL_DAYS.iter().position(|d| *d == lower))
}

fn weekday_index(day: Weekday) -> usize {
    usize::try_from(day.to_monday_zero_offset()).unwrap_or(0)
}

impl WeeklySchedule {
    /// Reads a schedule from its `timezone` (an IANA name) and `rules` (an array of
    /// `{"days": [...], "from": "HH:MM", "to": "HH:MM"}`).
    pub fn parse(timezone: &Value, rules: &Value) -> Result<WeeklySchedule, ScheduleError> {
        let Some(name) = timezone.as_str() else {
            return Err(fault(
                "timezone",
                "expected an IANA time zone name such as \"America/New_York\"",
            ));
        };
        let zone = TimeZone::get(name).map_err(|_| {
            fault(
                "timezone",
                format!(
                    "unknown time zone {name:?}: expected an IANA name such as \"Europe/Berlin\""
                ),
            )
        })?;
        let Some(list) = rules.as_array() else {
            return Err(fault("rules", "expected an array of {days, from, to}"));
        };
        if list.len() > 100 {
            return Err(fault("rules", "at most 100 rules"));
        }
        let mut ranges = Vec::with_capacity(list.len());
        for (i, rule) in list.iter().enumerate() {
            let at = |f: &str| format!("rules[{i}].{f}");
            let Some(rule) = rule.as_object() else {
                return Err(fault(
                    format!("rules[{i}]"),
                    "expected an object {days, from, to}",
                ));
            };
            let Some(names) = rule
                .get("days")
                .and_then(Value::as_array)
                .filter(|d| !d.is_empty())
            else {
                return Err(fault(
                    at("days"),
                    "expected a non-empty array of days: mon, tue, wed, thu, fri, sat, sun",
                ));
            };
            let mut days = [false; 7];
            for (j, name) in names.iter().enumerate() {
                match name.as_str().and_then(day_index) {
                    Some(d) => days[d] = true,
                    None => {
                        return Err(fault(
                            format!("rules[{i}].days[{j}]"),
                            "expected one of mon, tue, wed, thu, fri, sat, sun",
                        ))
                    }
                }
            }
            let from = rule
                .get("from")
                .and_then(Value::as_str)
                .and_then(|t| clock(t, false))
                .ok_or_else(|| {
                    fault(
                        at("from"),
                        "expected a local time \"HH:MM\" (00:00 to 23:59)",
                    )
                })?;
            let to = rule
                .get("to")
                .and_then(Value::as_str)
                .and_then(|t| clock(t, true))
                .ok_or_else(|| {
                    fault(at("to"), "expected a local time \"HH:MM\" (00:00 to 24:00)")
                })?;
            if from == to {
                return Err(fault(
                    at("to"),
                    "a range must not be empty: for a whole day write \"00:00\" to \"24:00\"",
                ));
            }
            ranges.push(WeeklyRange { days, from, to });
        }
        Ok(WeeklySchedule { zone, ranges })
    }

    /// Whether the instant falls inside the schedule, read on the zone's wall clock.
    pub fn contains(&self, at: Timestamp) -> bool {
        let local = at.to_zoned(self.zone.clone());
        let day = weekday_index(local.weekday());
        let minute = u16::try_from(local.hour()).unwrap_or(0) * 60
            + u16::try_from(local.minute()).unwrap_or(0);
        self.ranges.iter().any(|r| r.covers(day, minute))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(text: &str) -> Timestamp {
        text.parse().expect("a timestamp")
    }

    fn office() -> WeeklySchedule {
        WeeklySchedule::parse(
            &json!("America/New_York"),
            &json!([{"days": ["mon", "tue", "wed", "thu", "friday"], "from": "09:00", "to": "17:00"}]),
        )
        .expect("parses")
    }

    #[test]
    fn office_hours_in_the_zone_not_in_utc() {
        let s = office();
        // Monday 2026-03-02, EST (UTC-5): 09:00 local is 14:00 UTC.
        assert!(!s.contains(at("2026-03-02T13:59:00Z")));
        assert!(s.contains(at("2026-03-02T14:00:00Z")));
        assert!(s.contains(at("2026-03-02T21:59:59Z")));
        assert!(!s.contains(at("2026-03-02T22:00:00Z")));
        // Saturday is closed.
        assert!(!s.contains(at("2026-03-07T15:00:00Z")));
        // Summer time (EDT, UTC-4): 09:00 local is 13:00 UTC.
        assert!(s.contains(at("2026-07-06T13:00:00Z")));
        assert!(!s.contains(at("2026-07-06T12:59:00Z")));
    }

    #[test]
    fn overnight_ranges_run_into_the_next_day() {
        let s = WeeklySchedule::parse(
            &json!("UTC"),
            &json!([{"days": ["fri"], "from": "22:00", "to": "06:00"}]),
        )
        .unwrap();
        assert!(s.contains(at("2026-03-06T23:30:00Z")), "Friday night");
        assert!(s.contains(at("2026-03-07T05:59:00Z")), "early Saturday");
        assert!(!s.contains(at("2026-03-07T06:00:00Z")));
        assert!(!s.contains(at("2026-03-05T23:30:00Z")), "Thursday night");
        let whole = WeeklySchedule::parse(
            &json!("UTC"),
            &json!([{"days": ["sun"], "from": "00:00", "to": "24:00"}]),
        )
        .unwrap();
        assert!(whole.contains(at("2026-03-08T23:59:59Z")));
        assert!(!whole.contains(at("2026-03-09T00:00:00Z")));
    }

    #[test]
    fn faults_name_the_field() {
        let bad = |tz: Value, rules: Value| WeeklySchedule::parse(&tz, &rules).unwrap_err().field;
        assert_eq!(bad(json!("Mars/Olympus"), json!([])), "timezone");
        assert_eq!(bad(json!("UTC"), json!({})), "rules");
        assert_eq!(
            bad(
                json!("UTC"),
                json!([{"days": ["moonday"], "from": "09:00", "to": "10:00"}])
            ),
            "rules[0].days[0]"
        );
        assert_eq!(
            bad(
                json!("UTC"),
                json!([{"days": ["mon"], "from": "9", "to": "10:00"}])
            ),
            "rules[0].from"
        );
        assert_eq!(
            bad(
                json!("UTC"),
                json!([{"days": ["mon"], "from": "24:00", "to": "10:00"}])
            ),
            "rules[0].from"
        );
        assert_eq!(
            bad(
                json!("UTC"),
                json!([{"days": ["mon"], "from": "10:00", "to": "10:00"}])
            ),
            "rules[0].to"
        );
    }
}
