//! What a Job or sync hook runs: schema migration tools recognised by image
//! and by command/args (Alembic, Flyway, Liquibase, golang-migrate, Rails,
//! Django, Prisma, Atlas, sqitch, dbmate, knex, sequelize, goose, …), and
//! Argo CD / Helm sync hooks with the phase they run in. A hook that runs
//! no known migration tool is only a hook: the `migration` risk must mean
//! migrations, or reviewers learn to ignore it.

use crate::node::Node;
use crate::render::{Object, split_image};

/// Image repositories (after the registry) that are migration tools.
const IMAGES: [(&str, &str); 10] = [
    ("flyway/flyway", "Flyway"),
    ("redgate/flyway", "Flyway"),
    ("boxfuse/flyway", "Flyway"),
    ("liquibase/liquibase", "Liquibase"),
    ("liquibase", "Liquibase"),
    ("migrate/migrate", "golang-migrate"),
    ("arigaio/atlas", "Atlas"),
    ("sqitch/sqitch", "sqitch"),
    ("amacneil/dbmate", "dbmate"),
    ("schemahero/schemahero", "SchemaHero"),
];

/// (program, subcommand words any of which must follow it, tool). An empty
/// list means the program alone is enough.
const COMMANDS: [(&str, &[&str], &str); 22] = [
    ("alembic", &["upgrade", "downgrade", "stamp"], "Alembic"),
    (
        "flyway",
        &["migrate", "baseline", "repair", "undo"],
        "Flyway",
    ),
    (
        "liquibase",
        &["update", "update-count", "update-to-tag", "rollback"],
        "Liquibase",
    ),
    (
        "migrate",
        &["up", "down", "goto", "force"],
        "golang-migrate",
    ),
    ("manage.py", &["migrate"], "Django"),
    ("django-admin", &["migrate"], "Django"),
    (
        "rails",
        &["db:migrate", "db:prepare", "db:schema:load"],
        "Rails",
    ),
    (
        "rake",
        &["db:migrate", "db:prepare", "db:schema:load"],
        "Rails",
    ),
    ("prisma", &["migrate", "db"], "Prisma"),
    ("atlas", &["migrate", "schema"], "Atlas"),
    ("sqitch", &["deploy", "revert"], "sqitch"),
    ("dbmate", &["up", "migrate", "rollback", "down"], "dbmate"),
    (
        "knex",
        &["migrate:latest", "migrate:up", "migrate:rollback"],
        "knex",
    ),
    ("sequelize", &["db:migrate"], "sequelize"),
    ("sequelize-cli", &["db:migrate"], "sequelize"),
    (
        "goose",
        &["up", "up-by-one", "up-to", "down", "redo"],
        "goose",
    ),
    ("diesel", &["migration"], "Diesel"),
    ("sqlx", &["migrate"], "sqlx"),
    ("typeorm", &["migration:run", "migration:revert"], "TypeORM"),
    ("mix", &["ecto.migrate"], "Ecto"),
    ("artisan", &["migrate"], "Laravel"),
    ("refinery", &["migrate"], "refinery"),
];

/// Annotations that make an object a sync hook.
const HOOK_ANNOTATIONS: [&str; 2] = ["argocd.argoproj.io/hook", "helm.sh/hook"];

/// The migration tool an object's containers run, if any (Jobs, CronJobs,
/// Pods and anything else with a pod template).
pub fn migration_tool(object: &Object) -> Option<&'static str> {
    let mut found = None;
    visit_containers(&object.body, &mut |container| {
        if found.is_none() {
            found = container_tool(container);
        }
    });
    found
}

fn visit_containers(node: &Node, f: &mut dyn FnMut(&Node)) {
    match node {
        Node::Map(map) => {
            for (key, value) in map {
                if matches!(key.as_str(), "containers" | "initContainers") {
                    value.as_seq().iter().for_each(&mut *f);
                } else {
                    visit_containers(value, f);
                }
            }
        }
        Node::Seq(items) => items.iter().for_each(|item| visit_containers(item, f)),
        _ => {}
    }
}

fn container_tool(container: &Node) -> Option<&'static str> {
    if let Some(image) = container.get("image").and_then(Node::as_str) {
        let (name, _, _) = split_image(image);
        // Drop a registry host ("ghcr.io/", "docker.io/", "r.io:5000/").
        let repo = match name.split_once('/') {
            Some((host, rest)) if host.contains('.') || host.contains(':') => rest,
            _ => name,
        };
        let repo = repo.strip_prefix("library/").unwrap_or(repo);
        if let Some((_, tool)) = IMAGES.iter().find(|(image, _)| *image == repo) {
            return Some(tool);
        }
    }
    let mut words: Vec<String> = Vec::new();
    for key in ["command", "args"] {
        for item in container.get(key).map_or(&[][..], Node::as_seq) {
            if let Some(text) = item.as_str() {
                // `sh -c "…"` scripts: split them into words too.
                words.extend(
                    text.split(|c: char| c.is_whitespace() || ";&|()`\"'".contains(c))
                        .filter(|w| !w.is_empty())
                        .map(str::to_string),
                );
            }
        }
    }
    command_tool(&words)
}

/// The migration tool a command line runs.
pub fn command_tool(words: &[String]) -> Option<&'static str> {
    for (i, word) in words.iter().enumerate() {
        let program = word.rsplit('/').next().unwrap_or(word);
        // `python manage.py migrate`, `bin/rails db:migrate`,
        // `npx prisma migrate deploy`, `mix ecto.migrate`.
        if program == "ecto.migrate" {
            return Some("Ecto");
        }
        for (name, subcommands, tool) in COMMANDS {
            if program != name {
                continue;
            }
            let rest = &words[i + 1..];
            if subcommands.is_empty()
                || rest
                    .iter()
                    .take(4)
                    .any(|w| subcommands.contains(&w.as_str()))
            {
                return Some(tool);
            }
        }
        if program == "db:migrate" {
            return Some("Rails");
        }
    }
    None
}

/// The sync hook phase of an object (`PreSync`, `PostSync`, `pre-upgrade`,
/// …), when it is an Argo CD or Helm hook. Argo CD's `Skip` is not a hook.
pub fn hook_phase(object: &Object) -> Option<String> {
    let annotations = object.body.at(&["metadata", "annotations"])?;
    HOOK_ANNOTATIONS.iter().find_map(|key| {
        let value = annotations.get(key)?.as_str()?.trim();
        (!value.is_empty() && value != "Skip").then(|| value.to_string())
    })
}

/// When a hook phase runs, in words ("before the sync").
pub fn phase_words(phase: &str) -> String {
    let first = phase.split(',').next().unwrap_or(phase).trim();
    match first {
        "PreSync" => "runs before the sync".into(),
        "Sync" => "runs during the sync".into(),
        "PostSync" => "runs after the sync".into(),
        "SyncFail" => "runs when the sync fails".into(),
        "PostDelete" => "runs after the app is deleted".into(),
        helm => match helm.split_once('-') {
            Some((when @ ("pre" | "post"), what)) => {
                let when = if when == "pre" { "before" } else { "after" };
                format!("runs {when} the Helm {what}")
            }
            _ => format!("runs at {helm}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_documents;

    fn job(container: &str) -> Object {
        let text = format!(
            "apiVersion: batch/v1\nkind: Job\nmetadata:\n  generateName: m-\n  annotations: {{argocd.argoproj.io/hook: PreSync}}\nspec:\n  template:\n    spec:\n      containers:\n      - {container}\n"
        );
        Object {
            body: parse_documents(text.as_bytes()).unwrap().remove(0),
            source: "job.yaml".into(),
            generated: None,
        }
    }

    #[test]
    fn migration_tools_are_recognised_by_image_and_command() {
        let cases = [
            (
                "{name: m, image: 'flyway/flyway:10', args: [migrate]}",
                Some("Flyway"),
            ),
            (
                "{name: m, image: 'docker.io/liquibase/liquibase:4.29'}",
                Some("Liquibase"),
            ),
            (
                "{name: m, image: 'migrate/migrate:v4.17.0', args: ['-path=/m', '-database', 'postgres://x', up]}",
                Some("golang-migrate"),
            ),
            (
                "{name: m, image: 'ghcr.io/amacneil/dbmate:2'}",
                Some("dbmate"),
            ),
            ("{name: m, image: 'arigaio/atlas:latest'}", Some("Atlas")),
            (
                "{name: m, image: 'app:1', command: [alembic, upgrade, head]}",
                Some("Alembic"),
            ),
            (
                "{name: m, image: 'app:1', command: [python, manage.py, migrate, --noinput]}",
                Some("Django"),
            ),
            (
                "{name: m, image: 'app:1', command: [bundle, exec, rails, 'db:migrate']}",
                Some("Rails"),
            ),
            (
                "{name: m, image: 'app:1', command: [sh, -c, 'bin/rails db:migrate && echo ok']}",
                Some("Rails"),
            ),
            (
                "{name: m, image: 'app:1', command: [npx, prisma, migrate, deploy]}",
                Some("Prisma"),
            ),
            (
                "{name: m, image: 'app:1', command: [sqitch, deploy, db:pg://x]}",
                Some("sqitch"),
            ),
            (
                "{name: m, image: 'app:1', args: [npx, knex, 'migrate:latest']}",
                Some("knex"),
            ),
            (
                "{name: m, image: 'app:1', args: [npx, sequelize-cli, 'db:migrate']}",
                Some("sequelize"),
            ),
            (
                "{name: m, image: 'app:1', args: [migrate, up, --target, '0004']}",
                Some("golang-migrate"),
            ),
            (
                "{name: m, image: 'app:1', command: [/usr/local/bin/goose, postgres, 'dsn', up]}",
                Some("goose"),
            ),
            (
                "{name: m, image: 'app:1', command: [mix, ecto.migrate]}",
                Some("Ecto"),
            ),
            // Not migrations, whatever the Job is called.
            (
                "{name: upgrade-sql-schema, image: 'alpine:latest', command: [sleep, '5']}",
                None,
            ),
            (
                "{name: m, image: 'alpine:latest', command: [sh, -c, 'echo migrate later']}",
                None,
            ),
            (
                "{name: m, image: 'curlimages/curl', args: [-X, POST, 'https://hooks.example/migrate']}",
                None,
            ),
            ("{name: m, image: 'app:1', command: [flyway, info]}", None),
        ];
        for (container, want) in cases {
            assert_eq!(migration_tool(&job(container)), want, "{container}");
        }
    }

    #[test]
    fn hook_phases_read_argo_cd_and_helm_annotations() {
        let object = job("{name: m, image: x}");
        assert_eq!(hook_phase(&object).as_deref(), Some("PreSync"));
        assert_eq!(phase_words("PreSync"), "runs before the sync");
        assert_eq!(
            phase_words("pre-upgrade,pre-install"),
            "runs before the Helm upgrade"
        );
        let mut skip = object.clone();
        *skip
            .body
            .map_at_mut(&["metadata", "annotations"])
            .get_mut("argocd.argoproj.io/hook")
            .unwrap() = Node::Str("Skip".into());
        assert_eq!(hook_phase(&skip), None);
    }
}
