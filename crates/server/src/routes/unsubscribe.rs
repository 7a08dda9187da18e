//! The unsubscribe link of e-mail callbacks: following it switches the callback off.

use crate::error::{ApiError, ApiResult};
use crate::openapi::{Api, Auth, Op, Reply};
use crate::AppState;
use axum::extract::{Path, State};
use axum::response::Html;

pub fn router() -> Api {
    Api::new().route(
        "/unsubscribe/{token}",
        "E-mail",
        [Op::get(unsubscribe)
            .named(
                "unsubscribe",
                "Switch off an e-mail callback from the link in its messages",
            )
            .auth(Auth::Open)
            .reply_with(
                200,
                "Switched off.",
                Reply::Other {
                    media: "text/html",
                    about: "A page saying so.",
                },
            )],
    )
}

async fn unsubscribe(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> ApiResult<Html<String>> {
    if token.len() < 16 || !token.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(ApiError::not_found("subscription"));
    }
    let Some((account, callback)) = state.store.unsubscribe(token).await? else {
        return Err(ApiError::not_found("subscription"));
    };
    tracing::info!(%account, callback, "e-mail callback unsubscribed by its link");
    Ok(Html(format!(
        "<!doctype html><title>Unsubscribed</title><p>You will receive no more event e-mails from callback {callback}. \
         Its owner can switch it on again in the API.</p>"
    )))
}
