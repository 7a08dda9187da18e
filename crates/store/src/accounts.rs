//! Accounts and their tokens. A token is shown once, at creation; only a SHA-256 hash of its
//! secret is stored, and it is compared in constant time.

use crate::{Result, Store, StoreError};
use rand::RngCore;
use rusqlite::{params, OptionalExtension};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::RwLock;
use subtle::ConstantTimeEq;
use switchboard_model::AccountId;

#[derive(Debug, Clone, Serialize)]
pub struct Account {
    pub id: AccountId,
    pub name: String,
    pub created_at: i64,
}

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Management, query and ingest.
    Api,
    /// Ingest only.
    Ingest,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Api => "api",
            Scope::Ingest => "ingest",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "api" => Some(Scope::Api),
            "ingest" => Some(Scope::Ingest),
            _ => None,
        }
    }
}

/// Who a presented token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub account: AccountId,
    pub scope: Scope,
    pub extension_id: Option<i64>,
    /// Time zone of the sources that ingest with this token, when set.
    pub default_tz: Option<String>,
}

#[derive(Clone)]
struct CachedToken {
    hash: [u8; 32],
    info: TokenInfo,
}

/// Tokens already read from the database (they never change once created).
#[derive(Default)]
pub(crate) struct TokenCache {
    by_id: RwLock<HashMap<i64, CachedToken>>,
}

fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

impl TokenCache {
    /// Forgets an account's tokens (the account is being erased).
    pub(crate) fn forget_account(&self, account: AccountId) {
        self.by_id
            .write()
            .expect("token cache")
            .retain(|_, t| t.info.account != account);
    }
}

/// Tokens look like `sb_<scope>_<id>_<secret>`: the id finds the row, the secret is checked.
fn split_token(token: &str) -> Option<(i64, &str)> {
    let rest = token.strip_prefix("sb_")?;
    let (_scope, rest) = rest.split_once('_')?;
    let (id, secret) = rest.split_once('_')?;
    Some((id.parse().ok()?, secret))
}

fn now_secs() -> i64 {
    jiff::Timestamp::now().as_second()
}

impl Store {
    /// Creates an account with the given id, or the next free one.
    pub async fn create_account(&self, id: Option<i64>, name: String) -> Result<Account> {
        self.inner
            .writer
            .write(move |ctx| {
                let created_at = now_secs();
                let id = match id {
                    Some(id) => {
                        let exists: Option<i64> = ctx
                            .conn
                            .query_row("SELECT id FROM accounts WHERE id = ?1", [id], |r| r.get(0))
                            .optional()?;
                        if exists.is_some() {
                            return Err(StoreError::Conflict(format!(
                                "account {id} already exists"
                            )));
                        }
                        id
                    }
                    None => ctx.conn.query_row(
                        "SELECT COALESCE(MAX(id), 1000000) + 1 FROM accounts",
                        [],
                        |r| r.get(0),
                    )?,
                };
                ctx.conn.execute(
                    "INSERT INTO accounts (id, name, created_at) VALUES (?1, ?2, ?3)",
                    params![id, name, created_at],
                )?;
                Ok(Account {
                    id: AccountId(id),
                    name,
                    created_at,
                })
            })
            .await
    }

    pub async fn account(&self, id: AccountId) -> Result<Option<Account>> {
        self.inner
            .readers
            .read(move |conn| {
                Ok(conn
                    .query_row(
                        "SELECT name, created_at FROM accounts WHERE id = ?1",
                        [id.0],
                        |r| {
                            Ok(Account {
                                id,
                                name: r.get(0)?,
                                created_at: r.get(1)?,
                            })
                        },
                    )
                    .optional()?)
            })
            .await
    }

    /// Creates a token and returns it; this is the only time its secret is seen.
    pub async fn create_token(
        &self,
        account: AccountId,
        scope: Scope,
        extension_id: Option<i64>,
        default_tz: Option<String>,
    ) -> Result<String> {
        let mut bytes = [0u8; 24];
        rand::rng().fill_bytes(&mut bytes);
        let secret = hex::encode(bytes);
        let digest = hash(&secret);
        let id: i64 =
            self.inner
                .writer
                .write(move |ctx| {
                    let exists: Option<i64> = ctx
                        .conn
                        .query_row("SELECT id FROM accounts WHERE id = ?1", [account.0], |r| {
                            r.get(0)
                        })
                        .optional()?;
                    if exists.is_none() {
                        return Err(StoreError::NotFound);
                    }
                    ctx.conn.execute(
                    "INSERT INTO tokens (account_id, scope, extension_id, secret_hash, created_at, default_tz)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![account.0, scope.as_str(), extension_id, digest.to_vec(), now_secs(), default_tz],
                )?;
                    Ok(ctx.conn.last_insert_rowid())
                })
                .await?;
        Ok(format!("sb_{}_{id}_{secret}", scope.as_str()))
    }

    /// Who a token belongs to, or `None` for a token the hub never issued.
    pub async fn authenticate(&self, token: &str) -> Result<Option<TokenInfo>> {
        let Some((id, secret)) = split_token(token) else {
            return Ok(None);
        };
        let presented = hash(secret);
        let cached = self
            .inner
            .tokens
            .by_id
            .read()
            .expect("token cache")
            .get(&id)
            .cloned();
        let entry = match cached {
            Some(entry) => entry,
            None => {
                let row = self
                    .inner
                    .readers
                    .read(move |conn| {
                        Ok(conn
                            .query_row(
                                "SELECT account_id, scope, extension_id, secret_hash, default_tz FROM tokens WHERE id = ?1",
                                [id],
                                |r| {
                                    Ok((
                                        r.get::<_, i64>(0)?,
                                        r.get::<_, String>(1)?,
                                        r.get::<_, Option<i64>>(2)?,
                                        r.get::<_, Vec<u8>>(3)?,
                                        r.get::<_, Option<String>>(4)?,
                                    ))
                                },
                            )
                            .optional()?)
                    })
                    .await?;
                let Some((account, scope, extension_id, stored, default_tz)) = row else {
                    return Ok(None);
                };
                let (Some(scope), Ok(hash)) = (Scope::parse(&scope), <[u8; 32]>::try_from(stored))
                else {
                    return Ok(None);
                };
                let entry = CachedToken {
                    hash,
                    info: TokenInfo {
                        account: AccountId(account),
                        scope,
                        extension_id,
                        default_tz,
                    },
                };
                self.inner
                    .tokens
                    .by_id
                    .write()
                    .expect("token cache")
                    .insert(id, entry.clone());
                entry
            }
        };
        if bool::from(entry.hash.ct_eq(&presented)) {
            Ok(Some(entry.info))
        } else {
            Ok(None)
        }
    }
}
