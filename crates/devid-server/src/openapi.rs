//! The OpenAPI document, generated from the handlers' annotations.

use std::sync::OnceLock;

use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "devid",
        description = "Developer identity service. Speaks the Harness SEI developer identity API. Every path is also served under /sei/api, /prod1/sei/api, /gratis/sei/api and /gateway/sei/api.",
    ),
    paths(
        routes::identities::upload_identities,
        routes::identities::list::list_identities,
        routes::identities::delete_identities,
        routes::identities::locks::lock_identities,
        routes::identities::locks::unlock_identities,
        routes::identities::upload_cloud_ids,
        routes::identities::upload_cloud_ids_csv,
        routes::admin::list_integrations,
        routes::admin::create_integration,
        routes::admin::get_integration,
        routes::admin::update_integration,
        routes::admin::delete_integration,
        routes::admin::list_keys,
        routes::admin::create_key,
        routes::admin::revoke_key,
        routes::admin::list_audit,
        routes::changes::list_changes,
        routes::changes::get_change,
        routes::changes::revert_change,
        routes::webhooks::create_webhook,
        routes::webhooks::list_webhooks,
        routes::webhooks::delete_webhook,
        routes::webhooks::list_deliveries,
        routes::webhooks::redeliver,
        routes::contributors::upload_contributors,
        routes::contributors::list_contributors,
        routes::contributors::set_bots,
        routes::coverage::get_coverage,
        routes::suggestions::list_suggestions,
        routes::suggestions::accept_batch,
        routes::suggestions::accept_one,
        routes::suggestions::reject_one,
        routes::suggestions::skip_one,
        routes::ops::healthz,
        routes::ops::readyz,
        routes::ops::metrics,
    ),
    modifiers(&KeyAuth),
    tags(
        (name = "identities", description = "Developer identities: upload, list, download, delete"),
        (name = "contributors", description = "Accounts seen in activity, bots and coverage"),
        (name = "matching", description = "Suggestions of who is who, and the decisions taken on them"),
        (name = "changes", description = "Every write that changed something, as an ordered feed; exact undo; webhooks"),
        (name = "admin", description = "Integrations, API keys, audit (scope admin)"),
        (name = "operations", description = "Health, readiness, metrics (no key)"),
    )
)]
pub struct ApiDoc;

struct KeyAuth;

impl Modify for KeyAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "x-api-key",
                "pat.<account>.<keyId>.<secret>; also accepted as Authorization: ApiKey|Bearer <key> or the bare key",
            ))),
        );
    }
}

/// Rendered once: the document does not change while the process runs.
pub fn document_json() -> String {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
        crate::openapi_exact::tighten(&mut doc);
        doc.to_string()
    })
    .clone()
}
