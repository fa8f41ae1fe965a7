//! API tokens made at run time and web UI sessions. Only digests are
//! stored; the tokens themselves are shown once, to their creator.

use chrono::{DateTime, Utc};

use crate::db::{Conn, Row, sql};
use crate::{LedgerError, StoredApiToken, UiSession};

fn token_from_row(row: &Row) -> Result<StoredApiToken, LedgerError> {
    Ok(StoredApiToken {
        name: row.text("name")?,
        role: row.text("role")?,
        digest: row.text("digest")?,
        created_at: row.time("created_at")?,
        created_by: row.text("created_by")?,
    })
}

pub(crate) async fn create(c: &mut Conn<'_>, t: &StoredApiToken) -> Result<(), LedgerError> {
    let q = sql(
        "INSERT INTO api_tokens (name, role, digest, created_at, created_by) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(t.name.as_str())
    .bind(t.role.as_str())
    .bind(t.digest.as_str())
    .bind(t.created_at)
    .bind(t.created_by.as_str());
    match c.execute(q).await {
        Ok(_) => Ok(()),
        Err(LedgerError::Conflict { .. }) => Err(LedgerError::conflict(format!(
            "a token named {:?} exists already (revoke it first)",
            t.name
        ))),
        Err(e) => Err(e),
    }
}

pub(crate) async fn by_digest(
    c: &mut Conn<'_>,
    digest: &str,
) -> Result<Option<StoredApiToken>, LedgerError> {
    let q =
        sql("SELECT name, role, digest, created_at, created_by FROM api_tokens WHERE digest = $1")
            .bind(digest);
    c.fetch_optional(q)
        .await?
        .as_ref()
        .map(token_from_row)
        .transpose()
}

pub(crate) async fn list(c: &mut Conn<'_>) -> Result<Vec<StoredApiToken>, LedgerError> {
    let q = sql("SELECT name, role, digest, created_at, created_by FROM api_tokens ORDER BY name");
    c.fetch_all(q).await?.iter().map(token_from_row).collect()
}

/// Deletes the token and every session it signed in; `false` when there
/// was no such token.
pub(crate) async fn revoke(c: &mut Conn<'_>, name: &str) -> Result<bool, LedgerError> {
    let q = sql("DELETE FROM ui_sessions WHERE token_digest IN \
         (SELECT digest FROM api_tokens WHERE name = $1)")
    .bind(name);
    c.execute(q).await?;
    let q = sql("DELETE FROM api_tokens WHERE name = $1").bind(name);
    Ok(c.execute(q).await? > 0)
}

pub(crate) async fn count(c: &mut Conn<'_>) -> Result<u64, LedgerError> {
    let row = c
        .fetch_one(sql("SELECT COUNT(*) AS n FROM api_tokens"))
        .await?;
    Ok(u64::try_from(row.i64("n")?).unwrap_or(0))
}

/// Stores a session, dropping expired ones on the way.
pub(crate) async fn create_session(c: &mut Conn<'_>, s: &UiSession) -> Result<(), LedgerError> {
    c.execute(sql("DELETE FROM ui_sessions WHERE expires_at < $1").bind(s.created_at))
        .await?;
    let q = sql(
        "INSERT INTO ui_sessions (digest, token_digest, csrf, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(s.digest.as_str())
    .bind(s.token_digest.as_str())
    .bind(s.csrf.as_str())
    .bind(s.created_at)
    .bind(s.expires_at);
    c.execute(q).await?;
    Ok(())
}

pub(crate) async fn session(
    c: &mut Conn<'_>,
    digest: &str,
    now: DateTime<Utc>,
) -> Result<Option<UiSession>, LedgerError> {
    let q = sql(
        "SELECT digest, token_digest, csrf, created_at, expires_at FROM ui_sessions \
         WHERE digest = $1 AND expires_at > $2",
    )
    .bind(digest)
    .bind(now);
    c.fetch_optional(q)
        .await?
        .map(|row| {
            Ok(UiSession {
                digest: row.text("digest")?,
                token_digest: row.text("token_digest")?,
                csrf: row.text("csrf")?,
                created_at: row.time("created_at")?,
                expires_at: row.time("expires_at")?,
            })
        })
        .transpose()
}

pub(crate) async fn delete_session(c: &mut Conn<'_>, digest: &str) -> Result<(), LedgerError> {
    c.execute(sql("DELETE FROM ui_sessions WHERE digest = $1").bind(digest))
        .await?;
    Ok(())
}
