//! The ingest pipeline and the fanout, independent of AWS.
//!
//! - [`ingest`]: one webhook request → authenticate → decode (or quarantine)
//!   → one conditional write → one HTTP answer. The only place that maps
//!   errors to HTTP is [`error`].
//! - [`fanout`]: stored events (from the DynamoDB stream) → CloudEvents →
//!   SQS messages, reporting exactly which records failed.
//! - [`ports`]: the storage and publishing traits, with in-memory adapters for
//!   tests; the AWS adapters live in `switchboard-aws`.
//! - [`outcome`]: what each request came to, for logs and metrics.
//! - [`tools`]: the operator tools `replay` and `reprocess`.
//! - [`item`]: building the stored item; [`codec`]: its body's encoding.
#![forbid(unsafe_code)]

pub mod codec;
pub mod error;
pub mod fanout;
pub mod ingest;
pub mod item;
pub mod outcome;
pub mod ports;
pub mod tools;

pub use error::{ApiError, Reply};
pub use fanout::{fanout, FanoutReport, OutgoingMessage, StreamRecord};
pub use ingest::{Ingest, Limits, WebhookRequest};
pub use outcome::{EventSummary, Handled, Outcome, OutcomeKind};
pub use ports::{
    EventStore, InsertOutcome, MemoryPublisher, MemoryStore, PublishError, Publisher, StoreError,
};
pub use tools::{
    replay, reprocess, EventArchive, EventRef, Page, ReplayReport, ReprocessReport, RequestError,
    Run, Selection, ToolError, ToolRequest, PAGE_SIZE,
};
