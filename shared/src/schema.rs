//! Diesel table definitions, kept in step with `migrations/` by hand (the `events` table is
//! partitioned and has no primary key of its own; `id` is declared as one for diesel only).

diesel::table! {
    organizations (id) {
        id -> Uuid,
        name -> Text,
        created_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    projects (id) {
        id -> Uuid,
        organization_id -> Uuid,
        name -> Text,
        created_at -> Timestamptz,
        retention_days -> Int4,
        ingest_rate_limit_per_sec -> Nullable<Int4>,
        deleted_at -> Nullable<Timestamptz>,
        status_page_enabled -> Bool,
        status_page_slug -> Nullable<Text>,
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
        rotated_from -> Nullable<Uuid>,
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
        priority -> Nullable<Int4>,
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

diesel::table! {
    users (id) {
        id -> Uuid,
        email -> Text,
        name -> Text,
        password_hash -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    memberships (organization_id, user_id) {
        organization_id -> Uuid,
        user_id -> Uuid,
        role -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    refresh_tokens (id) {
        id -> Uuid,
        user_id -> Uuid,
        family_id -> Uuid,
        token_hash -> Bytea,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    metric_points (id) {
        id -> Uuid,
        project_id -> Uuid,
        name -> Text,
        timestamp -> Timestamptz,
        value -> Float8,
        labels -> Jsonb,
        received_at -> Timestamptz,
    }
}

diesel::table! {
    metric_point_ids (id) {
        id -> Uuid,
        project_id -> Uuid,
        timestamp -> Timestamptz,
    }
}

diesel::table! {
    metric_rollups (project_id, name, bucket) {
        project_id -> Uuid,
        name -> Text,
        bucket -> Timestamptz,
        count -> Int8,
        sum -> Float8,
        min -> Float8,
        max -> Float8,
        sketch -> Bytea,
    }
}

diesel::table! {
    metric_latest (project_id, name, labels_hash) {
        project_id -> Uuid,
        name -> Text,
        labels_hash -> Uuid,
        labels -> Jsonb,
        timestamp -> Timestamptz,
        id -> Uuid,
        value -> Float8,
    }
}

diesel::table! {
    webhooks (id) {
        id -> Uuid,
        project_id -> Uuid,
        name -> Text,
        url -> Text,
        description -> Text,
        event_types -> Array<Text>,
        filter_event_types -> Nullable<Array<Text>>,
        filter_sources -> Nullable<Array<Text>>,
        headers -> Jsonb,
        enabled -> Bool,
        disabled_reason -> Nullable<Text>,
        disabled_at -> Nullable<Timestamptz>,
        max_attempts -> Int4,
        secret -> Text,
        previous_secret -> Nullable<Text>,
        previous_secret_expires_at -> Nullable<Timestamptz>,
        failing_since -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    webhook_messages (id) {
        id -> Uuid,
        project_id -> Uuid,
        #[sql_name = "type"]
        message_type -> Text,
        event_ids -> Nullable<Array<Uuid>>,
        event_types -> Nullable<Array<Text>>,
        sources -> Nullable<Array<Nullable<Text>>>,
        payload -> Nullable<Jsonb>,
        created_at -> Timestamptz,
        webhook_ids -> Nullable<Array<Uuid>>,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> Uuid,
        webhook_id -> Uuid,
        project_id -> Uuid,
        message_id -> Text,
        #[sql_name = "type"]
        message_type -> Text,
        event_ids -> Nullable<Array<Uuid>>,
        payload -> Nullable<Jsonb>,
        status -> Text,
        attempts -> Int4,
        next_attempt_at -> Nullable<Timestamptz>,
        lease -> Nullable<Uuid>,
        created_at -> Timestamptz,
        last_attempt_at -> Nullable<Timestamptz>,
        last_response_status -> Nullable<Int4>,
        last_error -> Nullable<Text>,
        completed_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    webhook_attempts (id) {
        id -> Uuid,
        delivery_id -> Uuid,
        webhook_id -> Uuid,
        attempt -> Int4,
        attempted_at -> Timestamptz,
        duration_ms -> Int4,
        response_status -> Nullable<Int4>,
        error_class -> Nullable<Text>,
        error_message -> Nullable<Text>,
        response_body -> Nullable<Text>,
    }
}

diesel::table! {
    alert_rules (id) {
        id -> Uuid,
        project_id -> Uuid,
        name -> Text,
        enabled -> Bool,
        kind -> Text,
        filter_event_type -> Nullable<Text>,
        filter_source -> Nullable<Text>,
        filter_status -> Nullable<Text>,
        window_s -> Int4,
        op -> Text,
        threshold -> Float8,
        min_events -> Int4,
        cooldown_s -> Int4,
        renotify_s -> Int4,
        emails -> Array<Text>,
        webhook_ids -> Array<Uuid>,
        notify_owners -> Bool,
        next_evaluation_at -> Timestamptz,
        last_evaluated_at -> Nullable<Timestamptz>,
        last_observed -> Nullable<Float8>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    alert_incidents (id) {
        id -> Uuid,
        rule_id -> Uuid,
        project_id -> Uuid,
        state -> Text,
        rule_name -> Text,
        kind -> Text,
        op -> Text,
        threshold -> Float8,
        window_s -> Int4,
        observed -> Float8,
        last_observed -> Float8,
        started_at -> Timestamptz,
        resolved_at -> Nullable<Timestamptz>,
        notifications -> Int4,
        last_notified_at -> Timestamptz,
    }
}

diesel::table! {
    email_messages (id) {
        id -> Uuid,
        project_id -> Nullable<Uuid>,
        kind -> Text,
        message_id -> Text,
        recipient -> Text,
        subject -> Text,
        text_body -> Text,
        html_body -> Text,
        status -> Text,
        attempts -> Int4,
        next_attempt_at -> Nullable<Timestamptz>,
        lease -> Nullable<Uuid>,
        last_error -> Nullable<Text>,
        created_at -> Timestamptz,
        sent_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    email_attempts (id) {
        id -> Uuid,
        email_id -> Uuid,
        attempt -> Int4,
        attempted_at -> Timestamptz,
        duration_ms -> Int4,
        error -> Nullable<Text>,
    }
}

diesel::table! {
    password_resets (token_hash) {
        token_hash -> Bytea,
        user_id -> Uuid,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
    }
}

diesel::joinable!(projects -> organizations (organization_id));
diesel::joinable!(memberships -> organizations (organization_id));
diesel::joinable!(memberships -> users (user_id));
diesel::joinable!(refresh_tokens -> users (user_id));
diesel::joinable!(api_keys -> projects (project_id));
diesel::joinable!(webhooks -> projects (project_id));
diesel::joinable!(webhook_deliveries -> webhooks (webhook_id));
diesel::joinable!(webhook_attempts -> webhook_deliveries (delivery_id));
diesel::joinable!(alert_rules -> projects (project_id));
diesel::joinable!(alert_incidents -> alert_rules (rule_id));
diesel::joinable!(monitors -> projects (project_id));
diesel::joinable!(monitor_checks -> monitors (monitor_id));
diesel::joinable!(monitor_daily -> monitors (monitor_id));
diesel::joinable!(monitor_incidents -> monitors (monitor_id));
diesel::joinable!(digest_subscriptions -> projects (project_id));
diesel::joinable!(digest_subscriptions -> users (user_id));
diesel::joinable!(email_attempts -> email_messages (email_id));
diesel::joinable!(password_resets -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(
    organizations,
    projects,
    api_keys,
    events,
    event_ids,
    users,
    memberships,
    refresh_tokens,
    metric_points,
    metric_point_ids,
    metric_rollups,
    metric_latest,
    webhooks,
    webhook_messages,
    webhook_deliveries,
    webhook_attempts,
    alert_rules,
    alert_incidents,
    email_messages,
    email_attempts,
    password_resets,
    monitors,
    monitor_checks,
    monitor_daily,
    monitor_incidents,
    monitor_breakers,
    digest_subscriptions
);

diesel::table! {
    job_runs (job, tick_at) {
        job -> Text,
        tick_at -> Timestamptz,
        replica -> Text,
        started_at -> Timestamptz,
        finished_at -> Nullable<Timestamptz>,
        outcome -> Text,
        error -> Nullable<Text>,
        summary -> Nullable<Text>,
        attempts -> Integer,
        duration_ms -> Nullable<BigInt>,
    }
}

diesel::table! {
    monitors (id) {
        id -> Uuid,
        project_id -> Uuid,
        name -> Text,
        url -> Text,
        method -> Text,
        headers -> Jsonb,
        body -> Nullable<Text>,
        interval_s -> Int4,
        timeout_ms -> Int4,
        expected_status -> Jsonb,
        body_contains -> Nullable<Text>,
        json_pointer -> Nullable<Text>,
        json_equals -> Nullable<Jsonb>,
        max_latency_ms -> Nullable<Int4>,
        cert_expiry_days -> Int4,
        failures_before_down -> Int4,
        renotify_s -> Int4,
        paused -> Bool,
        maintenance -> Jsonb,
        emails -> Array<Text>,
        webhook_ids -> Array<Uuid>,
        state -> Text,
        consecutive_failures -> Int4,
        state_changed_at -> Nullable<Timestamptz>,
        next_check_at -> Timestamptz,
        lease_until -> Nullable<Timestamptz>,
        last_checked_at -> Nullable<Timestamptz>,
        cert_expires_at -> Nullable<Timestamptz>,
        cert_warned_expiry -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    monitor_checks (id) {
        id -> Int8,
        monitor_id -> Uuid,
        checked_at -> Timestamptz,
        scheduled_at -> Nullable<Timestamptz>,
        ok -> Bool,
        status_code -> Nullable<Int4>,
        latency_ms -> Nullable<Int4>,
        error_class -> Nullable<Text>,
        error -> Nullable<Text>,
        cert_expires_at -> Nullable<Timestamptz>,
        manual -> Bool,
    }
}

diesel::table! {
    monitor_daily (monitor_id, day) {
        monitor_id -> Uuid,
        day -> Date,
        checks -> Int4,
        ok_checks -> Int4,
    }
}

diesel::table! {
    monitor_incidents (id) {
        id -> Uuid,
        monitor_id -> Uuid,
        project_id -> Uuid,
        started_at -> Timestamptz,
        resolved_at -> Nullable<Timestamptz>,
        error_class -> Nullable<Text>,
        error -> Nullable<Text>,
        in_maintenance -> Bool,
        notifications -> Int4,
        last_notified_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    monitor_breakers (target) {
        target -> Text,
        state -> Text,
        failures -> Int4,
        opened_at -> Nullable<Timestamptz>,
        retry_at -> Nullable<Timestamptz>,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    digest_subscriptions (project_id, user_id) {
        project_id -> Uuid,
        user_id -> Uuid,
        enabled -> Bool,
        updated_at -> Timestamptz,
    }
}
