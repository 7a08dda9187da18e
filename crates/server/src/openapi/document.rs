//! The OpenAPI 3.1 document of the routes an [`Api`](super::Api) was built from.

use super::{schemas, Auth, Op, Reply, Ty};
use serde_json::{json, Map, Value};

/// The vendors' documented exchanges, which the tests replay (`reference_api.rs`): the
/// document shows them as its examples.
const CONFORMANCE: &[&str] = &[
    include_str!("../../../../conformance/phonecom-api.json"),
    include_str!("../../../../conformance/tel4vn-api.json"),
];

/// The document, as JSON.
pub struct Document {
    json: Value,
    /// The body of `/openapi.json`, made once.
    text: String,
}

impl Document {
    pub fn json(&self) -> &Value {
        &self.json
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub(super) fn of(ops: &[(String, Op)]) -> Document {
        let examples = Examples::read();
        let mut paths = Map::new();
        for (path, op) in ops {
            let entry = paths
                .entry(path.clone())
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .expect("a path item is an object");
            entry.insert(
                op.method.as_str().to_string(),
                operation(path, op, ops, &examples),
            );
        }
        let json = json!({
            "openapi": "3.1.0",
            "info": {
                "title": "Switchboard",
                "version": env!("CARGO_PKG_VERSION"),
                "summary": "A self-hosted hub for telephony events",
                "description": "Takes call events from PBXs, CPaaS platforms and contact-centre \
                    CTI servers (`/ingest/{dialect}`), joins them into calls, keeps their history \
                    (`/v4/accounts/{account}/calls`, `/events`, `/stream`) and delivers them to \
                    listeners as signed webhooks in the dialect each listener chose. Its \
                    management API is the Phone.com events API \
                    (`/v4/accounts/{account}/integrations/events/...`) and tel4vn's hooks \
                    (`/v1/event`). Every error answers in Phone.com's `@error` envelope.",
                "license": { "name": "MIT", "identifier": "MIT" },
            },
            "tags": tags(ops),
            "paths": paths,
            "components": {
                "schemas": schemas::all(),
                "securitySchemes": {
                    "apiToken": {
                        "type": "http",
                        "scheme": "bearer",
                        "description": "An account's token, made with `switchboard account \
                            create` or `POST /admin/accounts`. An `api` token manages and \
                            queries its account (an extension-bound one only its extension); an \
                            `ingest` token only sends events.",
                    },
                    "adminToken": {
                        "type": "http",
                        "scheme": "bearer",
                        "description": "The hub's admin token (`SWITCHBOARD_ADMIN_TOKEN`); \
                            without one configured the admin API answers 404.",
                    },
                },
            },
        });
        let text = serde_json::to_string(&json).expect("the document serializes");
        Document { json, text }
    }
}

/// The tags in the order their routes were declared.
fn tags(ops: &[(String, Op)]) -> Vec<Value> {
    let mut seen: Vec<&str> = Vec::new();
    for (_, op) in ops {
        if !seen.contains(&op.tag) {
            seen.push(op.tag);
        }
    }
    seen.into_iter().map(|t| json!({ "name": t })).collect()
}

/// The path parameters of a template, in order.
fn path_params(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect()
}

fn path_param(name: &str) -> Value {
    let (schema, about) = match name {
        "account" => (
            json!({ "type": "integer", "minimum": 0 }),
            "The account's id.",
        ),
        "ext" => (
            json!({ "type": "integer", "minimum": 0 }),
            "The extension's id: the resources of that extension.",
        ),
        "dialect" => (
            json!({ "type": "string", "enum": schemas::dialects() }),
            "The dialect the body is written in.",
        ),
        "call_id" => (json!({ "type": "string" }), "The call's id (the hub's)."),
        "id" => (
            json!({ "type": "string" }),
            "The hook's id (a UUID; the numeric ids of earlier versions are still taken).",
        ),
        "token" => (
            json!({ "type": "string" }),
            "The unsubscribe token of an e-mail callback, from its messages.",
        ),
        _ => (json!({ "type": "integer", "minimum": 0 }), "An id."),
    };
    json!({ "name": name, "in": "path", "required": true, "description": about, "schema": schema })
}

fn query_param(p: &super::Param) -> Value {
    let schema = match p.ty {
        Ty::Whole(min) => json!({ "type": "integer", "minimum": min }),
        Ty::Text => json!({ "type": "string" }),
        Ty::Bool => json!({ "type": "boolean" }),
        Ty::OneOf(values) => json!({ "type": "string", "enum": values }),
        Ty::Time => json!({
            "anyOf": [
                { "type": "string", "format": "date-time" },
                { "type": "integer" },
            ],
        }),
    };
    json!({ "name": p.name, "in": "query", "required": false, "description": p.about, "schema": schema })
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn operation(path: &str, op: &Op, ops: &[(String, Op)], examples: &Examples) -> Value {
    let mut parameters: Vec<Value> = path_params(path).into_iter().map(path_param).collect();
    parameters.extend(op.query.iter().map(query_param));
    let found = examples.find(op.method.as_str(), path);
    let mut out = json!({
        "operationId": op.id,
        "summary": op.summary,
        "tags": [op.tag],
        "security": match op.auth {
            Auth::Account => json!([{ "apiToken": [] }]),
            Auth::Admin => json!([{ "adminToken": [] }]),
            Auth::Open => json!([]),
        },
        "parameters": parameters,
        "responses": responses(path, op, ops, &found),
    });
    if let Some(about) = op.about {
        out["description"] = json!(about);
    }
    if let Some((schema, media)) = &op.body {
        let mut content = Map::new();
        for m in media.iter() {
            let mut body = json!({ "schema": schema_ref(schema) });
            if let Some(request) = found.iter().find_map(|e| e.get("request")) {
                if *m == "application/json" {
                    body["example"] = request.clone();
                }
            }
            content.insert(m.to_string(), body);
        }
        out["requestBody"] = json!({ "required": true, "content": content });
    }
    out
}

fn responses(path: &str, op: &Op, ops: &[(String, Op)], found: &[&Value]) -> Value {
    let mut out = Map::new();
    for (status, about, reply) in &op.replies {
        let mut response = json!({ "description": about });
        match reply {
            Reply::Json(schema) => {
                let mut body = json!({ "schema": schema_ref(schema) });
                let documented = found
                    .iter()
                    .filter(|e| e["status"] == json!(status))
                    .find_map(|e| e.get("response"));
                if let Some(r) = documented {
                    body["example"] = r.clone();
                }
                response["content"] = json!({ "application/json": body });
            }
            Reply::Other { media, about } => {
                response["content"] =
                    json!({ *media: { "schema": { "type": "string", "description": about } } });
            }
            Reply::Empty => {}
        }
        if (200..300).contains(status) && op.method == super::Method::Post {
            let links = links(path, ops);
            if !links.is_empty() {
                response["links"] = Value::Object(links);
            }
        }
        out.insert(status.to_string(), response);
    }
    out.insert(
        "4XX".into(),
        json!({
            "description": "The request was refused: `@error.message` says why and `@error.@path` \
                names the field (or parameter, or header) at fault.",
            "content": { "application/json": { "schema": schema_ref("Error") } },
        }),
    );
    Value::Object(out)
}

/// What a create at `path` leads to: the operations on the resource it made
/// (`{path}/{param}` and below), with the new id for `param` and this request's own path
/// parameters for the rest.
fn links(path: &str, ops: &[(String, Op)]) -> Map<String, Value> {
    let mut links = Map::new();
    let own = path_params(path);
    for (target, op) in ops {
        let Some(rest) = target.strip_prefix(path).and_then(|r| r.strip_prefix("/{")) else {
            continue;
        };
        let Some((param, _)) = rest.split_once('}') else {
            continue;
        };
        let mut parameters = Map::new();
        for p in path_params(target) {
            let value = if p == param {
                "$response.body#/id".to_string()
            } else if own.contains(&p) {
                format!("$request.path.{p}")
            } else {
                continue;
            };
            parameters.insert(p.to_string(), json!(value));
        }
        if parameters.len() == path_params(target).len() {
            links.insert(
                op.id.clone(),
                json!({ "operationId": op.id, "parameters": parameters }),
            );
        }
    }
    links
}

/// The conformance suites' exchanges by method and path (parameter names aside).
struct Examples(Vec<(String, String, Value)>);

/// A path with every parameter's name dropped: `/a/{x}/b` → `/a/{}/b`.
fn shape(path: &str) -> String {
    path.split('/')
        .map(|s| if s.starts_with('{') { "{}" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

impl Examples {
    fn read() -> Examples {
        let mut out = Vec::new();
        for text in CONFORMANCE {
            let suite: Value = serde_json::from_str(text).expect("a conformance suite is JSON");
            let base = suite["base"].as_str().unwrap_or("").trim_end_matches('/');
            for e in suite["exchanges"].as_array().into_iter().flatten() {
                let (Some(method), Some(path)) = (e["method"].as_str(), e["path"].as_str()) else {
                    continue;
                };
                out.push((
                    method.to_ascii_lowercase(),
                    shape(&format!("{base}{path}")),
                    e.clone(),
                ));
            }
        }
        Examples(out)
    }

    /// The exchanges of this operation. Extension-level paths show the account level's.
    fn find(&self, method: &str, path: &str) -> Vec<&Value> {
        let path = shape(&path.replace("/extensions/{ext}", ""));
        self.0
            .iter()
            .filter(|(m, p, _)| m == method && *p == path)
            .map(|(_, _, e)| e)
            .collect()
    }
}
