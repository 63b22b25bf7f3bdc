//! What a listing asks for. Parsing and validating HTTP parameters is the server's job;
//! these types are already valid.

use devid_core::time::Micros;
use devid_core::types::{ApplicationType, IntegrationId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum SortKey {
    #[default]
    Email,
    IntegrationId,
    Identity,
    UpdatedAt,
}

impl SortKey {
    pub const ALL: [(SortKey, &'static str); 4] = [
        (SortKey::Email, "email"),
        (SortKey::IntegrationId, "integrationId"),
        (SortKey::Identity, "identity"),
        (SortKey::UpdatedAt, "updatedAt"),
    ];

    pub fn parse(s: &str) -> Option<SortKey> {
        Self::ALL.iter().find(|(_, name)| name.eq_ignore_ascii_case(s)).map(|(k, _)| *k)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum SortOrder {
    #[default]
    Asc,
    Desc,
}

/// Where a keyset page starts: the sort position of the last row already seen. Rows
/// are ordered by (sort value, integration id, identity key), which is unique.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CursorKey {
    /// The sort value of the last row: email, identity key or updated-at micros (as
    /// text); absent when sorting by integration id, which the tie-breaker already holds.
    pub value: Option<String>,
    pub integration_id: IntegrationId,
    pub identity_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Paging {
    Offset {
        page_index: u64,
        page_size: u64,
    },
    After {
        cursor: CursorKey,
        page_size: u64,
    },
    /// `skip` rows past a keyset position (or past the start), then a page: how the
    /// server turns a deep `pageIndex` into a short walk from a position it remembers.
    Window {
        after: Option<CursorKey>,
        skip: u64,
        page_size: u64,
    },
    /// Everything that matches (the CSV download).
    All,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityQuery {
    /// Lower-cased emails.
    pub emails: Vec<String>,
    pub integration_ids: Vec<IntegrationId>,
    pub application_types: Vec<ApplicationType>,
    /// Case-insensitive substring of email or identity.
    pub search: Option<String>,
    pub updated_after: Option<Micros>,
    pub sort: SortKey,
    pub order: SortOrder,
    pub paging: Paging,
    /// Whether to count every match for `total_count`; the CSV export, which walks
    /// pages, counts nothing.
    pub count_total: bool,
    /// Whether to read each row's `source` and `locked`. The CSV download without them
    /// (Harness's columns) then walks the email index alone, which covers every other
    /// column it reads: several times faster at a million rows than visiting each row.
    /// Without them a record reads `source` "" and `locked` false.
    pub provenance: bool,
}

impl Default for IdentityQuery {
    fn default() -> Self {
        Self {
            emails: Vec::new(),
            integration_ids: Vec::new(),
            application_types: Vec::new(),
            search: None,
            updated_after: None,
            sort: SortKey::Email,
            order: SortOrder::Asc,
            paging: Paging::All,
            count_total: true,
            provenance: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuditQuery {
    pub from: Option<Micros>,
    pub to: Option<Micros>,
    pub integration_id: Option<IntegrationId>,
    pub identity: Option<String>,
    /// Matches the old or the new email.
    pub email: Option<String>,
    pub page_index: u64,
    pub page_size: u64,
}
