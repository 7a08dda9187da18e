//! Retry schedules and the durations they are written in.

use rand::Rng;
use std::time::Duration;

/// Parses `250ms`, `5s`, `5m`, `2h`, `1d` (a bare number is seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration: write e.g. 500ms, 5s, 5m, 2h or 1d"))?;
    let secs = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        "d" => value * 86_400.0,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?}: use ms, s, m, h or d"
            ))
        }
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("{text:?} is not a duration"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// When each attempt of a delivery is made, counted from the previous one.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrySchedule {
    /// `steps[0]` is the wait before the first attempt (normally zero), `steps[n]` the wait
    /// after the `n`th failed attempt. When the steps run out the delivery is dead.
    pub steps: Vec<Duration>,
    /// Each wait is stretched or shrunk at random by up to this fraction (0.2 = ±20 %).
    pub jitter: f64,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        RetrySchedule::parse("0s,5s,5m,30m,2h,5h,10h,10h").expect("the default schedule parses")
    }
}

impl RetrySchedule {
    /// Parses a comma-separated list of durations, e.g. `0s,5s,5m`.
    pub fn parse(text: &str) -> Result<RetrySchedule, String> {
        let steps = text
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(parse_duration)
            .collect::<Result<Vec<_>, _>>()?;
        if steps.is_empty() {
            return Err("a retry schedule needs at least one step".into());
        }
        Ok(RetrySchedule { steps, jitter: 0.2 })
    }

    /// The wait before the next attempt, after `attempts_made` attempts failed; `None` when the
    /// schedule has run out.
    pub fn wait_after(&self, attempts_made: u32) -> Option<Duration> {
        let step = *self.steps.get(attempts_made as usize)?;
        if step.is_zero() || self.jitter <= 0.0 {
            return Some(step);
        }
        let factor = 1.0 + rand::rng().random_range(-self.jitter..=self.jitter);
        Some(step.mul_f64(factor))
    }

    /// How many attempts the schedule allows in all.
    pub fn attempts(&self) -> usize {
        self.steps.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn schedule_runs_out_and_jitters_within_bounds() {
        let s = RetrySchedule::parse("0s,10s,1m").unwrap();
        assert_eq!(s.wait_after(0), Some(Duration::ZERO));
        let w = s.wait_after(1).unwrap();
        assert!(
            w >= Duration::from_secs(8) && w <= Duration::from_secs(12),
            "{w:?}"
        );
        assert!(s.wait_after(3).is_none());
        assert_eq!(RetrySchedule::default().attempts(), 8);
    }
}
