//! The devid HTTP API: the Harness SEI developer identity endpoints and devid's own
//! admin, audit and operations endpoints, served by axum over any [`Store`].

mod account_cache;
mod anchors;
pub mod api;
pub mod auth;
mod body;
mod counts;
pub mod cursor;
pub mod error;
mod guard;
mod middleware;
pub mod openapi;
mod openapi_exact;
mod routes;
mod serve;
pub mod ui;
pub mod webhooks;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use devid_store::Store;
use tokio::net::TcpListener;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

pub use middleware::{MAX_REQUEST_ID_CHARS, metrics_handle};
pub use serve::ConnectionLimits;

/// Limits on what one request may carry. All are configurable from the command line.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest JSON body accepted, in bytes.
    pub max_json_body: usize,
    /// Largest multipart (CSV file) body accepted, in bytes.
    pub max_multipart_body: usize,
    /// Most rows one upload may carry.
    pub max_upload_rows: u64,
    /// Longest a request may take, body included, before it is answered 408.
    pub request_timeout: Duration,
    /// Uploads and deletes applied at once; more wait `upload_queue_wait`, then get 503.
    pub max_concurrent_uploads: usize,
    pub upload_queue_wait: Duration,
    /// Longest pause allowed between two chunks of an upload's body (zero: no bound);
    /// once this long has passed, the body must also average
    /// `min_upload_bytes_per_second`. Slower bodies are answered 408.
    pub upload_idle: Duration,
    pub min_upload_bytes_per_second: u64,
    /// Requests per minute per API key (0: no limit); over it, 429.
    pub rate_limit_per_minute: u32,
    /// CSV downloads one account may run at once; the next get 429.
    pub max_exports_per_account: usize,
    /// Requests per minute of all keys of one account together (0: no limit); over it, 429.
    pub account_rate_limit_per_minute: u32,
    /// Failed authentications per minute per client address, and per key id (0: no
    /// limit); over it, 429 before the key is looked up.
    pub auth_failures_per_minute: u32,
    /// How long a review UI session lasts unused before it must sign in again.
    pub ui_session_idle: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_json_body: 64 * 1024 * 1024,
            max_multipart_body: 512 * 1024 * 1024,
            max_upload_rows: 5_000_000,
            request_timeout: Duration::from_secs(600),
            max_concurrent_uploads: 4,
            upload_queue_wait: Duration::from_secs(10),
            upload_idle: Duration::from_secs(10),
            min_upload_bytes_per_second: 16 * 1024,
            rate_limit_per_minute: 1000,
            max_exports_per_account: 2,
            account_rate_limit_per_minute: 4000,
            auth_failures_per_minute: 30,
            ui_session_idle: ui::DEFAULT_SESSION_IDLE,
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub limits: Arc<Limits>,
    counts: Arc<counts::CountCache>,
    anchors: Arc<anchors::OffsetAnchors>,
    uploads: Arc<guard::UploadGate>,
    rate: Arc<guard::RateLimiter>,
    account_rate: Arc<guard::RateLimiter>,
    auth_failures: Arc<guard::RateLimiter>,
    exports: Arc<guard::PerAccountSlots>,
    coverage: Arc<routes::coverage::CoverageCache>,
    coverage_warmer: Arc<routes::coverage::CoverageWarmer>,
    suggestions: Arc<routes::suggestions::SuggestionCache>,
    /// Loaded from the database on first use (see `cursor`).
    cursors: Arc<tokio::sync::OnceCell<cursor::CursorSigner>>,
    webhook_policy: webhooks::WebhookPolicy,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, limits: Limits) -> Self {
        let uploads = Arc::new(guard::UploadGate::new(limits.max_concurrent_uploads, limits.upload_queue_wait));
        let rate = Arc::new(guard::RateLimiter::new(limits.rate_limit_per_minute));
        let exports = guard::PerAccountSlots::new(limits.max_exports_per_account);
        let account_rate = Arc::new(guard::RateLimiter::new(limits.account_rate_limit_per_minute));
        let auth_failures = Arc::new(guard::RateLimiter::new(limits.auth_failures_per_minute));
        Self {
            store,
            limits: Arc::new(limits),
            counts: Arc::default(),
            anchors: Arc::default(),
            uploads,
            rate,
            account_rate,
            auth_failures,
            exports,
            coverage: Arc::default(),
            coverage_warmer: Arc::default(),
            suggestions: Arc::default(),
            cursors: Arc::default(),
            webhook_policy: webhooks::WebhookPolicy::default(),
        }
    }

    /// Where webhooks may point (see [`webhooks::WebhookPolicy`]); public addresses only
    /// unless changed here.
    pub fn with_webhook_policy(mut self, policy: webhooks::WebhookPolicy) -> Self {
        self.webhook_policy = policy;
        self
    }

    /// What signs and checks listing cursors, keyed by the database's cursor secret.
    pub(crate) async fn cursor_signer(&self) -> Result<&cursor::CursorSigner, error::ApiError> {
        let store = self.store.clone();
        let signer = self
            .cursors
            .get_or_try_init(|| async move {
                store.ensure_secret(cursor::CURSOR_SECRET).await.map(|secret| cursor::CursorSigner::new(&secret))
            })
            .await?;
        Ok(signer)
    }
}

/// Where Harness serves the API; a script switches to devid by changing only the host.
pub const API_PREFIXES: [&str; 5] =
    ["/v2", "/sei/api/v2", "/prod1/sei/api/v2", "/gratis/sei/api/v2", "/gateway/sei/api/v2"];

pub fn router(state: AppState) -> Router {
    let api = routes::api_routes();
    let mut app = Router::new();
    for prefix in API_PREFIXES {
        app = app.nest(prefix, api.clone());
    }
    let body_limit = state.limits.max_multipart_body.max(state.limits.max_json_body);
    app.merge(routes::ops_routes())
        .merge(ui::ui_routes())
        .fallback(middleware::not_found)
        .layer(DefaultBodyLimit::max(body_limit))
        // Inside the JSON error layer, so a timeout is answered like every other error.
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            state.limits.request_timeout,
        ))
        .layer(axum::middleware::from_fn(middleware::json_errors))
        .layer(axum::middleware::from_fn(middleware::record_metrics))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(middleware::panic_response))
        .layer(middleware::trace_layer())
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(axum::middleware::from_fn(middleware::sanitize_request_id))
        .with_state(state)
}

/// Serves until `shutdown` completes, then stops accepting and finishes in-flight
/// requests before returning. Connections get [`ConnectionLimits::default`].
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, state, ConnectionLimits::default(), shutdown).await
}

/// [`serve`] with connection limits of the caller's choosing.
pub async fn serve_with(
    listener: TcpListener,
    state: AppState,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    middleware::metrics_handle();
    // Webhook deliveries go out beside the server, from the outbox its writes fill.
    let dispatcher = webhooks::dispatch::spawn(Arc::clone(&state.store), state.webhook_policy);
    let served = serve::serve_connections(listener, router(state), limits, shutdown).await;
    dispatcher.abort();
    served
}
