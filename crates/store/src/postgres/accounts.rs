//! Accounts and their tokens on PostgreSQL: as on SQLite (`crate::accounts`, whose token
//! rules — the shape, the hash, the constant-time check, the cache — are shared), with ids
//! that several nodes may be making at once.

use super::PgStore;
use crate::accounts::{new_secret, token_text, TokenRow};
use crate::{Account, Result, Scope, StoreError, TokenInfo};
use switchboard_model::AccountId;

/// How many times making an account with the next free id is tried when another node took
/// that id at the same moment.
const ID_TRIES: usize = 16;

impl PgStore {
    /// Creates an account with the given id (refused if taken), or the next free one.
    pub async fn create_account(&self, id: Option<i64>, name: String) -> Result<Account> {
        let client = self.client().await?;
        let created_at = jiff::Timestamp::now().as_second();
        for _ in 0..ID_TRIES {
            let made = client
                .query_opt(
                    "INSERT INTO accounts (id, name, created_at)
                     SELECT COALESCE($1, (SELECT COALESCE(MAX(id), 1000000) + 1 FROM accounts)), $2, $3
                     ON CONFLICT (id) DO NOTHING RETURNING id",
                    &[&id, &name, &created_at],
                )
                .await
                .map_err(|e| self.failed(e))?;
            match (made, id) {
                (Some(row), _) => {
                    return Ok(Account {
                        id: AccountId(row.get(0)),
                        name,
                        created_at,
                    })
                }
                (None, Some(id)) => {
                    return Err(StoreError::Conflict(format!("account {id} already exists")))
                }
                // Another node took the next id: the one after it.
                (None, None) => continue,
            }
        }
        Err(StoreError::Conflict(
            "no free account id: too many accounts are being made at once".into(),
        ))
    }

    pub async fn account(&self, id: AccountId) -> Result<Option<Account>> {
        let client = self.client().await?;
        Ok(client
            .query_opt(
                "SELECT name, created_at FROM accounts WHERE id = $1",
                &[&id.0],
            )
            .await
            .map_err(|e| self.failed(e))?
            .map(|r| Account {
                id,
                name: r.get(0),
                created_at: r.get(1),
            }))
    }

    /// Creates a token and returns it; this is the only time its secret is seen.
    pub async fn create_token(
        &self,
        account: AccountId,
        scope: Scope,
        extension_id: Option<i64>,
        default_tz: Option<String>,
    ) -> Result<String> {
        let (secret, digest) = new_secret();
        let client = self.client().await?;
        let id: Option<i64> = client
            .query_opt(
                "INSERT INTO tokens (account_id, scope, extension_id, secret_hash, created_at, default_tz)
                 SELECT id, $2, $3, $4, $5, $6 FROM accounts WHERE id = $1
                 RETURNING id",
                &[
                    &account.0,
                    &scope.as_str(),
                    &extension_id,
                    &digest.as_slice(),
                    &jiff::Timestamp::now().as_second(),
                    &default_tz,
                ],
            )
            .await
            .map_err(|e| self.failed(e))?
            .map(|r| r.get(0));
        let id = id.ok_or(StoreError::NotFound)?;
        Ok(token_text(scope, id, &secret))
    }

    /// Who a token belongs to (made through any node), or `None` for a token never issued.
    pub async fn authenticate(&self, token: &str) -> Result<Option<TokenInfo>> {
        self.tokens
            .check(token, |id| async move {
                let client = self.client().await?;
                let row = client
                    .query_opt(
                        "SELECT account_id, scope, extension_id, secret_hash, default_tz
                           FROM tokens WHERE id = $1",
                        &[&id],
                    )
                    .await
                    .map_err(|e| self.failed(e))?;
                Ok(row.map(|r| -> TokenRow { (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)) }))
            })
            .await
    }
}
