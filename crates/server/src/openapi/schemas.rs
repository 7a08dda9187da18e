//! The request and response bodies, as JSON Schema (2020-12, which OpenAPI 3.1 speaks).
//! Requests say what the handlers check and no more: a field the hub ignores is not refused
//! here either, so the document refuses exactly what the hub refuses.

use serde_json::{json, Map, Value};
use switchboard_model::Dialect;

/// The dialects `/ingest/{dialect}` takes.
pub fn dialects() -> Vec<&'static str> {
    Dialect::ALL.iter().map(|d| d.as_str()).collect()
}

fn nullable(ty: &str) -> Value {
    json!({ "type": [ty, "null"] })
}

fn r(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// A Phone.com list of `item`s.
fn page(item: &str) -> Value {
    json!({
        "type": "object",
        "required": ["filters", "sort", "total", "limit", "offset", "items"],
        "properties": {
            "filters": { "type": "object" },
            "sort": { "type": "object" },
            "total": { "type": "integer", "minimum": 0 },
            "limit": { "type": "integer", "minimum": 1 },
            "offset": { "type": "integer", "minimum": 0 },
            "items": { "type": "array", "items": r(item) },
        },
    })
}

/// Every schema of `components.schemas`.
pub fn all() -> Map<String, Value> {
    let id = json!({ "type": "integer" });
    let unix = json!({ "type": "integer", "description": "Unix seconds." });
    let owned = |extra: Value| -> Value {
        let mut properties = json!({
            "id": id,
            "voip_id": { "type": "integer", "description": "The account." },
            "extension_id": nullable("integer"),
        });
        let mut required = vec!["id".to_string(), "voip_id".into(), "extension_id".into()];
        for (k, v) in extra.as_object().expect("properties") {
            properties[k] = v.clone();
            if k != "secret" {
                required.push(k.clone());
            }
        }
        json!({ "type": "object", "required": required, "properties": properties })
    };
    let mut s = Map::new();
    let mut add = |name: &str, schema: Value| {
        s.insert(name.to_string(), schema);
    };

    add(
        "Error",
        json!({
            "type": "object",
            "description": "Phone.com's error envelope: every 4xx and 5xx the hub answers.",
            "required": ["@error"],
            "properties": {
                "@error": {
                    "type": "object",
                    "required": ["@message", "@httpStatusCode", "@time"],
                    "properties": {
                        "@message": { "type": "string" },
                        "@httpStatusCode": { "type": "integer" },
                        "@time": { "type": "string", "description": "When, in UTC (`2020-06-11T10:02:58.123Z`)." },
                        "@path": { "type": "string", "description": "The field, parameter or header at fault." },
                    },
                },
            },
        }),
    );
    add(
        "Success",
        json!({
            "type": "object",
            "required": ["success"],
            "properties": { "success": { "const": true } },
        }),
    );
    add(
        "OpenApiDocument",
        json!({
            "type": "object",
            "required": ["openapi", "info", "paths"],
            "properties": { "openapi": { "const": "3.1.0" } },
        }),
    );
    add(
        "Status",
        json!({
            "type": "object",
            "required": ["status"],
            "properties": { "status": { "type": "string" } },
        }),
    );

    // Ingest.
    add(
        "IngestBody",
        json!({
            "description": "One event, a JSON array of events, or NDJSON (one per line), in the \
                path's dialect, as the vendor sends them.",
        }),
    );
    add(
        "IngestAnswer",
        json!({
            "type": "object",
            "required": ["accepted", "duplicates", "events"],
            "properties": {
                "accepted": { "type": "integer", "minimum": 0 },
                "duplicates": { "type": "integer", "minimum": 0 },
                "events": { "type": "array", "items": { "type": "string", "format": "uuid" } },
            },
        }),
    );

    // Callbacks.
    let header = json!({
        "type": "object",
        "required": ["name", "value"],
        "properties": { "name": { "type": "string" }, "value": {} },
    });
    let config = json!({
        "type": "object",
        "description": "HTTP modes: `url`, `method`, `headers`, `timeout`, `rate-limit`. EMAIL: \
            `email`, `mode` (`json` or `text`). APPLICATION: `application`, `parameters`.",
        "properties": {
            "url": { "type": "string" },
            "method": { "type": "string" },
            "headers": { "type": "array", "items": header },
            "timeout": { "type": "integer" },
            "rate-limit": { "type": "object" },
            "email": { "type": "string" },
            "mode": { "type": "string" },
            "application": { "type": "string" },
            "parameters": { "type": "object" },
        },
    });
    let callback_fields = json!({
        "name": nullable("string"),
        "enabled": { "type": "boolean" },
        "mode": { "type": "string", "description": "HTTP, HTTPS (the default), EMAIL or APPLICATION (any case)." },
        "profile_id": nullable("integer"),
        "fallback_callback_id": nullable("integer"),
        "config": config,
    });
    add(
        "CallbackCreate",
        json!({
            "type": "object",
            "description": "An HTTP(S) callback needs `config.url`, which must answer 200 or 201 to a \
                POST of `{\"test\": 1}`.",
            "properties": callback_fields,
        }),
    );
    add(
        "CallbackUpdate",
        json!({ "type": "object", "properties": callback_fields }),
    );
    add(
        "Callback",
        owned(json!({
            "name": nullable("string"),
            "enabled": { "type": "boolean" },
            "mode": { "type": "string" },
            "profile_id": nullable("integer"),
            "fallback_callback_id": nullable("integer"),
            "config": { "type": ["object", "null"] },
            "created_at": unix,
            "secret": { "type": "string", "description": "The signing secret: in the create answer only." },
        })),
    );
    add("CallbackPage", page("Callback"));
    add(
        "Attempt",
        json!({
            "type": "object",
            "required": ["at", "latency_ms"],
            "properties": {
                "at": { "type": "integer", "description": "Unix ms." },
                "status_code": nullable("integer"),
                "latency_ms": { "type": "integer" },
                "error": nullable("string"),
                "response": nullable("string"),
            },
        }),
    );
    add(
        "Delivery",
        json!({
            "type": "object",
            "required": ["id", "event_id", "listener_id", "callback_id", "status", "attempts", "created_at", "attempt_log"],
            "properties": {
                "id": id,
                "event_id": { "type": "string" },
                "listener_id": id,
                "callback_id": id,
                "status": {
                    "type": "string",
                    "enum": ["pending", "failed-retrying", "waiting", "expired", "succeeded", "dead", "suppressed"],
                },
                "attempts": { "type": "integer", "minimum": 0 },
                "next_attempt_at": nullable("integer"),
                "last_error": nullable("string"),
                "created_at": { "type": "integer" },
                "attempt_log": { "type": "array", "items": r("Attempt") },
            },
        }),
    );
    let mut deliveries = page("Delivery");
    deliveries["properties"]["waiting"] = json!({
        "type": "integer",
        "description": "How many wait for the callback to be switched on.",
    });
    add("DeliveryPage", deliveries);
    add(
        "RetryAnswer",
        json!({
            "type": "object",
            "required": ["success", "id", "status"],
            "properties": { "success": { "const": true }, "id": id, "status": { "const": "pending" } },
        }),
    );
    add(
        "SecretAnswer",
        json!({
            "type": "object",
            "required": ["id", "secret", "previous_secret_expires_at"],
            "properties": {
                "id": id,
                "secret": { "type": "string" },
                "previous_secret_expires_at": unix,
            },
        }),
    );

    // Listeners.
    let version = json!({
        "type": "string",
        "description": "The dialect delivered: `2.0.0` (Phone.com, the default), `tel4vn`, \
            `callable`, `welljoint`, `workonflow` or `canonical`.",
    });
    add(
        "ListenerCreate",
        json!({
            "type": "object",
            "required": ["callback_id"],
            "properties": { "callback_id": id, "version": version, "expires_at": nullable("integer") },
        }),
    );
    add(
        "ListenerUpdate",
        json!({
            "type": "object",
            "properties": { "callback_id": id, "version": version, "expires_at": nullable("integer") },
        }),
    );
    add(
        "Listener",
        owned(json!({
            "version": { "type": "string" },
            "callback_id": nullable("integer"),
            "created_at": unix,
            "expires_at": nullable("integer"),
        })),
    );
    add("ListenerPage", page("Listener"));
    add(
        "Replay",
        json!({
            "type": "object",
            "required": ["from", "to"],
            "properties": { "from": unix, "to": unix },
        }),
    );
    add(
        "ReplayAnswer",
        json!({
            "type": "object",
            "required": ["replayed"],
            "properties": { "replayed": { "type": "integer", "minimum": 0 } },
        }),
    );

    // Subscriptions and filters.
    let tags = json!({
        "type": "array",
        "minItems": 1,
        "items": { "type": "string", "enum": switchboard_model::tags::KNOWN },
        "description": "All of them must be on an event for it to match.",
    });
    add(
        "SubscriptionCreate",
        json!({
            "type": "object",
            "required": [":tags"],
            "properties": { ":tags": tags },
        }),
    );
    add(
        "Subscription",
        json!({
            "type": "object",
            "required": ["id", ":tags"],
            "properties": { "id": id, ":tags": { "type": "array", "items": { "type": "string" } } },
        }),
    );
    add("SubscriptionPage", page("Subscription"));
    let filter_fields = json!({
        "filter_type": { "type": "string", "enum": ["number", "schedule"] },
        "filter_value": {
            "type": "object",
            "description": "`number`: one of `eq`, `in` or `match`. `schedule`: `id`.",
        },
        "not_logic": { "type": "boolean" },
    });
    add(
        "FilterCreate",
        json!({
            "type": "object",
            "required": ["filter_type", "filter_value"],
            "properties": filter_fields,
        }),
    );
    add(
        "FilterUpdate",
        json!({ "type": "object", "properties": filter_fields }),
    );
    add(
        "Filter",
        json!({
            "type": "object",
            "required": ["id", "listener_id", "filter_type", "filter_value", "not_logic"],
            "properties": {
                "id": id,
                "listener_id": nullable("integer"),
                "filter_type": { "type": "string" },
                "filter_value": {},
                "not_logic": { "type": "boolean" },
            },
        }),
    );
    add("FilterPage", page("Filter"));

    // Profiles and schedules.
    let profile_fields = json!({
        "name": { "type": "string" },
        "support_email": {
            "type": ["string", "null"],
            "description": "Who is told when a callback of this profile keeps failing (`null`: no one).",
        },
    });
    add(
        "ProfileCreate",
        json!({
            "type": "object",
            "required": ["name", "support_email"],
            "properties": profile_fields,
        }),
    );
    add(
        "ProfileUpdate",
        json!({ "type": "object", "properties": profile_fields }),
    );
    add(
        "Profile",
        owned(json!({
            "name": nullable("string"),
            "support_email": nullable("string"),
            "created_at": unix,
        })),
    );
    add("ProfilePage", page("Profile"));
    let rule = json!({
        "type": "object",
        "required": ["days", "from", "to"],
        "properties": {
            "days": { "type": "array", "items": { "type": "string" } },
            "from": { "type": "string", "description": "Local `HH:MM`." },
            "to": { "type": "string", "description": "Local `HH:MM` (`24:00` ends a day)." },
        },
    });
    let schedule_fields = json!({
        "name": { "type": "string" },
        "timezone": { "type": "string", "description": "An IANA time zone." },
        "rules": { "type": "array", "items": rule },
    });
    add(
        "ScheduleCreate",
        json!({
            "type": "object",
            "required": ["name", "timezone", "rules"],
            "properties": schedule_fields,
        }),
    );
    add(
        "ScheduleUpdate",
        json!({ "type": "object", "properties": schedule_fields }),
    );
    add(
        "Schedule",
        owned(json!({
            "name": nullable("string"),
            "timezone": nullable("string"),
            "rules": { "type": ["array", "null"] },
            "created_at": unix,
        })),
    );
    add("SchedulePage", page("Schedule"));

    // Overview and express create.
    add(
        "ExpressCreate",
        json!({
            "type": "object",
            "description": "A listener with its callback (`callback_id`, or a `:callback` object \
                that may carry a `:profile`) and at least one subscription, made in one transaction.",
            "properties": {
                "callback_id": id,
                ":callback": r("CallbackCreate"),
                ":subscriptions": { "type": "array", "items": r("SubscriptionCreate") },
                "subscriptions": { "type": "array", "items": r("SubscriptionCreate") },
                "version": version,
                "expires_at": nullable("integer"),
            },
        }),
    );
    add(
        "ListenerOverview",
        json!({
            "allOf": [r("Listener")],
            "properties": {
                ":callback": {},
                ":profile": {},
                ":fallback": {},
                ":subscriptions": { "type": "array" },
            },
        }),
    );
    add("OverviewPage", page("ListenerOverview"));

    // tel4vn hooks.
    add(
        "HookCreate",
        json!({
            "type": "object",
            "required": ["callback_url", "event"],
            "properties": {
                "callback_url": { "type": "string" },
                "callback_apikey": { "type": "string" },
                "event": {
                    "type": "string",
                    "description": "hangup, ringing, answered, cdr, missed or cdr_autocall (any other \
                        name makes a hook that is never called).",
                },
            },
        }),
    );
    add(
        "HookCreated",
        json!({
            "type": "object",
            "required": ["created", "id"],
            "properties": { "created": { "const": true }, "id": nullable("string") },
        }),
    );
    add(
        "HookList",
        json!({
            "type": "object",
            "required": ["data", "total"],
            "properties": {
                "data": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["id", "event", "callback_url", "callback_apikey"],
                        "properties": {
                            "id": { "type": "string" },
                            "event": {},
                            "callback_url": {},
                            "callback_apikey": {},
                        },
                    },
                },
                "total": { "type": "integer" },
            },
        }),
    );
    add(
        "HookDeleted",
        json!({
            "type": "object",
            "required": ["deleted"],
            "properties": { "deleted": { "const": true } },
        }),
    );

    // Queries.
    add(
        "Call",
        json!({
            "type": "object",
            "description": "A call as the hub concluded it (docs/api.md § The query API).",
            "required": ["id", "revision", "aliases", "state", "disposition", "missed", "legs"],
            "properties": {
                "id": { "type": "string" },
                "revision": { "type": "integer" },
                "aliases": { "type": "array", "items": { "type": "string" } },
                "merged": {},
                "direction": { "type": "string", "enum": crate::routes::calls::DIRECTIONS },
                "state": { "type": "string", "enum": ["initiated", "ringing", "active", "ended", "finalized"] },
                "disposition": { "type": "string", "enum": crate::routes::calls::DISPOSITIONS },
                "missed": { "type": "boolean" },
                "legs": { "type": "array", "items": { "type": "object" } },
                "recordings": { "type": "array" },
                "agents": { "type": "array", "items": { "type": "string" } },
                "timeline": { "type": "array", "items": { "type": "object" } },
            },
        }),
    );
    add(
        "CallPage",
        json!({
            "type": "object",
            "required": ["total", "limit", "items", "next_cursor"],
            "properties": {
                "filters": { "type": "object" },
                "sort": { "type": "object" },
                "total": { "type": "integer" },
                "limit": { "type": "integer" },
                "offset": { "type": "integer" },
                "items": { "type": "array", "items": r("Call") },
                "next_cursor": { "type": ["string", "null"] },
            },
        }),
    );
    add(
        "Event",
        json!({
            "type": "object",
            "description": "A canonical event (the `canonical` dialect) with its cursor.",
            "required": ["cursor", "id", "account", "source", "received_at", "tags", "fact"],
            "properties": {
                "cursor": { "type": "string" },
                "id": { "type": "string", "format": "uuid" },
                "account": { "type": "integer" },
                "source": { "type": "object" },
                "received_at": {},
                "tags": { "type": "array", "items": { "type": "string" } },
                "fact": { "type": "object" },
            },
        }),
    );
    add(
        "EventPage",
        json!({
            "type": "object",
            "required": ["items", "next_cursor"],
            "properties": {
                "items": { "type": "array", "items": r("Event") },
                "next_cursor": { "type": "string", "description": "Pass as `after` for what follows." },
            },
        }),
    );
    add(
        "AgentList",
        json!({
            "type": "object",
            "required": ["items", "total"],
            "properties": {
                "items": { "type": "array", "items": { "type": "object" } },
                "total": { "type": "integer" },
            },
        }),
    );

    // Admin.
    add(
        "AccountCreate",
        json!({
            "type": "object",
            "properties": { "name": { "type": "string" }, "id": { "type": "integer" } },
        }),
    );
    add(
        "AccountCreated",
        json!({
            "type": "object",
            "required": ["id", "name", "token"],
            "properties": { "id": id, "name": nullable("string"), "token": { "type": "string" } },
        }),
    );
    add(
        "Account",
        json!({
            "type": "object",
            "required": ["id", "name", "created_at"],
            "properties": { "id": id, "name": nullable("string"), "created_at": {} },
        }),
    );
    add(
        "TokenCreate",
        json!({
            "type": "object",
            "properties": {
                "scope": { "type": "string", "enum": ["api", "ingest"] },
                "extension_id": nullable("integer"),
                "tz": nullable("string"),
            },
        }),
    );
    add(
        "TokenCreated",
        json!({
            "type": "object",
            "required": ["token", "account_id", "scope"],
            "properties": {
                "token": { "type": "string" },
                "account_id": id,
                "scope": { "type": "string" },
                "extension_id": nullable("integer"),
                "tz": nullable("string"),
            },
        }),
    );
    add(
        "Erase",
        json!({
            "type": "object",
            "required": ["number"],
            "properties": {
                "number": { "type": "string", "description": "The phone number, as events write it." },
                "account": { "type": "integer", "description": "Only this account's data." },
            },
        }),
    );
    add(
        "Erased",
        json!({
            "type": "object",
            "required": ["erased"],
            "properties": { "erased": { "type": "object", "additionalProperties": { "type": "integer" } } },
        }),
    );
    s
}
