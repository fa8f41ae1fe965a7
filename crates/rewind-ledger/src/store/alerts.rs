//! Alert episodes, unique on `(fingerprint, starts_at)`. `app` is the app
//! reference `name@cluster` the alert was matched to, or the bare name when
//! the alert names no cluster and several clusters run that name (it then
//! counts for each of them).

use chrono::{DateTime, Utc};

use rewind_domain::{Alert, AlertStatus, AppRef};

use crate::db::{Arg, Conn, Row, sql};
use crate::{LedgerError, StoredAlert};

macro_rules! alert_columns {
    () => {
        "id, app, cluster, name, status, severity, fingerprint, group_key, starts_at, ends_at, \
         generator_url, labels, annotations, deployment_id, received_at"
    };
}

fn from_row(row: &Row) -> Result<StoredAlert, LedgerError> {
    let status = match row.text("status")?.as_str() {
        "resolved" => AlertStatus::Resolved,
        _ => AlertStatus::Firing,
    };
    let app = row.text("app")?;
    let (name, cluster) = AppRef::parse_reference(&app).map_err(|e| {
        LedgerError::corrupt(sqlx::Error::ColumnDecode {
            index: "app".into(),
            source: e.into(),
        })
    })?;
    Ok(StoredAlert {
        id: row.i64("id")?,
        alert: Alert {
            app: name,
            cluster,
            name: row.text("name")?,
            status,
            severity: row.opt_text("severity")?,
            fingerprint: row.text("fingerprint")?,
            group_key: row.text("group_key")?,
            starts_at: row.time("starts_at")?,
            ends_at: row.opt_time("ends_at")?,
            generator_url: row.opt_text("generator_url")?,
            labels: row.json("labels")?,
            annotations: row.json("annotations")?,
        },
        deployment_id: row.opt_i64("deployment_id")?,
        received_at: row.time("received_at")?,
    })
}

/// What recording one alert did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Recorded {
    /// A new episode.
    New(i64),
    /// A known firing episode is now resolved.
    Resolved,
    /// A repeat: nothing changed.
    Unchanged,
}

pub(crate) async fn record(
    c: &mut Conn<'_>,
    alert: &Alert,
    deployment_id: Option<i64>,
    now: DateTime<Utc>,
) -> Result<Recorded, LedgerError> {
    let insert = sql(
        "INSERT INTO alerts (app, cluster, name, status, severity, fingerprint, \
                          group_key, starts_at, ends_at, generator_url, labels, annotations, \
                          deployment_id, received_at) \
                      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
                      ON CONFLICT (fingerprint, starts_at) DO NOTHING RETURNING id",
    )
    .bind(match alert.app_ref() {
        Some(app) => app.to_string(),
        None => alert.app.to_string(),
    })
    .bind(alert.cluster.as_ref().map(|c| c.as_str()))
    .bind(alert.name.as_str())
    .bind(alert.status.as_str())
    .bind(alert.severity.clone())
    .bind(alert.fingerprint.as_str())
    .bind(alert.group_key.as_str())
    .bind(alert.starts_at)
    .bind(alert.ends_at)
    .bind(alert.generator_url.clone())
    .bind(Arg::json(&alert.labels)?)
    .bind(Arg::json(&alert.annotations)?)
    .bind(deployment_id)
    .bind(now);
    if let Some(row) = c.fetch_optional(insert).await? {
        return Ok(Recorded::New(row.i64("id")?));
    }
    if alert.status == AlertStatus::Resolved {
        let resolve = sql("UPDATE alerts SET status = 'resolved', ends_at = $3 \
                           WHERE fingerprint = $1 AND starts_at = $2 AND status = 'firing'")
        .bind(alert.fingerprint.as_str())
        .bind(alert.starts_at)
        .bind(alert.ends_at);
        if c.execute(resolve).await? > 0 {
            return Ok(Recorded::Resolved);
        }
    }
    Ok(Recorded::Unchanged)
}

pub(crate) async fn for_app(
    c: &mut Conn<'_>,
    app: &AppRef,
    limit: u32,
) -> Result<Vec<StoredAlert>, LedgerError> {
    let q = sql(concat!(
        "SELECT ",
        alert_columns!(),
        " FROM alerts WHERE app IN ($1, $3) ORDER BY id DESC LIMIT $2"
    ))
    .bind(app.to_string())
    .bind(i64::from(limit))
    .bind(app.name.as_str());
    c.fetch_all(q).await?.iter().map(from_row).collect()
}

pub(crate) async fn by_id(c: &mut Conn<'_>, id: i64) -> Result<Option<StoredAlert>, LedgerError> {
    let q = sql(concat!(
        "SELECT ",
        alert_columns!(),
        " FROM alerts WHERE id = $1"
    ))
    .bind(id);
    c.fetch_optional(q)
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

pub(crate) async fn firing(
    c: &mut Conn<'_>,
    app: &AppRef,
) -> Result<Vec<StoredAlert>, LedgerError> {
    let q = sql(concat!(
        "SELECT ",
        alert_columns!(),
        " FROM alerts WHERE app IN ($1, $2) AND status = 'firing' ORDER BY id DESC"
    ))
    .bind(app.to_string())
    .bind(app.name.as_str());
    c.fetch_all(q).await?.iter().map(from_row).collect()
}
