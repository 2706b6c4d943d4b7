//! Exports: `GET /v1/export/events` and `GET /v1/export/aggregated`, the same parameters as
//! `GET /v1/events` and `GET /v1/events/aggregated` plus `format=csv|json|ndjson` (default
//! `csv`), as a download (`Content-Disposition: attachment; filename=…` from the range: the
//! first and last UTC dates it covers).
//!
//! Events stream from the database in pages of [`PAGE`] rows, each one keyset-paged after the
//! last (as `GET /v1/events` pages with its cursor), so memory stays flat however many rows the
//! range holds, no connection or snapshot is held between pages, and no event is repeated.
//! Aggregated buckets are bounded by `PULSE_QUERY_MAX_BUCKETS` and written from memory.
//! CSV has a header row and is quoted by the `csv` crate; `tags`, `data` and `metadata` are
//! JSON text in their cells.

use actix_web::http::header::{self, ContentDisposition, DispositionParam, DispositionType};
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use futures::stream;
use serde::Serialize;
use uuid::Uuid;

use super::access::{QueryState, ReadAccess, ReadFailures};
use super::cursor::Cursor;
use super::events::{page_query, StoredEvent};
use super::params::{invalid, query_pairs, EventFilter, EventQuery};
use super::rollups::{aggregate, AggregatedFilter};
use crate::error::ApiError;
use crate::management::ManagementState;

/// Rows per database round trip of an events export.
const PAGE: i64 = 5_000;

/// The three formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
    Ndjson,
}

impl Format {
    fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Json => "json",
            Self::Ndjson => "ndjson",
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::Json => "application/json",
            Self::Ndjson => "application/x-ndjson",
        }
    }
}

/// Splits `format` off the query string's pairs.
fn split_format(req: &HttpRequest) -> Result<(Format, Vec<(String, String)>), ApiError> {
    let pairs = query_pairs(req)?;
    let (formats, rest): (Vec<_>, Vec<_>) = pairs.into_iter().partition(|(name, _)| name == "format");
    let format = match formats.as_slice() {
        [] => Format::Csv,
        [(_, value)] => match value.as_str() {
            "csv" => Format::Csv,
            "json" => Format::Json,
            "ndjson" => Format::Ndjson,
            other => {
                return Err(invalid(
                    "format",
                    format!("format must be csv, json or ndjson, got {other:?}"),
                ))
            }
        },
        _ => return Err(invalid("format", "format is given twice")),
    };
    Ok((format, rest))
}

/// `events_2026-01-01_2026-01-31.csv`: the first and last UTC dates of `[start, end)`.
pub fn filename(prefix: &str, start: DateTime<Utc>, end: DateTime<Utc>, format: Format) -> String {
    let last = end - TimeDelta::microseconds(1);
    format!(
        "{prefix}_{}_{}.{}",
        start.format("%Y-%m-%d"),
        last.max(start).format("%Y-%m-%d"),
        format.extension()
    )
}

fn download(format: Format, name: String) -> actix_web::HttpResponseBuilder {
    let mut response = HttpResponse::Ok();
    response.insert_header((header::CONTENT_TYPE, format.content_type()));
    response.insert_header(ContentDisposition {
        disposition: DispositionType::Attachment,
        parameters: vec![DispositionParam::Filename(name)],
    });
    response
}

/// An event as one CSV record.
#[derive(Serialize)]
struct EventRecord<'a> {
    id: Uuid,
    timestamp: DateTime<Utc>,
    received_at: DateTime<Utc>,
    event_type: &'a str,
    source: Option<&'a str>,
    user_id: Option<&'a str>,
    session_id: Option<&'a str>,
    duration_ms: Option<i64>,
    priority: Option<i32>,
    status: Option<&'a str>,
    tags: String,
    data: String,
    metadata: String,
}

impl<'a> From<&'a StoredEvent> for EventRecord<'a> {
    fn from(event: &'a StoredEvent) -> Self {
        Self {
            id: event.id,
            timestamp: event.timestamp,
            received_at: event.received_at,
            event_type: &event.event_type,
            source: event.source.as_deref(),
            user_id: event.user_id.as_deref(),
            session_id: event.session_id.as_deref(),
            duration_ms: event.duration_ms,
            priority: event.priority,
            status: event.status.as_deref(),
            tags: serde_json::to_string(&event.tags).unwrap_or_default(),
            data: event.data.to_string(),
            metadata: event.metadata.to_string(),
        }
    }
}

/// Writes `rows` in `format`; `first` says whether these are the first rows of the export
/// (CSV header, no JSON separator before them).
fn encode<T: Serialize>(format: Format, rows: &[T], first: bool) -> Result<Vec<u8>, ApiError> {
    let failed = |error: String| ApiError::Internal(format!("export encoding: {error}"));
    let mut out = Vec::with_capacity(rows.len() * 256);
    match format {
        Format::Csv => {
            let mut writer = csv::WriterBuilder::new().has_headers(first).from_writer(&mut out);
            for row in rows {
                writer.serialize(row).map_err(|error| failed(error.to_string()))?;
            }
            writer.flush().map_err(|error| failed(error.to_string()))?;
        }
        Format::Ndjson => {
            for row in rows {
                serde_json::to_writer(&mut out, row).map_err(|error| failed(error.to_string()))?;
                out.push(b'\n');
            }
        }
        Format::Json => {
            for (index, row) in rows.iter().enumerate() {
                if !(first && index == 0) {
                    out.push(b',');
                }
                serde_json::to_writer(&mut out, row).map_err(|error| failed(error.to_string()))?;
            }
        }
    }
    Ok(out)
}

/// Where an events export stands between pages.
struct Progress {
    management: web::Data<ManagementState>,
    project: Uuid,
    filter: EventFilter,
    format: Format,
    first: bool,
    done: bool,
}

/// The next chunk of an events export, or `None` at its end.
async fn next_chunk(mut progress: Progress) -> Option<(Result<Bytes, ApiError>, Progress)> {
    if progress.done {
        return None;
    }
    let page: Result<Vec<StoredEvent>, ApiError> = async {
        let mut conn = progress.management.conn().await?;
        Ok(page_query(progress.project, &progress.filter)
            .select(StoredEvent::as_select())
            .load(&mut conn)
            .await?)
    }
    .await;
    let mut rows = match page {
        Ok(rows) => rows,
        Err(error) => {
            tracing::warn!(error = %error, "Export stopped by a failed page");
            progress.done = true;
            return Some((Err(error), progress));
        }
    };
    let more = rows.len() as i64 > progress.filter.limit;
    rows.truncate(progress.filter.limit as usize);
    let mut chunk = Vec::new();
    if progress.first && progress.format == Format::Json {
        chunk.push(b'[');
    }
    let encoded = if progress.format == Format::Csv {
        let records: Vec<EventRecord> = rows.iter().map(EventRecord::from).collect();
        encode(progress.format, &records, progress.first)
    } else {
        encode(progress.format, &rows, progress.first)
    };
    match encoded {
        Ok(bytes) => chunk.extend(bytes),
        Err(error) => {
            progress.done = true;
            return Some((Err(error), progress));
        }
    }
    if progress.first && progress.format == Format::Csv && rows.is_empty() {
        // No row to carry the header: write it alone.
        chunk.extend(csv_header());
    }
    match rows.last() {
        Some(last) if more => {
            progress.filter.after = Some(Cursor {
                start: progress.filter.start,
                end: progress.filter.end,
                timestamp: last.timestamp,
                id: last.id,
            });
        }
        _ => {
            progress.done = true;
            if progress.format == Format::Json {
                chunk.push(b']');
            }
        }
    }
    progress.first = false;
    Some((Ok(Bytes::from(chunk)), progress))
}

/// The header row of the events CSV, for an export with no row to carry it.
fn csv_header() -> Vec<u8> {
    let mut line = EVENT_COLUMNS.join(",").into_bytes();
    line.push(b'\n');
    line
}

/// The fields of [`EventRecord`], in order.
const EVENT_COLUMNS: [&str; 13] = [
    "id",
    "timestamp",
    "received_at",
    "event_type",
    "source",
    "user_id",
    "session_id",
    "duration_ms",
    "priority",
    "status",
    "tags",
    "data",
    "metadata",
];

/// Every event of the range, streamed.
#[utoipa::path(
    get,
    path = "/v1/export/events",
    operation_id = "export_events",
    tag = "export",
    security(("api_key" = []), ("api_key_header" = []), ("bearer" = [])),
    params(
        ("format" = Option<String>, Query, description = "`csv` (default), `json` or `ndjson`"),
        EventQuery,
    ),
    responses(
        (status = 200, description = "A download of every event of the range, newest first", content(
            (String = "text/csv"),
            (Vec<super::events::StoredEvent> = "application/json"),
            (String = "application/x-ndjson"),
        )),
        (status = 400, description = "INVALID_PARAMETER (details.parameter); `limit` and `cursor` do not apply to exports"),
        (status = 404, description = "No such project among the caller's"),
        ReadFailures,
    )
)]
pub async fn export_events(
    access: ReadAccess,
    req: HttpRequest,
    state: web::Data<QueryState>,
    management: web::Data<ManagementState>,
) -> Result<HttpResponse, ApiError> {
    let (format, pairs) = split_format(&req)?;
    let query = EventQuery::from_pairs(pairs)?;
    if query.limit.is_some() || query.cursor.is_some() {
        let parameter = if query.limit.is_some() { "limit" } else { "cursor" };
        return Err(invalid(
            parameter,
            format!("{parameter} does not apply to an export: it streams the whole range"),
        ));
    }
    let mut filter = query.check(Utc::now(), state.config.max_raw_days)?;
    filter.limit = PAGE;
    let name = filename("events", filter.start, filter.end, format);
    let progress = Progress {
        management,
        project: access.project_id,
        filter,
        format,
        first: true,
        done: false,
    };
    Ok(download(format, name).streaming(stream::unfold(progress, next_chunk)))
}

/// Every bucket of the range.
#[utoipa::path(
    get,
    path = "/v1/export/aggregated",
    operation_id = "export_aggregated",
    tag = "export",
    security(("api_key" = []), ("api_key_header" = []), ("bearer" = [])),
    params(
        ("format" = Option<String>, Query, description = "`csv` (default), `json` or `ndjson`"),
        super::rollups::AggregatedQuery,
    ),
    responses(
        (status = 200, description = "A download of every bucket of the range, oldest first", content(
            (String = "text/csv"),
            (Vec<super::rollups::Bucket> = "application/json"),
            (String = "application/x-ndjson"),
        )),
        (status = 400, description = "INVALID_PARAMETER (details.parameter)"),
        (status = 404, description = "No such project among the caller's"),
        ReadFailures,
    )
)]
pub async fn export_aggregated(
    access: ReadAccess,
    req: HttpRequest,
    state: web::Data<QueryState>,
    management: web::Data<ManagementState>,
) -> Result<HttpResponse, ApiError> {
    let (format, pairs) = split_format(&req)?;
    let filter = AggregatedFilter::from_pairs(pairs, Utc::now(), state.config.max_buckets)?;
    let aggregated = aggregate(&management, access.project_id, &filter).await?;
    let interval = serde_json::to_value(filter.interval)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default();
    let name = filename(&format!("aggregated_{interval}"), filter.start, filter.end, format);
    let mut body = Vec::new();
    if format == Format::Json {
        body.push(b'[');
    }
    body.extend(encode(format, &aggregated.buckets, true)?);
    if format == Format::Json {
        body.push(b']');
    }
    Ok(download(format, name).body(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().expect("time")
    }

    #[test]
    fn filenames_name_the_first_and_last_dates_covered() {
        assert_eq!(
            filename(
                "events",
                at("2026-01-01T00:00:00Z"),
                at("2026-02-01T00:00:00Z"),
                Format::Csv
            ),
            "events_2026-01-01_2026-01-31.csv"
        );
        assert_eq!(
            filename(
                "aggregated_1h",
                at("2026-01-01T10:00:00Z"),
                at("2026-01-01T12:00:00Z"),
                Format::Ndjson
            ),
            "aggregated_1h_2026-01-01_2026-01-01.ndjson"
        );
    }

    #[test]
    fn csv_quotes_and_heads_its_records() {
        #[derive(Serialize)]
        struct Row {
            a: &'static str,
            b: Option<i64>,
        }
        let rows = [
            Row { a: "plain", b: Some(1) },
            Row {
                a: "comma, \"quote\"\nline",
                b: None,
            },
        ];
        let bytes = encode(Format::Csv, &rows, true).expect("csv");
        assert_eq!(
            String::from_utf8(bytes).expect("utf-8"),
            "a,b\nplain,1\n\"comma, \"\"quote\"\"\nline\",\n"
        );
        let json = encode(Format::Json, &rows, false).expect("json");
        assert!(json.starts_with(b",{"), "a later chunk starts with a separator");
    }
}
