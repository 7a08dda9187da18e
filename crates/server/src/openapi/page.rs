//! `/docs`: the document rendered as one HTML page, made on the server from the document
//! itself, with no script and nothing fetched from elsewhere (a closed network reads it too).

use serde_json::Value;
use std::fmt::Write;

/// Text made safe inside HTML (elements and quoted attributes).
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Prose of the document as HTML: escaped, with its `code` spans set as code.
fn prose(text: &str) -> String {
    let mut out = String::new();
    for (i, part) in text.split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<code>{}</code>", esc(part));
        } else {
            out.push_str(&esc(part));
        }
    }
    out
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// A schema reference as a link to the schema's section.
fn schema_link(schema: &Value) -> String {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.rsplit('/').next().unwrap_or(r);
            format!("<a href=\"#schema-{0}\"><code>{0}</code></a>", esc(name))
        }
        None => format!(
            "<code>{}</code>",
            esc(&serde_json::to_string(schema).unwrap_or_default())
        ),
    }
}

fn pretty(v: &Value) -> String {
    esc(&serde_json::to_string_pretty(v).unwrap_or_default())
}

const STYLE: &str = "body{font:15px/1.5 system-ui,sans-serif;max-width:70rem;margin:0 auto;padding:1rem;color:#1b1b1b}\
code,pre{font:13px ui-monospace,monospace}pre{background:#f4f4f4;padding:.6rem;overflow:auto;max-height:24rem}\
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.3rem .5rem;text-align:left;vertical-align:top}\
.m{display:inline-block;min-width:4.2rem;font-weight:700;text-transform:uppercase}\
.get{color:#0b6b2f}.post{color:#0b4f9c}.patch{color:#8a5a00}.put{color:#8a5a00}.delete{color:#a11}\
section.op{border-top:1px solid #ccc;padding-top:.5rem;margin-top:1.2rem}nav li{list-style:none}nav ul{padding-left:1rem}";

/// The page.
pub fn render(doc: &Value) -> String {
    let info = &doc["info"];
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title} API reference</title><style>{STYLE}</style></head><body>\
         <header><h1>{title} API reference <small>{version}</small></h1><p>{about}</p>\
         <p>The same as a document: <a href=\"/openapi.json\"><code>/openapi.json</code></a> (OpenAPI {openapi}).</p></header>",
        title = esc(text(info, "title")),
        version = esc(text(info, "version")),
        about = prose(text(info, "description")),
        openapi = esc(text(doc, "openapi")),
    );
    // Operations by tag, in the document's order.
    let paths = doc["paths"].as_object().cloned().unwrap_or_default();
    let tags: Vec<String> = doc["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| text(t, "name").to_string())
        .collect();
    let ops_of = |tag: &str| -> Vec<(String, String, Value)> {
        let mut found = Vec::new();
        for (path, item) in &paths {
            for (method, op) in item.as_object().into_iter().flatten() {
                if op["tags"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|t| t == tag))
                {
                    found.push((path.clone(), method.clone(), op.clone()));
                }
            }
        }
        found
    };
    out.push_str("<nav aria-label=\"Contents\"><h2>Contents</h2><ul>");
    for tag in &tags {
        let _ = write!(out, "<li><a href=\"#tag-{0}\">{0}</a><ul>", esc(tag));
        for (path, method, op) in ops_of(tag) {
            let _ = write!(
                out,
                "<li><a href=\"#{id}\"><span class=\"m {method}\">{method}</span> <code>{path}</code></a></li>",
                id = esc(text(&op, "operationId")),
                method = esc(&method),
                path = esc(&path),
            );
        }
        out.push_str("</ul></li>");
    }
    out.push_str("<li><a href=\"#schemas\">Schemas</a></li></ul></nav><main>");
    for tag in &tags {
        let _ = write!(out, "<h2 id=\"tag-{0}\">{0}</h2>", esc(tag));
        for (path, method, op) in ops_of(tag) {
            operation(&mut out, &path, &method, &op);
        }
    }
    out.push_str("<h2 id=\"schemas\">Schemas</h2>");
    for (name, schema) in doc["components"]["schemas"]
        .as_object()
        .into_iter()
        .flatten()
    {
        let _ = write!(
            out,
            "<section id=\"schema-{0}\"><h3>{0}</h3><pre>{1}</pre></section>",
            esc(name),
            pretty(schema)
        );
    }
    out.push_str("</main></body></html>");
    out
}

fn operation(out: &mut String, path: &str, method: &str, op: &Value) {
    let _ = write!(
        out,
        "<section class=\"op\" id=\"{id}\"><h3><span class=\"m {method}\">{method}</span> <code>{path}</code></h3><p>{summary}</p>",
        id = esc(text(op, "operationId")),
        method = esc(method),
        path = esc(path),
        summary = prose(text(op, "summary")),
    );
    if let Some(about) = op.get("description").and_then(Value::as_str) {
        let _ = write!(out, "<p>{}</p>", prose(about));
    }
    let auth = match op["security"].as_array().and_then(|s| s.first()) {
        Some(s) if s.get("adminToken").is_some() => "the admin token",
        Some(_) => "an account's token",
        None => "none",
    };
    let _ = write!(out, "<p>Authorization: {auth}.</p>");
    if let Some(params) = op["parameters"].as_array().filter(|p| !p.is_empty()) {
        out.push_str("<table><caption>Parameters</caption><tr><th>name</th><th>in</th><th>schema</th><th>what</th></tr>");
        for p in params {
            let _ = write!(
                out,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(text(p, "name")),
                esc(text(p, "in")),
                schema_link(&p["schema"]),
                prose(text(p, "description")),
            );
        }
        out.push_str("</table>");
    }
    if let Some(content) = op["requestBody"]["content"].as_object() {
        for (media, body) in content {
            let _ = write!(
                out,
                "<p>Request body (<code>{}</code>): {}</p>",
                esc(media),
                schema_link(&body["schema"])
            );
            if let Some(example) = body.get("example") {
                let _ = write!(
                    out,
                    "<details><summary>Example request</summary><pre>{}</pre></details>",
                    pretty(example)
                );
            }
        }
    }
    out.push_str(
        "<table><caption>Responses</caption><tr><th>status</th><th>what</th><th>body</th></tr>",
    );
    for (status, response) in op["responses"].as_object().into_iter().flatten() {
        let mut body = String::new();
        let mut example = None;
        for (media, c) in response["content"].as_object().into_iter().flatten() {
            let _ = write!(
                body,
                "<code>{}</code> {}",
                esc(media),
                schema_link(&c["schema"])
            );
            example = example.or(c.get("example"));
        }
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}",
            esc(status),
            prose(text(response, "description")),
            body
        );
        if let Some(example) = example {
            let _ = write!(
                out,
                "<details><summary>Example</summary><pre>{}</pre></details>",
                pretty(example)
            );
        }
        out.push_str("</td></tr>");
    }
    out.push_str("</table></section>");
}
