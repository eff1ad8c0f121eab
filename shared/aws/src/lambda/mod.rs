//! Glue between Lambda events and the pipeline, one module per handler, so
//! each function's `main.rs` only wires things together. The local stack
//! (`infra/local`) builds the same handlers from a function's environment
//! as template.yaml gives it.

mod fanout;
mod replay;
mod reprocess;
mod webhook;

pub use fanout::FanoutHandler;
pub use replay::ReplayHandler;
pub use reprocess::ReprocessHandler;
pub use webhook::{webhook_ingest, webhook_request, WebhookHandler};

use chrono::Utc;
use switchboard_pipeline::{Run, Selection, ToolRequest, PAGE_SIZE};

/// Parses a tool's JSON event (or the local command's argument) into the
/// request and its selection, with a message that shows the expected shape.
pub fn tool_request(
    payload: serde_json::Value,
) -> Result<(ToolRequest, Selection), lambda_runtime::Error> {
    let request: ToolRequest = serde_json::from_value(payload).map_err(|e| {
        format!(
            "invalid request: {e}; expected one of {{\"window\": {{\"from\": …, \"to\": …}}}}, \
             {{\"conversation\": {{\"provider\": …, \"key\": …}}}}, {{\"event_ids\": […]}}, \
             optionally with \"cursor\" (an earlier report's) and, for replay, \"replay_id\""
        )
    })?;
    let selection = request.selection()?;
    Ok((request, selection))
}

/// The run a request asks for: from its cursor, a page at a time, while
/// `keep_going` says another page fits.
fn tool_run<'a>(
    request: &'a ToolRequest,
    keep_going: &'a (dyn Fn() -> bool + Send + Sync),
) -> Run<'a> {
    Run {
        cursor: request.cursor.as_deref(),
        page_size: PAGE_SIZE,
        keep_going,
    }
}

/// Time a tool keeps for its last page when it stops: a page is one Query,
/// one BatchGetItem and a few SendMessageBatch calls, each given up by the
/// SDK after 5 s (sdk.rs), so this leaves room for one slow page.
const LAST_PAGE: std::time::Duration = std::time::Duration::from_secs(30);

/// Whether another page fits before the invocation's `deadline` (epoch
/// milliseconds, as the Lambda context gives it).
fn time_left(deadline_ms: u64) -> impl Fn() -> bool + Send + Sync {
    move || {
        let now = u64::try_from(Utc::now().timestamp_millis()).unwrap_or(u64::MAX);
        now.saturating_add(LAST_PAGE.as_millis() as u64) < deadline_ms
    }
}
