//! DynamoDB state (feature `aws`): the serverless deployment's [`StateStore`], one table shared
//! by every function, created by `terraform/modules/state_table` (partition key `pk` S, sort key
//! `sk` S, TTL on `expires_at`). Same semantics as SQLite; the shared contract
//! (`state::contract`) runs against moto server in `tests/emulated/state_dynamodb.rs`.
//!
//! # Item layout
//!
//! | attribute    | type | meaning |
//! |--------------|------|---------|
//! | `pk`         | S    | the namespace (`cursor`, `history`, `dedup`, ...): one item type per `pk` |
//! | `sk`         | S    | `#` + the key (the `#` keeps the empty key legal; order is unchanged) |
//! | `value`      | B    | the bytes (absent on counters) |
//! | `n`          | N    | counters only: the count (the value reads as its 8 big-endian bytes) |
//! | `version`    | N    | 1 on insert, +1 on every write (compare-and-set) |
//! | `expires_at` | N    | TTL for DynamoDB's sweeper: epoch seconds, rounded UP |
//! | `expires_ns` | N    | the exact expiry in epoch nanoseconds, which reads and conditions use |
//!
//! DynamoDB deletes expired items lazily (often days late), so every read filters on
//! `expires_ns` and every conditional write treats an expired item as absent
//! (`attribute_not_exists(pk) OR expires_ns <= :now`). Two expiry attributes because the
//! contract is exact to the nanosecond (like SQLite's `exp_s`/`exp_ns`) while TTL wants whole
//! seconds; rounding `expires_at` up means the sweeper never removes a live item.
//!
//! Operations: `get` = consistent `GetItem`; `put` = `UpdateItem` (`version + 1`) if a live
//! item exists, else a conditional `PutItem` (version 1), retried if a writer raced in;
//! `put_if_absent` / `compare_and_set` = `PutItem` with a condition, the current item from
//! `ReturnValuesOnConditionCheckFailure = ALL_OLD`; `incr_window` = `UpdateItem ADD n :one` with
//! `attribute_not_exists(n) OR n < :limit`; `list` = consistent `Query` on `pk` with
//! `begins_with(sk, ..)`, filtered and paginated. Only the actions the Terraform policies grant
//! (`GetItem`, `PutItem`, `UpdateItem`, `DeleteItem`, `Query`) are used in operation;
//! [`DynamoStore::create_table`] is for emulators and local use.
//!
//! Limits DynamoDB brings: an item is at most 400 KB and a key at most 1023 bytes (larger ones
//! fail as non-retryable backend errors); one namespace is one partition key, so a namespace's
//! sustained traffic is bounded by what DynamoDB gives one partition after splitting it by
//! sort-key range.
//!
//! # Sync over async
//!
//! [`StateStore`] is synchronous; the SDK is async. Each store owns a current-thread tokio
//! runtime on a thread of its own (`picket-dynamodb`) and keeps its [`Handle`]: a call spawns
//! the SDK future there and blocks the calling thread on a channel until it answers. Chosen over
//! `block_in_place` + `Handle::block_on` because that needs a multi-thread runtime, and picket's
//! CLI runs a current-thread one (where `block_in_place` panics and `block_on` deadlocks). With
//! the dedicated thread the store works from any thread, inside or outside a runtime.
//! Constraints: a call blocks its caller for one round trip (as SQLite's disk I/O does), so
//! async callers that want their other tasks to run meanwhile call it from `spawn_blocking`;
//! the store's client has its own connection pool and identity cache, so nothing it waits for
//! is driven by the caller's (blocked) runtime; the store must not be called from inside one of
//! its own SDK futures (nothing here does). Dropping the store stops its thread.
//!
//! To add an operation: write it as an `async fn` on `Inner` and call it through
//! `DynamoStore::run`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::get_item::GetItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::query::QueryError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeValue, KeysAndAttributes, ReturnValue, ReturnValuesOnConditionCheckFailure,
};
use chrono::{DateTime, Utc};
use tokio::runtime::Handle;

use super::{CasOutcome, CounterOutcome, StateError, StateStore, Versioned};

const BACKEND: &str = "dynamodb";

/// Attribute names (see the module docs).
const PK: &str = "pk";
const SK: &str = "sk";
const VALUE: &str = "value";
const COUNT: &str = "n";
const VERSION: &str = "version";
const EXPIRES_AT: &str = "expires_at";
const EXPIRES_NS: &str = "expires_ns";

/// Keys per `BatchGetItem` request (DynamoDB's limit).
const BATCH_GET_MAX: usize = 100;
/// `BatchGetItem` requests for one chunk of keys before unprocessed keys are an error.
const UNPROCESSED_ROUNDS: u32 = 8;

/// How often `put` retries when another writer inserts or deletes the key between its two steps.
const PUT_ATTEMPTS: usize = 16;

/// Items read per `Query` page at least / at most (expired leftovers are filtered after the
/// limit applies, so a page a little larger than needed saves round trips).
const PAGE_MIN: usize = 25;
const PAGE_MAX: usize = 1000;

/// Error codes after which a retry may help.
const RETRYABLE_CODES: &[&str] = &[
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionConflictException",
];

type Item = HashMap<String, AttributeValue>;

/// A [`StateStore`] in a DynamoDB table (see the module docs for the layout and the threading).
pub struct DynamoStore {
    inner: Arc<Inner>,
    runtime: Handle,
    /// Dropped with the store: ends the runtime thread.
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl std::fmt::Debug for DynamoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoStore")
            .field("table", &self.inner.table)
            .finish_non_exhaustive()
    }
}

/// What the SDK futures need: the client and the table.
struct Inner {
    client: Client,
    table: String,
}

fn backend(message: impl Into<String>) -> StateError {
    StateError::Backend {
        backend: BACKEND,
        message: message.into(),
        source: None,
    }
}

impl DynamoStore {
    /// A store on `table`, with a client built from the shared SDK configuration
    /// (`cloud::aws::sdk_config`); `endpoint_url` overrides its endpoint for DynamoDB only.
    /// Starts the store's runtime thread; makes no request.
    pub fn new(
        sdk: &aws_config::SdkConfig,
        table: impl Into<String>,
        endpoint_url: Option<&str>,
    ) -> Result<DynamoStore, StateError> {
        // Own identity cache (and, from the SDK defaults, own connection pool): nothing this
        // client waits for is driven by another runtime.
        let mut config = aws_sdk_dynamodb::config::Builder::from(sdk)
            .identity_cache(aws_sdk_dynamodb::config::IdentityCache::lazy().build());
        if let Some(url) = endpoint_url {
            config = config.endpoint_url(url);
        }
        // The runtime is built, run and dropped on its own thread (dropping a runtime inside
        // the caller's async context would panic).
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (started, handle) = std::sync::mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("picket-dynamodb".into())
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => {
                        let _ = started.send(Ok(runtime.handle().clone()));
                        // Runs the spawned SDK calls until the store is dropped.
                        runtime.block_on(async {
                            let _ = stopped.await;
                        });
                    }
                    Err(e) => {
                        let _ = started.send(Err(e));
                    }
                }
            })
            .map_err(|e| StateError::Backend {
                backend: BACKEND,
                message: "cannot start the store's runtime thread".into(),
                source: Some(Box::new(e)),
            })?;
        let handle = handle
            .recv()
            .map_err(|_| backend("the store's runtime thread ended at start"))?
            .map_err(|e| StateError::Backend {
                backend: BACKEND,
                message: "cannot start the store's runtime".into(),
                source: Some(Box::new(e)),
            })?;
        Ok(DynamoStore {
            inner: Arc::new(Inner {
                client: Client::from_conf(config.build()),
                table: table.into(),
            }),
            runtime: handle,
            _stop: stop,
        })
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.inner.table
    }

    /// Runs `op` on the store's runtime thread and waits for it (see the module docs).
    fn run<T, F, Fut>(&self, op: F) -> Result<T, StateError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Inner>) -> Fut,
        Fut: Future<Output = Result<T, StateError>> + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let fut = op(Arc::clone(&self.inner));
        self.runtime.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv()
            .map_err(|_| backend("the store's runtime thread has stopped"))?
    }

    /// Creates the table with the Terraform module's schema (`pk`/`sk` strings, on-demand, TTL on
    /// `expires_at`) and waits until it is active. For emulators and local use: deployments get
    /// the table from `terraform/modules/state_table`.
    pub fn create_table(&self) -> Result<(), StateError> {
        self.run(|s| async move { s.create_table().await })
    }
}

/// Nanoseconds since the epoch, exact for every `DateTime<Utc>`.
fn epoch_ns(t: DateTime<Utc>) -> i128 {
    i128::from(t.timestamp()) * 1_000_000_000 + i128::from(t.timestamp_subsec_nanos())
}

/// Whole seconds since the epoch, rounded up: DynamoDB's TTL never removes a live item.
fn ttl_secs(t: DateTime<Utc>) -> i64 {
    t.timestamp() + i64::from(t.timestamp_subsec_nanos() > 0)
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn sort_key(key: &str) -> String {
    format!("#{key}")
}

/// The key attributes of `(ns, key)`.
fn key_of(ns: &str, key: &str) -> Item {
    HashMap::from([
        (PK.to_string(), AttributeValue::S(ns.to_string())),
        (SK.to_string(), AttributeValue::S(sort_key(key))),
    ])
}

/// A whole item as `PutItem` writes it.
fn full_item(
    ns: &str,
    key: &str,
    value: &[u8],
    version: u64,
    expires: Option<DateTime<Utc>>,
) -> Item {
    let mut item = key_of(ns, key);
    item.insert(VALUE.into(), AttributeValue::B(Blob::new(value)));
    item.insert(VERSION.into(), n(version));
    if let Some(e) = expires {
        item.insert(EXPIRES_AT.into(), n(ttl_secs(e)));
        item.insert(EXPIRES_NS.into(), n(epoch_ns(e)));
    }
    item
}

fn corrupt(ns: &str, key: &str, message: impl Into<String>) -> StateError {
    StateError::Corrupt {
        namespace: ns.to_string(),
        key: key.to_string(),
        message: message.into(),
    }
}

fn number<T: std::str::FromStr>(
    ns: &str,
    key: &str,
    item: &Item,
    name: &str,
) -> Result<Option<T>, StateError> {
    match item.get(name) {
        None => Ok(None),
        Some(AttributeValue::N(s)) => s
            .parse()
            .map(Some)
            .map_err(|_| corrupt(ns, key, format!("attribute {name} = {s} is out of range"))),
        Some(other) => Err(corrupt(
            ns,
            key,
            format!("attribute {name} is not a number: {other:?}"),
        )),
    }
}

/// Whether a stored item is live at `now` (no `expires_ns`, or one after `now`).
fn is_live(ns: &str, key: &str, item: &Item, now_ns: i128) -> Result<bool, StateError> {
    Ok(number::<i128>(ns, key, item, EXPIRES_NS)?.is_none_or(|e| e > now_ns))
}

/// The value and version of a stored item.
fn decode(ns: &str, key: &str, item: &Item) -> Result<Versioned, StateError> {
    let version = number::<u64>(ns, key, item, VERSION)?
        .ok_or_else(|| corrupt(ns, key, "item without a version"))?;
    let value = match (item.get(VALUE), number::<u64>(ns, key, item, COUNT)?) {
        (Some(AttributeValue::B(b)), _) => b.as_ref().to_vec(),
        (Some(other), _) => {
            return Err(corrupt(ns, key, format!("value is not binary: {other:?}")));
        }
        (None, Some(count)) => count.to_be_bytes().to_vec(),
        (None, None) => return Err(corrupt(ns, key, "item without a value or a count")),
    };
    Ok(Versioned { value, version })
}

/// The live item of `(ns, key)` at `now`, decoded, from an optional stored item.
fn live_value(
    ns: &str,
    key: &str,
    item: Option<&Item>,
    now_ns: i128,
) -> Result<Option<Versioned>, StateError> {
    match item {
        Some(item) if is_live(ns, key, item, now_ns)? => decode(ns, key, item).map(Some),
        _ => Ok(None),
    }
}

/// A failed SDK call as a [`StateError::Backend`], the SDK error boxed as its source.
fn sdk_error<E>(op: &str, table: &str, e: SdkError<E, HttpResponse>) -> StateError
where
    E: std::error::Error + Send + Sync + 'static,
{
    StateError::Backend {
        backend: BACKEND,
        message: format!("{op} on table {table}: {}", DisplayErrorContext(&e)),
        source: Some(Box::new(e)),
    }
}

fn classify<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> bool {
    match e {
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) => true,
        SdkError::DispatchFailure(d) => d.is_io() || d.is_timeout(),
        SdkError::ServiceError(s) => {
            let status = s.raw().status().as_u16();
            status == 429
                || status >= 500
                || s.err().code().is_some_and(|c| RETRYABLE_CODES.contains(&c))
        }
        _ => false,
    }
}

/// Whether the cause of a [`StateError::Backend`] is a DynamoDB error after which a retry may
/// help (throttling, exceeded throughput, 5xx, timeouts, connection failures); `None` when it
/// is not a DynamoDB SDK error.
pub(crate) fn retryable(source: &(dyn std::error::Error + Send + Sync + 'static)) -> Option<bool> {
    macro_rules! try_op {
        ($($t:ty),*) => {$(
            if let Some(e) = source.downcast_ref::<SdkError<$t, HttpResponse>>() {
                return Some(classify(e));
            }
        )*};
    }
    try_op!(
        GetItemError,
        PutItemError,
        UpdateItemError,
        DeleteItemError,
        QueryError
    );
    None
}

impl Inner {
    /// The items of `keys` (distinct) in namespace `ns`, by sort key: `BatchGetItem` of up to
    /// [`BATCH_GET_MAX`] keys per request with consistent reads; keys DynamoDB leaves
    /// unprocessed (throughput, response size) are asked again after a backoff.
    async fn get_many(
        &self,
        ns: &str,
        keys: &[String],
    ) -> Result<HashMap<String, Item>, StateError> {
        let backoff = crate::cloud::retry::RetryPolicy::default();
        let mut found = HashMap::with_capacity(keys.len());
        for chunk in keys.chunks(BATCH_GET_MAX) {
            let mut pending: Vec<Item> = chunk.iter().map(|k| key_of(ns, k)).collect();
            let mut round = 0u32;
            while !pending.is_empty() {
                if round >= UNPROCESSED_ROUNDS {
                    return Err(backend(format!(
                        "BatchGetItem on table {}: {} key(s) still unprocessed after {round} requests",
                        self.table,
                        pending.len()
                    )));
                }
                if round > 0 {
                    tokio::time::sleep(backoff.backoff(round)).await;
                }
                round += 1;
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(pending))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| backend(format!("BatchGetItem request: {e}")))?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| sdk_error("BatchGetItem", &self.table, e))?;
                let items = out
                    .responses
                    .and_then(|mut r| r.remove(&self.table))
                    .unwrap_or_default();
                for item in items {
                    if let Some(AttributeValue::S(sk)) = item.get(SK) {
                        found.insert(sk.clone(), item);
                    }
                }
                pending = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .map(|k| k.keys)
                    .unwrap_or_default();
            }
        }
        Ok(found)
    }

    async fn get(&self, ns: &str, key: &str) -> Result<Option<Item>, StateError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_of(ns, key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", &self.table, e))?;
        Ok(out.item)
    }

    /// `PutItem` of a whole item under `condition` (with its values). `Ok(None)`: written;
    /// `Ok(Some(old))`: the condition failed, and `old` is the item there (None: absent).
    async fn put_when(
        &self,
        item: Item,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<Option<Option<Item>>, StateError> {
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        for (name, attr) in names(condition) {
            req = req.expression_attribute_names(name, attr);
        }
        for (k, v) in values {
            req = req.expression_attribute_values(k, v);
        }
        match req.send().await {
            Ok(_) => Ok(None),
            Err(e) => match e.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(c)) => {
                    Ok(Some(c.item().cloned()))
                }
                _ => Err(sdk_error("PutItem", &self.table, e)),
            },
        }
    }

    /// Inserts version 1 if the key is absent or expired; `Some(old)` when a live item is there.
    async fn insert(
        &self,
        ns: &str,
        key: &str,
        value: &[u8],
        expires: Option<DateTime<Utc>>,
        now_ns: i128,
    ) -> Result<Option<Option<Item>>, StateError> {
        self.put_when(
            full_item(ns, key, value, 1, expires),
            "attribute_not_exists(#pk) OR #expires_ns <= :now",
            vec![(":now", n(now_ns))],
        )
        .await
    }

    async fn put(
        &self,
        ns: &str,
        key: &str,
        value: &[u8],
        expires: Option<DateTime<Utc>>,
        now_ns: i128,
    ) -> Result<u64, StateError> {
        for _ in 0..PUT_ATTEMPTS {
            // 1. A live item: bump its version.
            let mut update = String::from("SET #value = :value, #version = #version + :one");
            let mut values = vec![
                (":value", AttributeValue::B(Blob::new(value))),
                (":one", n(1)),
                (":now", n(now_ns)),
            ];
            match expires {
                Some(e) => {
                    update.push_str(", #expires_at = :ea, #expires_ns = :ens REMOVE #n");
                    values.push((":ea", n(ttl_secs(e))));
                    values.push((":ens", n(epoch_ns(e))));
                }
                None => update.push_str(" REMOVE #n, #expires_at, #expires_ns"),
            }
            let condition = "attribute_exists(#pk) AND (attribute_not_exists(#expires_ns) OR #expires_ns > :now)";
            let updated = self
                .update(ns, key, &update, Some(condition), values)
                .await?;
            if let Ok(item) = updated {
                return number::<u64>(ns, key, &item, VERSION)?
                    .ok_or_else(|| corrupt(ns, key, "UpdateItem returned no version"));
            }
            // 2. Absent or expired: insert version 1, unless a writer got there first.
            if self
                .insert(ns, key, value, expires, now_ns)
                .await?
                .is_none()
            {
                return Ok(1);
            }
        }
        Err(backend(format!(
            "put {ns}/{key} on table {}: the key kept changing under {PUT_ATTEMPTS} attempts",
            self.table
        )))
    }

    /// `UpdateItem` returning the updated attributes; `Ok(Err(old))` when `condition` failed.
    async fn update(
        &self,
        ns: &str,
        key: &str,
        update: &str,
        condition: Option<&str>,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<Result<Item, Option<Item>>, StateError> {
        let expressions = format!("{update} {}", condition.unwrap_or_default());
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_of(ns, key)))
            .update_expression(update)
            .set_condition_expression(condition.map(str::to_string))
            .return_values(ReturnValue::UpdatedNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        for (name, attr) in names(&expressions) {
            req = req.expression_attribute_names(name, attr);
        }
        for (k, v) in values {
            req = req.expression_attribute_values(k, v);
        }
        match req.send().await {
            Ok(out) => Ok(Ok(out.attributes.unwrap_or_default())),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(c)) => {
                    Ok(Err(c.item().cloned()))
                }
                _ => Err(sdk_error("UpdateItem", &self.table, e)),
            },
        }
    }

    async fn compare_and_set(
        &self,
        ns: &str,
        key: &str,
        expected: Option<u64>,
        value: &[u8],
        expires: Option<DateTime<Utc>>,
        now_ns: i128,
    ) -> Result<CasOutcome, StateError> {
        let conflict = match expected {
            None => self.insert(ns, key, value, expires, now_ns).await?,
            Some(v) => {
                self.put_when(
                    full_item(ns, key, value, v.saturating_add(1), expires),
                    "#version = :expected AND (attribute_not_exists(#expires_ns) OR #expires_ns > :now)",
                    vec![(":expected", n(v)), (":now", n(now_ns))],
                )
                .await?
            }
        };
        match conflict {
            None => Ok(CasOutcome::Written(
                expected.map_or(1, |v| v.saturating_add(1)),
            )),
            Some(old) => Ok(CasOutcome::Conflict(live_value(
                ns,
                key,
                old.as_ref(),
                now_ns,
            )?)),
        }
    }

    async fn delete(&self, ns: &str, key: &str) -> Result<(), StateError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_of(ns, key)))
            .send()
            .await
            .map_err(|e| sdk_error("DeleteItem", &self.table, e))?;
        Ok(())
    }

    async fn list(
        &self,
        ns: &str,
        prefix: &str,
        limit: usize,
        now_ns: i128,
    ) -> Result<Vec<(String, Versioned)>, StateError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        while out.len() < limit {
            let page = (limit - out.len()).clamp(PAGE_MIN, PAGE_MAX);
            let resp = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .filter_expression("attribute_not_exists(#expires_ns) OR #expires_ns > :now")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_names("#expires_ns", EXPIRES_NS)
                .expression_attribute_values(":pk", AttributeValue::S(ns.to_string()))
                .expression_attribute_values(":prefix", AttributeValue::S(sort_key(prefix)))
                .expression_attribute_values(":now", n(now_ns))
                // INVARIANT: page <= PAGE_MAX, which fits in i32.
                .limit(i32::try_from(page).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error("Query", &self.table, e))?;
            for item in resp.items.unwrap_or_default() {
                let Some(AttributeValue::S(sk)) = item.get(SK) else {
                    return Err(corrupt(ns, "?", "item without a string sort key"));
                };
                let key = sk.strip_prefix('#').unwrap_or(sk).to_string();
                // The filter already dropped expired items; checked again so the answer does
                // not depend on the server's filter.
                if is_live(ns, &key, &item, now_ns)? {
                    let v = decode(ns, &key, &item)?;
                    out.push((key, v));
                }
            }
            match resp.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        out.truncate(limit);
        Ok(out)
    }

    async fn incr_window(
        &self,
        ns: &str,
        bucket: &str,
        expires: DateTime<Utc>,
        limit: Option<u64>,
    ) -> Result<CounterOutcome, StateError> {
        let current = |item: Option<&Item>| -> Result<u64, StateError> {
            Ok(match item {
                Some(item) => number::<u64>(ns, bucket, item, COUNT)?.unwrap_or(0),
                None => 0,
            })
        };
        if limit == Some(0) {
            // `attribute_not_exists(n)` would let the first unit through.
            let item = self.get(ns, bucket).await?;
            return Ok(CounterOutcome::LimitReached(current(item.as_ref())?));
        }
        let mut values = vec![
            (":one", n(1)),
            (":ea", n(ttl_secs(expires))),
            (":ens", n(epoch_ns(expires))),
        ];
        if let Some(l) = limit {
            values.push((":limit", n(l)));
        }
        let updated = self
            .update(
                ns,
                bucket,
                "ADD #n :one, #version :one SET #expires_at = :ea, #expires_ns = :ens REMOVE #value",
                limit.map(|_| "attribute_not_exists(#n) OR #n < :limit"),
                values,
            )
            .await?;
        match updated {
            Ok(item) => Ok(CounterOutcome::Counted(current(Some(&item))?)),
            Err(old) => Ok(CounterOutcome::LimitReached(current(old.as_ref())?)),
        }
    }

    async fn create_table(&self) -> Result<(), StateError> {
        use aws_sdk_dynamodb::types::{
            AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
            TableStatus, TimeToLiveSpecification,
        };
        let built = |e: aws_sdk_dynamodb::error::BuildError| StateError::Backend {
            backend: BACKEND,
            message: format!("CreateTable {}: {e}", self.table),
            source: Some(Box::new(e)),
        };
        let other = |op: &str, e: String| backend(format!("{op} on table {}: {e}", self.table));
        let mut req = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest);
        for (name, kind) in [(PK, KeyType::Hash), (SK, KeyType::Range)] {
            req = req
                .key_schema(
                    KeySchemaElement::builder()
                        .attribute_name(name)
                        .key_type(kind)
                        .build()
                        .map_err(built)?,
                )
                .attribute_definitions(
                    AttributeDefinition::builder()
                        .attribute_name(name)
                        .attribute_type(ScalarAttributeType::S)
                        .build()
                        .map_err(built)?,
                );
        }
        req.send()
            .await
            .map_err(|e| other("CreateTable", DisplayErrorContext(&e).to_string()))?;
        loop {
            let out = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await
                .map_err(|e| other("DescribeTable", DisplayErrorContext(&e).to_string()))?;
            let status = out.table.and_then(|t| t.table_status);
            if status == Some(TableStatus::Active) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(EXPIRES_AT)
                    .build()
                    .map_err(built)?,
            )
            .send()
            .await
            .map_err(|e| other("UpdateTimeToLive", DisplayErrorContext(&e).to_string()))?;
        Ok(())
    }
}

/// The `#name` placeholders an expression uses, with the attribute each stands for (DynamoDB
/// refuses names that an expression does not use, and `value` is a reserved word).
fn names(expression: &str) -> Vec<(&'static str, &'static str)> {
    [
        ("#pk", PK),
        ("#value", VALUE),
        ("#n", COUNT),
        ("#version", VERSION),
        ("#expires_at", EXPIRES_AT),
        ("#expires_ns", EXPIRES_NS),
    ]
    .into_iter()
    .filter(|(placeholder, _)| {
        expression.match_indices(placeholder).any(|(i, _)| {
            let rest = &expression[i + placeholder.len()..];
            !rest.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        })
    })
    .collect()
}

impl StateStore for DynamoStore {
    fn name(&self) -> &'static str {
        BACKEND
    }

    fn get(
        &self,
        ns: &str,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Versioned>, StateError> {
        let (ns, key, now_ns) = (ns.to_string(), key.to_string(), epoch_ns(now));
        self.run(|s| async move {
            let item = s.get(&ns, &key).await?;
            live_value(&ns, &key, item.as_ref(), now_ns)
        })
    }

    /// One `BatchGetItem` per 100 distinct keys instead of a `GetItem` each.
    fn get_many(
        &self,
        ns: &str,
        keys: &[&str],
        now: DateTime<Utc>,
    ) -> Result<Vec<Option<Versioned>>, StateError> {
        let mut distinct: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        distinct.sort_unstable();
        distinct.dedup();
        let (ns_owned, now_ns) = (ns.to_string(), epoch_ns(now));
        let items = self.run(|s| async move { s.get_many(&ns_owned, &distinct).await })?;
        keys.iter()
            .map(|k| live_value(ns, k, items.get(&sort_key(k)), now_ns))
            .collect()
    }

    fn put(
        &self,
        ns: &str,
        key: &str,
        value: &[u8],
        expires: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<u64, StateError> {
        let (ns, key, value, now_ns) = (
            ns.to_string(),
            key.to_string(),
            value.to_vec(),
            epoch_ns(now),
        );
        self.run(|s| async move { s.put(&ns, &key, &value, expires, now_ns).await })
    }

    fn put_if_absent(
        &self,
        ns: &str,
        key: &str,
        value: &[u8],
        expires: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<bool, StateError> {
        let (ns, key, value, now_ns) = (
            ns.to_string(),
            key.to_string(),
            value.to_vec(),
            epoch_ns(now),
        );
        self.run(|s| async move {
            Ok(s.insert(&ns, &key, &value, expires, now_ns)
                .await?
                .is_none())
        })
    }

    fn compare_and_set(
        &self,
        ns: &str,
        key: &str,
        expected: Option<u64>,
        value: &[u8],
        expires: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<CasOutcome, StateError> {
        let (ns, key, value, now_ns) = (
            ns.to_string(),
            key.to_string(),
            value.to_vec(),
            epoch_ns(now),
        );
        self.run(|s| async move {
            s.compare_and_set(&ns, &key, expected, &value, expires, now_ns)
                .await
        })
    }

    fn delete(&self, ns: &str, key: &str) -> Result<(), StateError> {
        let (ns, key) = (ns.to_string(), key.to_string());
        self.run(|s| async move { s.delete(&ns, &key).await })
    }

    fn list(
        &self,
        ns: &str,
        prefix: &str,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, Versioned)>, StateError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (ns, prefix, now_ns) = (ns.to_string(), prefix.to_string(), epoch_ns(now));
        self.run(|s| async move { s.list(&ns, &prefix, limit, now_ns).await })
    }

    fn incr_window(
        &self,
        ns: &str,
        key: &str,
        window_secs: u64,
        at: DateTime<Utc>,
        limit: Option<u64>,
    ) -> Result<CounterOutcome, StateError> {
        let (bucket, expires) = super::window_bucket(key, window_secs, at);
        let ns = ns.to_string();
        self.run(|s| async move { s.incr_window(&ns, &bucket, expires, limit).await })
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn expiry_is_exact_in_nanoseconds_and_rounded_up_for_ttl() {
        let t = Utc.timestamp_opt(1_795_000_020, 1).unwrap();
        assert_eq!(epoch_ns(t), 1_795_000_020_000_000_001);
        assert_eq!(ttl_secs(t), 1_795_000_021);
        let whole = Utc.timestamp_opt(1_795_000_020, 0).unwrap();
        assert_eq!(ttl_secs(whole), 1_795_000_020);
        let before = Utc.timestamp_opt(-5, 500).unwrap();
        assert_eq!(epoch_ns(before), -4_999_999_500);
        assert_eq!(ttl_secs(before), -4);
        // Far dates do not overflow.
        assert!(epoch_ns(DateTime::<Utc>::MAX_UTC) > i128::from(i64::MAX));
    }

    #[test]
    fn names_lists_exactly_the_placeholders_used() {
        assert_eq!(
            names("attribute_not_exists(#pk) OR #expires_ns <= :now"),
            [("#pk", "pk"), ("#expires_ns", "expires_ns")]
        );
        // `#n` is not taken for the start of `#now`-like names.
        assert_eq!(
            names("SET #version = #version + :one REMOVE #n"),
            [("#n", "n"), ("#version", "version")]
        );
        assert!(names("SET a = :b").is_empty());
    }

    #[test]
    fn items_decode_values_counters_and_expiry() {
        let item = full_item("ns", "", b"abc", 3, Some(Utc.timestamp_opt(10, 5).unwrap()));
        assert_eq!(item[SK], AttributeValue::S("#".into()));
        assert_eq!(item[EXPIRES_AT], AttributeValue::N("11".into()));
        assert_eq!(
            decode("ns", "", &item).unwrap(),
            Versioned {
                value: b"abc".to_vec(),
                version: 3
            }
        );
        assert!(is_live("ns", "", &item, 10_000_000_004).unwrap());
        assert!(!is_live("ns", "", &item, 10_000_000_005).unwrap());
        let mut counter = key_of("c", "k#60#1");
        counter.insert(COUNT.into(), n(7));
        counter.insert(VERSION.into(), n(7));
        assert_eq!(
            decode("c", "k", &counter).unwrap().value,
            7u64.to_be_bytes()
        );
        counter.insert(VERSION.into(), AttributeValue::S("x".into()));
        assert!(matches!(
            decode("c", "k", &counter),
            Err(StateError::Corrupt { .. })
        ));
        counter.remove(VERSION);
        assert!(decode("c", "k", &counter).is_err());
    }

    #[test]
    fn throttling_and_server_errors_are_retryable_others_not() {
        use aws_sdk_dynamodb::error::ErrorMetadata;
        let service = |status: u16, code: &str| -> StateError {
            let err = GetItemError::generic(ErrorMetadata::builder().code(code).build());
            let raw = HttpResponse::new(status.try_into().unwrap(), "".into());
            sdk_error("GetItem", "t", SdkError::service_error(err, raw))
        };
        assert!(service(400, "ThrottlingException").is_retryable());
        assert!(service(400, "ProvisionedThroughputExceededException").is_retryable());
        assert!(service(500, "InternalServerError").is_retryable());
        assert!(service(503, "Whatever").is_retryable());
        let not_found = service(400, "ResourceNotFoundException");
        assert!(!not_found.is_retryable());
        assert!(
            not_found.to_string().contains("GetItem on table t"),
            "{not_found}"
        );
        let timeout = sdk_error::<PutItemError>(
            "PutItem",
            "t",
            SdkError::timeout_error(Box::new(std::io::Error::other("slow"))),
        );
        assert!(timeout.is_retryable());
    }
}
