//! Accounts and their tokens. A token is shown once, at creation; only a SHA-256 hash of its
//! secret is stored, and it is compared in constant time.

use crate::{Result, SqliteStore, StoreError};
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
    read_at: std::time::Instant,
}

/// Tokens already read from the database (they never change once created; they go only
/// with their account).
#[derive(Default)]
pub(crate) struct TokenCache {
    by_id: RwLock<HashMap<i64, CachedToken>>,
    /// How long a token read is trusted before it is read again (`None`: until this store
    /// erases its account). A store shared by several nodes reads tokens again, so an account
    /// erased through one node stops working on the others too.
    max_age: Option<std::time::Duration>,
}

fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

impl TokenCache {
    /// A cache whose tokens are read again once they are `max_age` old.
    pub(crate) fn expiring(max_age: std::time::Duration) -> TokenCache {
        TokenCache {
            max_age: Some(max_age),
            ..TokenCache::default()
        }
    }

    /// Forgets an account's tokens (the account is being erased).
    pub(crate) fn forget_account(&self, account: AccountId) {
        self.by_id
            .write()
            .expect("token cache")
            .retain(|_, t| t.info.account != account);
    }
}

/// A new token's secret and the hash that is stored of it.
pub(crate) fn new_secret() -> (String, [u8; 32]) {
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    let secret = hex::encode(bytes);
    let digest = hash(&secret);
    (secret, digest)
}

/// The token as its holder presents it.
pub(crate) fn token_text(scope: Scope, id: i64, secret: &str) -> String {
    format!("sb_{}_{id}_{secret}", scope.as_str())
}

impl TokenCache {
    /// Checks a presented token: its row is read once (`load` gives the row of a token id:
    /// account, scope, extension, stored hash, time zone), then kept, since tokens never
    /// change; the secret is compared in constant time. `None` for a token never issued.
    pub(crate) async fn check<F, Fut>(&self, token: &str, load: F) -> Result<Option<TokenInfo>>
    where
        F: FnOnce(i64) -> Fut,
        Fut: std::future::Future<Output = Result<Option<TokenRow>>>,
    {
        let Some((id, secret)) = split_token(token) else {
            return Ok(None);
        };
        let presented = hash(secret);
        let fresh = |t: &CachedToken| self.max_age.is_none_or(|age| t.read_at.elapsed() < age);
        let cached = self
            .by_id
            .read()
            .expect("token cache")
            .get(&id)
            .filter(|t| fresh(t))
            .cloned();
        let entry = match cached {
            Some(entry) => entry,
            None => {
                let Some((account, scope, extension_id, stored, default_tz)) = load(id).await?
                else {
                    self.by_id.write().expect("token cache").remove(&id);
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
                    read_at: std::time::Instant::now(),
                };
                self.by_id
                    .write()
                    .expect("token cache")
                    .insert(id, entry.clone());
                entry
            }
        };
        Ok(bool::from(entry.hash.ct_eq(&presented)).then_some(entry.info))
    }
}

/// A token's row: account, scope, extension, the stored hash, the time zone.
pub(crate) type TokenRow = (i64, String, Option<i64>, Vec<u8>, Option<String>);

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

impl SqliteStore {
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
        let (secret, digest) = new_secret();
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
        Ok(token_text(scope, id, &secret))
    }

    /// Who a token belongs to, or `None` for a token the hub never issued.
    pub async fn authenticate(&self, token: &str) -> Result<Option<TokenInfo>> {
        let readers = self.inner.readers.clone();
        self.inner
            .tokens
            .check(token, |id| async move {
                readers
                    .read(move |conn| {
                        Ok(conn
                            .query_row(
                                "SELECT account_id, scope, extension_id, secret_hash, default_tz FROM tokens WHERE id = ?1",
                                [id],
                                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                            )
                            .optional()?)
                    })
                    .await
            })
            .await
    }
}
