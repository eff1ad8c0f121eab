//! Operator tools over stored events: `replay` re-publishes them, and
//! `reprocess` re-decodes quarantined ones (after a parser fix) and accepts
//! those that now decode. Both run as Lambdas (`sam remote invoke`) and
//! locally (`switchboard-local replay|reprocess`), report counts, and are
//! idempotent.
//!
//! Both read the selection a page at a time ([`PAGE_SIZE`] events; for a
//! window's Scan, one page of each segment, whose items in the window are
//! the page's events) and act on each page before reading the next, so
//! their memory does not grow with the selection. When [`Run::keep_going`]
//! says to stop (a Lambda whose time runs low), the report carries a
//! `cursor`: the same request with that `cursor` goes on where the run
//! stopped, so any selection finishes in several calls.

use crate::codec::raw_body;
use crate::fanout::{message_for, publish_in_order, ByFamily};
use crate::item;
use crate::ports::{EventStore, InsertOutcome, Publisher, StoreError};
use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use switchboard_providers::{decode_event, timestamp, Admission};
use switchboard_types::{key, scoped_key, unscoped, Provider, Status, StoredEvent};

/// Which stored events a tool works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Received in `[from, to)`, of one tenant or all.
    Window {
        /// Inclusive start.
        from: DateTime<Utc>,
        /// Exclusive end.
        to: DateTime<Utc>,
        /// Only this tenant's events (any provider's); `None` selects all.
        tenant: Option<String>,
    },
    /// One conversation, in the order of the times its provider signed.
    Conversation {
        /// Its provider.
        provider: Provider,
        /// Its tenant.
        tenant: String,
        /// The provider's conversation key within the tenant (the subject
        /// without its `<tenant>/`).
        key: String,
    },
    /// These events.
    Events(Vec<EventRef>),
    /// The quarantined events of a window: what `reprocess` reads of one
    /// (found on the sparse `by-day` index, which only quarantined items
    /// write to, rather than by a Scan of the table).
    QuarantinedWindow {
        /// Inclusive start.
        from: DateTime<Utc>,
        /// Exclusive end.
        to: DateTime<Utc>,
        /// Only this tenant's events (any provider's); `None` selects all.
        tenant: Option<String>,
    },
}

impl Selection {
    /// What reprocess reads of this selection: of a window, only its
    /// quarantined events.
    pub fn quarantined_only(&self) -> Selection {
        match self {
            Selection::Window { from, to, tenant } => Selection::QuarantinedWindow {
                from: *from,
                to: *to,
                tenant: tenant.clone(),
            },
            other => other.clone(),
        }
    }
}

/// One event, named as a consumer knows it: the CloudEvent's `provider`,
/// `tenant`, `subject` and `id` (so a CloudEvent itself names its event;
/// its other attributes are ignored).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct EventRef {
    /// The CloudEvent `provider` (its lowercase name).
    pub provider: Provider,
    /// The CloudEvent `tenant` (`default` when absent).
    #[serde(default = "switchboard_types::default_tenant")]
    pub tenant: String,
    /// The CloudEvent `subject`: absent for an event without a conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The CloudEvent `id`.
    pub id: String,
}

/// The provider's conversation key in `subject`, which names `tenant`'s
/// conversation ([`scoped_key`]): a subject names its tenant, so one of
/// another tenant is refused with the tenant it names, never read as a
/// key that matches nothing.
fn key_in(tenant: &str, subject: &str) -> Result<String, RequestError> {
    let (named, key) = unscoped(subject);
    if named == tenant && !key.is_empty() {
        return Ok(key.to_owned());
    }
    Err(RequestError(format!(
        "subject {subject:?} is not a conversation of tenant {tenant:?} but of tenant \
         {named:?}: give \"tenant\": {named:?} (a subject is the CloudEvent's, with its tenant)"
    )))
}

/// The tenant of a conversation request: the one given, else the one its
/// subject names.
fn tenant_of(tenant: Option<&str>, subject: &str) -> String {
    tenant.unwrap_or_else(|| unscoped(subject).0).to_owned()
}

impl EventRef {
    /// The partition that holds the event.
    pub fn partition(&self) -> String {
        let key = self
            .subject
            .as_deref()
            .and_then(|subject| key_in(&self.tenant, subject).ok());
        key::partition(self.provider, &self.tenant, key.as_deref(), &self.id)
    }
}

/// A tool's input as JSON (the Lambda's event): exactly one of `window`,
/// `conversation` or `events`, e.g.
/// `{"window": {"from": "2026-11-22T00:00:00Z", "to": "2026-11-23T00:00:00Z"}}`
/// (with `"tenant": "acme"` for one tenant's events),
/// `{"conversation": {"provider": "partoo", "tenant": "123", "subject": "123/456"}}`,
/// `{"events": [{"provider": "bird", "subject": "contact:…", "id": "…"}]}`
/// (each as on the CloudEvent; `tenant` defaults to `default`);
/// `replay_id` is optional (replay only).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ToolRequest {
    /// A receive-time window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowRequest>,
    /// A conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<ConversationRequest>,
    /// Events, each named by its CloudEvent's attributes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<EventRef>>,
    /// Refused with a pointer to `events`: an id alone no longer names
    /// where its event is stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_ids: Option<serde_json::Value>,
    /// Names a replay; replaying the same request twice within SQS's
    /// 5-minute deduplication window publishes once. Default: derived from
    /// the selection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay_id: Option<String>,
    /// Where an earlier run of the same request stopped (its report's
    /// `cursor`): this run goes on from there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// `{"from": …, "to": …}`, RFC 3339, and optionally `"tenant": …`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WindowRequest {
    /// Inclusive start.
    pub from: String,
    /// Exclusive end.
    pub to: String,
    /// Only this tenant's events (the CloudEvent `tenant`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

/// `{"provider": …, "tenant": …, "subject": …}`, as on the CloudEvent.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConversationRequest {
    /// The CloudEvent `provider`.
    pub provider: String,
    /// The CloudEvent `tenant`; when absent, the one the subject names
    /// (`default` for a subject without a `/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The CloudEvent `subject`.
    #[serde(alias = "key")]
    pub subject: String,
}

/// A request that does not say what to select.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid request: {0}")]
pub struct RequestError(pub String);

impl ToolRequest {
    /// The selection this request names.
    pub fn selection(&self) -> Result<Selection, RequestError> {
        if self.event_ids.is_some() {
            return Err(RequestError(
                "`event_ids` is gone: list `events`, each as its CloudEvent names it \
                 ({\"provider\", \"tenant\", \"subject\", \"id\"})"
                    .into(),
            ));
        }
        let given = [
            self.window.is_some(),
            self.conversation.is_some(),
            self.events.is_some(),
        ]
        .iter()
        .filter(|g| **g)
        .count();
        if given != 1 {
            return Err(RequestError(
                "give exactly one of `window`, `conversation` or `events`".into(),
            ));
        }
        if let Some(w) = &self.window {
            let parse = |name: &str, text: &str| {
                timestamp::parse(text).ok_or_else(|| {
                    RequestError(format!("window.{name} is not a timestamp: {text:?}"))
                })
            };
            let (from, to) = (parse("from", &w.from)?, parse("to", &w.to)?);
            if from >= to {
                return Err(RequestError("window.from must be before window.to".into()));
            }
            if to - from > chrono::Duration::days(366) {
                return Err(RequestError("a window spans at most 366 days".into()));
            }
            if w.tenant.as_deref().is_some_and(str::is_empty) {
                return Err(RequestError("window.tenant is empty".into()));
            }
            return Ok(Selection::Window {
                from,
                to,
                tenant: w.tenant.clone(),
            });
        }
        if let Some(c) = &self.conversation {
            let provider = Provider::from_name(&c.provider)
                .ok_or_else(|| RequestError(format!("unknown provider {:?}", c.provider)))?;
            if c.subject.is_empty() {
                return Err(RequestError("conversation.subject is empty".into()));
            }
            let tenant = tenant_of(c.tenant.as_deref(), &c.subject);
            return Ok(Selection::Conversation {
                provider,
                key: key_in(&tenant, &c.subject)?,
                tenant,
            });
        }
        let events = self.events.clone().unwrap_or_default();
        if events.is_empty() {
            return Err(RequestError("events must list at least one event".into()));
        }
        for event in &events {
            if event.id.trim().is_empty() || event.tenant.is_empty() {
                return Err(RequestError(
                    "each event needs a non-empty `id` (and `tenant`, when given)".into(),
                ));
            }
            if let Some(subject) = &event.subject {
                key_in(&event.tenant, subject)?;
            }
        }
        Ok(Selection::Events(events))
    }

    /// The replay id: the given one (checked), or one derived from the request.
    pub fn replay_id(&self) -> Result<String, RequestError> {
        match &self.replay_id {
            Some(id) => {
                let ok = !id.is_empty()
                    && id.len() <= 64
                    && id
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
                if ok {
                    Ok(id.clone())
                } else {
                    Err(RequestError(
                        "replay_id: 1 to 64 characters of A-Z a-z 0-9 - _".into(),
                    ))
                }
            }
            None => {
                // The same selection is the same replay, whichever page it is on.
                let mut request = self.clone();
                request.replay_id = None;
                request.cursor = None;
                // Named with or without its tenant, a conversation is one.
                if let Some(c) = request.conversation.as_mut() {
                    c.tenant = Some(tenant_of(c.tenant.as_deref(), &c.subject));
                }
                let text = serde_json::to_string(&request).unwrap_or_default();
                Ok(hex::encode(&Sha256::digest(text.as_bytes())[..8]))
            }
        }
    }
}

/// Events the tools read per page: what one page holds in memory (items of
/// at most 400 KB, each message at most 1 MiB).
pub const PAGE_SIZE: usize = 25;

/// One page of a selection.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// Full stored items of the selection, each once over all pages.
    pub items: Vec<StoredEvent>,
    /// Where the next page starts (the archive's own position), or `None`
    /// when the selection is exhausted.
    pub next: Option<String>,
    /// Items of the page this version cannot read (their keys, and why):
    /// skipped, so that they never fail the events beside them.
    pub unreadable: Vec<String>,
}

/// Reads stored events for the tools, and marks reprocessed ones.
#[async_trait]
pub trait EventArchive: Send + Sync {
    /// Up to about `limit` items of `selection` from `after` (a `next` of
    /// an earlier page; `None` to start), in the order the archive keeps
    /// them: by receive time for a window, by event time for a
    /// conversation, as listed for ids. A page may be short or empty while
    /// `next` is still set.
    async fn page(
        &self,
        selection: &Selection,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page, StoreError>;
    /// Records on the quarantined `item` that it was accepted as `event_id`.
    async fn mark_reprocessed(&self, item: &StoredEvent, event_id: &str) -> Result<(), StoreError>;
}

/// Whether `item` falls in `selection` (the archive's own filter, and what
/// an index query cannot express exactly).
pub fn selects(selection: &Selection, item: &StoredEvent) -> bool {
    match selection {
        Selection::Window { from, to, tenant } => {
            timestamp::parse(&item.received_at).is_some_and(|t| t >= *from && t < *to)
                && tenant.as_ref().is_none_or(|tenant| item.tenant == *tenant)
        }
        Selection::QuarantinedWindow { from, to, tenant } => {
            item.status == Status::Quarantined
                && selects(
                    &Selection::Window {
                        from: *from,
                        to: *to,
                        tenant: tenant.clone(),
                    },
                    item,
                )
        }
        Selection::Conversation {
            provider,
            tenant,
            key,
        } => {
            item.provider == *provider
                && item.tenant == *tenant
                && item.conversation_key == scoped_key(tenant, key)
        }
        Selection::Events(events) => events.iter().any(|e| {
            e.provider == item.provider && e.tenant == item.tenant && e.id == item.event_id
        }),
    }
}

/// How far one run of a tool goes.
pub struct Run<'a> {
    /// Where to start: the `cursor` of an earlier run of the same request.
    pub cursor: Option<&'a str>,
    /// Items per page ([`PAGE_SIZE`] unless a test says otherwise).
    pub page_size: usize,
    /// Asked before each page after the first: `false` ends the run with a
    /// cursor (a Lambda checks its remaining time).
    pub keep_going: &'a (dyn Fn() -> bool + Send + Sync),
}

impl std::fmt::Debug for Run<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run")
            .field("cursor", &self.cursor)
            .field("page_size", &self.page_size)
            .finish_non_exhaustive()
    }
}

impl Run<'static> {
    /// The whole selection in one run, from the start.
    pub fn to_the_end() -> Self {
        Run {
            cursor: None,
            page_size: PAGE_SIZE,
            keep_going: &|| true,
        }
    }
}

/// Why a tool could not run.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The request (its cursor) is not valid.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// Reading or writing the table failed; run the request again.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A tool's cursor: the archive's position, sealed to the selection it was
/// made for, so a cursor given with another selection is refused rather
/// than silently skipping events.
fn seal(selection: &Selection, at: &str) -> String {
    let text = serde_json::json!({ "s": selection_digest(selection), "at": at }).to_string();
    URL_SAFE_NO_PAD.encode(text)
}

fn unseal(selection: &Selection, cursor: &str) -> Result<String, RequestError> {
    let invalid = || RequestError("cursor is not one this tool returned".into());
    let text = URL_SAFE_NO_PAD
        .decode(cursor.trim())
        .map_err(|_| invalid())?;
    let value: serde_json::Value = serde_json::from_slice(&text).map_err(|_| invalid())?;
    if value["s"].as_str() != Some(selection_digest(selection).as_str()) {
        return Err(RequestError(
            "cursor belongs to another selection: repeat the request it came from".into(),
        ));
    }
    value["at"].as_str().map(str::to_owned).ok_or_else(invalid)
}

fn selection_digest(selection: &Selection) -> String {
    hex::encode(&Sha256::digest(format!("{selection:?}").as_bytes())[..8])
}

/// A run's pages of a selection, read one at a time.
struct Pages<'a> {
    archive: &'a dyn EventArchive,
    selection: &'a Selection,
    run: &'a Run<'a>,
    /// The archive's position of the next page (`None` at the start).
    at: Option<String>,
    /// Where the page last returned started.
    page_start: Option<String>,
    started: bool,
    done: bool,
    /// The selection's items that could not be read, so far.
    unreadable: Vec<String>,
}

impl<'a> Pages<'a> {
    fn new(
        archive: &'a dyn EventArchive,
        selection: &'a Selection,
        run: &'a Run<'a>,
    ) -> Result<Self, RequestError> {
        Ok(Self {
            archive,
            selection,
            run,
            at: run
                .cursor
                .map(|c| unseal(selection, c))
                .transpose()?
                .filter(|at| !at.is_empty()),
            page_start: None,
            started: false,
            done: false,
            unreadable: Vec::new(),
        })
    }

    /// The next page's items, or `None` at the end of the selection or when
    /// the run is told to stop. An archive page that is empty while more
    /// follows (a window's day without quarantined events, a part of the
    /// table outside the window) is read past, not returned: a run's pages
    /// hold events. Reading past asks [`Run::keep_going`] too: scanning a
    /// large table for a short window can take longer than one invocation.
    async fn next(&mut self) -> Result<Option<Vec<StoredEvent>>, StoreError> {
        if self.done || (self.started && !(self.run.keep_going)()) {
            return Ok(None);
        }
        self.started = true;
        let mut read_past = false;
        loop {
            if read_past && !(self.run.keep_going)() {
                return Ok(None);
            }
            read_past = true;
            self.page_start = self.at.clone();
            let page = self
                .archive
                .page(
                    self.selection,
                    self.at.as_deref(),
                    self.run.page_size.max(1),
                )
                .await?;
            self.done = page.next.is_none();
            self.at = page.next;
            self.unreadable.extend(page.unreadable);
            if !page.items.is_empty() || self.done {
                return Ok(Some(page.items));
            }
        }
    }

    /// Where to go on from: `None` once the selection is exhausted.
    fn cursor(&self) -> Option<String> {
        match (&self.at, self.done) {
            (Some(at), false) => Some(seal(self.selection, at)),
            _ => None,
        }
    }

    /// Where the page last returned started: to do it again.
    fn cursor_at_this_page(&self) -> String {
        seal(
            self.selection,
            self.page_start.as_deref().unwrap_or_default(),
        )
    }
}

/// What a replay did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct ReplayReport {
    /// Stored events the selection matched.
    pub matched: usize,
    /// Messages the queues accepted.
    pub published: usize,
    /// Quarantined events, never published.
    pub skipped_quarantined: usize,
    /// Event ids that could not be published (retry the replay).
    pub failed: Vec<String>,
    /// Stored items of the selection this version cannot read (their keys,
    /// and why): skipped, never published; the others are unaffected.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<String>,
    /// The replay id used in each message's deduplication id.
    pub replay_id: String,
    /// Set when the run stopped before the end of the selection: repeat the
    /// request with this `cursor` to go on. `null` when it is done.
    pub cursor: Option<String>,
}

/// Re-publishes the accepted events of `selection` to their normal queues.
/// Consumers see the same CloudEvent (same `id`); the SQS deduplication id
/// is `<event id>:replay:<replay id>`, so the replay is not swallowed by the
/// original send's deduplication window, and repeating the same replay
/// within 5 minutes publishes nothing more. Stored items are not changed.
pub async fn replay(
    archive: &dyn EventArchive,
    publisher: &dyn Publisher,
    selection: &Selection,
    replay_id: &str,
    run: &Run<'_>,
) -> Result<ReplayReport, ToolError> {
    let mut report = ReplayReport {
        replay_id: replay_id.to_owned(),
        ..ReplayReport::default()
    };
    let mut pages = Pages::new(archive, selection, run)?;
    while let Some(items) = pages.next().await? {
        report.matched += items.len();
        let mut by_family = ByFamily::new();
        for (position, item) in items.iter().enumerate() {
            if item.status != Status::Accepted {
                report.skipped_quarantined += 1;
                continue;
            }
            match message_for(item) {
                Ok(mut message) => {
                    message.dedup_id = format!("{}:replay:{replay_id}", item.event_id);
                    by_family
                        .entry(item.family)
                        .or_default()
                        .push((position, message));
                }
                Err(why) => {
                    tracing::error!(event_id = %item.event_id, error = %why, "cannot replay");
                    report.failed.push(item.event_id.clone());
                }
            }
        }
        let sent = publish_in_order(publisher, by_family).await;
        report.published += sent.published.len();
        report
            .failed
            .extend(sent.failed.iter().map(|p| items[*p].event_id.clone()));
        if !sent.failed.is_empty() {
            // Later pages would go out ahead of what failed here: stop, with
            // a cursor that does this page again (what it published is
            // deduplicated by SQS within 5 minutes, and by consumers on
            // the CloudEvent id after that).
            report.cursor = Some(pages.cursor_at_this_page());
            report.unreadable = std::mem::take(&mut pages.unreadable);
            tracing::warn!(
                replay_id,
                failed = report.failed.len(),
                "replay stopped at a page that failed to publish"
            );
            return Ok(report);
        }
    }
    report.cursor = pages.cursor();
    report.unreadable = std::mem::take(&mut pages.unreadable);
    tracing::info!(
        matched = report.matched,
        published = report.published,
        skipped_quarantined = report.skipped_quarantined,
        failed = report.failed.len(),
        replay_id,
        done = report.cursor.is_none(),
        "replay done"
    );
    Ok(report)
}

/// What a reprocessing did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct ReprocessReport {
    /// Quarantined events examined (not yet reprocessed).
    pub examined: usize,
    /// Newly accepted: `(quarantined event id, accepted event id)`.
    pub accepted: Vec<(String, String)>,
    /// Now decodable, but the accepted event already existed (the provider
    /// redelivered it after the fix, or an earlier run stored it).
    pub already_accepted: usize,
    /// Still not decodable.
    pub still_quarantined: usize,
    /// Quarantined event ids that failed (storage errors; retry).
    pub failed: Vec<String>,
    /// Stored items of the selection this version cannot read (their keys,
    /// and why): skipped; the others are unaffected.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<String>,
    /// Set when the run stopped before the end of the selection: repeat the
    /// request with this `cursor` to go on. `null` when it is done.
    pub cursor: Option<String>,
}

/// Re-decodes the quarantined events of `selection` with today's decoders
/// and admission settings (a Partoo organisation listed since). Each one
/// that now decodes and is admitted is stored as an accepted event (the
/// usual conditional insert, so the stream publishes it exactly like a fresh
/// webhook), with the delivery facts the webhook stored (a tryout stays a
/// tryout), and its quarantined item is marked with the accepted id, so a
/// second run skips it. A body kept only in part (`too_large`) is never
/// decoded. Idempotent: repeating it accepts nothing twice.
pub async fn reprocess(
    archive: &dyn EventArchive,
    store: &dyn EventStore,
    admission: &Admission,
    selection: &Selection,
    run: &Run<'_>,
) -> Result<ReprocessReport, ToolError> {
    let mut report = ReprocessReport::default();
    let selection = &selection.quarantined_only();
    let mut pages = Pages::new(archive, selection, run)?;
    while let Some(items) = pages.next().await? {
        for item in items
            .iter()
            .filter(|i| i.status == Status::Quarantined && i.reprocessed_to.is_none())
        {
            reprocess_one(archive, store, admission, item, &mut report).await;
        }
    }
    report.cursor = pages.cursor();
    report.unreadable = std::mem::take(&mut pages.unreadable);
    tracing::info!(
        examined = report.examined,
        accepted = report.accepted.len(),
        already_accepted = report.already_accepted,
        still_quarantined = report.still_quarantined,
        failed = report.failed.len(),
        done = report.cursor.is_none(),
        "reprocess done"
    );
    Ok(report)
}

async fn reprocess_one(
    archive: &dyn EventArchive,
    store: &dyn EventStore,
    admission: &Admission,
    item: &StoredEvent,
    report: &mut ReprocessReport,
) {
    report.examined += 1;
    // Only the whole body as received: `raw_sha256` is set only on an item
    // that keeps part of its body.
    let Some(body) = raw_body(item).ok().filter(|_| item.raw_sha256.is_none()) else {
        report.still_quarantined += 1;
        return;
    };
    let decoded = decode_event(item.provider, &body, admission);
    if decoded.is_err() {
        report.still_quarantined += 1;
        return;
    }
    let received = timestamp::parse(&item.received_at).unwrap_or_else(Utc::now);
    let accepted = item::build_hashed(
        item.provider,
        &decoded,
        &item::delivery_of(item),
        &body,
        &Sha256::digest(&body).into(),
        received,
        item.expires_at,
    );
    let outcome = match store.insert(&accepted).await {
        Ok(outcome) => outcome,
        Err(error) => {
            tracing::error!(event_id = %item.event_id, error = %error, "reprocess: store failed");
            report.failed.push(item.event_id.clone());
            return;
        }
    };
    if let Err(error) = archive.mark_reprocessed(item, &accepted.event_id).await {
        tracing::error!(event_id = %item.event_id, error = %error, "reprocess: mark failed");
        report.failed.push(item.event_id.clone());
        return;
    }
    match outcome {
        InsertOutcome::Created => report
            .accepted
            .push((item.event_id.clone(), accepted.event_id.clone())),
        InsertOutcome::Duplicate => report.already_accepted += 1,
    }
}

#[async_trait]
impl EventArchive for crate::ports::MemoryStore {
    async fn page(
        &self,
        selection: &Selection,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let mut items: Vec<StoredEvent> = self
            .items()
            .into_iter()
            .filter(|i| selects(selection, i))
            .collect();
        match selection {
            // Stored order, as DynamoStore reads a conversation.
            Selection::Conversation { .. } => {
                items.sort_by_cached_key(|i| (timestamp::parse(&i.received_at), i.sk.clone()))
            }
            _ => items
                .sort_by(|a, b| (&a.received_at, &a.event_id).cmp(&(&b.received_at, &b.event_id))),
        }
        let start: usize = after.and_then(|a| a.parse().ok()).unwrap_or(0);
        let end = (start + limit).min(items.len());
        Ok(Page {
            items: items.get(start..end).map(<[_]>::to_vec).unwrap_or_default(),
            next: (end < items.len()).then(|| end.to_string()),
            unreadable: Vec::new(),
        })
    }

    async fn mark_reprocessed(&self, item: &StoredEvent, event_id: &str) -> Result<(), StoreError> {
        self.update(&item.pk, &item.sk, |item| {
            item.reprocessed_to = Some(event_id.to_owned());
        })
    }
}
