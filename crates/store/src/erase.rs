//! Erasure: forgetting every trace of a phone number, when the law asks.
//!
//! An event is erased when a number in it — in what the source sent (`raw`, verbatim) or in
//! what the hub made of it — is the number: the same digits, whatever separators or prefix
//! (`+1 (555) 123-4567`, `sip:15551234567@pbx`), or one ending with the other where the
//! shorter has at least 9 digits (a national form beside an international one). A call is erased when one of its
//! events is, or when its record names the number; with it go all its events, their
//! deliveries and attempts, and its aliases. The events are found on a reader, a chunk at a
//! time, and removed by the writer in small jobs, so ingest goes on meanwhile; what arrives
//! during an erasure is not part of it (run it again).

use crate::retention::{forget_call, forget_event};
use crate::{Result, SqliteStore};
use rusqlite::params;
use rusqlite::types::Value as SqlValue;
use std::collections::BTreeSet;
use switchboard_model::AccountId;

/// What an erasure removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Erased {
    pub events: usize,
    pub calls: usize,
    pub deliveries: usize,
}

/// Events read per reader job while looking.
pub(crate) const SCAN_CHUNK: i64 = 2000;
/// Rows removed per writer job.
pub(crate) const ERASE_CHUNK: usize = 250;

impl SqliteStore {
    /// Erases every event and call that mentions the number's `digits` (in one account, or
    /// in all), with their deliveries, attempts and aliases.
    pub async fn erase_number(&self, account: Option<AccountId>, digits: String) -> Result<Erased> {
        // The events that mention it.
        let mut seqs: BTreeSet<i64> = BTreeSet::new();
        let mut after = 0i64;
        loop {
            let needle = digits.clone();
            let (found, last) = self
                .inner
                .readers
                .read(move |conn| {
                    let mut stmt = conn.prepare_cached(
                        "SELECT seq, body FROM events WHERE seq > ?1 AND (?2 IS NULL OR account_id = ?2)
                         ORDER BY seq LIMIT ?3",
                    )?;
                    let rows = stmt
                        .query_map(params![after, account.map(|a| a.0), SCAN_CHUNK], |r| {
                            Ok((r.get::<_, i64>(0)?, r.get::<_, SqlValue>(1)?))
                        })?
                        .collect::<rusqlite::Result<Vec<_>>>()?;
                    let last = rows.last().map(|(seq, _)| *seq);
                    let mut found = Vec::new();
                    for (seq, body) in rows {
                        let event = crate::body::event_of((&body).into())?;
                        if mentions(&serde_json::to_string(&event)?, &needle) {
                            found.push(seq);
                        }
                    }
                    Ok((found, last))
                })
                .await?;
            seqs.extend(found);
            match last {
                Some(seq) => after = seq,
                None => break,
            }
        }
        // The calls they belong to, and those whose record names the number.
        let needle = digits.clone();
        let matched = seqs.clone();
        let calls: Vec<(String, Vec<i64>)> = self
            .inner
            .readers
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT id, event_seqs, search, record FROM calls WHERE (?1 IS NULL OR account_id = ?1)",
                )?;
                let rows = stmt.query_map(params![account.map(|a| a.0)], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, SqlValue>(3)?,
                    ))
                })?;
                let mut out = Vec::new();
                for row in rows {
                    let (id, listed, search, record) = row?;
                    let record = match record {
                        SqlValue::Null => None,
                        stored => Some(
                            String::from_utf8_lossy(&crate::body::unpack_json((&stored).into())?)
                                .into_owned(),
                        ),
                    };
                    let events: Vec<i64> =
                        listed.split(',').filter_map(|s| s.parse().ok()).collect();
                    let names = [search, record]
                        .iter()
                        .flatten()
                        .any(|text| mentions(text, &needle));
                    if names || events.iter().any(|s| matched.contains(s)) {
                        out.push((id, events));
                    }
                }
                Ok(out)
            })
            .await?;
        for (_, events) in &calls {
            seqs.extend(events);
        }
        let seqs: Vec<i64> = seqs.into_iter().collect();
        let ids: Vec<String> = calls.into_iter().map(|(id, _)| id).collect();
        let mut erased = self.forget_events(&seqs).await?;
        erased += self.forget_calls(&ids).await?;
        Ok(erased)
    }
}

impl SqliteStore {
    /// Erases an account and everything of it: events, deliveries and attempts, calls and
    /// their aliases, agents, callbacks and the rest of its configuration, its tokens. The
    /// rows go a chunk per writer job, so other accounts' ingest goes on meanwhile; the
    /// account's tokens stop working first.
    pub async fn erase_account(&self, account: AccountId) -> Result<Erased> {
        let mut erased = self.erase_account_rows(account).await?;
        // A batch whose token was checked just before the tokens went may have been stored
        // since: one more pass takes it (no token of the account works by now).
        erased += self.erase_account_rows(account).await?;
        Ok(erased)
    }

    async fn erase_account_rows(&self, account: AccountId) -> Result<Erased> {
        // Its tokens first: nothing of it is taken while it goes.
        self.inner
            .writer
            .write(move |ctx| {
                ctx.conn
                    .execute("DELETE FROM tokens WHERE account_id = ?1", [account.0])?;
                Ok(())
            })
            .await?;
        self.inner.tokens.forget_account(account);
        let mut erased = Erased::default();
        // Its events (with their deliveries), then its calls, a chunk at a time, until none
        // is left.
        loop {
            let seqs: Vec<i64> = self
                .of_account(
                    "SELECT seq FROM events WHERE account_id = ?1 LIMIT ?2",
                    account,
                )
                .await?;
            if seqs.is_empty() {
                break;
            }
            erased += self.forget_events(&seqs).await?;
        }
        loop {
            let ids: Vec<String> = self
                .of_account(
                    "SELECT id FROM calls WHERE account_id = ?1 LIMIT ?2",
                    account,
                )
                .await?;
            if ids.is_empty() {
                break;
            }
            erased += self.forget_calls(&ids).await?;
        }
        self.inner
            .writer
            .write(move |ctx| {
                let a = account.0;
                ctx.conn.execute_batch(&format!(
                    "DELETE FROM callback_health WHERE callback_id IN
                       (SELECT id FROM resources WHERE account_id = {a} AND kind = 'callback');
                     DELETE FROM resources WHERE account_id = {a};
                     DELETE FROM agents WHERE account_id = {a};
                     DELETE FROM call_aliases WHERE account_id = {a};
                     DELETE FROM retention_marks WHERE account_id = {a};
                     DELETE FROM accounts WHERE id = {a};"
                ))?;
                ctx.invalidate(account);
                Ok(())
            })
            .await?;
        Ok(erased)
    }
}

impl SqliteStore {
    /// Removes these events with their deliveries and attempts, a writer job per chunk.
    async fn forget_events(&self, seqs: &[i64]) -> Result<Erased> {
        let mut erased = Erased::default();
        for chunk in seqs.chunks(ERASE_CHUNK) {
            let chunk = chunk.to_vec();
            erased += self
                .inner
                .writer
                .write(move |ctx| {
                    let mut erased = Erased::default();
                    for seq in chunk {
                        let (events, deliveries) = forget_event(ctx.conn, seq)?;
                        erased.events += events;
                        erased.deliveries += deliveries;
                    }
                    Ok(erased)
                })
                .await?;
        }
        Ok(erased)
    }

    /// Removes these calls with their aliases, a writer job per chunk.
    async fn forget_calls(&self, ids: &[String]) -> Result<Erased> {
        let mut erased = Erased::default();
        for chunk in ids.chunks(ERASE_CHUNK) {
            let chunk = chunk.to_vec();
            erased.calls += self
                .inner
                .writer
                .write(move |ctx| {
                    let mut n = 0;
                    for id in chunk {
                        n += usize::from(forget_call(ctx, &id)?);
                    }
                    Ok(n)
                })
                .await?;
        }
        Ok(erased)
    }

    /// A chunk of an account's rows by `sql` (`?1` the account, `?2` the chunk's size).
    async fn of_account<T: rusqlite::types::FromSql + Send + 'static>(
        &self,
        sql: &'static str,
        account: AccountId,
    ) -> Result<Vec<T>> {
        self.inner
            .readers
            .read(move |conn| {
                Ok(conn
                    .prepare_cached(sql)?
                    .query_map(params![account.0, ERASE_CHUNK as i64], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?)
            })
            .await
    }
}

impl std::ops::AddAssign for Erased {
    fn add_assign(&mut self, more: Erased) {
        self.events += more.events;
        self.calls += more.calls;
        self.deliveries += more.deliveries;
    }
}

/// The digits of a text, in order (`+1 (555) 123-4567` → `15551234567`).
pub fn digits_of(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).collect()
}

/// Whether a number written in `text` is the number `digits` (see the module's rule).
pub(crate) fn mentions(text: &str, digits: &str) -> bool {
    let same = |found: &str| {
        let (short, long) = if found.len() <= digits.len() {
            (found, digits)
        } else {
            (digits, found)
        };
        found == digits || (short.len() >= 9 && long.ends_with(short))
    };
    let mut run = String::new();
    for c in text.chars().chain(std::iter::once('"')) {
        if c.is_ascii_digit() {
            run.push(c);
        } else if matches!(c, ' ' | '-' | '(' | ')' | '.') && !run.is_empty() {
            // Separators inside a written number.
        } else {
            if !run.is_empty() && same(&run) {
                return true;
            }
            run.clear();
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::mentions;

    #[test]
    fn a_number_is_found_however_it_is_written_and_only_as_a_whole() {
        let n = "15551234567";
        for text in [
            r#"{"to":"+15551234567"}"#,
            r#"{"uri":"sip:15551234567@pbx.example"}"#,
            r#"{"text":"call +1 (555) 123-4567 back"}"#,
            r#"{"national":"5551234567"}"#,
            r#"{"n":15551234567}"#,
        ] {
            assert!(mentions(text, n), "{text}");
        }
        for text in [
            r#"{"ts":1796577073,"to":"+15550000001"}"#,
            r#"{"to":"+15551234568"}"#,
            r#"{"id":"1234567"}"#,
            r#"{"a":"1555","b":"1234567"}"#,
        ] {
            assert!(!mentions(text, n), "{text}");
        }
    }
}
