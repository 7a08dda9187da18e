//! The API's contract, declared beside its routes. Every route is added once, as an [`Op`]
//! carrying both its handler and what the document says of it, so `/openapi.json` cannot name
//! a route the router lacks nor leave out one it has. The bodies' schemas are in
//! [`schemas`]; the examples are the vendors' own, read from the conformance suites the tests
//! run (`conformance/*.json`); `/docs` renders the same document as a page ([`page`]).

mod document;
mod page;
mod schemas;

pub use document::Document;

use std::sync::LazyLock;

/// The document of the hub's routes, made once.
static DOCUMENT: LazyLock<Document> = LazyLock::new(|| {
    // The time limit wraps the routes, and does not show in the document.
    crate::routes::api(std::time::Duration::from_secs(1))
        .split()
        .1
});

/// The page of `/docs`, made once.
static PAGE: LazyLock<String> = LazyLock::new(|| page::render(DOCUMENT.json()));

/// The OpenAPI document of every route the hub serves.
pub fn document() -> &'static Document {
    &DOCUMENT
}

/// `/openapi.json`.
pub(crate) fn served_document() -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        DOCUMENT.text(),
    )
        .into_response()
}

/// `/docs`.
pub(crate) fn served_page() -> axum::response::Html<&'static str> {
    axum::response::Html(PAGE.as_str())
}

use crate::AppState;
use axum::handler::Handler;
use axum::routing::{self, MethodRouter};
use axum::Router;

/// An HTTP method an operation answers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Method {
    Get,
    Post,
    Patch,
    Put,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "get",
            Method::Post => "post",
            Method::Patch => "patch",
            Method::Put => "put",
            Method::Delete => "delete",
        }
    }
}

/// Who may call an operation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Auth {
    /// An account's token (api, or ingest for `/ingest`).
    Account,
    /// The hub's admin token.
    Admin,
    /// Anyone (ops routes, the unsubscribe link).
    Open,
}

/// The type of a query parameter.
#[derive(Clone, Copy, Debug)]
pub enum Ty {
    /// A whole number of at least this.
    Whole(i64),
    Text,
    Bool,
    OneOf(&'static [&'static str]),
    /// RFC 3339, or Unix seconds.
    Time,
}

/// A query parameter.
#[derive(Clone, Copy, Debug)]
pub struct Param {
    pub name: &'static str,
    pub ty: Ty,
    pub about: &'static str,
}

impl Param {
    pub const fn new(name: &'static str, ty: Ty, about: &'static str) -> Param {
        Param { name, ty, about }
    }
}

/// The paging of the Phone.com-style lists.
pub const PAGING: &[Param] = &[
    Param::new(
        "limit",
        Ty::Whole(1),
        "How many items (25 by default; more than 500 is read as 500).",
    ),
    Param::new("offset", Ty::Whole(0), "How many items to skip."),
];

/// What an operation answers with a status.
#[derive(Clone, Debug)]
pub enum Reply {
    /// A JSON body of a named schema.
    Json(String),
    /// A body of another media type, described in words.
    Other {
        media: &'static str,
        about: &'static str,
    },
    /// No body.
    Empty,
}

/// One operation: a method on a path, its handler and its documentation.
pub struct Op {
    pub method: Method,
    handler: Option<MethodRouter<AppState>>,
    pub id: String,
    pub summary: String,
    pub about: Option<&'static str>,
    pub tag: &'static str,
    pub auth: Auth,
    pub query: Vec<Param>,
    /// The request body's schema and the media types it is taken in.
    pub body: Option<(String, &'static [&'static str])>,
    pub replies: Vec<(u16, &'static str, Reply)>,
}

/// JSON, the media type of every management body.
pub const JSON: &[&str] = &["application/json"];

macro_rules! op_constructors {
    ($($name:ident => $method:ident, $route:path;)*) => {$(
        pub fn $name<H, T>(handler: H) -> Op
        where
            H: Handler<T, AppState>,
            T: 'static,
        {
            Op::new(Method::$method, $route(handler))
        }
    )*};
}

impl Op {
    op_constructors! {
        get => Get, routing::get;
        post => Post, routing::post;
        patch => Patch, routing::patch;
        put => Put, routing::put;
        delete => Delete, routing::delete;
    }

    fn new(method: Method, handler: MethodRouter<AppState>) -> Op {
        Op {
            method,
            handler: Some(handler),
            id: String::new(),
            summary: String::new(),
            about: None,
            tag: "",
            auth: Auth::Account,
            query: Vec::new(),
            body: None,
            replies: Vec::new(),
        }
    }

    /// Its `operationId` and one-line summary.
    pub fn named(mut self, id: impl Into<String>, summary: impl Into<String>) -> Op {
        self.id = id.into();
        self.summary = summary.into();
        self
    }

    pub fn about(mut self, about: &'static str) -> Op {
        self.about = Some(about);
        self
    }

    pub fn auth(mut self, auth: Auth) -> Op {
        self.auth = auth;
        self
    }

    pub fn query(mut self, params: &[Param]) -> Op {
        self.query.extend_from_slice(params);
        self
    }

    /// A JSON request body of this schema.
    pub fn body(self, schema: impl Into<String>) -> Op {
        self.body_as(schema, JSON)
    }

    pub fn body_as(mut self, schema: impl Into<String>, media: &'static [&'static str]) -> Op {
        self.body = Some((schema.into(), media));
        self
    }

    /// A JSON answer of this schema.
    pub fn reply(self, status: u16, about: &'static str, schema: impl Into<String>) -> Op {
        self.reply_with(status, about, Reply::Json(schema.into()))
    }

    pub fn reply_with(mut self, status: u16, about: &'static str, reply: Reply) -> Op {
        self.replies.push((status, about, reply));
        self
    }
}

/// A router whose every route is documented.
pub struct Api {
    router: Router<AppState>,
    ops: Vec<(String, Op)>,
}

impl Default for Api {
    fn default() -> Self {
        Api::new()
    }
}

impl Api {
    pub fn new() -> Api {
        Api {
            router: Router::new(),
            ops: Vec::new(),
        }
    }

    /// Adds a path's operations, each under `tag` in the document.
    pub fn route(
        mut self,
        path: &str,
        tag: &'static str,
        ops: impl IntoIterator<Item = Op>,
    ) -> Api {
        let mut methods: Option<MethodRouter<AppState>> = None;
        for mut op in ops {
            let handler = op.handler.take().expect("an op is routed once");
            methods = Some(match methods {
                None => handler,
                Some(m) => m.merge(handler),
            });
            op.tag = tag;
            self.ops.push((path.to_string(), op));
        }
        if let Some(methods) = methods {
            self.router = self.router.route(path, methods);
        }
        self
    }

    pub fn merge(mut self, other: Api) -> Api {
        self.router = self.router.merge(other.router);
        self.ops.extend(other.ops);
        self
    }

    /// `other`'s routes under `prefix`. The same routes may be nested under several
    /// prefixes: their operation ids get `suffix` (empty for the first) so each stays unique.
    pub fn nest(mut self, prefix: &str, suffix: &'static str, other: Api) -> Api {
        self.router = self.router.nest(prefix, other.router);
        for (path, mut op) in other.ops {
            op.id.push_str(suffix);
            self.ops.push((format!("{prefix}{path}"), op));
        }
        self
    }

    /// Wraps the routes so far in a layer (a time limit, say); the document is unchanged.
    pub fn map_router(mut self, f: impl FnOnce(Router<AppState>) -> Router<AppState>) -> Api {
        self.router = f(self.router);
        self
    }

    /// The router and the document of its routes.
    pub fn split(self) -> (Router<AppState>, Document) {
        (self.router, Document::of(&self.ops))
    }
}
