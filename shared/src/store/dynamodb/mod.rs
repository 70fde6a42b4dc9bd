//! `DynamoDbStore`: the [`Store`] port on one DynamoDB table, for AWS.
//!
//! # Table design
//! One table with a string partition key `pk` and a string sort key `sk`:
//!
//! | item                | `pk`              | `sk`                                   |
//! |---------------------|-------------------|----------------------------------------|
//! | definition snapshot | `DEF#<key>`       | `DEF`                                  |
//! | execution           | `EXE#<id>`        | `EXE`                                  |
//! | task index entry    | `EXE#<exec id>`   | `TASK#<created_at>#<pos>#<task id>`    |
//! | task execution      | `TASK#<id>`       | `TASK`                                 |
//! | join arrival        | `TASK#<id>`       | `JOIN#<from task id>`                  |
//! | action execution    | `TASK#<task id>`  | `ACT#<item index>#<attempt>`           |
//! | action locator      | `ACT#<id>`        | `ACT`                                  |
//! | action on its own   | `TASK#`           | `ACT#SOLO#<id>`                        |
//! | catalog entry       | `CAT#<kind>`      | `<id>`                                 |
//! | catalog name claim  | `NAME#<kind>#...` | `NAME`                                 |
//!
//! The catalog items (registered workflows, workbooks, ad-hoc actions,
//! environments) are described in [`catalog`].
//!
//! Every read the handlers depend on is a strongly consistent `GetItem` or
//! `Query` on the table itself, never on an index (DynamoDB's secondary
//! indexes are only eventually consistent, and the engine reads its own
//! writes): the task index entries in the execution's partition give
//! `list_tasks` and `find_task` in creation order, the action items in the
//! task's partition give `list_actions` and `item_results` by item index
//! then attempt (paged, so a with-items of 100,000 streams), and the small
//! locator item finds an action by id alone (`get_action` costs two reads).
//!
//! The global secondary index `by-project-state` (`gsi1pk` =
//! `<project id>#<state>`, `gsi1sk` = `<created_at>#<id>`) lists executions
//! by project and state for the API; it is allowed to lag.
//!
//! Finished executions (SUCCESS, ERROR, CANCELLED) get the TTL attribute
//! `expires_at` (Unix seconds) when [`DynamoDbSettings::finished_ttl`] is
//! set; DynamoDB then deletes the execution item. Task and action items are
//! not expired by it (offloading or sweeping them is out of scope).
//!
//! # Semantics, as [`crate::store::SqliteStore`]
//! - Updates are `UpdateItem`s that `SET` exactly the fields SQLite updates,
//!   with `ConditionExpression: version = :expected`; the stored version
//!   becomes `version + 1`; a failed condition is [`StoreError::Conflict`].
//! - Inserts are "insert if absent": [`Store::commit`] first reads (one
//!   consistent `BatchGetItem`) which insert targets exist, then writes the
//!   absent ones with `attribute_not_exists(pk)`. If a concurrent writer
//!   inserts one in between, the transaction is cancelled and the commit
//!   starts over from the read, so the caller still sees a no-op insert.
//! - One `TransactWriteItems` holds the whole commit (at most 100 items): the
//!   conditional updates, the inserted tasks with their index entries, the
//!   join arrivals, and one `ADD active_tasks :delta` on each execution
//!   touched (merged into its `UpdateExecution` when there is one, or into
//!   its insert), so the counter cannot drift from the tasks.
//! - A commit that inserts many action executions (a with-items start can
//!   insert 100,000) writes them *before* the transaction, as individual
//!   conditional puts with bounded concurrency. This keeps the invariants:
//!   an action's id is derived from its cause, so a put is idempotent and a
//!   retried commit re-puts the same items as no-ops; no counter depends on
//!   action items; and no message names them until the transaction (which
//!   moves the task) succeeded and the caller sent its messages. If the
//!   transaction then conflicts, the message is retried and derives the same
//!   actions again.
//! - [`Store::count_item`] is one transaction: mark the action counted
//!   (condition `counted = false`) and `ADD items_done/items_failed` on the
//!   task; when the concurrency window should move and can, the same
//!   transaction sets `items_next` under the condition that it still holds
//!   the value read just before (retried on a race), so moving the window is
//!   atomic with counting and no item is started twice or never. The
//!   counters returned are read back (strongly consistent) after the
//!   transaction, so two racing counts may both see the final count; the
//!   handlers' versioned writes make the second one's finish a no-op.
//! - A commit needs at most 100 transaction items: two per inserted task
//!   (the task and its index entry), one per update or join arrival, one
//!   counter update per execution. A transition that starts more than about
//!   45 tasks at once is refused with [`StoreError::TooLarge`].
//! - An item over DynamoDB's 400 KB limit is refused with
//!   [`StoreError::TooLarge`] naming the record and its size. Offloading
//!   large values to S3 is out of scope; the handlers' own limits on input
//!   and result size keep records well below it.

mod catalog;

pub use catalog::DynamoDbCatalog;

use super::{
    ActionRecord, DefinitionRecord, ExecutionRecord, ItemCount, Millis, ParentRef, Store,
    StoreError, TaskRecord, Write,
};
use crate::aws::describe_sdk_error;
use crate::engine::states::{ActionState, ExecutionState};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, KeysAndAttributes, Projection, ProjectionType, Put, ScalarAttributeType,
    TimeToLiveSpecification, TransactWriteItem, Update,
};
use futures_util::stream::{self, StreamExt, TryStreamExt};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// An item as the SDK sees it.
type Item = HashMap<String, AttributeValue>;

/// DynamoDB's item size limit, in bytes.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;
/// DynamoDB's limit on the items of one `TransactWriteItems`.
pub const MAX_TRANSACTION_ITEMS: usize = 100;
/// The global secondary index listing executions by project and state.
pub const PROJECT_STATE_INDEX: &str = "by-project-state";
/// The TTL attribute of finished executions.
pub const TTL_ATTRIBUTE: &str = "expires_at";
/// Conditional puts of action executions in flight at once, outside the
/// transaction.
const INSERT_CONCURRENCY: usize = 16;
/// How often a commit or a count starts over after losing a race.
const MAX_RACE_RETRIES: usize = 8;

/// Tunables of [`DynamoDbStore`].
#[derive(Debug, Clone, Default)]
pub struct DynamoDbSettings {
    /// Keep finished executions this long, then let DynamoDB's TTL delete
    /// them; `None` keeps them forever.
    pub finished_ttl: Option<Duration>,
}

/// The [`Store`] on DynamoDB; see the module doc for the table design.
#[derive(Clone)]
pub struct DynamoDbStore {
    client: Client,
    table: String,
    settings: DynamoDbSettings,
}

impl std::fmt::Debug for DynamoDbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoDbStore")
            .field("table", &self.table)
            .finish()
    }
}

fn backend<E, R>(what: &str, error: SdkError<E, R>) -> StoreError
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    StoreError::Backend(format!("DynamoDB {what}: {}", describe_sdk_error(&error)))
}

fn is_condition_failed<E, R>(error: &SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    matches!(error, SdkError::ServiceError(s)
        if aws_sdk_dynamodb::error::ProvideErrorMetadata::code(s.err()) == Some("ConditionalCheckFailedException"))
}

impl DynamoDbStore {
    /// A store on an existing table (see [`DynamoDbStore::create_table`]).
    pub fn new(client: Client, table: impl Into<String>, settings: DynamoDbSettings) -> Self {
        DynamoDbStore {
            client,
            table: table.into(),
            settings,
        }
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Create the table as `template.yaml` and `infra/` declare it (keys,
    /// the project/state index, on-demand billing, TTL), and wait until it
    /// is active. For tests and for `bora` operators without SAM.
    pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .map_err(|e| StoreError::Backend(e.to_string()))
        };
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| StoreError::Backend(e.to_string()))
        };
        client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr("pk")?)
            .attribute_definitions(attr("sk")?)
            .attribute_definitions(attr("gsi1pk")?)
            .attribute_definitions(attr("gsi1sk")?)
            .key_schema(key("pk", KeyType::Hash)?)
            .key_schema(key("sk", KeyType::Range)?)
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(PROJECT_STATE_INDEX)
                    .key_schema(key("gsi1pk", KeyType::Hash)?)
                    .key_schema(key("gsi1sk", KeyType::Range)?)
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::KeysOnly)
                            .build(),
                    )
                    .build()
                    .map_err(|e| StoreError::Backend(e.to_string()))?,
            )
            .send()
            .await
            .map_err(|e| backend("CreateTable", e))?;
        for _ in 0..100 {
            let described = client
                .describe_table()
                .table_name(table)
                .send()
                .await
                .map_err(|e| backend("DescribeTable", e))?;
            let active = described
                .table()
                .and_then(|t| t.table_status())
                .map(|s| s.as_str() == "ACTIVE")
                .unwrap_or(false);
            if active {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(TTL_ATTRIBUTE)
                    .enabled(true)
                    .build()
                    .map_err(|e| StoreError::Backend(e.to_string()))?,
            )
            .send()
            .await
            .map_err(|e| backend("UpdateTimeToLive", e))?;
        Ok(())
    }

    /// Ids of the executions of a project in a state, newest first, through
    /// the `by-project-state` index (eventually consistent: for listings).
    pub async fn list_executions(
        &self,
        project_id: &str,
        state: ExecutionState,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let page = self
            .index_page(project_id, state, None, false, limit)
            .await?;
        Ok(page.into_iter().map(|(_, id)| id).collect())
    }

    /// Up to `limit` (index sort key, execution id) of one project's
    /// executions in one state, from the `by-project-state` index, in
    /// creation order (`forward`) or newest first, strictly after the
    /// index sort key `after` when given (`<created_at>#<id>`).
    pub(crate) async fn index_page(
        &self,
        project_id: &str,
        state: ExecutionState,
        after: Option<&str>,
        forward: bool,
        limit: usize,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let mut found = Vec::new();
        let mut start: Option<Item> = None;
        while found.len() < limit {
            let mut request = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(PROJECT_STATE_INDEX)
                .expression_attribute_values(":p", s(format!("{project_id}#{}", state.as_str())))
                .scan_index_forward(forward)
                .set_exclusive_start_key(start.take());
            request = match after {
                Some(marker) => request
                    .key_condition_expression(if forward {
                        "gsi1pk = :p AND gsi1sk > :m"
                    } else {
                        "gsi1pk = :p AND gsi1sk < :m"
                    })
                    .expression_attribute_values(":m", s(marker)),
                None => request.key_condition_expression("gsi1pk = :p"),
            };
            if limit < usize::MAX {
                request = request.limit(i32::try_from(limit - found.len()).unwrap_or(i32::MAX));
            }
            let page = request
                .send()
                .await
                .map_err(|e| backend("Query by-project-state", e))?;
            for item in page.items() {
                if let (Some(key), Some(id)) = (
                    text(item, "gsi1sk"),
                    text(item, "pk").and_then(|pk| pk.strip_prefix("EXE#").map(String::from)),
                ) {
                    found.push((key, id));
                }
            }
            match page.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => break,
            }
        }
        found.truncate(limit);
        Ok(found)
    }

    async fn get_item(&self, pk: String, sk: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| backend("GetItem", e))?;
        Ok(out.item)
    }

    /// All items of a partition whose sort key starts with `prefix` (all
    /// of them for ""), in sort key order (or reversed), strongly
    /// consistent, following pages.
    fn query_prefix(
        &self,
        pk: String,
        prefix: &'static str,
        forward: bool,
    ) -> impl futures_util::Stream<Item = Result<Item, StoreError>> + '_ {
        struct State {
            start: Option<Item>,
            done: bool,
        }
        stream::try_unfold(
            State {
                start: None,
                done: false,
            },
            move |mut state| {
                let pk = pk.clone();
                async move {
                    if state.done {
                        return Ok(None);
                    }
                    let query = self.client.query().table_name(&self.table);
                    // DynamoDB refuses an empty `begins_with` operand.
                    let query = if prefix.is_empty() {
                        query.key_condition_expression("pk = :pk")
                    } else {
                        query
                            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                            .expression_attribute_values(":prefix", s(prefix))
                    };
                    let page = query
                        .expression_attribute_values(":pk", s(pk))
                        .consistent_read(true)
                        .scan_index_forward(forward)
                        .set_exclusive_start_key(state.start.take())
                        .send()
                        .await
                        .map_err(|e| backend("Query", e))?;
                    match page.last_evaluated_key() {
                        Some(key) if !key.is_empty() => state.start = Some(key.clone()),
                        _ => state.done = true,
                    }
                    let items = page.items.unwrap_or_default();
                    Ok::<_, StoreError>(Some((
                        stream::iter(items.into_iter().map(Ok::<_, StoreError>)),
                        state,
                    )))
                }
            },
        )
        .try_flatten()
    }

    /// Consistent `BatchGetItem` of many keys (any number, in chunks of 100,
    /// following unprocessed keys). Returns the items found by `(pk, sk)`.
    async fn batch_get(
        &self,
        keys: Vec<(String, String)>,
    ) -> Result<HashMap<(String, String), Item>, StoreError> {
        let mut found = HashMap::new();
        let unique: Vec<(String, String)> = keys
            .into_iter()
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        for chunk in unique.chunks(100) {
            let mut pending: Vec<Item> = chunk
                .iter()
                .map(|(pk, sk)| key_item(pk.clone(), sk.clone()))
                .collect();
            let mut rounds = 0;
            while !pending.is_empty() {
                rounds += 1;
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| StoreError::Backend(e.to_string()))?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| backend("BatchGetItem", e))?;
                if let Some(mut responses) = out.responses
                    && let Some(items) = responses.remove(&self.table)
                {
                    for item in items {
                        let pk = text(&item, "pk").unwrap_or_default();
                        let sk = text(&item, "sk").unwrap_or_default();
                        found.insert((pk, sk), item);
                    }
                }
                if let Some(mut unprocessed) = out.unprocessed_keys
                    && let Some(rest) = unprocessed.remove(&self.table)
                {
                    pending = rest.keys;
                    if rounds > 20 {
                        return Err(StoreError::Backend(
                            "DynamoDB BatchGetItem: keys stayed unprocessed (throttled)".into(),
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(20 * rounds)).await;
                }
            }
        }
        Ok(found)
    }

    /// Put one action execution (item and locator) if absent, outside any
    /// transaction. Idempotent: the id is derived from its cause.
    async fn put_action_if_absent(&self, action: &ActionRecord) -> Result<(), StoreError> {
        let (item, locator) = action_items(action)?;
        for item in [item, locator] {
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await;
            match result {
                Ok(_) => {}
                Err(e) if is_condition_failed(&e) => {}
                Err(e) => return Err(backend("PutItem action execution", e)),
            }
        }
        Ok(())
    }

    fn ttl_for(&self, state: ExecutionState, now: Millis) -> Option<i64> {
        let ttl = self.settings.finished_ttl?;
        is_finished(state).then(|| now / 1000 + ttl.as_secs() as i64)
    }
}

fn is_finished(state: ExecutionState) -> bool {
    matches!(
        state,
        ExecutionState::Success | ExecutionState::Error | ExecutionState::Cancelled
    )
}

// ---------------------------------------------------------------------------
// Attribute helpers. JSON values are stored as strings (compact, and
// DynamoDB's map type cannot hold every JSON value, e.g. empty strings as
// keys); `None` is stored as NULL.

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn b(v: bool) -> AttributeValue {
    AttributeValue::Bool(v)
}

fn j(v: &Value) -> AttributeValue {
    AttributeValue::S(serde_json::to_string(v).unwrap_or_else(|_| "null".into()))
}

fn opt_s(v: &Option<String>) -> AttributeValue {
    match v {
        Some(v) => s(v.clone()),
        None => AttributeValue::Null(true),
    }
}

fn opt_n(v: Option<i64>) -> AttributeValue {
    match v {
        Some(v) => n(v),
        None => AttributeValue::Null(true),
    }
}

fn key_item(pk: String, sk: String) -> Item {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

fn text(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

fn corrupt(what: &str, name: &str) -> StoreError {
    StoreError::Backend(format!(
        "{what}: attribute '{name}' is missing or malformed"
    ))
}

fn req_s(item: &Item, what: &str, name: &str) -> Result<String, StoreError> {
    text(item, name).ok_or_else(|| corrupt(what, name))
}

fn req_n(item: &Item, what: &str, name: &str) -> Result<i64, StoreError> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| corrupt(what, name))
}

fn opt_n_of(item: &Item, name: &str) -> Option<i64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn req_b(item: &Item, what: &str, name: &str) -> Result<bool, StoreError> {
    item.get(name)
        .and_then(|v| v.as_bool().ok())
        .copied()
        .ok_or_else(|| corrupt(what, name))
}

fn json_of(item: &Item, name: &str) -> Value {
    text(item, name)
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null)
}

fn state_of<S: std::str::FromStr>(item: &Item, what: &str, name: &str) -> Result<S, StoreError> {
    req_s(item, what, name)?
        .parse()
        .map_err(|_| corrupt(what, name))
}

/// Approximate stored size of an item: names plus values, as DynamoDB counts.
fn item_size(item: &Item) -> usize {
    fn value_size(v: &AttributeValue) -> usize {
        match v {
            AttributeValue::S(t) | AttributeValue::N(t) => t.len(),
            AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
            AttributeValue::B(blob) => blob.as_ref().len(),
            AttributeValue::L(list) => 3 + list.iter().map(value_size).sum::<usize>(),
            AttributeValue::M(map) => {
                3 + map
                    .iter()
                    .map(|(k, v)| k.len() + value_size(v))
                    .sum::<usize>()
            }
            _ => 0,
        }
    }
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

fn check_size(item: &Item, what: &str) -> Result<(), StoreError> {
    let size = item_size(item);
    if size > MAX_ITEM_BYTES {
        return Err(StoreError::TooLarge(format!(
            "{what} is {size} bytes; a DynamoDB item holds at most {MAX_ITEM_BYTES} bytes \
             (reduce the input, the published variables or the result)"
        )));
    }
    Ok(())
}

fn pad(v: i64, width: usize) -> String {
    format!("{v:0width$}")
}

// ---------------------------------------------------------------------------
// Records <-> items.

fn execution_pk(id: &str) -> String {
    format!("EXE#{id}")
}

fn task_pk(id: &str) -> String {
    format!("TASK#{id}")
}

/// An action's sort key in its task's partition: by item index then
/// attempt. An action run on its own (`POST /v2/action_executions`) has no
/// task; those share the partition `TASK#` and are keyed by their id.
fn action_sk(task_execution_id: &str, id: &str, item_index: i64, attempt: i64) -> String {
    if task_execution_id.is_empty() {
        format!("ACT#SOLO#{id}")
    } else {
        format!("ACT#{}#{}", pad(item_index, 10), pad(attempt, 6))
    }
}

fn execution_item(e: &ExecutionRecord, ttl: Option<i64>) -> Item {
    let mut item = key_item(execution_pk(&e.id), "EXE".into());
    item.extend(execution_fields(e));
    item.insert("id".into(), s(&e.id));
    item.insert("workflow_name".into(), s(&e.workflow_name));
    item.insert("workflow_id".into(), opt_s(&e.workflow_id));
    item.insert("workflow_namespace".into(), s(&e.workflow_namespace));
    item.insert("definition_key".into(), s(&e.definition_key));
    item.insert("input".into(), j(&e.input));
    item.insert("context".into(), j(&e.context));
    item.insert(
        "parent_task_id".into(),
        opt_s(&e.parent.as_ref().map(|p| p.task_execution_id.clone())),
    );
    item.insert(
        "parent_action_id".into(),
        opt_s(&e.parent.as_ref().map(|p| p.action_execution_id.clone())),
    );
    item.insert("root_execution_id".into(), opt_s(&e.root_execution_id));
    item.insert("active_tasks".into(), n(0));
    item.insert("project_id".into(), s(&e.project_id));
    item.insert("version".into(), n(e.version));
    item.insert("created_at".into(), n(e.created_at));
    item.insert(
        "gsi1sk".into(),
        s(format!("{}#{}", pad(e.created_at, 15), e.id)),
    );
    if let Some(ttl) = ttl {
        item.insert(TTL_ATTRIBUTE.into(), n(ttl));
    }
    item
}

/// The fields `UpdateExecution` sets (as SQLite's UPDATE does).
fn execution_fields(e: &ExecutionRecord) -> Vec<(String, AttributeValue)> {
    vec![
        ("description".into(), s(&e.description)),
        ("state".into(), s(e.state.as_str())),
        ("state_info".into(), opt_s(&e.state_info)),
        ("output".into(), j(&e.output)),
        ("params".into(), j(&e.params)),
        ("globals".into(), j(&e.globals)),
        ("updated_at".into(), n(e.updated_at)),
        (
            "gsi1pk".into(),
            s(format!("{}#{}", e.project_id, e.state.as_str())),
        ),
    ]
}

fn execution_from(item: &Item) -> Result<ExecutionRecord, StoreError> {
    let what = "execution item";
    let parent = match (text(item, "parent_task_id"), text(item, "parent_action_id")) {
        (Some(task_execution_id), Some(action_execution_id)) => Some(ParentRef {
            task_execution_id,
            action_execution_id,
        }),
        _ => None,
    };
    Ok(ExecutionRecord {
        id: req_s(item, what, "id")?,
        workflow_name: req_s(item, what, "workflow_name")?,
        workflow_id: text(item, "workflow_id"),
        workflow_namespace: req_s(item, what, "workflow_namespace")?,
        definition_key: req_s(item, what, "definition_key")?,
        description: req_s(item, what, "description")?,
        state: state_of(item, what, "state")?,
        state_info: text(item, "state_info"),
        input: json_of(item, "input"),
        output: json_of(item, "output"),
        params: json_of(item, "params"),
        context: json_of(item, "context"),
        globals: json_of(item, "globals"),
        parent,
        root_execution_id: text(item, "root_execution_id"),
        active_tasks: req_n(item, what, "active_tasks")?,
        project_id: req_s(item, what, "project_id")?,
        version: req_n(item, what, "version")?,
        created_at: req_n(item, what, "created_at")?,
        updated_at: req_n(item, what, "updated_at")?,
    })
}

fn task_item(t: &TaskRecord) -> Item {
    let mut item = key_item(task_pk(&t.id), "TASK".into());
    item.extend(task_fields(t));
    item.insert("id".into(), s(&t.id));
    item.insert("execution_id".into(), s(&t.execution_id));
    item.insert("workflow_name".into(), s(&t.workflow_name));
    item.insert("definition_key".into(), s(&t.definition_key));
    item.insert("name".into(), s(&t.name));
    item.insert("join_arrived".into(), n(t.join_arrived));
    item.insert("version".into(), n(t.version));
    item.insert("created_at".into(), n(t.created_at));
    item
}

/// The fields `UpdateTask` sets (as SQLite's UPDATE does).
fn task_fields(t: &TaskRecord) -> Vec<(String, AttributeValue)> {
    vec![
        ("state".into(), s(t.state.as_str())),
        ("state_info".into(), opt_s(&t.state_info)),
        ("in_context".into(), j(&t.in_context)),
        ("published".into(), j(&t.published)),
        ("result".into(), j(&t.result)),
        ("items_total".into(), n(t.items_total)),
        ("items_done".into(), n(t.items_done)),
        ("items_failed".into(), n(t.items_failed)),
        ("items_next".into(), n(t.items_next)),
        ("with_items".into(), b(t.with_items)),
        ("runtime".into(), j(&t.runtime)),
        ("processed".into(), b(t.processed)),
        ("updated_at".into(), n(t.updated_at)),
        ("started_at".into(), opt_n(t.started_at)),
        ("finished_at".into(), opt_n(t.finished_at)),
    ]
}

fn task_from(item: &Item) -> Result<TaskRecord, StoreError> {
    let what = "task execution item";
    Ok(TaskRecord {
        id: req_s(item, what, "id")?,
        execution_id: req_s(item, what, "execution_id")?,
        workflow_name: req_s(item, what, "workflow_name")?,
        definition_key: req_s(item, what, "definition_key")?,
        name: req_s(item, what, "name")?,
        state: state_of(item, what, "state")?,
        state_info: text(item, "state_info"),
        in_context: json_of(item, "in_context"),
        published: json_of(item, "published"),
        result: json_of(item, "result"),
        items_total: req_n(item, what, "items_total")?,
        items_done: req_n(item, what, "items_done")?,
        items_failed: req_n(item, what, "items_failed")?,
        items_next: req_n(item, what, "items_next")?,
        with_items: req_b(item, what, "with_items")?,
        join_arrived: req_n(item, what, "join_arrived")?,
        runtime: json_of(item, "runtime"),
        processed: req_b(item, what, "processed")?,
        version: req_n(item, what, "version")?,
        created_at: req_n(item, what, "created_at")?,
        updated_at: req_n(item, what, "updated_at")?,
        started_at: opt_n_of(item, "started_at"),
        finished_at: opt_n_of(item, "finished_at"),
    })
}

/// The task's entry in its execution's partition (for listing in order).
fn task_index_item(t: &TaskRecord, position: usize) -> Item {
    let mut item = key_item(
        execution_pk(&t.execution_id),
        format!(
            "TASK#{}#{}#{}",
            pad(t.created_at, 15),
            pad(position as i64, 5),
            t.id
        ),
    );
    item.insert("task_id".into(), s(&t.id));
    item.insert("name".into(), s(&t.name));
    item
}

/// The action's item (in its task's partition) and its locator.
fn action_items(a: &ActionRecord) -> Result<(Item, Item), StoreError> {
    let mut item = key_item(
        task_pk(&a.task_execution_id),
        action_sk(&a.task_execution_id, &a.id, a.item_index, a.attempt),
    );
    item.extend(action_fields(a));
    item.insert("id".into(), s(&a.id));
    item.insert("task_execution_id".into(), s(&a.task_execution_id));
    item.insert("execution_id".into(), s(&a.execution_id));
    item.insert("task_name".into(), s(&a.task_name));
    item.insert("item_index".into(), n(a.item_index));
    item.insert("attempt".into(), n(a.attempt));
    item.insert("name".into(), s(&a.name));
    item.insert("version".into(), n(a.version));
    item.insert("created_at".into(), n(a.created_at));
    check_size(&item, &format!("action execution {}", a.id))?;
    let mut locator = key_item(format!("ACT#{}", a.id), "ACT".into());
    locator.insert("task_execution_id".into(), s(&a.task_execution_id));
    locator.insert("item_index".into(), n(a.item_index));
    locator.insert("attempt".into(), n(a.attempt));
    Ok((item, locator))
}

/// The fields `UpdateAction` sets (as SQLite's UPDATE does).
fn action_fields(a: &ActionRecord) -> Vec<(String, AttributeValue)> {
    vec![
        ("state".into(), s(a.state.as_str())),
        ("state_info".into(), opt_s(&a.state_info)),
        ("input".into(), j(&a.input)),
        ("output".into(), j(&a.output)),
        ("is_async".into(), b(a.is_async)),
        ("lease_until".into(), opt_n(a.lease_until)),
        ("child_execution_id".into(), opt_s(&a.child_execution_id)),
        ("counted".into(), b(a.counted)),
        ("updated_at".into(), n(a.updated_at)),
    ]
}

fn action_from(item: &Item) -> Result<ActionRecord, StoreError> {
    let what = "action execution item";
    Ok(ActionRecord {
        id: req_s(item, what, "id")?,
        task_execution_id: req_s(item, what, "task_execution_id")?,
        execution_id: req_s(item, what, "execution_id")?,
        task_name: req_s(item, what, "task_name")?,
        item_index: req_n(item, what, "item_index")?,
        attempt: req_n(item, what, "attempt")?,
        name: req_s(item, what, "name")?,
        state: state_of(item, what, "state")?,
        state_info: text(item, "state_info"),
        input: json_of(item, "input"),
        output: json_of(item, "output"),
        is_async: req_b(item, what, "is_async")?,
        lease_until: opt_n_of(item, "lease_until"),
        child_execution_id: text(item, "child_execution_id"),
        counted: req_b(item, what, "counted")?,
        version: req_n(item, what, "version")?,
        created_at: req_n(item, what, "created_at")?,
        updated_at: req_n(item, what, "updated_at")?,
    })
}

// ---------------------------------------------------------------------------
// Building the transaction of a commit.

/// An update expression under construction: `SET a = :a, ...` plus `ADD`s.
#[derive(Default)]
struct UpdateBuilder {
    sets: Vec<String>,
    adds: Vec<String>,
    removes: Vec<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
    condition: Option<String>,
}

impl UpdateBuilder {
    fn set(&mut self, field: &str, value: AttributeValue) {
        let i = self.names.len();
        self.names.insert(format!("#f{i}"), field.to_string());
        self.values.insert(format!(":f{i}"), value);
        self.sets.push(format!("#f{i} = :f{i}"));
    }

    fn add(&mut self, field: &str, delta: i64) {
        let i = self.names.len();
        self.names.insert(format!("#f{i}"), field.to_string());
        self.values.insert(format!(":f{i}"), n(delta));
        self.adds.push(format!("#f{i} :f{i}"));
    }

    fn remove(&mut self, field: &str) {
        let i = self.names.len();
        self.names.insert(format!("#f{i}"), field.to_string());
        self.removes.push(format!("#f{i}"));
    }

    fn expect_version(&mut self, version: i64) {
        self.names.insert("#version".into(), "version".into());
        self.values.insert(":expected_version".into(), n(version));
        self.condition = Some("#version = :expected_version".into());
    }

    fn expression(&self) -> String {
        let mut parts = Vec::new();
        if !self.sets.is_empty() {
            parts.push(format!("SET {}", self.sets.join(", ")));
        }
        if !self.adds.is_empty() {
            parts.push(format!("ADD {}", self.adds.join(", ")));
        }
        if !self.removes.is_empty() {
            parts.push(format!("REMOVE {}", self.removes.join(", ")));
        }
        parts.join(" ")
    }

    fn build(self, table: &str, pk: String, sk: &str) -> Result<Update, StoreError> {
        let expression = self.expression();
        Update::builder()
            .table_name(table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .update_expression(expression)
            .set_condition_expression(
                self.condition
                    .or_else(|| Some("attribute_exists(pk)".to_string())),
            )
            .set_expression_attribute_names(Some(self.names))
            .set_expression_attribute_values(if self.values.is_empty() {
                None
            } else {
                Some(self.values)
            })
            .build()
            .map_err(|e| StoreError::Backend(e.to_string()))
    }
}

/// What a transaction item does, to explain a cancellation.
#[derive(Debug, Clone)]
enum Op {
    /// An insert-if-absent: failing means someone inserted it concurrently.
    Insert,
    /// A versioned update: failing means a conflict.
    Update(String),
}

/// One planned transaction item.
enum Planned {
    Put(Item, Op),
    Update {
        pk: String,
        sk: String,
        update: UpdateBuilder,
        op: Op,
    },
}

fn put_if_absent(table: &str, item: Item) -> Result<TransactWriteItem, StoreError> {
    Ok(TransactWriteItem::builder()
        .put(
            Put::builder()
                .table_name(table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(|e| StoreError::Backend(e.to_string()))?,
        )
        .build())
}

/// The outcome of one attempt at a commit's transaction.
enum Attempt {
    Done,
    /// An insert target appeared concurrently: read again and start over.
    Raced,
}

impl DynamoDbStore {
    async fn commit_once(
        &self,
        writes: &[Write],
        actions_outside: bool,
    ) -> Result<Attempt, StoreError> {
        // 1. Which insert targets exist, and the processed flag of updated tasks.
        let mut keys = Vec::new();
        for write in writes {
            match write {
                Write::InsertExecution(e) => keys.push((execution_pk(&e.id), "EXE".into())),
                Write::InsertTask(t) | Write::UpdateTask(t) => {
                    keys.push((task_pk(&t.id), "TASK".into()))
                }
                Write::InsertAction(a) if !actions_outside => {
                    keys.push((format!("ACT#{}", a.id), "ACT".into()))
                }
                Write::JoinArrival {
                    template,
                    from_task_id,
                    ..
                } => {
                    keys.push((task_pk(&template.id), "TASK".into()));
                    keys.push((task_pk(&template.id), format!("JOIN#{from_task_id}")));
                }
                _ => {}
            }
        }
        let existing = self.batch_get(keys).await?;
        let exists = |pk: String, sk: &str| existing.contains_key(&(pk, sk.to_string()));

        // 2. Plan the transaction.
        let mut planned: Vec<Planned> = Vec::new();
        let mut deltas: HashMap<String, i64> = HashMap::new();
        let mut inserted_executions: HashMap<String, usize> = HashMap::new();
        let mut updated_executions: HashMap<String, usize> = HashMap::new();
        let mut touched_tasks: HashSet<String> = HashSet::new();
        // Join arrivals are ordered by when they were committed.
        let arrival_seq = {
            use crate::handlers::Clock;
            crate::handlers::SystemClock.now()
        };
        for (position, write) in writes.iter().enumerate() {
            match write {
                Write::InsertExecution(e) => {
                    if exists(execution_pk(&e.id), "EXE") || inserted_executions.contains_key(&e.id)
                    {
                        continue;
                    }
                    let item = execution_item(e, self.ttl_for(e.state, e.updated_at));
                    check_size(&item, &format!("execution {}", e.id))?;
                    inserted_executions.insert(e.id.clone(), planned.len());
                    planned.push(Planned::Put(item, Op::Insert));
                }
                Write::UpdateExecution(e) => {
                    let mut update = UpdateBuilder::default();
                    for (field, value) in execution_fields(e) {
                        update.set(&field, value);
                    }
                    match self.ttl_for(e.state, e.updated_at) {
                        Some(ttl) => update.set(TTL_ATTRIBUTE, n(ttl)),
                        None => update.remove(TTL_ATTRIBUTE),
                    }
                    update.add("version", 1);
                    update.expect_version(e.version);
                    check_size(&execution_item(e, None), &format!("execution {}", e.id))?;
                    updated_executions.insert(e.id.clone(), planned.len());
                    planned.push(Planned::Update {
                        pk: execution_pk(&e.id),
                        sk: "EXE".into(),
                        update,
                        op: Op::Update(format!("execution {}", e.id)),
                    });
                }
                Write::InsertTask(t) => {
                    if exists(task_pk(&t.id), "TASK") || !touched_tasks.insert(t.id.clone()) {
                        continue;
                    }
                    let item = task_item(t);
                    check_size(&item, &format!("task execution {}", t.id))?;
                    planned.push(Planned::Put(item, Op::Insert));
                    planned.push(Planned::Put(task_index_item(t, position), Op::Insert));
                    if !t.processed {
                        *deltas.entry(t.execution_id.clone()).or_default() += 1;
                    }
                }
                Write::UpdateTask(t) => {
                    let Some(current) = existing.get(&(task_pk(&t.id), "TASK".to_string())) else {
                        return Err(StoreError::Conflict(format!("task execution {}", t.id)));
                    };
                    let what = "task execution item";
                    if req_n(current, what, "version")? != t.version {
                        return Err(StoreError::Conflict(format!("task execution {}", t.id)));
                    }
                    if !touched_tasks.insert(t.id.clone()) {
                        return Err(StoreError::Backend(format!(
                            "one commit writes task execution {} twice",
                            t.id
                        )));
                    }
                    let was_processed = req_b(current, what, "processed")?;
                    let mut update = UpdateBuilder::default();
                    for (field, value) in task_fields(t) {
                        update.set(&field, value);
                    }
                    update.add("version", 1);
                    update.expect_version(t.version);
                    check_size(&task_item(t), &format!("task execution {}", t.id))?;
                    planned.push(Planned::Update {
                        pk: task_pk(&t.id),
                        sk: "TASK".into(),
                        update,
                        op: Op::Update(format!("task execution {}", t.id)),
                    });
                    if t.processed != was_processed {
                        *deltas.entry(t.execution_id.clone()).or_default() +=
                            if t.processed { -1 } else { 1 };
                    }
                }
                Write::InsertAction(a) => {
                    if actions_outside || exists(format!("ACT#{}", a.id), "ACT") {
                        continue;
                    }
                    let (item, locator) = action_items(a)?;
                    planned.push(Planned::Put(item, Op::Insert));
                    planned.push(Planned::Put(locator, Op::Insert));
                }
                Write::UpdateAction(a) => {
                    let mut update = UpdateBuilder::default();
                    for (field, value) in action_fields(a) {
                        update.set(&field, value);
                    }
                    update.add("version", 1);
                    update.expect_version(a.version);
                    action_items(a)?;
                    planned.push(Planned::Update {
                        pk: task_pk(&a.task_execution_id),
                        sk: action_sk(&a.task_execution_id, &a.id, a.item_index, a.attempt),
                        update,
                        op: Op::Update(format!("action execution {}", a.id)),
                    });
                }
                Write::JoinArrival {
                    template,
                    from_task_id,
                    context,
                } => {
                    let arrival_sk = format!("JOIN#{from_task_id}");
                    if exists(task_pk(&template.id), &arrival_sk) {
                        // This inbound task already arrived: nothing to do
                        // (the template was inserted by that arrival).
                        continue;
                    }
                    if !touched_tasks.insert(template.id.clone()) {
                        return Err(StoreError::Backend(format!(
                            "one commit writes task execution {} twice",
                            template.id
                        )));
                    }
                    if exists(task_pk(&template.id), "TASK") {
                        let mut update = UpdateBuilder::default();
                        update.add("join_arrived", 1);
                        update.add("version", 1);
                        planned.push(Planned::Update {
                            pk: task_pk(&template.id),
                            sk: "TASK".into(),
                            update,
                            op: Op::Insert,
                        });
                    } else {
                        let mut inserted = template.clone();
                        inserted.join_arrived += 1;
                        inserted.version += 1;
                        let item = task_item(&inserted);
                        check_size(&item, &format!("task execution {}", template.id))?;
                        planned.push(Planned::Put(item, Op::Insert));
                        planned.push(Planned::Put(
                            task_index_item(template, position),
                            Op::Insert,
                        ));
                        if !template.processed {
                            *deltas.entry(template.execution_id.clone()).or_default() += 1;
                        }
                    }
                    let mut arrival = key_item(task_pk(&template.id), arrival_sk);
                    arrival.insert("seq".into(), n(arrival_seq * 1000 + position as i64));
                    arrival.insert("context".into(), j(context));
                    check_size(
                        &arrival,
                        &format!("join arrival at task execution {}", template.id),
                    )?;
                    planned.push(Planned::Put(arrival, Op::Insert));
                }
            }
        }
        // The active_tasks deltas, merged into the execution's own write.
        for (execution_id, delta) in deltas {
            if delta == 0 {
                continue;
            }
            if let Some(&index) = inserted_executions.get(&execution_id) {
                if let Planned::Put(item, _) = &mut planned[index] {
                    let current = opt_n_of(item, "active_tasks").unwrap_or(0);
                    item.insert("active_tasks".into(), n(current + delta));
                }
            } else if let Some(&index) = updated_executions.get(&execution_id) {
                if let Planned::Update { update, .. } = &mut planned[index] {
                    update.add("active_tasks", delta);
                }
            } else {
                let mut update = UpdateBuilder::default();
                update.add("active_tasks", delta);
                planned.push(Planned::Update {
                    pk: execution_pk(&execution_id),
                    sk: "EXE".into(),
                    update,
                    op: Op::Update(format!("execution {execution_id}")),
                });
            }
        }
        if planned.is_empty() {
            return Ok(Attempt::Done);
        }
        if planned.len() > MAX_TRANSACTION_ITEMS {
            return Err(StoreError::TooLarge(format!(
                "a commit of {} items exceeds DynamoDB's {MAX_TRANSACTION_ITEMS}-item transaction \
                 (too many tasks started by one transition)",
                planned.len()
            )));
        }

        // 3. Write.
        let mut ops = Vec::with_capacity(planned.len());
        let mut items = Vec::with_capacity(planned.len());
        for p in planned {
            match p {
                Planned::Put(item, op) => {
                    items.push(put_if_absent(&self.table, item)?);
                    ops.push(op);
                }
                Planned::Update { pk, sk, update, op } => {
                    items.push(
                        TransactWriteItem::builder()
                            .update(update.build(&self.table, pk, &sk)?)
                            .build(),
                    );
                    ops.push(op);
                }
            }
        }
        self.transact(items, &ops).await
    }

    async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
        ops: &[Op],
    ) -> Result<Attempt, StoreError> {
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        let error = match result {
            Ok(_) => return Ok(Attempt::Done),
            Err(e) => e,
        };
        use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
        if let SdkError::ServiceError(service) = &error
            && let TransactWriteItemsError::TransactionCanceledException(cancelled) = service.err()
        {
            let mut raced = false;
            for (index, reason) in cancelled.cancellation_reasons().iter().enumerate() {
                match reason.code() {
                    Some("ConditionalCheckFailed") => match ops.get(index) {
                        Some(Op::Update(what)) => {
                            return Err(StoreError::Conflict(what.clone()));
                        }
                        _ => raced = true,
                    },
                    Some("TransactionConflict") => raced = true,
                    _ => {}
                }
            }
            if raced {
                return Ok(Attempt::Raced);
            }
            return Err(StoreError::Conflict(format!(
                "transaction cancelled: {}",
                describe_sdk_error(&error)
            )));
        }
        Err(backend("TransactWriteItems", error))
    }
}

#[async_trait::async_trait]
impl Store for DynamoDbStore {
    async fn put_definition(&self, definition: &DefinitionRecord) -> Result<(), StoreError> {
        let mut item = key_item(format!("DEF#{}", definition.key), "DEF".into());
        item.insert("text".into(), s(&definition.text));
        check_size(&item, &format!("workflow definition {}", definition.key))?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => Ok(()),
            Err(e) => Err(backend("PutItem definition", e)),
        }
    }

    async fn get_definition(&self, key: &str) -> Result<DefinitionRecord, StoreError> {
        let item = self
            .get_item(format!("DEF#{key}"), "DEF")
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("definition {key}")))?;
        Ok(DefinitionRecord {
            key: key.to_string(),
            text: req_s(&item, "definition item", "text")?,
        })
    }

    async fn get_execution(&self, id: &str) -> Result<ExecutionRecord, StoreError> {
        let item = self
            .get_item(execution_pk(id), "EXE")
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("execution {id}")))?;
        execution_from(&item)
    }

    async fn execution_state(&self, id: &str) -> Result<ExecutionState, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(execution_pk(id)))
            .key("sk", s("EXE"))
            .projection_expression("#state")
            .expression_attribute_names("#state", "state")
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| backend("GetItem", e))?;
        let item = out
            .item
            .ok_or_else(|| StoreError::NotFound(format!("execution {id}")))?;
        state_of(&item, "execution item", "state")
    }

    async fn get_task(&self, id: &str) -> Result<TaskRecord, StoreError> {
        let item = self
            .get_item(task_pk(id), "TASK")
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("task execution {id}")))?;
        task_from(&item)
    }

    async fn get_action(&self, id: &str) -> Result<ActionRecord, StoreError> {
        let not_found = || StoreError::NotFound(format!("action execution {id}"));
        let locator = self
            .get_item(format!("ACT#{id}"), "ACT")
            .await?
            .ok_or_else(not_found)?;
        let what = "action locator item";
        let task_id = req_s(&locator, what, "task_execution_id")?;
        let sk = action_sk(
            &task_id,
            id,
            req_n(&locator, what, "item_index")?,
            req_n(&locator, what, "attempt")?,
        );
        let item = self
            .get_item(task_pk(&task_id), &sk)
            .await?
            .ok_or_else(not_found)?;
        action_from(&item)
    }

    async fn find_task(
        &self,
        execution_id: &str,
        name: &str,
    ) -> Result<Option<TaskRecord>, StoreError> {
        let entries = self.query_prefix(execution_pk(execution_id), "TASK#", false);
        futures_util::pin_mut!(entries);
        while let Some(entry) = entries.try_next().await? {
            if text(&entry, "name").as_deref() == Some(name) {
                let task_id = req_s(&entry, "task index item", "task_id")?;
                return match self.get_task(&task_id).await {
                    Ok(task) => Ok(Some(task)),
                    Err(StoreError::NotFound(_)) => Ok(None),
                    Err(e) => Err(e),
                };
            }
        }
        Ok(None)
    }

    async fn list_tasks(&self, execution_id: &str) -> Result<Vec<TaskRecord>, StoreError> {
        let entries: Vec<Item> = self
            .query_prefix(execution_pk(execution_id), "TASK#", true)
            .try_collect()
            .await?;
        let ids: Vec<String> = entries
            .iter()
            .filter_map(|entry| text(entry, "task_id"))
            .collect();
        let found = self
            .batch_get(ids.iter().map(|id| (task_pk(id), "TASK".into())).collect())
            .await?;
        let mut tasks = Vec::with_capacity(ids.len());
        for id in &ids {
            if let Some(item) = found.get(&(task_pk(id), "TASK".to_string())) {
                tasks.push(task_from(item)?);
            }
        }
        Ok(tasks)
    }

    async fn list_actions(&self, task_execution_id: &str) -> Result<Vec<ActionRecord>, StoreError> {
        self.query_prefix(task_pk(task_execution_id), "ACT#", true)
            .and_then(|item| async move { action_from(&item) })
            .try_collect()
            .await
    }

    async fn item_results(
        &self,
        task_execution_id: &str,
    ) -> Result<Vec<(ActionState, Value)>, StoreError> {
        // Sorted by item index then attempt: the last attempt of an index
        // overwrites the earlier ones.
        let items = self.query_prefix(task_pk(task_execution_id), "ACT#", true);
        futures_util::pin_mut!(items);
        let mut results: Vec<(i64, ActionState, Value)> = Vec::new();
        while let Some(item) = items.try_next().await? {
            let what = "action execution item";
            let index = req_n(&item, what, "item_index")?;
            let state: ActionState = state_of(&item, what, "state")?;
            let output = json_of(&item, "output");
            match results.last_mut() {
                Some(last) if last.0 == index => *last = (index, state, output),
                _ => results.push((index, state, output)),
            }
        }
        Ok(results.into_iter().map(|(_, s, o)| (s, o)).collect())
    }

    async fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let action_inserts = writes
            .iter()
            .filter(|w| matches!(w, Write::InsertAction(_)))
            .count();
        // Two items per action (item + locator); the rest of a commit is a
        // handful of items. Past the transaction limit, actions go first.
        let actions_outside =
            action_inserts * 2 + (writes.len() - action_inserts) * 2 + 4 > MAX_TRANSACTION_ITEMS;
        if actions_outside {
            let actions: Vec<ActionRecord> = writes
                .iter()
                .filter_map(|w| match w {
                    Write::InsertAction(a) => Some(a.clone()),
                    _ => None,
                })
                .collect();
            let store = self.clone();
            stream::iter(actions)
                .map(move |action: ActionRecord| {
                    let store = store.clone();
                    async move { store.put_action_if_absent(&action).await }
                })
                .buffer_unordered(INSERT_CONCURRENCY)
                .try_collect::<Vec<()>>()
                .await?;
        }
        for attempt in 0..MAX_RACE_RETRIES {
            match self.commit_once(&writes, actions_outside).await? {
                Attempt::Done => return Ok(()),
                Attempt::Raced => {
                    tokio::time::sleep(Duration::from_millis(5 * (attempt as u64 + 1))).await;
                }
            }
        }
        Err(StoreError::Conflict(
            "commit kept racing with concurrent writers".into(),
        ))
    }

    async fn count_item(
        &self,
        task_execution_id: &str,
        action_execution_id: &str,
        failed: bool,
        window: bool,
        now: Millis,
    ) -> Result<Option<ItemCount>, StoreError> {
        let locator = self
            .get_item(format!("ACT#{action_execution_id}"), "ACT")
            .await?
            .ok_or_else(|| {
                StoreError::NotFound(format!("action execution {action_execution_id}"))
            })?;
        let what = "action locator item";
        let action_sk = action_sk(
            task_execution_id,
            action_execution_id,
            req_n(&locator, what, "item_index")?,
            req_n(&locator, what, "attempt")?,
        );
        for attempt in 0..MAX_RACE_RETRIES * 4 {
            let task = self
                .get_item(task_pk(task_execution_id), "TASK")
                .await?
                .ok_or_else(|| {
                    StoreError::NotFound(format!("task execution {task_execution_id}"))
                })?;
            let what = "task execution item";
            let total = req_n(&task, what, "items_total")?;
            let next = req_n(&task, what, "items_next")?;
            let moves = window && next < total;

            let mut mark = UpdateBuilder::default();
            mark.set("counted", b(true));
            mark.set("updated_at", n(now));
            mark.add("version", 1);
            mark.names.insert("#counted".into(), "counted".into());
            mark.values.insert(":no".into(), b(false));
            mark.condition = Some("#counted = :no".into());

            let mut count = UpdateBuilder::default();
            count.add("items_done", 1);
            count.add("items_failed", failed as i64);
            count.add("version", 1);
            count.set("updated_at", n(now));
            if moves {
                count.set("items_next", n(next + 1));
                count.names.insert("#next".into(), "items_next".into());
                count.values.insert(":read_next".into(), n(next));
                count.condition = Some("#next = :read_next".into());
            }
            let items = vec![
                TransactWriteItem::builder()
                    .update(mark.build(&self.table, task_pk(task_execution_id), &action_sk)?)
                    .build(),
                TransactWriteItem::builder()
                    .update(count.build(&self.table, task_pk(task_execution_id), "TASK")?)
                    .build(),
            ];
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items))
                .send()
                .await;
            match result {
                Ok(_) => {
                    let task = self
                        .get_item(task_pk(task_execution_id), "TASK")
                        .await?
                        .ok_or_else(|| {
                            StoreError::NotFound(format!("task execution {task_execution_id}"))
                        })?;
                    return Ok(Some(ItemCount {
                        total: req_n(&task, what, "items_total")?,
                        done: req_n(&task, what, "items_done")?,
                        failed: req_n(&task, what, "items_failed")?,
                        start_index: moves.then_some(next),
                    }));
                }
                Err(SdkError::ServiceError(service)) => {
                    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
                    let retry = match service.err() {
                        TransactWriteItemsError::TransactionCanceledException(cancelled) => {
                            let reasons = cancelled.cancellation_reasons();
                            let code = |i: usize| reasons.get(i).and_then(|r| r.code());
                            if code(0) == Some("ConditionalCheckFailed") {
                                // Already counted: a duplicate message.
                                return Ok(None);
                            }
                            // The window moved under us, or a transaction
                            // conflict: read again.
                            true
                        }
                        _ => false,
                    };
                    if !retry {
                        return Err(StoreError::Backend(format!(
                            "DynamoDB TransactWriteItems (count item): {}",
                            aws_sdk_dynamodb::error::ProvideErrorMetadata::message(service.err())
                                .unwrap_or("service error")
                        )));
                    }
                    tokio::time::sleep(Duration::from_millis(2 * (attempt as u64 % 8 + 1))).await;
                }
                Err(e) => return Err(backend("TransactWriteItems (count item)", e)),
            }
        }
        Err(StoreError::Conflict(format!(
            "task execution {task_execution_id}: counting kept racing"
        )))
    }

    async fn join_contexts(&self, task_execution_id: &str) -> Result<Vec<Value>, StoreError> {
        let items: Vec<Item> = self
            .query_prefix(task_pk(task_execution_id), "JOIN#", true)
            .try_collect()
            .await?;
        let mut arrivals: Vec<(i64, Value)> = items
            .iter()
            .map(|item| (opt_n_of(item, "seq").unwrap_or(0), json_of(item, "context")))
            .collect();
        arrivals.sort_by_key(|(seq, _)| *seq);
        Ok(arrivals.into_iter().map(|(_, context)| context).collect())
    }
}
