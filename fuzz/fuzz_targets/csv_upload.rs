//! The CSV upload parser and the validation after it, on arbitrary bytes.
#![no_main]

use devid_core::csv_upload::parse_csv_upload;
use devid_core::plan::{Addressing, IntegrationInfo, plan_upload};
use devid_core::types::ApplicationType;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let integrations = [
        IntegrationInfo { id: 1, application_type: ApplicationType::Github },
        IntegrationInfo { id: 2, application_type: ApplicationType::Jira },
    ];
    for native in [Addressing::IntegrationId, Addressing::ApplicationType] {
        if let Ok(parsed) = parse_csv_upload(data, native, 10_000) {
            let _ = plan_upload(parsed, &integrations);
        }
    }
});
