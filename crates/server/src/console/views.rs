//! The console's views: HTML from what the query API shows (a call as `/calls/{id}` shows
//! it), escaped by maud. Times are written as `<time datetime>` in UTC; the page shows them
//! in the browser's zone, with UTC on hover.

use crate::routes::calls::{view as call_view, DIRECTIONS, DISPOSITIONS};
use maud::{html, Markup};
use serde_json::Value;
use std::collections::HashMap;
use switchboard_model::Event;
use switchboard_store::{
    AgentRow, CallDeliveries, CallbackHealth, DeliveryPage, DeliveryStatus, StoredCall,
};

/// A party as a person reads it: its name and number, or its extension.
fn party(v: &Value) -> String {
    let text = |k: &str| v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    let number = text("number").or(text("extension").or(text("id")));
    match (text("display"), number) {
        (Some(name), Some(n)) if name != n => format!("{name} ({n})"),
        (Some(name), _) => name.to_string(),
        (None, Some(n)) => n.to_string(),
        (None, None) => "—".to_string(),
    }
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn time(v: &Value) -> Markup {
    match v.as_str() {
        Some(t) => html! { time datetime=(t) title=(format!("{t} (UTC)")) { (t) } },
        None => html! { "—" },
    }
}

fn duration(ms: &Value) -> String {
    match ms.as_i64() {
        Some(ms) => {
            let s = ms / 1000;
            format!("{}:{:02}", s / 60, s % 60)
        }
        None => "—".into(),
    }
}

fn call_link(v: &Value) -> Markup {
    let id = text(v, "id");
    html! { a href=(format!("#/calls/{id}")) { "Open" span.sr { " call " (id) } } }
}

/// Calls in progress: who called whom, who rings, who answered, since when; and, above them,
/// any callback that is failing or switched off.
pub fn live(calls: &[StoredCall], callbacks: &[(Value, CallbackHealth)]) -> Markup {
    let views: Vec<Value> = calls.iter().map(call_view).collect();
    let troubled: Vec<&(Value, CallbackHealth)> = callbacks
        .iter()
        .filter(|(v, h)| trouble(v, h).is_some())
        .collect();
    html! {
        @if !troubled.is_empty() {
            section.trouble role="alert" data-testid="callback-trouble" {
                h2 { "Callbacks that need you" }
                ul {
                    @for (v, h) in &troubled {
                        li data-callback=(h.callback_id) {
                            a href=(format!("#/deliveries/{}", h.callback_id)) { (callback_name(v)) }
                            ": " (trouble(v, h).unwrap_or_default())
                        }
                    }
                }
            }
        }
        h2 { "Live calls " span.count data-testid="live-count" { (views.len()) } }
        @if views.is_empty() {
            p.empty { "No call is in progress." }
        } @else {
            table data-testid="live-calls" {
                caption.sr { "Calls in progress" }
                thead { tr { th { "Since" } th { "Direction" } th { "From" } th { "To" } th { "State" } th { "Ringing" } th { "Answered by" } th { span.sr { "Details" } } } }
                tbody {
                    @for v in &views {
                        @let ringing: Vec<String> = v["legs"].as_array().into_iter().flatten()
                            .filter(|l| l["state"] == "ringing")
                            .map(|l| party(&l["to"])).collect();
                        tr data-call=(text(v, "id")) data-state=(text(v, "state")) {
                            td { (time(&v["started_at"])) }
                            td { (text(v, "direction")) }
                            td { (party(&v["from"])) }
                            td { (party(&v["to"])) }
                            td.state { (text(v, "state")) }
                            td { (ringing.join(", ")) }
                            td { @if v["answered_by"].is_object() { (party(&v["answered_by"])) } }
                            td { (call_link(v)) }
                        }
                    }
                }
            }
        }
    }
}

fn select(name: &str, label: &str, options: &[&str], q: &HashMap<String, String>) -> Markup {
    let current = q.get(name).map(String::as_str).unwrap_or("");
    html! {
        label for=(format!("f-{name}")) { (label) }
        select id=(format!("f-{name}")) name=(name) {
            option value="" selected[current.is_empty()] { "any" }
            @for o in options { option value=(o) selected[current == *o] { (o) } }
        }
    }
}

fn input(name: &str, label: &str, kind: &str, q: &HashMap<String, String>) -> Markup {
    html! {
        label for=(format!("f-{name}")) { (label) }
        input id=(format!("f-{name}")) name=(name) type=(kind) value=(q.get(name).map(String::as_str).unwrap_or(""));
    }
}

/// The history: the query API's filters, a page of calls, the next page, the export.
pub fn history(
    q: &HashMap<String, String>,
    total: i64,
    calls: &[StoredCall],
    next: Option<&str>,
) -> Markup {
    let views: Vec<Value> = calls.iter().map(call_view).collect();
    let missed = q.get("missed").map(String::as_str).unwrap_or("");
    html! {
        h2 { "History" }
        form #filters data-testid="filters" aria-label="Filter calls" {
            (input("number", "Number", "search", q))
            (select("direction", "Direction", DIRECTIONS, q))
            (select("disposition", "Disposition", DISPOSITIONS, q))
            label for="f-missed" { "Missed" }
            select id="f-missed" name="missed" {
                option value="" selected[missed.is_empty()] { "any" }
                option value="true" selected[missed == "true"] { "missed only" }
                option value="false" selected[missed == "false"] { "not missed" }
            }
            (input("agent", "Agent", "search", q))
            (input("started_after", "Started after", "datetime-local", q))
            (input("started_before", "Started before", "datetime-local", q))
            button type="submit" { "Filter" }
            button type="button" data-action="export" { "Export CSV" }
        }
        p { span data-testid="history-total" { (total) } @if total == 1 { " call." } @else { " calls." } }
        @if views.is_empty() {
            p.empty { "No call matches." }
        } @else {
            table data-testid="history" {
                caption.sr { "Calls, newest first" }
                thead { tr { th { "Started" } th { "Direction" } th { "From" } th { "To" } th { "Answered by" } th { "Disposition" } th { "Duration" } th { "Talk" } th { span.sr { "Details" } } } }
                tbody {
                    @for v in &views {
                        tr data-call=(text(v, "id")) {
                            td { (time(&v["started_at"])) }
                            td { (text(v, "direction")) }
                            td { (party(&v["from"])) }
                            td { (party(&v["to"])) }
                            td { @if v["answered_by"].is_object() { (party(&v["answered_by"])) } }
                            td { (text(v, "disposition")) @if v["missed"] == true { " " span.badge { "missed" } } }
                            td { (duration(&v["duration_ms"])) }
                            td { (duration(&v["talk_ms"])) }
                            td { (call_link(v)) }
                        }
                    }
                }
            }
        }
        @if let Some(cursor) = next {
            button type="button" data-action="more" data-cursor=(cursor) { "Next page" }
        }
    }
}

/// A cell of a CSV file: quoted when it must be, and never read as a formula by a
/// spreadsheet (a leading `=`, `@`, or a sign not before a digit, gets a `'`; phone numbers
/// such as `+15551234567` stay as they are).
fn csv_cell(out: &mut String, text: &str) {
    let formula = match text.as_bytes() {
        [b'=' | b'@' | b'\t' | b'\r', ..] => true,
        [b'+' | b'-', next, ..] => !next.is_ascii_digit(),
        [b'+' | b'-'] => true,
        _ => false,
    };
    let text = if formula {
        format!("'{text}")
    } else {
        text.to_string()
    };
    if text.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(&text);
    }
}

/// The export: a header line, then one line per call, as `/calls` shows them.
pub fn csv(calls: &[StoredCall]) -> String {
    const HEADER: &[&str] = &[
        "id",
        "started_at",
        "answered_at",
        "ended_at",
        "direction",
        "from",
        "to",
        "answered_by",
        "state",
        "disposition",
        "missed",
        "duration_ms",
        "talk_ms",
        "agents",
    ];
    let mut out = HEADER.join(",");
    out.push_str("\r\n");
    for call in calls {
        let v = call_view(call);
        let number = |p: &Value| {
            p.get("number")
                .or(p.get("extension"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let plain = |k: &str| match &v[k] {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let agents: Vec<&str> = v["agents"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let cells = [
            plain("id"),
            plain("started_at"),
            plain("answered_at"),
            plain("ended_at"),
            plain("direction"),
            number(&v["from"]),
            number(&v["to"]),
            number(&v["answered_by"]),
            plain("state"),
            plain("disposition"),
            plain("missed"),
            plain("duration_ms"),
            plain("talk_ms"),
            agents.join(" "),
        ];
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            csv_cell(&mut out, cell);
        }
        out.push_str("\r\n");
    }
    out
}

fn millis(v: &Value) -> Option<i64> {
    v.as_str()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map(|t| t.as_millisecond())
}

/// The legs on a time axis: waiting (grey), ringing (amber), talking (green), each to its
/// end (or to the last moment the call shows, for a leg that has not ended).
fn legs_chart(v: &Value) -> Markup {
    let legs: Vec<&Value> = v["legs"].as_array().into_iter().flatten().collect();
    let moments: Vec<i64> = legs
        .iter()
        .flat_map(|l| {
            ["created_at", "ringing_at", "answered_at", "ended_at"].map(|k| millis(&l[k]))
        })
        .flatten()
        .collect();
    let (Some(&start), Some(&end)) = (moments.iter().min(), moments.iter().max()) else {
        return html! { p.empty { "No leg has a time yet." } };
    };
    let span = (end - start).max(1) as f64;
    const WIDTH: f64 = 600.0;
    const ROW: f64 = 28.0;
    let x = |t: i64| 230.0 + (t - start) as f64 / span * WIDTH;
    let height = ROW * legs.len() as f64 + 24.0;
    html! {
        svg.legs role="img" aria-label=(format!("{} legs on a time axis", legs.len())) viewBox=(format!("0 0 850 {height}")) data-testid="legs" {
            @for (i, leg) in legs.iter().enumerate() {
                @let y = ROW * i as f64 + 4.0;
                @let from = millis(&leg["created_at"]).or(millis(&leg["ringing_at"])).unwrap_or(start);
                @let ringing = millis(&leg["ringing_at"]);
                @let answered = millis(&leg["answered_at"]);
                @let ended = millis(&leg["ended_at"]).unwrap_or(end);
                g.leg data-leg=(text(leg, "id")) data-state=(text(leg, "state")) {
                    title { (format!("{} → {}: {}", party(&leg["from"]), party(&leg["to"]), text(leg, "state"))) }
                    text x="0" y=(y + 16.0) { (party(&leg["from"])) " → " (party(&leg["to"])) }
                    @let ring_from = ringing.unwrap_or(from);
                    rect.wait x=(x(from)) y=(y) width=((x(ring_from) - x(from)).max(0.0)) height="18" {}
                    @let ring_to = answered.unwrap_or(ended);
                    @if ringing.is_some() {
                        rect.ring x=(x(ring_from)) y=(y) width=((x(ring_to) - x(ring_from)).max(1.0)) height="18" {}
                    }
                    @if let Some(a) = answered {
                        rect.talk x=(x(a)) y=(y) width=((x(ended) - x(a)).max(1.0)) height="18" {}
                    }
                }
            }
            text x="230" y=(height - 4.0) { "0 s" }
            text x="830" y=(height - 4.0) text-anchor="end" { (format!("{:.0} s", span / 1000.0)) }
        }
        p.legend { span.key.wait {} " waiting " span.key.ring {} " ringing " span.key.talk {} " talking" }
    }
}

/// One call: what the hub concluded and from what, its legs, its timeline.
pub fn call(call: &StoredCall, events: &[Event], delivered: &CallDeliveries) -> Markup {
    let v = call_view(call);
    let figures = &v["source_figures"];
    let inferred = v["direction_inferred"] == true;
    html! {
        h2 { "Call " code data-testid="call-id" { (text(&v, "id")) } }
        dl.summary data-testid="call-summary" {
            dt { "State" } dd data-testid="call-state" { (text(&v, "state")) }
            dt { "Direction" } dd { (text(&v, "direction")) " " small { @if inferred { "(inferred from which parties are the account's own)" } @else { "(as the source said)" } } }
            dt { "From" } dd { (party(&v["from"])) }
            dt { "To" } dd { (party(&v["to"])) }
            dt { "Answered by" } dd { @if v["answered_by"].is_object() { (party(&v["answered_by"])) } @else { "no one" } }
            dt { "Disposition" } dd data-testid="call-disposition" { (text(&v, "disposition")) @if v["missed"] == true { " " span.badge { "missed" } } " " small { "(from the legs' results by their times)" } }
            dt { "Started" } dd { (time(&v["started_at"])) }
            dt { "Answered" } dd { (time(&v["answered_at"])) }
            dt { "Ended" } dd { (time(&v["ended_at"])) @if v["inferred_end"] == true { " " small { "(inferred: no end was heard)" } } }
            dt { "Duration" } dd { (duration(&v["duration_ms"])) " " small { @if figures.get("duration").is_some() { "(the source's own figure)" } @else { "(from the times)" } } }
            dt { "Talk" } dd { (duration(&v["talk_ms"])) " " small { @if figures.get("billsec").is_some() { "(the source's own figure)" } @else { "(from the times)" } } }
            dt { "Transferred" } dd { @if v["transferred"] == true { "yes" } @else { "no" } }
            dt { "Conferenced" } dd { @if v["conferenced"] == true { "yes" } @else { "no" } }
            @if let Some(h) = v["hangup"].as_object() {
                dt { "Hung up" } dd { (h.iter().map(|(k, v)| format!("{k}: {}", v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))).collect::<Vec<_>>().join(", ")) " " small { "(as a source said it)" } }
            }
            dt { "Agents" } dd { (v["agents"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")).unwrap_or_default()) }
            dt { "Call log revision" } dd { (v["revision"]) }
            dt { "Ids" } dd { (v["aliases"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")).unwrap_or_default()) }
        }
        h3 { "Legs" }
        (legs_chart(&v))
        table data-testid="legs-table" {
            caption.sr { "Legs" }
            thead { tr { th { "Leg" } th { "From" } th { "To" } th { "State" } th { "Result" } th { "Ringing" } th { "Answered" } th { "Ended" } } }
            tbody {
                @for leg in v["legs"].as_array().into_iter().flatten() {
                    tr {
                        td { code { (text(leg, "id")) } }
                        td { (party(&leg["from"])) }
                        td { (party(&leg["to"])) }
                        td { (text(leg, "state")) }
                        td { (text(leg, "result")) }
                        td { (time(&leg["ringing_at"])) }
                        td { (time(&leg["answered_at"])) }
                        td { (time(&leg["ended_at"])) }
                    }
                }
            }
        }
        @if let Some(recs) = v["recordings"].as_array().filter(|r| !r.is_empty()) {
            h3 { "Recordings" }
            ul { @for r in recs { li { (text(r, "state")) " " @if let Some(url) = r["url"].as_str() { a href=(url) rel="noreferrer" { (url) } } } } }
        }
        h3 { "Call logs" }
        @if delivered.call_logs.is_empty() {
            p.empty { "No call log yet: one is made once the call has ended and its grace time passed." }
        } @else {
            table data-testid="call-logs" {
                caption.sr { "The call's call logs, each revision" }
                thead { tr { th { "Made" } th { "Event" } th { "Revision" } th { "Id" } } }
                tbody {
                    @for (id, kind, revision, at) in &delivered.call_logs {
                        tr { td { (ms_time(*at)) } td { (kind) } td { (revision) } td { code { (id) } } }
                    }
                }
            }
        }
        h3 { "Deliveries" }
        @let unsettled = delivered.deliveries.iter().any(|(_, d)| matches!(d.status, DeliveryStatus::Pending | DeliveryStatus::FailedRetrying));
        div data-refresh=[unsettled.then_some("2000")] {}
        @if delivered.deliveries.is_empty() {
            p.empty { "Nothing about this call was delivered: no listener matched its events." }
        } @else {
            table data-testid="call-deliveries" {
                caption.sr { "Every delivery made about this call" }
                thead { tr { th { "Made" } th { "Event" } th { "Listener" } th { "Callback" } th { "Status" } th { "Attempts" } th { "Responses" } th { span.sr { "Actions" } } } }
                tbody {
                    @for (kind, d) in &delivered.deliveries {
                        tr data-delivery=(d.id) data-status=(status_name(d.status)) {
                            td { (ms_time(d.created_at)) }
                            td { (kind) }
                            td { (d.listener_id) }
                            td { a href=(format!("#/deliveries/{}", d.callback_id)) { (d.callback_id) } }
                            td.status { (status_name(d.status)) }
                            td { (d.attempts) }
                            td { (d.attempt_log.iter().map(|a| a.status_code.map_or("—".to_string(), |c| c.to_string())).collect::<Vec<_>>().join(", ")) }
                            td { button type="button" data-action="retry" data-delivery=(d.id) data-callback=(d.callback_id) { "Send again" span.sr { " delivery " (d.id) } } }
                        }
                    }
                }
            }
        }
                h3 { "Timeline" }
        table data-testid="timeline" {
            caption.sr { "The call's events, as they happened" }
            thead { tr { th { "Happened" } th { "Received" } th { "Event" } th { "Leg" } th { "From" } th { "Raw and canonical" } } }
            tbody {
                @for e in events {
                    @let raw = e.fact.raw.get();
                    tr {
                        td { (time(&serde_json::to_value(e.fact.occurred_at).unwrap_or(Value::Null))) }
                        td { (time(&serde_json::to_value(e.received_at).unwrap_or(Value::Null))) }
                        td { (e.fact.kind.as_str()) }
                        td { code { (e.fact.leg_id.as_deref().unwrap_or("")) } }
                        td { (e.source.dialect.as_str()) }
                        td {
                            details { summary { "as sent" } pre { (raw) } }
                            details { summary { "as the hub read it" } pre { (serde_json::to_string_pretty(&e.fact.details).unwrap_or_default()) } }
                        }
                    }
                }
            }
        }
    }
}

/// Agents and their current state, since when.
pub fn agents(agents: &[AgentRow]) -> Markup {
    html! {
        h2 { "Agents" }
        @if agents.is_empty() {
            p.empty { "No agent has been heard of yet." }
        } @else {
            table data-testid="agents" {
                caption.sr { "Agents" }
                thead { tr { th { "Agent" } th { "State" } th { "Since" } th { "Device" } } }
                tbody {
                    @for a in agents {
                        tr data-agent=(a.agent_id) {
                            td { (a.agent_id) }
                            td { (a.state) }
                            td { (time(&Value::String(a.since.clone()))) }
                            td { (a.device.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
    }
}

/// A callback as a person names it.
fn callback_name(v: &Value) -> String {
    let target = v["config"]["url"]
        .as_str()
        .or(v["config"]["email"].as_str())
        .or(v["config"]["application"].as_str())
        .unwrap_or("");
    match v["name"].as_str().filter(|n| !n.is_empty()) {
        Some(name) => format!("{name} ({target})"),
        None => format!("#{} {target}", v["id"]),
    }
}

fn ms_time(ms: i64) -> Markup {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => time(&Value::String(t.to_string())),
        Err(_) => html! { "—" },
    }
}

/// What is wrong with a callback, if anything: switched off (and why), or failing.
fn trouble(v: &Value, h: &CallbackHealth) -> Option<String> {
    let since = |ms: i64| {
        jiff::Timestamp::from_millisecond(ms)
            .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_default()
    };
    if v["enabled"] == false {
        return Some(match h.failing_since {
            Some(ms) => format!("switched off after failing since {}", since(ms)),
            None => "switched off".to_string(),
        });
    }
    h.failing_since
        .map(|ms| format!("failing since {}", since(ms)))
}

fn success_rate(h: &CallbackHealth) -> String {
    let tried = h.succeeded + h.failed;
    match (h.succeeded * 100).checked_div(tried) {
        Some(percent) => format!("{percent}% of {tried}"),
        None => "—".into(),
    }
}

/// Every callback with its health; the troubled ones first, marked.
pub fn deliveries(callbacks: &[(Value, CallbackHealth)]) -> Markup {
    let mut sorted: Vec<&(Value, CallbackHealth)> = callbacks.iter().collect();
    sorted.sort_by_key(|(v, h)| trouble(v, h).is_none());
    html! {
        h2 { "Deliveries" }
        @if sorted.is_empty() {
            p.empty { "No callback yet." }
        } @else {
            table data-testid="callbacks" {
                caption.sr { "Callbacks and their health" }
                thead { tr { th { "Callback" } th { "Mode" } th { "Health" } th { "Recent success" } th { "Last success" } th { span.sr { "Deliveries" } } } }
                tbody {
                    @for (v, h) in &sorted {
                        @let bad = trouble(v, h);
                        tr.bad[bad.is_some()] data-callback=(h.callback_id) data-health=(if bad.is_some() { "bad" } else { "ok" }) {
                            td { (callback_name(v)) }
                            td { (text(v, "mode")) }
                            td { @if let Some(why) = &bad { span.badge { "!" } " " (why) } @else { "ok" } }
                            td { (success_rate(h)) }
                            td { @if let Some(ms) = h.last_success { (ms_time(ms)) } @else { "—" } }
                            td { a href=(format!("#/deliveries/{}", h.callback_id)) { "Deliveries" span.sr { " of callback " (h.callback_id) } } }
                        }
                    }
                }
            }
        }
    }
}

fn status_name(s: DeliveryStatus) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

const STATUSES: &[&str] = &[
    "pending",
    "failed-retrying",
    "waiting",
    "expired",
    "succeeded",
    "dead",
    "suppressed",
];

/// One callback's deliveries and their attempts, filterable by status, each retryable.
pub fn callback_deliveries(
    callback: &Value,
    health: &CallbackHealth,
    page: &DeliveryPage,
    status: Option<&str>,
) -> Markup {
    let shown: Vec<_> = page
        .items
        .iter()
        .filter(|d| status.is_none_or(|s| status_name(d.status) == s))
        .collect();
    let unsettled = page.items.iter().any(|d| {
        matches!(
            d.status,
            DeliveryStatus::Pending | DeliveryStatus::FailedRetrying
        )
    });
    html! {
        h2 { "Deliveries to " (callback_name(callback)) }
        div data-refresh=[unsettled.then_some("2000")] {}
        p data-testid="callback-health" {
            @if let Some(why) = trouble(callback, health) { span.badge { "!" } " " (why) ". " } @else { "Healthy. " }
            "Recent success: " (success_rate(health)) ". " (page.total) " deliveries in all"
            @if page.waiting > 0 { ", " (page.waiting) " waiting for it to be switched on" } "."
        }
        form #delivery-filter aria-label="Filter deliveries" {
            label for="f-status" { "Status" }
            select id="f-status" name="status" {
                option value="" selected[status.is_none()] { "any" }
                @for s in STATUSES { option value=(s) selected[status == Some(*s)] { (s) } }
            }
            button type="submit" { "Filter" }
        }
        @if shown.is_empty() {
            p.empty { "No delivery matches." }
        } @else {
            table data-testid="deliveries" {
                caption.sr { "Deliveries, newest first" }
                thead { tr { th { "Made" } th { "Event" } th { "Listener" } th { "Status" } th { "Attempts" } th { "Last error" } th { span.sr { "Actions" } } } }
                tbody {
                    @for d in &shown {
                        tr data-delivery=(d.id) data-status=(status_name(d.status)) {
                            td { (ms_time(d.created_at)) }
                            td { code { (d.event_id) } }
                            td { (d.listener_id) }
                            td.status { (status_name(d.status)) }
                            td {
                                (d.attempts)
                                @if !d.attempt_log.is_empty() {
                                    details {
                                        summary { "attempts" }
                                        ol {
                                            @for a in &d.attempt_log {
                                                li { (ms_time(a.at)) ": "
                                                    @if let Some(code) = a.status_code { "HTTP " (code) } @else { "no answer" }
                                                    ", " (a.latency_ms) " ms"
                                                    @if let Some(e) = &a.error { " — " (e) } }
                                            }
                                        }
                                    }
                                }
                            }
                            td { (d.last_error.as_deref().unwrap_or("")) }
                            td { button type="button" data-action="retry" data-delivery=(d.id) data-callback=(health.callback_id) { "Send again" span.sr { " delivery " (d.id) } } }
                        }
                    }
                }
            }
        }
    }
}

/// A labelled input with a place for the API's message about it (`name` is the field's API
/// path, as `@path` names it).
fn field(form: &str, name: &str, label: &str, kind: &str, value: &str) -> Markup {
    let id = format!("{form}-{}", name.replace(['.', ':', '[', ']'], "-"));
    html! {
        span.field {
            label for=(id) { (label) }
            input id=(id) name=(name) type=(kind) value=(value) aria-describedby=(format!("{id}-error"));
            span.field-error id=(format!("{id}-error")) data-error-for=(name) role="status" {}
        }
    }
}

fn checkbox(form: &str, name: &str, label: &str, checked: bool) -> Markup {
    let id = format!("{form}-{}", name.replace(['.', ':', '[', ']'], "-"));
    html! {
        span.field {
            input id=(id) name=(name) type="checkbox" checked[checked] data-keep="1";
            label for=(id) { (label) }
            span.field-error data-error-for=(name) role="status" {}
        }
    }
}

fn api_form(id: &str, method: &str, path: &str, label: &str, body: Markup, submit: &str) -> Markup {
    html! {
        form.api id=(id) data-method=(method) data-path=(path) aria-label=(label) {
            (body)
            button type="submit" { (submit) }
            p.form-error role="alert" data-error-for="" {}
        }
    }
}

fn delete_button(path: &str, what: &str) -> Markup {
    html! {
        button type="button" data-action="api-delete" data-path=(path) { "Delete" span.sr { " " (what) } }
    }
}

/// A schedule's rules as a person reads them: `mon,tue 09:00–17:00; sat 10:00–12:00`.
fn rules_text(rules: &Value) -> String {
    rules
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let days: Vec<&str> = r["days"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            format!("{} {}–{}", days.join(","), text(r, "from"), text(r, "to"))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A listener's callback and dialect, as a form's fields.
fn listener_fields(
    form: &str,
    callbacks: &[Value],
    callback: Option<i64>,
    version: &str,
) -> Markup {
    html! {
        span.field {
            label for=(format!("{form}-callback_id")) { "Callback" }
            select id=(format!("{form}-callback_id")) name="callback_id" data-type="number" {
                @for cb in callbacks {
                    option value=(cb["id"]) selected[cb["id"].as_i64() == callback] { "#" (cb["id"]) " " (cb["name"].as_str().unwrap_or("")) }
                }
            }
            span.field-error data-error-for="callback_id" role="status" {}
        }
        span.field {
            label for=(format!("{form}-version")) { "Dialect" }
            select id=(format!("{form}-version")) name="version" {
                @for v in VERSIONS { option value=(v) selected[*v == version] { (v) } }
            }
            span.field-error data-error-for="version" role="status" {}
        }
    }
}

const VERSIONS: &[&str] = &[
    "2.0.0",
    "tel4vn",
    "callable",
    "welljoint",
    "workonflow",
    "canonical",
];

/// The configuration, each part with the API's own checks: callbacks, listeners with their
/// subscriptions and filters, profiles.
pub fn config(
    callbacks: &[Value],
    listeners: &[(Value, Vec<Value>, Vec<Value>)],
    profiles: &[Value],
    schedules: &[Value],
) -> Markup {
    html! {
        h2 { "Configuration" }
        p.form-error role="alert" data-testid="config-error" data-error-for="" {}
        section aria-labelledby="cb-title" {
            h3 #cb-title { "Callbacks" }
            @if callbacks.is_empty() { p.empty { "No callback yet." } }
            @for cb in callbacks {
                @let id = cb["id"].as_i64().unwrap_or(0);
                @let form = format!("cb{id}");
                div.item data-callback=(id) {
                    (api_form(&form, "PATCH", &format!("callbacks/{id}"), &format!("Callback {id}"), html! {
                        strong { "#" (id) " " (text(cb, "mode")) }
                        (field(&form, "name", "Name", "text", cb["name"].as_str().unwrap_or("")))
                        @if cb["config"]["url"].is_string() {
                            (field(&form, "config.url", "URL", "url", cb["config"]["url"].as_str().unwrap_or("")))
                        }
                        (checkbox(&form, "enabled", "Enabled", cb["enabled"] != false))
                    }, "Save"))
                    (delete_button(&format!("callbacks/{id}"), &format!("callback {id}")))
                }
            }
            h4 { "New callback" }
            (api_form("new-callback", "POST", "callbacks", "New callback", html! {
                (field("new-callback", "name", "Name", "text", ""))
                (field("new-callback", "config.url", "URL", "url", ""))
            }, "Create callback"))
        }
        section aria-labelledby="li-title" {
            h3 #li-title { "Listeners" }
            @if listeners.is_empty() { p.empty { "No listener yet." } }
            @for (l, subs, filters) in listeners {
                @let id = l["id"].as_i64().unwrap_or(0);
                div.item data-listener=(id) {
                    @let lform = format!("listener{id}");
                    (api_form(&lform, "PATCH", &format!("listeners/{id}"), &format!("Listener {id}"), html! {
                        strong { "Listener #" (id) }
                        (listener_fields(&lform, callbacks, l["callback_id"].as_i64(), text(l, "version")))
                    }, "Save"))
                    (delete_button(&format!("listeners/{id}"), &format!("listener {id}")))
                    ul {
                        @for s in subs {
                            @let sid = s["id"].as_i64().unwrap_or(0);
                            li data-subscription=(sid) { "Events tagged " (s[":tags"].as_array().map(|t| t.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" + ")).unwrap_or_default()) " "
                                (delete_button(&format!("listeners/{id}/subscriptions/{sid}"), &format!("subscription {sid}"))) }
                        }
                        @for f in filters {
                            @let fid = f["id"].as_i64().unwrap_or(0);
                            li data-filter=(fid) {
                                @if let Some(eq) = f["filter_value"]["eq"].as_str() {
                                    @let fe = format!("f{fid}");
                                    (api_form(&fe, "PATCH", &format!("listeners/{id}/filters/{fid}"), &format!("Filter {fid}"), html! {
                                        "Filter: number "
                                        (field(&fe, "filter_value.eq", "Number", "text", eq))
                                        (checkbox(&fe, "not_logic", "All but this number", f["not_logic"] == true))
                                    }, "Save"))
                                } @else {
                                    "Filter: " (text(f, "filter_type")) " " code { (f["filter_value"].to_string()) } @if f["not_logic"] == true { " (not)" } " "
                                }
                                (delete_button(&format!("listeners/{id}/filters/{fid}"), &format!("filter {fid}")))
                            }
                        }
                    }
                    @let sform = format!("sub{id}");
                    (api_form(&sform, "POST", &format!("listeners/{id}/subscriptions"), &format!("New subscription of listener {id}"), html! {
                        span.field {
                            label for=(format!("{sform}-tags")) { "Tags (all must be on an event)" }
                            select id=(format!("{sform}-tags")) name=":tags" multiple size="4" {
                                @for t in switchboard_model::tags::KNOWN { option value=(t) { (t) } }
                            }
                            span.field-error data-error-for=":tags" role="status" {}
                        }
                    }, "Subscribe"))
                    @let rform = format!("replay{id}");
                    (api_form(&rform, "POST", &format!("listeners/{id}/replay"), &format!("Replay listener {id}"), html! {
                        span.field {
                            label for=(format!("{rform}-from")) { "Send again what it matched from" }
                            input id=(format!("{rform}-from")) name="from" type="datetime-local" data-type="unix" required;
                            span.field-error data-error-for="from" role="status" {}
                        }
                        span.field {
                            label for=(format!("{rform}-to")) { "to" }
                            input id=(format!("{rform}-to")) name="to" type="datetime-local" data-type="unix" required;
                            span.field-error data-error-for="to" role="status" {}
                        }
                    }, "Replay"))
                    @let fform = format!("filter{id}");
                    (api_form(&fform, "POST", &format!("listeners/{id}/filters"), &format!("New filter of listener {id}"), html! {
                        input type="hidden" name="filter_type" value="number";
                        (field(&fform, "filter_value.eq", "Number (+ and digits)", "text", ""))
                        (checkbox(&fform, "not_logic", "All but this number", false))
                    }, "Add number filter"))
                    @if !schedules.is_empty() {
                        @let sch = format!("schedule-filter{id}");
                        (api_form(&sch, "POST", &format!("listeners/{id}/filters"), &format!("New schedule filter of listener {id}"), html! {
                            input type="hidden" name="filter_type" value="schedule";
                            span.field {
                                label for=(format!("{sch}-id")) { "Only in the hours of" }
                                select id=(format!("{sch}-id")) name="filter_value.id" data-type="number" {
                                    @for sc in schedules { option value=(sc["id"]) { (text(sc, "name")) } }
                                }
                                span.field-error data-error-for="filter_value.id" role="status" {}
                            }
                            (checkbox(&sch, "not_logic", "Outside those hours instead", false))
                        }, "Add schedule filter"))
                    }
                }
            }
            h4 { "New listener" }
            (api_form("new-listener", "POST", "listeners", "New listener", listener_fields("new-listener", callbacks, None, "2.0.0"), "Create listener"))
        }
        section aria-labelledby="sc-title" {
            h3 #sc-title { "Schedules" }
            p { "Weekly hours in a time zone, for schedule filters." }
            @if schedules.is_empty() { p.empty { "No schedule yet." } }
            ul {
                @for sc in schedules {
                    @let id = sc["id"].as_i64().unwrap_or(0);
                    li data-schedule=(id) {
                        strong { (text(sc, "name")) } " (" (text(sc, "timezone")) "): "
                        (rules_text(&sc["rules"]))
                        " " (delete_button(&format!("schedules/{id}"), &format!("schedule {id}")))
                    }
                }
            }
            (api_form("new-schedule", "POST", "schedules", "New schedule", html! {
                (field("new-schedule", "name", "Name", "text", ""))
                (field("new-schedule", "timezone", "Time zone (IANA)", "text", "UTC"))
                span.field {
                    label for="new-schedule-days" { "Days" }
                    select id="new-schedule-days" name="rules[0].days" multiple size="4" {
                        @for d in ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] { option value=(d) { (d) } }
                    }
                    span.field-error data-error-for="rules[0].days" role="status" {}
                }
                (field("new-schedule", "rules[0].from", "From", "time", "09:00"))
                (field("new-schedule", "rules[0].to", "To", "time", "17:00"))
                span.field-error data-error-for="rules" role="status" {}
            }, "Create schedule"))
        }
                section aria-labelledby="pr-title" {
            h3 #pr-title { "Profiles" }
            @if profiles.is_empty() { p.empty { "No profile yet." } }
            ul {
                @for p in profiles {
                    @let id = p["id"].as_i64().unwrap_or(0);
                    @let pform = format!("profile{id}");
                    li data-profile=(id) {
                        (api_form(&pform, "PATCH", &format!("profiles/{id}"), &format!("Profile {id}"), html! {
                            (field(&pform, "name", "Name", "text", text(p, "name")))
                            (field(&pform, "support_email", "Support e-mail", "email", text(p, "support_email")))
                        }, "Save"))
                        (delete_button(&format!("profiles/{id}"), &format!("profile {id}")))
                    }
                }
            }
            (api_form("new-profile", "POST", "profiles", "New profile", html! {
                (field("new-profile", "name", "Name", "text", ""))
                (field("new-profile", "support_email", "Support e-mail", "email", ""))
            }, "Create profile"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::csv_cell;

    fn cell(text: &str) -> String {
        let mut out = String::new();
        csv_cell(&mut out, text);
        out
    }

    #[test]
    fn csv_cells_open_cleanly_in_a_spreadsheet() {
        // Phone numbers keep their sign; what a spreadsheet would run as a formula does not.
        assert_eq!(cell("+15551234567"), "+15551234567");
        assert_eq!(cell("-12"), "-12");
        assert_eq!(cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(cell("+cmd"), "'+cmd");
        assert_eq!(cell("-"), "'-");
        // Quoted only when it must be.
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("line\nbreak"), "\"line\nbreak\"");
        assert_eq!(cell("plain"), "plain");
        assert_eq!(cell(""), "");
    }
}
