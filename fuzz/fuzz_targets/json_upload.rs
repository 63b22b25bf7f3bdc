//! The JSON upload bodies of every endpoint, and the validation after them, on
//! arbitrary bytes.
#![no_main]

use devid_core::json_upload::{JsonBody, parse_json_upload};
use devid_core::plan::{IntegrationInfo, plan_delete, plan_upload};
use devid_core::types::ApplicationType;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let integrations = [
        IntegrationInfo { id: 1, application_type: ApplicationType::Github },
        IntegrationInfo { id: 2, application_type: ApplicationType::Custom },
    ];
    for kind in [JsonBody::Identities, JsonBody::CloudIds] {
        if let Ok(parsed) = parse_json_upload(data, kind, 10_000) {
            let _ = plan_upload(parsed, &integrations);
        }
    }
    if let Ok(parsed) = parse_json_upload(data, JsonBody::Delete, 10_000) {
        let _ = plan_delete(parsed, &integrations);
    }
});
