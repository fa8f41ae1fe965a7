//! The set-based group commit: a batch of deliveries recorded with a few
//! multi-row statements instead of several statements per delivery. Each
//! statement is a hand-off to sqlx's SQLite worker thread or a round trip
//! to PostgreSQL, and those, not the database's work, were the cost.
//!
//! The outcome must be exactly the one-by-one [`deliveries::apply`] of the
//! same deliveries in order (same outcomes, rows, jobs and dedup keys):
//!
//! - one claim of every `(source, key)`; the first of equal keys in the
//!   batch claims, later ones are `Duplicate`, as they would be one by one;
//! - the claimed deliveries are cut into runs of "plain" ones (apps, Argo
//!   CD history, health); in a run, apps, known history, deployments and
//!   their resolve jobs take one statement each for the whole run;
//! - the run's health reports are recorded together (`batch_health.rs`),
//!   after its deployments; so a run ends before a delivery that names an
//!   app an earlier health report of the run was about (that report must
//!   not see the later delivery's deployments, nor the next report its
//!   drift);
//! - anything else (alerts, forge events, in-cluster rollbacks, Flux
//!   deployments numbered by the ledger, an app carrying a hold) applies
//!   one by one with [`deliveries::apply_claimed`], between the runs.
//!
//! Deployment ids follow the one-by-one order. Job ids may not: in a run
//! the resolve jobs are queued before the health reports' drift jobs.

use std::collections::{HashMap, HashSet};

use rewind_domain::{App, AppName, AppRef, DeploymentObserved, Observation};

use crate::db::{Conn, rows_per_statement, sql_repeated};
use crate::store::{apps, batch_health, deliveries, deployments, jobs};
use crate::{Delivery, DeliveryOutcome, JobPayload, LedgerError};

/// Records `batch` in the open transaction. A delivery that is invalid by
/// itself (checked before any statement) gets its error and changes
/// nothing, as one by one. Any other error leaves the transaction to be
/// rolled back; the caller then records the batch one delivery at a time.
pub(crate) async fn apply_set(
    c: &mut Conn<'_>,
    batch: &[Delivery],
) -> Result<Vec<Result<DeliveryOutcome, LedgerError>>, LedgerError> {
    let invalid: Vec<Option<LedgerError>> = batch
        .iter()
        .map(|d| deliveries::validate(d).err())
        .collect();
    let new = claim(c, batch, &invalid).await?;
    let mut outcomes: Vec<Option<DeliveryOutcome>> = vec![None; batch.len()];
    let mut run: Vec<usize> = Vec::new();
    let mut health_names: HashSet<&AppName> = HashSet::new();
    for (i, d) in batch.iter().enumerate() {
        if invalid[i].is_some() {
            continue;
        }
        if !new[i] {
            outcomes[i] = Some(DeliveryOutcome::Duplicate);
            continue;
        }
        let plain = is_plain(d);
        if !plain || names(d).any(|n| health_names.contains(n)) {
            apply_run(c, batch, &run, &mut outcomes).await?;
            run.clear();
            health_names.clear();
        }
        if plain {
            run.push(i);
            health_names.extend(d.observations.iter().filter_map(|o| match o {
                Observation::Health(h) => Some(&h.app),
                _ => None,
            }));
        } else {
            outcomes[i] = Some(deliveries::apply_claimed(c, d).await?);
        }
    }
    apply_run(c, batch, &run, &mut outcomes).await?;
    Ok(outcomes
        .into_iter()
        .zip(invalid)
        .map(|(outcome, invalid)| match (outcome, invalid) {
            (_, Some(e)) => Err(e),
            (Some(outcome), None) => Ok(outcome),
            (None, None) => Err(LedgerError::Invalid(
                "a delivery of the batch was skipped".into(),
            )),
        })
        .collect())
}

/// Inserts the idempotency rows of the whole batch; answers, per delivery,
/// whether it is new (its row was inserted, and it is the first of its key
/// in the batch).
async fn claim(
    c: &mut Conn<'_>,
    batch: &[Delivery],
    invalid: &[Option<LedgerError>],
) -> Result<Vec<bool>, LedgerError> {
    let mut first: HashMap<(&str, &str), usize> = HashMap::new();
    for (i, d) in batch.iter().enumerate() {
        if invalid[i].is_some() {
            continue;
        }
        first
            .entry((d.source.as_str(), d.key.as_str()))
            .or_insert(i);
    }
    let mut unique: Vec<usize> = first.values().copied().collect();
    unique.sort_unstable();
    let mut inserted: HashSet<(String, String)> = HashSet::new();
    for chunk in unique.chunks(rows_per_statement(3)) {
        // In PostgreSQL a concurrent transaction inserting the same key
        // makes this wait for it; once it commits, DO NOTHING applies.
        let mut q = sql_repeated(
            "INSERT INTO webhook_deliveries (source, key, received_at) VALUES ",
            "(?, ?, ?)",
            ", ",
            chunk.len(),
            " ON CONFLICT (source, key) DO NOTHING RETURNING source, key",
        );
        for &i in chunk {
            let d = &batch[i];
            q = q
                .bind(d.source.as_str())
                .bind(d.key.as_str())
                .bind(d.received_at);
        }
        for row in c.fetch_all(q).await? {
            inserted.insert((row.text("source")?, row.text("key")?));
        }
    }
    Ok(batch
        .iter()
        .enumerate()
        .map(|(i, d)| {
            first.get(&(d.source.as_str(), d.key.as_str())) == Some(&i)
                && inserted.contains(&(d.source.clone(), d.key.clone()))
        })
        .collect())
}

/// Whether the set-based path covers every observation of `d`. Two
/// health reports on one app name read each other's writes: one by one.
fn is_plain(d: &Delivery) -> bool {
    let mut reported = HashSet::new();
    d.observations.iter().all(|o| match o {
        // An upsert keeps an existing row's hold but inserts a new row's:
        // with holds, the order of inserts matters; leave it to one by one.
        Observation::App(app) => app.held_since.is_none(),
        Observation::Deployment(dep) => dep.cluster_revision.is_some(),
        Observation::Health(h) => reported.insert(&h.app),
        _ => false,
    })
}

/// The app names a delivery is about.
fn names(d: &Delivery) -> impl Iterator<Item = &AppName> {
    d.observations.iter().filter_map(|o| match o {
        Observation::App(app) => Some(&app.name),
        Observation::Deployment(dep) => Some(&dep.app),
        Observation::Health(h) => Some(&h.app),
        _ => None,
    })
}

/// Records a run of claimed plain deliveries.
async fn apply_run(
    c: &mut Conn<'_>,
    batch: &[Delivery],
    run: &[usize],
    outcomes: &mut [Option<DeliveryOutcome>],
) -> Result<(), LedgerError> {
    if run.is_empty() {
        return Ok(());
    }
    upsert_apps(c, batch, run).await?;

    // Deployments in one-by-one order: by delivery, then by app and
    // cluster revision within it (the order `apply` sorts them in).
    let mut per_delivery: Vec<Vec<&DeploymentObserved>> = run
        .iter()
        .map(|&i| {
            let mut observed: Vec<_> = batch[i]
                .observations
                .iter()
                .filter_map(|o| match o {
                    Observation::Deployment(dep) => Some(dep),
                    _ => None,
                })
                .collect();
            observed.sort_by_key(|dep| (dep.app_ref(), dep.cluster_revision.unwrap_or(i64::MAX)));
            observed
        })
        .collect();
    let known = known_history(c, &per_delivery).await?;
    // Entries the ledger has, or an earlier delivery of the run adds, are
    // skipped. An entry twice in one delivery stays twice: one by one, the
    // second insert conflicts, and that uses up an id (a PostgreSQL
    // sequence value, a SQLite AUTOINCREMENT number), so later ids match.
    let mut earlier: HashSet<(String, i64)> = HashSet::new();
    let mut rows = Vec::new();
    for (k, observed) in per_delivery.iter_mut().enumerate() {
        observed.retain(|dep| {
            let key = (dep.app_ref().to_string(), dep.cluster_revision.unwrap_or(0));
            !known.contains(&key) && !earlier.contains(&key)
        });
        earlier.extend(
            observed
                .iter()
                .map(|dep| (dep.app_ref().to_string(), dep.cluster_revision.unwrap_or(0))),
        );
        let now = batch[run[k]].received_at;
        rows.extend(observed.iter().map(|dep| (*dep, now)));
    }
    let ids = deployments::insert_numbered_many(c, &rows).await?;

    let mut new_deployments: Vec<Vec<i64>> = vec![Vec::new(); run.len()];
    let mut resolve = Vec::new();
    let mut resolve_of = Vec::new();
    for (k, observed) in per_delivery.iter().enumerate() {
        let now = batch[run[k]].received_at;
        let mut listed = HashSet::new();
        for dep in observed {
            let app = dep.app_ref();
            let Some(&id) = ids.get(&(app.to_string(), dep.cluster_revision.unwrap_or(0))) else {
                continue;
            };
            if !listed.insert(id) {
                continue;
            }
            tracing::debug!(
                app.name = %app,
                deployment.id = id,
                deployment.revision = %dep.revision,
                "recorded deployment"
            );
            new_deployments[k].push(id);
            if let Some(commit) = &dep.commit {
                let job = JobPayload::ResolveDeployment {
                    deployment_id: id,
                    app: app.name.clone(),
                    commit: commit.clone(),
                };
                resolve.push((job.kind(), job.fields(), job.dedup_key(), now));
                resolve_of.push(k);
            }
        }
    }
    let mut job_count = vec![0usize; run.len()];
    for (k, queued) in resolve_of
        .into_iter()
        .zip(jobs::enqueue_many(c, &resolve).await?)
    {
        job_count[k] += usize::from(queued);
    }

    // The run's health reports are about distinct app names (see
    // `apply_set`), so they can be recorded together.
    let mut reports = Vec::new();
    let mut report_of = Vec::new();
    for (k, &i) in run.iter().enumerate() {
        let d = &batch[i];
        for o in &d.observations {
            if let Observation::Health(h) = o {
                reports.push((h, d.received_at));
                report_of.push(k);
            }
        }
    }
    let queued = batch_health::record_many(c, &reports).await?;
    for (k, n) in report_of.into_iter().zip(queued) {
        job_count[k] += n;
    }

    for (k, &i) in run.iter().enumerate() {
        outcomes[i] = Some(DeliveryOutcome::Recorded {
            new_deployments: std::mem::take(&mut new_deployments[k]),
            new_alerts: Vec::new(),
            jobs: job_count[k],
            new_cluster_rollbacks: Vec::new(),
        });
    }
    Ok(())
}

/// The apps of a run: placeholder rows (and locks) for apps only seen in
/// deployments, then one upsert of every described app, the last
/// description winning as it would one by one. Both in app order, so
/// concurrent batches on PostgreSQL lock rows in the same order.
async fn upsert_apps(
    c: &mut Conn<'_>,
    batch: &[Delivery],
    run: &[usize],
) -> Result<(), LedgerError> {
    let mut described: HashMap<AppRef, &App> = HashMap::new();
    let mut placeholders: HashMap<AppRef, (rewind_domain::Source, chrono::DateTime<chrono::Utc>)> =
        HashMap::new();
    for &i in run {
        let d = &batch[i];
        let here: HashSet<AppRef> = d
            .observations
            .iter()
            .filter_map(|o| match o {
                Observation::App(app) => Some(app.app_ref()),
                _ => None,
            })
            .collect();
        for o in &d.observations {
            match o {
                Observation::App(app) => {
                    described.insert(app.app_ref(), app);
                }
                Observation::Deployment(dep) if !here.contains(&dep.app_ref()) => {
                    placeholders
                        .entry(dep.app_ref())
                        .or_insert((dep.source, d.received_at));
                }
                _ => {}
            }
        }
    }
    // A placeholder inserted first is overwritten by a later description;
    // a description first makes the placeholder's insert do nothing. The
    // row ends as the last description either way (no holds here), so the
    // placeholders can go first.
    let mut placeholders: Vec<_> = placeholders
        .into_iter()
        .map(|(app, (source, now))| (app, source, now))
        .collect();
    placeholders.sort_by(|a, b| a.0.cmp(&b.0));
    if !placeholders.is_empty() {
        apps::ensure_and_lock_many(c, &placeholders).await?;
    }
    let mut described: Vec<(AppRef, &App)> = described.into_iter().collect();
    described.sort_by(|a, b| a.0.cmp(&b.0));
    let described: Vec<&App> = described.into_iter().map(|(_, app)| app).collect();
    if !described.is_empty() {
        apps::upsert_many(c, &described).await?;
    }
    Ok(())
}

/// The numbered history entries the ledger has already, for the whole run:
/// one range per app and delivery, in one query.
async fn known_history(
    c: &mut Conn<'_>,
    per_delivery: &[Vec<&DeploymentObserved>],
) -> Result<HashSet<(String, i64)>, LedgerError> {
    let mut ranges: Vec<(String, i64, i64)> = Vec::new();
    for observed in per_delivery {
        for same_app in observed.chunk_by(|a, b| a.app == b.app && a.cluster == b.cluster) {
            let numbered = same_app.iter().filter_map(|dep| dep.cluster_revision);
            if let (Some(low), Some(high)) = (numbered.clone().min(), numbered.max()) {
                ranges.push((same_app[0].app_ref().to_string(), low, high));
            }
        }
    }
    if ranges.is_empty() {
        return Ok(HashSet::new());
    }
    deployments::revisions_in(c, &ranges).await
}
