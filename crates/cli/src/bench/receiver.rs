//! The harness's own webhook receiver: answers 200 at once and notes when each event came.

use anyhow::Result;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

#[derive(Default)]
struct Seen {
    count: AtomicUsize,
    /// Each webhook's id, the path it came to (one per listener), and when.
    events: Mutex<Vec<(String, String, Instant)>>,
}

pub struct Receiver {
    pub url: String,
    seen: Arc<Seen>,
}

async fn take(State(seen): State<Arc<Seen>>, uri: Uri, headers: HeaderMap) -> StatusCode {
    let at = Instant::now();
    // The {"test": 1} verification carries no webhook-id.
    if let Some(id) = headers.get("webhook-id").and_then(|v| v.to_str().ok()) {
        seen.events
            .lock()
            .expect("lock")
            .push((id.to_string(), uri.path().to_string(), at));
        seen.count.fetch_add(1, Ordering::Relaxed);
    }
    StatusCode::OK
}

impl Receiver {
    pub async fn start() -> Result<Receiver> {
        let seen = Arc::new(Seen::default());
        let app = axum::Router::new().fallback(take).with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Receiver { url, seen })
    }

    pub fn count(&self) -> usize {
        self.seen.count.load(Ordering::Relaxed)
    }

    pub fn received(&self) -> Vec<(String, String, Instant)> {
        self.seen.events.lock().expect("lock").clone()
    }
}
