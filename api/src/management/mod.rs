//! The management API: accounts and sessions, users, organizations and their members,
//! projects and their settings, API keys, webhook endpoints and their delivery log, alert rules,
//! password resets, and the OpenAPI description of the whole api.
//!
//! Modules, one concern each: [`tokens`] (access JWTs, refresh tokens), [`passwords`]
//! (argon2id), [`authorization`] (the bearer extractor, roles, the "404, not 403" rule),
//! [`accounts`] (register, login, refresh, logout, change-password), [`users`] (`/v1/users/me`),
//! [`organizations`] (organizations and members), [`projects`], [`api_keys`], [`fields`] (name
//! and email rules), [`views`] (user and organization views), [`tenancy`] (project soft
//! deletion; the scheduler purges later), [`login_limit`] (login attempts per IP and
//! account), [`webhooks`] (signed webhook endpoints, secrets, deliveries and replay; one file
//! per concern inside), [`alerts`] (alert rules and their incidents, the default rule of a
//! new project), [`monitors`] (uptime monitors, their checks, figures and incidents; one file
//! per concern inside), [`status_page`] (a project's public status page, without sign-in),
//! [`password_reset`] (reset by mailed single-use token), [`openapi`] (`/openapi.json`,
//! `/docs`). The user guide is docs/management.md.
//!
//! Routes are declared once, in [`routes!`] below: the same table registers them with actix and
//! lists them in [`ROUTES`], which a test compares with the OpenAPI document.

pub(crate) mod accounts;
pub(crate) mod alerts;
pub(crate) mod api_keys;
pub(crate) mod authorization;
pub(crate) mod digest;
pub(crate) mod fields;
pub(crate) mod json;
pub(crate) mod login_limit;
pub(crate) mod monitors;
pub(crate) mod openapi;
pub(crate) mod organizations;
pub(crate) mod password_reset;
pub(crate) mod passwords;
pub(crate) mod projects;
pub(crate) mod status_page;
pub(crate) mod tenancy;
pub(crate) mod tokens;
pub(crate) mod users;
pub(crate) mod views;
pub(crate) mod webhooks;

use std::time::Duration;

use actix_web::web;
use pulse_shared::config::{AlertConfig, AuthConfig, EmailConfig, MonitorConfig, WebhookConfig};
use pulse_shared::db::{DbConn, DbPool};

use crate::auth::KeyEvictor;
use crate::error::ApiError;

/// What the management handlers share across actix workers.
pub struct ManagementState {
    pub pool: DbPool,
    pub jwt: tokens::JwtKeys,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub login_limiter: login_limit::LoginLimiter,
    pub rotation_grace: Duration,
    /// This replica's ingest key cache, when it has one: revoking a key or deleting a project
    /// evicts its keys here at once (other replicas follow within the cache TTL).
    pub key_cache: Option<KeyEvictor>,
    /// What the webhook routes need of `PULSE_WEBHOOK_*`: the SSRF guard and the defaults.
    pub webhooks: webhooks::Settings,
    /// What the monitor routes need of `PULSE_MONITOR_*`: the SSRF guard, and the checker and
    /// announcer of "check now".
    pub monitors: monitors::Settings,
    /// The default alert rule of a new project fires above this many errors per 5 minutes
    /// (`PULSE_ALERT_ERROR_THRESHOLD`).
    pub default_error_threshold: u32,
    /// What mail written by the api (password resets) needs: links and message ids.
    pub mail: MailSettings,
    /// How long a password-reset token stays valid.
    pub password_reset_ttl: Duration,
}

/// What the api needs of `PULSE_SMTP_FROM` and `PULSE_PUBLIC_URL` to write mail into the outbox
/// (the notify worker sends it).
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// Base of the links in mail, without a trailing slash.
    pub public_url: String,
    /// The domain of `Message-ID`s.
    pub message_id_domain: String,
}

impl MailSettings {
    pub fn new(config: &EmailConfig) -> Self {
        Self {
            public_url: config.public_url.clone(),
            message_id_domain: pulse_shared::email::from_domain(&config.from).to_owned(),
        }
    }
}

impl ManagementState {
    pub fn new(pool: DbPool, config: &AuthConfig, key_cache: Option<KeyEvictor>) -> Self {
        Self {
            pool,
            jwt: tokens::JwtKeys::new(&config.jwt_secret),
            access_token_ttl: config.access_token_ttl,
            refresh_token_ttl: config.refresh_token_ttl,
            login_limiter: login_limit::LoginLimiter::new(
                config.login_rate_per_min_ip,
                config.login_rate_per_min_account,
            ),
            rotation_grace: config.rotation_grace,
            key_cache,
            webhooks: webhooks::Settings::new(&WebhookConfig::default()),
            monitors: monitors::Settings::new(&MonitorConfig::default()),
            default_error_threshold: AlertConfig::default().default_error_threshold,
            mail: MailSettings {
                public_url: "http://127.0.0.1:8080".into(),
                message_id_domain: "localhost".into(),
            },
            password_reset_ttl: config.password_reset_ttl,
        }
    }

    /// The same state with `PULSE_ALERT_*` and the mail settings read from the environment
    /// (`new` starts from their defaults).
    pub fn with_alerts_and_mail(mut self, alert: &AlertConfig, email: &EmailConfig) -> Self {
        self.default_error_threshold = alert.default_error_threshold;
        self.mail = MailSettings::new(email);
        self
    }

    /// The same state with the webhook settings read from `PULSE_WEBHOOK_*` (`new` starts from
    /// their defaults: no allow-listed networks).
    pub fn with_webhooks(mut self, config: &WebhookConfig) -> Self {
        self.webhooks = webhooks::Settings::new(config);
        self
    }

    /// The same state with the monitor settings read from `PULSE_MONITOR_*` (`new` starts from
    /// their defaults: no allow-listed networks, no "check now"), the checker of "check now" and
    /// the announcer of the state changes it causes.
    pub fn with_monitors(
        mut self,
        config: &MonitorConfig,
        checker: pulse_shared::monitor::Checker,
        announcer: pulse_shared::monitor::Announcer,
    ) -> Self {
        self.monitors = monitors::Settings::new(config);
        self.monitors.checker = Some(checker);
        self.monitors.announcer = Some(announcer);
        self
    }

    /// A pooled connection; a pool timeout is a 503 the client may retry.
    pub async fn conn(&self) -> Result<DbConn, ApiError> {
        pulse_shared::db::connection(&self.pool).await.map_err(|error| {
            tracing::warn!(error = %error, "No database connection for a management request");
            ApiError::DatabaseUnavailable { retry_after_secs: 2 }
        })
    }

    /// Forgets the given key hashes in this replica's ingest key cache.
    pub async fn evict_keys(&self, hashes: &[Vec<u8>]) {
        if let Some(cache) = &self.key_cache {
            for hash in hashes {
                cache.evict(hash).await;
            }
        }
    }
}

/// Whether a database error is the unique violation of `constraint`.
pub fn is_unique_violation(error: &diesel::result::Error, constraint: &str) -> bool {
    matches!(
        error,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, info)
            if info.constraint_name() == Some(constraint)
    )
}

/// Declares the management routes once: registration with actix and the [`ROUTES`] table.
/// Each path gets a JSON 405 naming the methods it allows.
macro_rules! routes {
    ($( $path:literal [$allow:literal] { $( $method:ident => $handler:path ),+ $(,)? } )+) => {
        /// Every management route as (lower-case method, path pattern).
        pub const ROUTES: &[(&str, &str)] = &[ $( $( (stringify!($method), $path), )+ )+ ];

        /// Registers the management routes. Needs `web::Data<ManagementState>` in the app.
        pub fn configure(cfg: &mut web::ServiceConfig) {
            $(
                cfg.service(
                    web::resource($path)
                        .name($path)
                        $( .route(web::$method().to($handler)) )+
                        .default_service(web::to(|| async { Err::<actix_web::HttpResponse, _>(ApiError::MethodNotAllowed($allow)) })),
                );
            )+
        }
    };
}

routes! {
    "/v1/auth/register" ["POST"] { post => accounts::register }
    "/v1/auth/login" ["POST"] { post => accounts::login }
    "/v1/auth/refresh" ["POST"] { post => accounts::refresh }
    "/v1/auth/logout" ["POST"] { post => accounts::logout }
    "/v1/auth/change-password" ["POST"] { post => accounts::change_password }
    "/v1/auth/password-reset" ["POST"] { post => password_reset::request }
    "/v1/auth/password-reset/confirm" ["POST"] { post => password_reset::confirm }
    "/v1/users/me" ["GET, PATCH, DELETE"] { get => users::me, patch => users::update_me, delete => users::delete_me }
    "/v1/organizations" ["GET, POST"] { get => organizations::list, post => organizations::create }
    "/v1/organizations/{organization_id}" ["GET, PATCH"] { get => organizations::get, patch => organizations::update }
    "/v1/organizations/{organization_id}/members" ["GET, POST"] {
        get => organizations::list_members,
        post => organizations::add_member,
    }
    "/v1/organizations/{organization_id}/members/{user_id}" ["PATCH, DELETE"] {
        patch => organizations::update_member,
        delete => organizations::remove_member,
    }
    "/v1/projects" ["GET, POST"] { get => projects::list, post => projects::create }
    "/v1/projects/{project_id}" ["GET, PATCH, DELETE"] {
        get => projects::get,
        patch => projects::update,
        delete => projects::delete,
    }
    "/v1/projects/{project_id}/api-keys" ["GET, POST"] { get => api_keys::list, post => api_keys::create }
    "/v1/projects/{project_id}/api-keys/{key_id}" ["DELETE"] { delete => api_keys::revoke }
    "/v1/projects/{project_id}/api-keys/{key_id}/rotate" ["POST"] { post => api_keys::rotate }
    "/v1/projects/{project_id}/digest" ["GET, PUT"] { get => digest::get, put => digest::update }
    "/v1/projects/{project_id}/webhooks" ["GET, POST"] {
        get => webhooks::endpoints::list,
        post => webhooks::endpoints::create,
    }
    // Before `{webhook_id}`, so `deliveries` is never read as an endpoint id.
    "/v1/projects/{project_id}/webhooks/deliveries" ["GET"] { get => webhooks::deliveries::list_project }
    "/v1/projects/{project_id}/webhooks/{webhook_id}" ["GET, PATCH, DELETE"] {
        get => webhooks::endpoints::get,
        patch => webhooks::endpoints::update,
        delete => webhooks::endpoints::delete,
    }
    "/v1/projects/{project_id}/webhooks/{webhook_id}/secret" ["GET"] { get => webhooks::secrets::show }
    "/v1/projects/{project_id}/webhooks/{webhook_id}/secret/rotate" ["POST"] { post => webhooks::secrets::rotate }
    "/v1/projects/{project_id}/webhooks/{webhook_id}/deliveries" ["GET"] { get => webhooks::deliveries::list }
    "/v1/projects/{project_id}/webhooks/{webhook_id}/deliveries/{delivery_id}" ["GET"] {
        get => webhooks::deliveries::get,
    }
    "/v1/projects/{project_id}/webhooks/{webhook_id}/deliveries/{delivery_id}/retry" ["POST"] {
        post => webhooks::replay::retry,
    }
    "/v1/projects/{project_id}/webhooks/{webhook_id}/recover" ["POST"] { post => webhooks::replay::recover }
    "/v1/projects/{project_id}/webhooks/{webhook_id}/test" ["POST"] { post => webhooks::replay::test }
    "/v1/projects/{project_id}/alerts" ["GET, POST"] {
        get => alerts::endpoints::list,
        post => alerts::endpoints::create,
    }
    "/v1/projects/{project_id}/alerts/{alert_id}" ["GET, PATCH, DELETE"] {
        get => alerts::endpoints::get,
        patch => alerts::endpoints::update,
        delete => alerts::endpoints::delete,
    }
    "/v1/projects/{project_id}/alerts/{alert_id}/incidents" ["GET"] { get => alerts::incidents::list }
    "/v1/projects/{project_id}/incidents" ["GET"] { get => alerts::incidents::list_project }
    "/v1/projects/{project_id}/monitors" ["GET, POST"] {
        get => monitors::endpoints::list,
        post => monitors::endpoints::create,
    }
    "/v1/projects/{project_id}/monitors/{monitor_id}" ["GET, PATCH, DELETE"] {
        get => monitors::endpoints::get,
        patch => monitors::endpoints::update,
        delete => monitors::endpoints::delete,
    }
    "/v1/projects/{project_id}/monitors/{monitor_id}/check" ["POST"] { post => monitors::check::check }
    "/v1/projects/{project_id}/monitors/{monitor_id}/checks" ["GET"] { get => monitors::history::checks }
    "/v1/projects/{project_id}/monitors/{monitor_id}/incidents" ["GET"] { get => monitors::history::incidents }
    "/v1/projects/{project_id}/monitors/{monitor_id}/stats" ["GET"] { get => monitors::stats::stats }
    "/v1/status/{slug}" ["GET"] { get => status_page::show }
}
