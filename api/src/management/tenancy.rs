//! Project soft deletion, shared by the routes that delete projects (`DELETE
//! /v1/projects/{id}`) and the ones that delete whole organizations with them (`DELETE
//! /v1/users/me`): the project is marked deleted and renamed (so its name can be reused), its
//! keys are revoked at once, and the scheduler's purge job removes its events later.

use diesel::prelude::*;
use diesel::sql_types::{Array, Bytea, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::error::ApiError;
use pulse_shared::schema::projects;

#[derive(QueryableByName)]
struct RevokedHash {
    #[diesel(sql_type = Bytea)]
    key_hash: Vec<u8>,
}

/// Marks live projects deleted (renamed so the name can be reused) and revokes their keys.
/// Returns the hashes of the keys it revoked. Run it inside a transaction.
pub async fn mark_deleted(conn: &mut AsyncPgConnection, ids: &[Uuid]) -> Result<Vec<Vec<u8>>, ApiError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    diesel::sql_query(
        "UPDATE projects SET deleted_at = now(), name = 'deleted-' || id::text \
         WHERE id = ANY($1) AND deleted_at IS NULL",
    )
    .bind::<Array<SqlUuid>, _>(ids)
    .execute(conn)
    .await?;
    let revoked: Vec<RevokedHash> = diesel::sql_query(
        "UPDATE api_keys SET revoked_at = now() WHERE project_id = ANY($1) AND revoked_at IS NULL RETURNING key_hash",
    )
    .bind::<Array<SqlUuid>, _>(ids)
    .load(conn)
    .await?;
    Ok(revoked.into_iter().map(|row| row.key_hash).collect())
}

/// [`mark_deleted`] for every live project of the given organizations.
pub async fn mark_deleted_in_organizations(
    conn: &mut AsyncPgConnection,
    organizations: &[Uuid],
) -> Result<Vec<Vec<u8>>, ApiError> {
    if organizations.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = projects::table
        .filter(projects::organization_id.eq_any(organizations))
        .filter(projects::deleted_at.is_null())
        .select(projects::id)
        .load(conn)
        .await?;
    mark_deleted(conn, &ids).await
}
