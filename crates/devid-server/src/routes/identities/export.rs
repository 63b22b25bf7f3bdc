//! The CSV download of identities: every matching row, streamed a batch at a time,
//! each cell guarded against spreadsheet formulas.

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use devid_core::normalize::guard_formula;
use devid_store::{AccountId, IdentityQuery, Paging};

use crate::AppState;
use crate::error::ApiError;

const EXPORT_BATCH: u64 = 10_000;
const EXPORT_BATCHES_IN_FLIGHT: usize = 2;

pub const CSV_HEADER: [&str; 5] = ["email", "integrationId", "identity", "applicationType", "updatedAt"];

/// Which columns a download carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsvColumns {
    /// [`CSV_HEADER`]: what Harness documents, and what spreadsheets and scripts expect.
    Harness,
    /// [`CSV_HEADER`] then `locked,source`: what `devid sync` needs to leave locked
    /// mappings alone, asked for with `provenance=true`. Uploads ignore the two columns.
    WithProvenance,
}

/// Streams every matching row, a batch at a time by keyset, so the server holds a few
/// batches at most whatever the row count. A producer task reads and encodes the next
/// batches while the client receives the previous ones; rows are encoded where they
/// are read, straight from the database's buffers.
///
/// An account runs at most [`crate::Limits::max_exports_per_account`] downloads at once:
/// each holds a database reader and a producer task for as long as its client reads.
pub fn csv_download(
    state: AppState,
    account: AccountId,
    query: IdentityQuery,
    columns: CsvColumns,
) -> Result<Response, ApiError> {
    let permit = state.exports.try_enter(account.0).ok_or_else(|| {
        ApiError::rate_limited_because(
            5,
            format!(
                "This account already has {} CSV downloads running, the most it may run at once; wait for one to finish, then ask again.",
                state.limits.max_exports_per_account
            ),
        )
    })?;
    let query = IdentityQuery { provenance: columns == CsvColumns::WithProvenance, ..query };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(EXPORT_BATCHES_IN_FLIGHT);
    tokio::spawn(async move {
        // Held until the last batch is sent or the client goes away.
        let _permit = permit;
        let encoder: devid_store::ExportEncoder = match columns {
            CsvColumns::Harness => std::sync::Arc::new(push_csv_row),
            CsvColumns::WithProvenance => std::sync::Arc::new(push_csv_row_with_provenance),
        };
        if tx.send(Ok(bytes::Bytes::from(csv_header(columns)))).await.is_err() {
            return;
        }
        let mut paging = Some(Paging::Offset { page_index: 0, page_size: EXPORT_BATCH });
        while let Some(page_request) = paging.take() {
            let batch = match state
                .store
                .export_batch(account, IdentityQuery { paging: page_request, ..query.clone() }, encoder.clone())
                .await
            {
                Ok(batch) => batch,
                Err(e) => {
                    tracing::error!(error = %e, "CSV download aborted");
                    let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                    return;
                }
            };
            paging = batch.next_cursor.map(|cursor| Paging::After { cursor, page_size: EXPORT_BATCH });
            if tx.send(Ok(bytes::Bytes::from(batch.bytes))).await.is_err() {
                return; // the client went away
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"developer-identities.csv\""),
    );
    Ok(response)
}

fn csv_header(columns: CsvColumns) -> Vec<u8> {
    let mut out = CSV_HEADER.join(",").into_bytes();
    if columns == CsvColumns::WithProvenance {
        out.extend_from_slice(b",locked,source");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// One export row: the upload header's columns plus the type and the last change, each
/// cell guarded against spreadsheet formulas and quoted only where CSV needs it (the
/// same rule as the `csv` crate's writer, whose reader takes it back).
fn push_csv_row(row: &devid_store::ExportRow<'_>, out: &mut Vec<u8>) {
    let mut id = [0u8; 20];
    push_csv_cell(out, row.email);
    out.push(b',');
    push_csv_cell(out, format_id(row.integration_id, &mut id));
    out.push(b',');
    push_csv_cell(out, row.identity);
    out.push(b',');
    push_csv_cell(out, row.application_type);
    out.push(b',');
    // A timestamp starts with a digit and holds no character CSV quotes.
    devid_core::time::push_rfc3339(row.updated_at, out);
    out.extend_from_slice(b"\r\n");
}

fn push_csv_row_with_provenance(row: &devid_store::ExportRow<'_>, out: &mut Vec<u8>) {
    push_csv_row(row, out);
    out.truncate(out.len() - 2);
    out.extend_from_slice(if row.locked { b",true," } else { b",false," });
    push_csv_cell(out, row.source);
    out.extend_from_slice(b"\r\n");
}

/// Quotes where CSV needs it, and also around a `;` or tab: a spreadsheet that splits
/// on those then keeps a cell that starts its line whole.
pub(crate) fn push_csv_cell(out: &mut Vec<u8>, cell: &str) {
    let cell = guard_formula(cell);
    let bytes = cell.as_bytes();
    if !bytes.iter().any(|b| matches!(b, b',' | b'"' | b'\r' | b'\n' | b';' | b'\t')) {
        out.extend_from_slice(bytes);
        return;
    }
    out.push(b'"');
    for &b in bytes {
        if b == b'"' {
            out.push(b'"');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// `id` in decimal, in `buffer`, without allocating.
fn format_id(id: i64, buffer: &mut [u8; 20]) -> &str {
    let mut v = id.unsigned_abs();
    let mut start = buffer.len();
    loop {
        start -= 1;
        buffer[start] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if id < 0 {
        start -= 1;
        buffer[start] = b'-';
    }
    std::str::from_utf8(&buffer[start..]).unwrap_or("0")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written encoder must write exactly what the `csv` crate would.
    #[test]
    fn export_rows_are_encoded_as_the_csv_crate_would() {
        let cells = [
            "plain",
            "",
            "with,comma",
            "with \"quotes\"",
            "line\nbreak",
            "cr\rhere",
            "=SUM(A1)",
            "+1",
            "-2",
            "@x",
            "'=already",
            " lead",
            "ünïcødé",
            "\"",
            ",",
            "tab\tinside",
            "x;=1+1;",
            "a;b",
        ];
        for (n, cell) in cells.iter().enumerate() {
            let row = devid_store::ExportRow {
                email: cell,
                integration_id: [-7, 0, 1, 42, i64::MAX, i64::MIN][n % 6],
                application_type: "GITHUB",
                identity: cells[(n + 3) % cells.len()],
                updated_at: 1_764_000_000_123_456,
                locked: n % 2 == 0,
                source: cells[(n + 1) % cells.len()],
            };
            let mut ours = Vec::new();
            push_csv_row(&row, &mut ours);
            let mut expected = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
            let id = row.integration_id.to_string();
            let updated = devid_core::time::to_rfc3339(row.updated_at);
            let fields = [row.email, &id, row.identity, row.application_type, &updated];
            let guarded: Vec<String> = fields.iter().map(|f| guard_formula(f).into_owned()).collect();
            expected.write_record(&guarded).expect("write");
            let mut expected = String::from_utf8(expected.into_inner().expect("flush")).expect("utf-8");
            // The csv crate does not quote around `;` or a tab; devid does (see push_csv_cell).
            for cell in guarded.iter().filter(|c| c.contains([';', '\t']) && !c.contains([',', '"', '\r', '\n'])) {
                expected = expected.replacen(cell.as_str(), &format!("\"{cell}\""), 1);
            }
            let read_back: Vec<String> = csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(&ours[..])
                .records()
                .next()
                .expect("a row")
                .expect("valid CSV")
                .iter()
                .map(str::to_string)
                .collect();
            assert_eq!(read_back, guarded, "the csv crate reads back the guarded cells");
            assert_eq!(String::from_utf8_lossy(&ours), expected, "cell {cell:?}");

            let mut with_provenance = Vec::new();
            push_csv_row_with_provenance(&row, &mut with_provenance);
            let read_back: Vec<String> = csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(&with_provenance[..])
                .records()
                .next()
                .expect("a row")
                .expect("valid CSV")
                .iter()
                .map(str::to_string)
                .collect();
            let mut wanted = guarded.clone();
            wanted.push(row.locked.to_string());
            wanted.push(guard_formula(row.source).into_owned());
            assert_eq!(read_back, wanted, "cell {cell:?} with provenance");
        }
    }
}
