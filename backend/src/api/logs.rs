//! Task logs: Airflow's `get_log` (JSON chunks with a continuation token, or the whole log as
//! NDJSON) and Updraft's live tail as Server-Sent Events.
//!
//! Logs are read from the try's file (`crate::logs`), where every line is already timestamped
//! and secrets-masked; each line becomes a `StructuredLogMessage`.

use std::path::PathBuf;
use std::time::Duration;

use actix_web::http::header;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use futures_util::stream;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};
use updraft_shared::api::{StructuredLogMessage, TaskInstancesLogResponse};
use updraft_shared::state::TaskInstanceState;
use utoipa::OpenApi;

use super::dag_runs::find_run;
use super::query::ApiQuery;
use super::ApiError;
use crate::auth::{Identity, Role};
use crate::server::AppState;
use crate::store::entities::task_instance;

const LOG_PATH: &str =
    "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/logs/{try_number}";

/// Most bytes one JSON answer carries without `full_content`: a big log is read in pages.
const CHUNK: usize = 512 * 1024;
/// How often the live tail looks at the file, and at the task instance when nothing came.
const TAIL_POLL: Duration = Duration::from_millis(250);
const STATE_POLL: Duration = Duration::from_secs(1);
/// A comment this often keeps proxies from closing an idle stream.
const HEARTBEAT: Duration = Duration::from_secs(15);

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource(LOG_PATH).get(get_log))
        .service(web::resource(format!("{LOG_PATH}/stream")).get(stream_log));
}

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    paths(get_log, stream_log),
    components(schemas(TaskInstancesLogResponse, StructuredLogMessage))
)]
pub struct Doc;

#[derive(Debug, Deserialize)]
pub struct LogQuery {
    #[serde(default)]
    full_content: bool,
    #[serde(default = "no_map_index")]
    map_index: i32,
    token: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct StreamQuery {
    #[serde(default = "no_map_index")]
    map_index: i32,
}

fn no_map_index() -> i32 {
    -1
}

/// What a continuation token holds (Airflow's log metadata): where to read on.
#[derive(Debug, Serialize, Deserialize)]
struct Continuation {
    end_of_log: bool,
    log_pos: u64,
}

fn encode_token(log_pos: u64) -> String {
    let json = serde_json::to_string(&Continuation {
        end_of_log: false,
        log_pos,
    })
    .unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

fn decode_token(token: &str) -> Result<u64, ApiError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim().trim_end_matches('='))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Continuation>(&bytes).ok())
        .map(|c| c.log_pos)
        .ok_or_else(|| {
            ApiError::BadRequest(
                "Bad Signature. Please use only the tokens provided by the API: pass the \
                 continuation_token of the previous answer unchanged, or no token to read from the start"
                    .into(),
            )
        })
}

/// A log line (`[timestamp] text`) as a structured message.
pub fn structured(line: &str) -> StructuredLogMessage {
    let parsed = line.strip_prefix('[').and_then(|rest| {
        let (stamp, text) = rest.split_once("] ")?;
        let at = DateTime::parse_from_rfc3339(stamp).ok()?;
        Some((at.with_timezone(&Utc), text))
    });
    match parsed {
        Some((at, text)) => StructuredLogMessage {
            timestamp: Some(at),
            event: text.to_string(),
        },
        None => StructuredLogMessage {
            timestamp: None,
            event: line.to_string(),
        },
    }
}

/// The task instance a log request names, and where the requested try's log lives.
struct Try {
    ti_id: i64,
    try_number: i32,
    path: PathBuf,
}

async fn find_try(
    state: &AppState,
    dag_id: &str,
    run_id: &str,
    task_id: &str,
    map_index: i32,
    try_number: i64,
) -> Result<Try, ApiError> {
    let run = find_run(state, dag_id, run_id).await?;
    let ti = task_instance::Entity::find()
        .filter(task_instance::Column::DagRunId.eq(run.id))
        .filter(task_instance::Column::TaskId.eq(task_id))
        .filter(task_instance::Column::MapIndex.eq(map_index))
        .one(state.db.conn())
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "TaskInstance not found: the DagRun `{run_id}` of `{dag_id}` has no task `{task_id}` with map_index {map_index}"
            ))
        })?;
    if try_number < 1 || try_number > i64::from(ti.try_number) {
        let tries = match ti.try_number {
            0 => "it has not run yet".to_string(),
            1 => "its only try is 1".to_string(),
            n => format!("its tries are 1 to {n}"),
        };
        return Err(ApiError::NotFound(format!(
            "TaskInstance not found: task `{task_id}` has no try {try_number}; {tries}"
        )));
    }
    let path = crate::logs::log_path(
        &state.config.home.join("logs"),
        dag_id,
        run_id,
        task_id,
        u32::try_from(map_index).ok(),
        try_number as u32,
    );
    Ok(Try {
        ti_id: ti.id,
        try_number: try_number as i32,
        path,
    })
}

/// Whether the try can still write to its log: it is the task instance's current try and
/// the task instance has not ended it. A task instance that is gone writes nothing more.
async fn try_is_over(state: &AppState, t: &Try) -> Result<bool, ApiError> {
    let Some(ti) = task_instance::Entity::find_by_id(t.ti_id)
        .one(state.db.conn())
        .await?
    else {
        return Ok(true);
    };
    if ti.try_number != t.try_number {
        return Ok(true);
    }
    let live = ti
        .state
        .as_deref()
        .and_then(TaskInstanceState::parse)
        .is_some_and(|s| {
            matches!(
                s,
                TaskInstanceState::Scheduled
                    | TaskInstanceState::Queued
                    | TaskInstanceState::Running
                    | TaskInstanceState::Restarting
                    | TaskInstanceState::Deferred
                    | TaskInstanceState::UpForReschedule
            )
        });
    Ok(!live)
}

/// Reads up to `max` bytes of whole lines from `offset` off the async threads; a log that
/// does not exist yet reads as empty.
async fn read_chunk(path: PathBuf, offset: u64, max: usize) -> Result<(String, u64), ApiError> {
    let read =
        tokio::task::spawn_blocking(move || match crate::logs::read_from(&path, offset, max) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((String::new(), offset)),
            other => other,
        })
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    read.map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("reading a task log")))
}

/// Get the log of a task try: JSON pages (`Accept: application/json`, the default) or the
/// whole log as one JSON message per line (`Accept: application/x-ndjson`).
#[utoipa::path(
    get,
    path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/logs/{try_number}",
    operation_id = "get_log",
    tag = "Task Instance",
    params(
        ("dag_id" = String, Path, description = "The DAG"),
        ("dag_run_id" = String, Path, description = "The run id"),
        ("task_id" = String, Path, description = "The task"),
        ("try_number" = i64, Path, description = "The try, from 1"),
        ("full_content" = Option<bool>, Query, description = "Read the whole log rather than a page"),
        ("map_index" = Option<i32>, Query, description = "The mapped task's index; -1 (default) when not mapped"),
        ("token" = Option<String>, Query, description = "The continuation_token of the previous answer: read what follows"),
    ),
    responses(
        (status = 200, description = "Successful Response", content(
            (TaskInstancesLogResponse = "application/json"),
            (String = "application/x-ndjson"),
        )),
        (status = 400, description = "Bad Request", body = updraft_shared::api::HttpError),
        (status = 404, description = "Not Found", body = updraft_shared::api::HttpError),
    )
)]
pub async fn get_log(
    state: web::Data<AppState>,
    user: Identity,
    req: HttpRequest,
    path: web::Path<(String, String, String, i64)>,
    query: ApiQuery<LogQuery>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Viewer)?;
    let (dag_id, run_id, task_id, try_number) = path.into_inner();
    let q = query.0;
    let start = q
        .token
        .as_deref()
        .map(decode_token)
        .transpose()?
        .unwrap_or(0);
    let t = find_try(&state, &dag_id, &run_id, &task_id, q.map_index, try_number).await?;
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if accept.contains("application/x-ndjson") && !accept.contains("application/json") {
        return Ok(ndjson(t.path, start));
    }
    // Looked at before reading: a try that was over then has all of its log on disk.
    let over = try_is_over(&state, &t).await?;
    let mut content = Vec::new();
    let mut pos = start;
    loop {
        let (text, next) = read_chunk(t.path.clone(), pos, CHUNK).await?;
        content.extend(text.lines().map(structured));
        let progressed = next > pos;
        pos = next;
        if !q.full_content || !progressed {
            break;
        }
    }
    // The end: the try is over (its log ends with a whole line then) and all of it was read.
    let len = tokio::fs::metadata(&t.path).await.map_or(0, |m| m.len());
    let end_of_log = over && pos >= len;
    let continuation_token = (!end_of_log).then(|| encode_token(pos));
    Ok(HttpResponse::Ok().json(TaskInstancesLogResponse {
        content,
        continuation_token,
    }))
}

/// The log from `start` to its current end, one `StructuredLogMessage` per line, streamed in
/// chunks so a big log is never held whole.
fn ndjson(path: PathBuf, start: u64) -> HttpResponse {
    let body = stream::unfold(Some(start), move |pos| {
        let path = path.clone();
        async move {
            let pos = pos?;
            match read_chunk(path, pos, CHUNK).await {
                Ok((text, next)) if next > pos => {
                    let mut out = String::with_capacity(text.len() * 2);
                    for line in text.lines() {
                        if let Ok(json) = serde_json::to_string(&structured(line)) {
                            out.push_str(&json);
                            out.push('\n');
                        }
                    }
                    Some((
                        Ok::<_, std::convert::Infallible>(Bytes::from(out)),
                        Some(next),
                    ))
                }
                Ok(_) => None,
                Err(e) => {
                    tracing::warn!("streaming a task log failed: {e}");
                    None
                }
            }
        }
    });
    HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .streaming(body)
}

/// Where the live tail stands.
struct Tail {
    state: web::Data<AppState>,
    t: Try,
    pos: u64,
    last_sent: tokio::time::Instant,
    last_state_check: Option<tokio::time::Instant>,
    finished: bool,
}

/// One server-sent event per line; `id` is the offset after the line, so a reconnecting
/// client (`Last-Event-ID`) resumes where it stopped.
fn sse_events(text: &str, start: u64) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    let mut pos = start;
    for line in text.split_inclusive('\n') {
        pos += line.len() as u64;
        let line = line.trim_end_matches('\n');
        if let Ok(json) = serde_json::to_string(&structured(line)) {
            out.push_str(&format!("event: log\nid: {pos}\ndata: {json}\n\n"));
        }
    }
    out
}

impl Tail {
    /// The next piece of the stream, waiting for the task to write when it has to; None once
    /// `end` was sent.
    async fn next(mut self) -> Option<(Result<Bytes, std::convert::Infallible>, Self)> {
        if self.finished {
            return None;
        }
        loop {
            let (text, next) = match read_chunk(self.t.path.clone(), self.pos, CHUNK).await {
                Ok(read) => read,
                Err(e) => {
                    tracing::warn!("tailing a task log failed: {e}");
                    self.finished = true;
                    return Some((Ok(Bytes::from_static(b"event: end\ndata: {}\n\n")), self));
                }
            };
            if next > self.pos {
                let events = sse_events(&text, self.pos);
                self.pos = next;
                self.last_sent = tokio::time::Instant::now();
                return Some((Ok(Bytes::from(events)), self));
            }
            let check_due = self
                .last_state_check
                .is_none_or(|at| at.elapsed() >= STATE_POLL);
            if check_due {
                self.last_state_check = Some(tokio::time::Instant::now());
                // Over before the read below: whatever that read finds is the last of it.
                let over = try_is_over(&self.state, &self.t).await.unwrap_or(false);
                if over {
                    let (text, next) = read_chunk(self.t.path.clone(), self.pos, usize::MAX)
                        .await
                        .unwrap_or((String::new(), self.pos));
                    let mut out = sse_events(&text, self.pos);
                    self.pos = next;
                    out.push_str("event: end\ndata: {}\n\n");
                    self.finished = true;
                    return Some((Ok(Bytes::from(out)), self));
                }
            }
            if self.last_sent.elapsed() >= HEARTBEAT {
                self.last_sent = tokio::time::Instant::now();
                return Some((Ok(Bytes::from_static(b": heartbeat\n\n")), self));
            }
            tokio::time::sleep(TAIL_POLL).await;
        }
    }
}

/// Follow a task try's log live (Updraft's own): Server-Sent Events, `event: log` with a
/// `StructuredLogMessage` per line as the task writes it, then `event: end` once the try is
/// over and all of its log was sent. A comment every 15 s keeps the connection open.
#[utoipa::path(
    get,
    path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/logs/{try_number}/stream",
    operation_id = "stream_log",
    tag = "Task Instance",
    params(
        ("dag_id" = String, Path, description = "The DAG"),
        ("dag_run_id" = String, Path, description = "The run id"),
        ("task_id" = String, Path, description = "The task"),
        ("try_number" = i64, Path, description = "The try, from 1"),
        ("map_index" = Option<i32>, Query, description = "The mapped task's index; -1 (default) when not mapped"),
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this event (its id)"),
    ),
    responses(
        (status = 200, description = "The log as Server-Sent Events", body = String, content_type = "text/event-stream"),
        (status = 404, description = "Not Found", body = updraft_shared::api::HttpError),
    )
)]
pub async fn stream_log(
    state: web::Data<AppState>,
    user: Identity,
    req: HttpRequest,
    path: web::Path<(String, String, String, i64)>,
    query: ApiQuery<StreamQuery>,
) -> Result<HttpResponse, ApiError> {
    user.require(Role::Viewer)?;
    let (dag_id, run_id, task_id, try_number) = path.into_inner();
    let t = find_try(
        &state,
        &dag_id,
        &run_id,
        &task_id,
        query.0.map_index,
        try_number,
    )
    .await?;
    let resume = req
        .headers()
        .get("Last-Event-ID")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let tail = Tail {
        state: state.clone(),
        t,
        pos: resume,
        last_sent: tokio::time::Instant::now(),
        last_state_check: None,
        finished: false,
    };
    // Dropped (and so stopped) by actix when the client goes away.
    let body = stream::unfold(tail, Tail::next);
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        // No compression: it would hold events back until a buffer fills.
        .insert_header((header::CONTENT_ENCODING, "identity"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_structured_messages() {
        let m = structured("[2024-01-01T00:00:01.250Z] hello ] world");
        assert_eq!(m.event, "hello ] world");
        assert_eq!(
            m.timestamp,
            Some("2024-01-01T00:00:01.250Z".parse().unwrap())
        );
        let m = structured("no stamp here");
        assert_eq!((m.timestamp, m.event.as_str()), (None, "no stamp here"));
        let m = structured("[not a time] text");
        assert_eq!((m.timestamp, m.event.as_str()), (None, "[not a time] text"));
    }

    #[test]
    fn tokens_round_trip_and_garbage_is_refused() {
        assert_eq!(decode_token(&encode_token(1234)).unwrap(), 1234);
        assert!(matches!(
            decode_token("nope!"),
            Err(ApiError::BadRequest(_))
        ));
    }

    #[test]
    fn events_carry_the_offset_after_their_line() {
        let out = sse_events("[2024-01-01T00:00:00Z] a\n[2024-01-01T00:00:00Z] bb\n", 10);
        assert!(out.contains("id: 35\n"), "{out}");
        assert!(out.contains("id: 61\n"), "{out}");
        assert_eq!(out.matches("event: log\n").count(), 2);
    }
}
