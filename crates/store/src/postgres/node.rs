//! A node's name on the database, kept from one start to the next.
//!
//! A node writes its name on the deliveries it claims (`outbox.leased_by`). A node that
//! crashed and starts again under the same name takes back at once what it had claimed and
//! not finished — otherwise those deliveries wait until their leases run out. That is only
//! safe if the old process is really gone, so a node holds a session advisory lock on its
//! name for as long as it runs, on a connection of its own: a second process started under
//! a name in use is refused with a clear error, and a process that died (or lost its
//! connection) has let go of it.

use super::PgStore;
use crate::{Result, StoreError};
use std::time::Duration;
use tokio_postgres::NoTls;

/// The advisory-lock key space of node names (the first of the two 32-bit keys): apart from
/// the single 64-bit keys of calls, migrations and retention.
const NODE_LOCK_SPACE: i32 = 0x5357_4e44; // "SWND"

/// Seconds between keepalives on the connection holding a node's name.
const KEEPALIVE_SECS: u64 = 5;

/// The longest node name taken.
const MAX_NODE_NAME: usize = 64;

/// Holds a node's name lock on a connection of its own; dropped with the last copy of the
/// store, which ends the connection and so lets go of the lock.
pub(super) struct NodeLock {
    holder: tokio::task::JoinHandle<()>,
}

impl Drop for NodeLock {
    fn drop(&mut self) {
        self.holder.abort();
    }
}

impl PgStore {
    /// The same store acting as the node named `node` (a name kept from one start to the
    /// next: see the module's doc). Refused when another running process holds that name;
    /// the deliveries this name had claimed and not finished are claimable again at once.
    pub async fn as_node(mut self, node: &str) -> Result<PgStore> {
        check_name(node)?;
        let client = self.hold_name(node).await?.ok_or_else(|| {
            StoreError::Config(format!(
                "node_id: \"{node}\" is the name of a node running on {} now; each node needs a data_dir of its own (or its own node_id). If that node died with its machine, its name is free again within 20 s",
                self.place
            ))
        })?;
        let freed = client
            .execute(
                "UPDATE outbox SET leased_by = NULL, lease_until = NULL
                  WHERE status = 'pending' AND leased_by = $1",
                &[&node],
            )
            .await
            .map_err(|e| self.failed(e))?;
        if freed > 0 {
            tracing::info!(
                node,
                deliveries = freed,
                "took back the deliveries this node had claimed before it stopped"
            );
        }
        let (store, name) = (self.clone(), node.to_string());
        let holder = tokio::spawn(async move { store.keep_name(&name, client).await });
        self.node = node.to_string();
        self.node_lock = Some(std::sync::Arc::new(NodeLock { holder }));
        Ok(self)
    }

    /// A connection of its own holding the advisory lock on `node`; `None` when another
    /// session holds it.
    async fn hold_name(&self, node: &str) -> Result<Option<tokio_postgres::Client>> {
        // Keepalives every few seconds both ways: when the node's machine dies with it, the
        // server ends its session (and frees its name) within about 20 s, not TCP's 2 hours.
        let mut config = (*self.config).clone();
        config
            .options(format!(
                "-c tcp_keepalives_idle={KEEPALIVE_SECS} -c tcp_keepalives_interval={KEEPALIVE_SECS} -c tcp_keepalives_count=3"
            ))
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(KEEPALIVE_SECS));
        let (client, connection) = config
            .connect(NoTls)
            .await
            .map_err(|e| self.unreachable(&e))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "the node lock's connection ended");
            }
        });
        let held: bool = client
            .query_one(
                "SELECT pg_try_advisory_lock($1, hashtext($2))",
                &[&NODE_LOCK_SPACE, &node],
            )
            .await
            .map_err(|e| self.failed(e))?
            .get(0);
        Ok(held.then_some(client))
    }

    /// Keeps the name lock while the node runs: when its connection ends (the database
    /// restarted, say), takes it again as soon as the database lets it.
    async fn keep_name(&self, node: &str, mut client: tokio_postgres::Client) {
        loop {
            while !client.is_closed() {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            tracing::warn!(
                node,
                "lost the connection holding this node's name; taking it again"
            );
            let mut said = false;
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                match self.hold_name(node).await {
                    Ok(Some(again)) => {
                        client = again;
                        break;
                    }
                    // The server has not yet ended the old session (it will within ~20 s), or
                    // another process took the name meanwhile: said once.
                    Ok(None) if !said => {
                        said = true;
                        tracing::warn!(
                            node,
                            "this node's name is held by another session: taking it when it is free"
                        );
                    }
                    Ok(None) | Err(_) => {}
                }
            }
        }
    }
}

/// A node name: 1 to [`MAX_NODE_NAME`] printable ASCII characters, no spaces.
fn check_name(node: &str) -> Result<()> {
    if node.is_empty() || node.len() > MAX_NODE_NAME || !node.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(StoreError::Config(format!(
            "node_id: expected 1 to {MAX_NODE_NAME} printable characters without spaces, got {node:?}"
        )));
    }
    Ok(())
}
