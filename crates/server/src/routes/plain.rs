//! The routes of a resource that stands alone in its owner's events API (no parent, nothing
//! but its own document): list, create, show, update and delete, the same for each such kind
//! (profiles, schedules) but for its checks, its view and what keeps it from being deleted.

use super::callbacks::not_found_as;
use super::fields::Body;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, JsonObject};
use crate::listing::{page_of, Page};
use crate::openapi::{Api, Op, PAGING};
use crate::AppState;
use axum::extract::{Query, State};
use axum::Json;
use serde_json::{json, Value};
use switchboard_store::{Blocker, Kind, NewResource, Resource};

/// What differs between such resources.
pub struct Plain {
    pub kind: Kind,
    /// The collection's path (`/profiles`).
    pub path: &'static str,
    /// The id's path parameter (`profile_id`).
    pub param: &'static str,
    /// The resource's name in errors (`profile`).
    pub name: &'static str,
    /// Its name in the API document (`Profile`): its schemas are `Profile`, `ProfilePage`,
    /// `ProfileCreate` and `ProfileUpdate`.
    pub title: &'static str,
    /// Its operations' tag in the document (`Profiles`).
    pub tag: &'static str,
    pub view: fn(&Resource) -> Value,
    /// Checks a body over the existing document (`None` when creating).
    pub check: fn(&Body, Option<&Body>) -> ApiResult<Body>,
    /// What refers to it and so keeps it from being deleted.
    pub in_use: fn() -> Blocker,
}

impl Plain {
    pub fn router(&'static self) -> Api {
        let (one, name) = (self.title, self.name);
        Api::new()
            .route(
                self.path,
                self.tag,
                [
                    Op::get(
                        move |State(state): State<AppState>,
                              caller: Caller,
                              Query(query): Query<Vec<(String, String)>>| async move {
                            self.list(&state, &caller, &query).await
                        },
                    )
                    .named(format!("list{}", self.tag), format!("List {name}s"))
                    .query(PAGING)
                    .reply(200, "Newest first.", format!("{one}Page")),
                    Op::post(
                        move |State(state): State<AppState>,
                              caller: Caller,
                              JsonObject(body): JsonObject| async move {
                            self.create(&state, &caller, &body).await
                        },
                    )
                    .named(format!("create{one}"), format!("Create a {name}"))
                    .body(format!("{one}Create"))
                    .reply(200, "Made.", one),
                ],
            )
            .route(
                &format!("{}/{{{}}}", self.path, self.param),
                self.tag,
                [
                    Op::get(
                        move |State(state): State<AppState>, caller: Caller| async move {
                            Ok::<_, ApiError>(Json((self.view)(&self.get(&state, &caller).await?)))
                        },
                    )
                    .named(format!("get{one}"), format!("Get a {name}"))
                    .reply(200, "Found.", one),
                    Op::patch(
                        move |State(state): State<AppState>,
                              caller: Caller,
                              JsonObject(body): JsonObject| async move {
                            self.update(&state, &caller, &body).await
                        },
                    )
                    .named(format!("update{one}"), format!("Update a {name}"))
                    .body(format!("{one}Update"))
                    .reply(200, "As it is now.", one),
                    Op::delete(
                        move |State(state): State<AppState>, caller: Caller| async move {
                            self.remove(&state, &caller).await
                        },
                    )
                    .named(format!("delete{one}"), format!("Delete a {name}"))
                    .reply(200, "Deleted.", "Success")
                    .reply(409, "Something uses it.", "Error"),
                ],
            )
    }

    async fn list(
        &self,
        state: &AppState,
        caller: &Caller,
        query: &[(String, String)],
    ) -> ApiResult<Json<Value>> {
        let page = Page::parse(query, &[])?;
        page_of(state, self.kind, caller.owner, None, &page, self.view).await
    }

    async fn create(
        &self,
        state: &AppState,
        caller: &Caller,
        body: &Body,
    ) -> ApiResult<Json<Value>> {
        let doc = (self.check)(body, None)?;
        let created = state
            .store
            .create_resource(NewResource {
                kind: self.kind,
                owner: caller.owner,
                parent_id: None,
                body: Value::Object(doc),
                refs: Vec::new(),
            })
            .await?;
        Ok(Json((self.view)(&created)))
    }

    async fn get(&self, state: &AppState, caller: &Caller) -> ApiResult<Resource> {
        let id = caller.id(self.param, self.name)?;
        state
            .store
            .get_resource(self.kind, caller.owner, None, id)
            .await?
            .ok_or_else(|| ApiError::not_found(self.name))
    }

    async fn update(
        &self,
        state: &AppState,
        caller: &Caller,
        body: &Body,
    ) -> ApiResult<Json<Value>> {
        let current = self.get(state, caller).await?;
        let doc = (self.check)(body, current.body.as_object())?;
        let updated = state
            .store
            .update_resource(self.kind, caller.owner, None, current.id, move |_| {
                Ok((Value::Object(doc), Vec::new()))
            })
            .await
            .map_err(|e| not_found_as(e, self.name))?;
        Ok(Json((self.view)(&updated)))
    }

    async fn remove(&self, state: &AppState, caller: &Caller) -> ApiResult<Json<Value>> {
        let id = caller.id(self.param, self.name)?;
        state
            .store
            .delete_resource(self.kind, caller.owner, None, id, vec![(self.in_use)()])
            .await
            .map_err(|e| not_found_as(e, self.name))?;
        Ok(Json(json!({ "success": true })))
    }
}
