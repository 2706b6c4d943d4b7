//! `pulse-api admin`: `create-project` (here), `rebuild-rollups` ([`rollups`]) and
//! `send-digest` ([`digest`]).
//!
//! `create-project` finds or creates the organization and the project (a new project with its
//! default alert rule, `management::alerts::insert_default`, from `PULSE_ALERT_ERROR_THRESHOLD`),
//! and issues a fresh API key (scopes `ingest` and `read`), stored hashed; the plain key is printed
//! once and never stored.
//!
//! Organizations are found by name (the oldest wins if several share it); projects by
//! (organization, name), which is unique. Running the command twice gives the same project
//! and a second key.

use anyhow::Context;
use diesel::prelude::*;
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::{AsyncConnection, RunQueryDsl};
use pulse_shared::config::{AlertConfig, DatabaseConfig};
use pulse_shared::db;
use pulse_shared::keys;
use pulse_shared::schema::{api_keys, organizations, projects};
use serde::Serialize;
use uuid::Uuid;

use crate::management::{alerts, fields};

pub mod digest;
pub mod rollups;

/// What `create-project` prints.
#[derive(Debug, Serialize)]
pub struct CreatedProject {
    pub organization_id: Uuid,
    pub project_id: Uuid,
    pub api_key: String,
    pub api_key_prefix: String,
}

/// Creates what is missing and a new key. The database must be migrated.
pub async fn create_project(config: &DatabaseConfig, org: &str, name: &str) -> anyhow::Result<CreatedProject> {
    let org = &fields::check_name("--org", org)?;
    let name = &fields::check_name("--name", name)?;
    let alert_threshold = AlertConfig::from_env()?.default_error_threshold;
    let pool = db::build_pool(config, "pulse-api-admin")?;
    let mut conn = db::connection(&pool).await?;

    let existing: Option<Uuid> = organizations::table
        .filter(organizations::name.eq(org))
        .order((organizations::created_at.asc(), organizations::id.asc()))
        .select(organizations::id)
        .first(&mut conn)
        .await
        .optional()
        .context("looking up the organization")?;
    let organization_id = match existing {
        Some(id) => id,
        None => {
            let id = Uuid::now_v7();
            diesel::insert_into(organizations::table)
                .values((organizations::id.eq(id), organizations::name.eq(org)))
                .execute(&mut conn)
                .await
                .context("creating the organization")?;
            id
        }
    };

    // The project and its default alert rule, together (a project found is left as it is).
    let project_id = conn
        .transaction::<_, anyhow::Error, _>(|conn| {
            async move {
                let created = diesel::insert_into(projects::table)
                    .values((
                        projects::id.eq(Uuid::now_v7()),
                        projects::organization_id.eq(organization_id),
                        projects::name.eq(name),
                    ))
                    .on_conflict((projects::organization_id, projects::name))
                    .do_nothing()
                    .execute(conn)
                    .await
                    .context("creating the project")?;
                let project_id: Uuid = projects::table
                    .filter(projects::organization_id.eq(organization_id))
                    .filter(projects::name.eq(name))
                    .select(projects::id)
                    .first(conn)
                    .await
                    .context("reading the project back")?;
                if created == 1 {
                    alerts::insert_default(conn, project_id, alert_threshold)
                        .await
                        .context("creating the project's default alert rule")?;
                }
                Ok(project_id)
            }
            .scope_boxed()
        })
        .await?;

    let key = keys::generate();
    diesel::insert_into(api_keys::table)
        .values((
            api_keys::id.eq(Uuid::now_v7()),
            api_keys::project_id.eq(project_id),
            api_keys::name.eq("default"),
            api_keys::prefix.eq(&key.prefix),
            api_keys::key_hash.eq(&key.hash),
            api_keys::scopes.eq(vec!["ingest".to_owned(), "read".to_owned()]),
        ))
        .execute(&mut conn)
        .await
        .context("storing the API key")?;

    Ok(CreatedProject {
        organization_id,
        project_id,
        api_key: key.plain,
        api_key_prefix: key.prefix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_before_the_database() {
        assert!(fields::check_name("--org", "acme").is_ok());
        assert!(fields::check_name("--org", "").is_err());
        assert!(fields::check_name("--org", "   ").is_err());
        assert!(fields::check_name("--org", &"x".repeat(201)).is_err());
        assert!(fields::check_name("--org", "a\0b").is_err());
    }
}
