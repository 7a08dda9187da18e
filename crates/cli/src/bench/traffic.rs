//! Traffic: calls of several shapes, as correct event sequences in any dialect.
//!
//! Each call is built as canonical events and encoded by the dialect's own encoder, so what
//! the harness sends is exactly what that vendor sends for such a call (events a dialect has
//! no counterpart for are simply not sent, as the vendor would not send them).

use switchboard_dialects::{encode, Recipient};
use switchboard_model::{
    tags, AccountId, Details, Dialect, Direction, Event, EventKind, Fact, LegFacts, LegResult,
    LegSnapshot, Party, PartyKind, Source,
};

/// The shapes of call generated, in turn.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// The reference's rollover: a device that does not answer, then one that does.
    Rollover,
    /// Two devices ring at once; one answers.
    RingGroup,
    /// The device is busy; nobody else answers.
    Busy,
    /// Nobody answers: a missed call.
    Missed,
}

const SHAPES: [Shape; 4] = [
    Shape::Rollover,
    Shape::RingGroup,
    Shape::Busy,
    Shape::Missed,
];

fn number(n: u64) -> Party {
    let mut p = Party::new(PartyKind::Number);
    let text = format!("+1555{n:07}");
    p.id = Some(text.clone());
    p.number = Some(text);
    p
}

fn device(ext: u64) -> Party {
    let mut p = Party::new(PartyKind::Device);
    p.id = Some(format!("{}", 700_000 + ext));
    p.extension = Some(ext.to_string());
    p.extension_id = Some(format!("{}", 500_000 + ext));
    p
}

struct CallBuilder {
    call: String,
    caller: Party,
    dialled: Party,
    start: jiff::Timestamp,
    events: Vec<Event>,
}

impl CallBuilder {
    fn leg(
        &mut self,
        leg: &str,
        to: &Party,
        kind: EventKind,
        result: Option<LegResult>,
        at_s: i64,
    ) {
        let is_first = leg == self.call;
        let fact = Fact {
            time_estimated: false,
            source_key: format!("{}:{}:{}", self.call, leg, kind.as_str()),
            kind,
            occurred_at: self
                .start
                .checked_add(jiff::SignedDuration::from_secs(at_s))
                .expect("time"),
            call_id: Some(self.call.clone()),
            leg_id: Some(leg.to_string()),
            agent_id: None,
            details: Details::Leg(Box::new(LegFacts {
                direction: Some(Direction::Inbound),
                leg: LegSnapshot {
                    id: Some(leg.to_string()),
                    is_first: Some(is_first),
                    from: Some(self.caller.clone()),
                    to: Some(to.clone()),
                    result,
                },
                first_leg: None,
                parent_leg: None,
                hangup: None,
            })),
            vendor: Default::default(),
            raw: serde_json::value::to_raw_value(&serde_json::json!({})).expect("JSON"),
        };
        self.events.push(Event {
            silent: false,
            id: uuid::Uuid::now_v7(),
            account: AccountId(0),
            source: Source {
                dialect: Dialect::Canonical,
                name: None,
            },
            received_at: self.start,
            tags: tags::derive(&fact),
            fact,
        });
    }
}

/// The events of call `n`, in `dialect`, in the order a source sends them. With
/// `in_progress`, only the first events (the call rings and stays up).
pub fn call(n: u64, dialect: Dialect, in_progress: bool) -> Vec<Vec<u8>> {
    let call = format!("bench-{n}-{}", uuid::Uuid::now_v7().simple());
    let first = call.clone();
    let (a, b) = (format!("{call}-a"), format!("{call}-b"));
    let mut c = CallBuilder {
        call,
        caller: number(n),
        dialled: number(9_000_000 + n % 1000),
        start: jiff::Timestamp::now(),
        events: Vec::new(),
    };
    let dialled = c.dialled.clone();
    let (da, db) = (device(100 + n % 50), device(200 + n % 50));
    use EventKind::*;
    c.leg(&first, &dialled, LegCreated, None, 0);
    c.leg(&first, &dialled, LegRinging, None, 0);
    match SHAPES[(n % 4) as usize] {
        Shape::Rollover => {
            c.leg(&a, &da, LegCreated, None, 1);
            c.leg(&a, &da, LegRinging, None, 1);
            if !in_progress {
                c.leg(&a, &da, LegEnded, Some(LegResult::Cancelled), 21);
                c.leg(&b, &db, LegCreated, None, 21);
                c.leg(&b, &db, LegRinging, None, 22);
                c.leg(&b, &db, LegAnswered, None, 25);
                c.leg(&first, &dialled, LegAnswered, None, 25);
                c.leg(&b, &db, LegEnded, Some(LegResult::Answered), 85);
                c.leg(&first, &dialled, LegEnded, Some(LegResult::Answered), 86);
            }
        }
        Shape::RingGroup => {
            c.leg(&a, &da, LegRinging, None, 1);
            c.leg(&b, &db, LegRinging, None, 1);
            if !in_progress {
                c.leg(&b, &db, LegAnswered, None, 6);
                c.leg(&a, &da, LegEnded, Some(LegResult::Cancelled), 6);
                c.leg(&first, &dialled, LegAnswered, None, 6);
                c.leg(&b, &db, LegEnded, Some(LegResult::Answered), 40);
                c.leg(&first, &dialled, LegEnded, Some(LegResult::Answered), 40);
            }
        }
        Shape::Busy => {
            c.leg(&a, &da, LegRinging, None, 1);
            if !in_progress {
                c.leg(&a, &da, LegEnded, Some(LegResult::Busy), 2);
                c.leg(&first, &dialled, LegEnded, Some(LegResult::Cancelled), 3);
            }
        }
        Shape::Missed => {
            c.leg(&a, &da, LegRinging, None, 1);
            if !in_progress {
                c.leg(&a, &da, LegEnded, Some(LegResult::NoAnswer), 30);
                c.leg(&first, &dialled, LegEnded, Some(LegResult::Cancelled), 30);
            }
        }
    }
    let to = Recipient::default();
    c.events
        .iter()
        .filter_map(|e| encode(dialect, e, &to))
        .collect()
}

/// One call of `events` events, in `dialect`: a first leg, then ever more devices each ringing
/// and giving up, ten events to a second, all naming the same call. The call that a flooding
/// tenant sends (`--one-call`): every event grows it.
pub fn one_call(events: usize, dialect: Dialect) -> Vec<Vec<u8>> {
    let call = format!("flood-{}", uuid::Uuid::now_v7().simple());
    let first = call.clone();
    let start = jiff::Timestamp::now()
        .checked_sub(jiff::SignedDuration::from_secs(events as i64 / 10 + 60))
        .expect("time");
    let mut c = CallBuilder {
        call,
        caller: number(1),
        dialled: number(9_000_000),
        start,
        events: Vec::with_capacity(events),
    };
    let dialled = c.dialled.clone();
    c.leg(&first, &dialled, EventKind::LegCreated, None, 0);
    let mut n = 0u64;
    while c.events.len() < events {
        let leg = format!("{first}-{n}");
        let to = device(100 + n % 1000);
        let at = c.events.len() as i64 / 10;
        c.leg(&leg, &to, EventKind::LegRinging, None, at);
        c.leg(
            &leg,
            &to,
            EventKind::LegEnded,
            Some(LegResult::NoAnswer),
            at,
        );
        n += 1;
    }
    c.events.truncate(events);
    let to = Recipient::default();
    c.events
        .iter()
        .filter_map(|e| encode(dialect, e, &to))
        .collect()
}
