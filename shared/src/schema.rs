//! Diesel table definitions, kept in step with `migrations/` by hand (the `events` table is
//! partitioned and has no primary key of its own; `id` is declared as one for diesel only).

diesel::table! {
    organizations (id) {
        id -> Uuid,
        name -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    projects (id) {
        id -> Uuid,
        organization_id -> Uuid,
        name -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Uuid,
        project_id -> Uuid,
        name -> Text,
        prefix -> Text,
        key_hash -> Bytea,
        scopes -> Array<Text>,
        created_at -> Timestamptz,
        last_used_at -> Nullable<Timestamptz>,
        expires_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    events (id) {
        id -> Uuid,
        project_id -> Uuid,
        #[sql_name = "timestamp"]
        timestamp -> Timestamptz,
        received_at -> Timestamptz,
        event_type -> Text,
        source -> Nullable<Text>,
        user_id -> Nullable<Text>,
        session_id -> Nullable<Text>,
        duration_ms -> Nullable<Int8>,
        priority -> Nullable<Text>,
        status -> Nullable<Text>,
        tags -> Array<Text>,
        data -> Jsonb,
        metadata -> Jsonb,
    }
}

diesel::table! {
    event_ids (id) {
        id -> Uuid,
        project_id -> Uuid,
        #[sql_name = "timestamp"]
        timestamp -> Timestamptz,
    }
}

diesel::joinable!(projects -> organizations (organization_id));
diesel::joinable!(api_keys -> projects (project_id));
diesel::allow_tables_to_appear_in_same_query!(organizations, projects, api_keys, events, event_ids);
