//! [`DynamoDbCatalog`]: the [`Catalog`] port on the store's DynamoDB table,
//! so the whole REST API runs behind API Gateway.
//!
//! # Items
//! | item        | `pk`                                  | `sk`       | attributes              |
//! |-------------|---------------------------------------|------------|-------------------------|
//! | entry       | `CAT#<kind>`                          | `ID#<id>`  | `body` (the record JSON), `name`, `namespace` |
//! | name claim  | `NAME#<kind>#<ns length>:<ns>#<name>` | `NAME`     | `id`                    |
//!
//! `<kind>` is the entry's table name (`catalog_workflows`, ...). A name
//! claim keeps (name, namespace) unique: it is put with
//! `attribute_not_exists` in the same `TransactWriteItems` as its entry, so
//! two racing registrations of one name cannot both win. The namespace is
//! length-prefixed so that no (namespace, name) pair can spell another's
//! claim. Every catalog change is one transaction (all or none); a
//! workbook of more than about 45 workflows and actions exceeds DynamoDB's
//! 100 items per transaction and is refused with a clear error.
//!
//! # Lists
//! A catalog holds hundreds of entries, not millions: a list reads the
//! kind's partition (consistent `Query`) and filters, sorts and pages in
//! memory ([`page_in_memory`], the same meaning as the SQLite adapter's SQL).
//!
//! Executions are listed for the deployment's project from the
//! `by-project-state` index (sort key `<created_at>#<id>`). In the API's
//! default order (by creation) with at most a `state` filter, a page is
//! read from the index alone: one `Query` per state starting after the
//! marker, merged, `limit` kept. Any other query reads the ids of all the
//! project's executions from the index (one `Query` per state, or only the
//! state filtered on), their records with consistent `BatchGetItem`s, and
//! filters and pages them in memory. The index lags writes by DynamoDB's
//! usual fraction of a second, so a just-created execution can be missing
//! from a list for that long (reads by id are consistent). The cost of a
//! list in another order or with other filters grows with the project's
//! executions: set `BORA_FINISHED_TTL_DAYS` so finished ones expire. Task and action executions are read through
//! their execution's or task's partition when the query names one (what
//! the clients do), and through all the project's executions otherwise.
//!
//! # Deleting an execution
//! The items of the execution tree (sub-workflows included) are deleted
//! with `BatchWriteItem` in chunks, sub-executions and task items first and
//! the root execution's item last: a delete cut short leaves the root
//! readable, and a retried delete finishes it.

use super::{
    DynamoDbStore, Item, MAX_TRANSACTION_ITEMS, action_from, check_size, execution_from,
    execution_pk, key_item, s, task_pk, text,
};
use crate::engine::states::ExecutionState;
use crate::store::catalog::{
    AdHocAction, Catalog, CatalogError, ENTRY_FIELDS, Entry, Environment, ListQuery, SortDir,
    Workbook, WorkflowDefinition, page_in_memory,
};
use crate::store::{ActionRecord, ExecutionRecord, Store, StoreError, TaskRecord};
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem, WriteRequest};
use futures_util::stream::{self, StreamExt, TryStreamExt};
use serde_json::Value;
use std::collections::HashSet;
use std::time::Duration;

/// The catalog on the store's table, listing the executions of `project_id`.
#[derive(Clone, Debug)]
pub struct DynamoDbCatalog {
    store: DynamoDbStore,
    project_id: String,
}

/// Reads in flight at once when a list walks many partitions.
const READ_CONCURRENCY: usize = 8;
/// How often a catalog transaction is retried after a transaction conflict
/// (another writer touching the same items at that moment).
const CONFLICT_RETRIES: u32 = 5;

fn backend(e: impl std::fmt::Display) -> CatalogError {
    CatalogError::Backend(e.to_string())
}

fn store_error(e: StoreError) -> CatalogError {
    match e {
        StoreError::NotFound(what) => CatalogError::NotFound(format!("{what} not found")),
        StoreError::TooLarge(what) => CatalogError::Invalid(what),
        other => backend(other),
    }
}

fn entry_pk<E: Entry>() -> String {
    format!("CAT#{}", E::TABLE)
}

fn entry_sk(id: &str) -> String {
    format!("ID#{id}")
}

fn claim_pk<E: Entry>(namespace: &str, name: &str) -> String {
    format!("NAME#{}#{}:{namespace}#{name}", E::TABLE, namespace.len())
}

const CLAIM_SK: &str = "NAME";

fn entry_item<E: Entry>(entry: &E) -> Result<Item, CatalogError> {
    let row = entry.row();
    let mut item = key_item(entry_pk::<E>(), entry_sk(row.id));
    item.insert(
        "body".into(),
        s(serde_json::to_string(entry).map_err(backend)?),
    );
    item.insert("name".into(), s(row.name));
    item.insert("namespace".into(), s(row.namespace));
    check_size(&item, &format!("{} {}", E::KIND, row.name)).map_err(store_error)?;
    Ok(item)
}

fn claim_item<E: Entry>(entry: &E) -> Item {
    let row = entry.row();
    let mut item = key_item(claim_pk::<E>(row.namespace, row.name), CLAIM_SK.into());
    item.insert("id".into(), s(row.id));
    item
}

fn entry_from<E: Entry>(item: &Item) -> Result<E, CatalogError> {
    let body = text(item, "body").ok_or_else(|| backend("catalog item without a body"))?;
    serde_json::from_str(&body).map_err(backend)
}

/// One step of a catalog transaction.
enum Step {
    /// Put an item; with a condition, fail with `error` when it does not hold.
    Put {
        item: Item,
        condition: Option<&'static str>,
        error: Option<CatalogError>,
    },
    Delete {
        pk: String,
        sk: String,
    },
}

impl Step {
    fn key(&self) -> (String, String) {
        match self {
            Step::Put { item, .. } => (
                text(item, "pk").unwrap_or_default(),
                text(item, "sk").unwrap_or_default(),
            ),
            Step::Delete { pk, sk } => (pk.clone(), sk.clone()),
        }
    }
}

/// A catalog transaction being planned. DynamoDB allows one operation per
/// item in a transaction, so a put of an item this plan deletes (a workbook
/// re-registering a workflow under the same name) replaces the delete.
#[derive(Default)]
struct Plan {
    steps: Vec<Step>,
}

impl Plan {
    fn put(&mut self, item: Item, condition: Option<&'static str>, error: Option<CatalogError>) {
        let step = Step::Put {
            item,
            condition,
            error,
        };
        let key = step.key();
        if let Some(i) = self.steps.iter().position(|s| s.key() == key) {
            if let Step::Put { item, .. } = step {
                // Overwrites what it would have deleted.
                self.steps[i] = Step::Put {
                    item,
                    condition: None,
                    error: None,
                };
            }
            return;
        }
        self.steps.push(step);
    }

    fn delete(&mut self, pk: String, sk: String) {
        self.steps.push(Step::Delete { pk, sk });
    }

    fn insert<E: Entry>(&mut self, entry: &E) -> Result<(), CatalogError> {
        self.put(
            entry_item(entry)?,
            Some("attribute_not_exists(pk)"),
            Some(entry.duplicate()),
        );
        self.put(
            claim_item(entry),
            Some("attribute_not_exists(pk)"),
            Some(entry.duplicate()),
        );
        Ok(())
    }

    fn remove<E: Entry>(&mut self, entry: &E) {
        let row = entry.row();
        self.delete(entry_pk::<E>(), entry_sk(row.id));
        self.delete(claim_pk::<E>(row.namespace, row.name), CLAIM_SK.into());
    }

    /// Replace `old` by `new` (same id); the name claim moves if the name
    /// or namespace changed.
    fn replace<E: Entry>(&mut self, old: &E, new: &E) -> Result<(), CatalogError> {
        let row = new.row();
        self.put(
            entry_item(new)?,
            Some("attribute_exists(pk)"),
            Some(E::missing_id(row.id)),
        );
        let old_row = old.row();
        if (old_row.name, old_row.namespace) != (row.name, row.namespace) {
            self.delete(
                claim_pk::<E>(old_row.namespace, old_row.name),
                CLAIM_SK.into(),
            );
            self.put(
                claim_item(new),
                Some("attribute_not_exists(pk)"),
                Some(new.duplicate()),
            );
        }
        Ok(())
    }
}

impl DynamoDbCatalog {
    /// The catalog on `store`'s table; execution lists show `project_id`'s
    /// executions (the API's project).
    pub fn new(store: DynamoDbStore, project_id: impl Into<String>) -> Self {
        DynamoDbCatalog {
            store,
            project_id: project_id.into(),
        }
    }

    async fn run(&self, plan: Plan) -> Result<(), CatalogError> {
        if plan.steps.is_empty() {
            return Ok(());
        }
        if plan.steps.len() > MAX_TRANSACTION_ITEMS {
            return Err(CatalogError::Invalid(format!(
                "this change touches {} catalog items; DynamoDB commits at most {} in one \
                 transaction (register a workbook of fewer workflows and actions)",
                plan.steps.len(),
                MAX_TRANSACTION_ITEMS
            )));
        }
        let table = self.store.table().to_string();
        let mut items = Vec::with_capacity(plan.steps.len());
        let mut errors = Vec::with_capacity(plan.steps.len());
        for step in plan.steps {
            match step {
                Step::Put {
                    item,
                    condition,
                    error,
                } => {
                    let put = Put::builder()
                        .table_name(&table)
                        .set_item(Some(item))
                        .set_condition_expression(condition.map(String::from))
                        .build()
                        .map_err(backend)?;
                    items.push(TransactWriteItem::builder().put(put).build());
                    errors.push(error);
                }
                Step::Delete { pk, sk } => {
                    let delete = Delete::builder()
                        .table_name(&table)
                        .set_key(Some(key_item(pk, sk)))
                        .build()
                        .map_err(backend)?;
                    items.push(TransactWriteItem::builder().delete(delete).build());
                    errors.push(None);
                }
            }
        }
        use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
        let mut attempt = 0;
        loop {
            let error = match self
                .store
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            if let SdkError::ServiceError(service) = &error
                && let TransactWriteItemsError::TransactionCanceledException(cancelled) =
                    service.err()
            {
                let reasons = cancelled.cancellation_reasons();
                for (index, reason) in reasons.iter().enumerate() {
                    if reason.code() == Some("ConditionalCheckFailed")
                        && let Some(Some(error)) = errors.get_mut(index)
                    {
                        return Err(std::mem::replace(error, backend("")));
                    }
                }
                if reasons
                    .iter()
                    .any(|r| r.code() == Some("TransactionConflict"))
                    && attempt < CONFLICT_RETRIES
                {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
                    continue;
                }
            }
            return Err(backend(format!(
                "DynamoDB TransactWriteItems: {}",
                crate::aws::describe_sdk_error(&error)
            )));
        }
    }

    async fn by_id<E: Entry>(&self, id: &str) -> Result<Option<E>, CatalogError> {
        self.store
            .get_item(entry_pk::<E>(), &entry_sk(id))
            .await
            .map_err(store_error)?
            .map(|item| entry_from(&item))
            .transpose()
    }

    /// An entry by id, or by name in `namespace` (the id wins, as in SQLite).
    async fn find<E: Entry>(
        &self,
        identifier: &str,
        namespace: &str,
    ) -> Result<Option<E>, CatalogError> {
        if let Some(entry) = self.by_id(identifier).await? {
            return Ok(Some(entry));
        }
        let claim = self
            .store
            .get_item(claim_pk::<E>(namespace, identifier), CLAIM_SK)
            .await
            .map_err(store_error)?;
        match claim.and_then(|c| text(&c, "id")) {
            Some(id) => self.by_id(&id).await,
            None => Ok(None),
        }
    }

    async fn get<E: Entry>(&self, identifier: &str, namespace: &str) -> Result<E, CatalogError> {
        self.find(identifier, namespace)
            .await?
            .ok_or_else(|| E::not_found(identifier, namespace))
    }

    /// Every entry of a kind.
    async fn all<E: Entry>(&self) -> Result<Vec<E>, CatalogError> {
        self.store
            .query_prefix(entry_pk::<E>(), "ID#", true)
            .map_err(store_error)
            .and_then(|item| async move { entry_from(&item) })
            .try_collect()
            .await
    }

    async fn list<E: Entry>(&self, query: &ListQuery) -> Result<Vec<E>, CatalogError> {
        page_in_memory(self.all().await?, query, ENTRY_FIELDS, |e: &E, f| {
            e.row().value(f)
        })
    }

    async fn insert_all<E: Entry>(&self, entries: &[E]) -> Result<(), CatalogError> {
        let mut plan = Plan::default();
        for entry in entries {
            plan.insert(entry)?;
        }
        self.run(plan).await
    }

    async fn update_all<E: Entry>(&self, entries: &[E]) -> Result<(), CatalogError> {
        let mut plan = Plan::default();
        for entry in entries {
            let id = entry.row().id;
            let old: E = self.by_id(id).await?.ok_or_else(|| E::missing_id(id))?;
            plan.replace(&old, entry)?;
        }
        self.run(plan).await
    }

    async fn delete<E: Entry>(
        &self,
        identifier: &str,
        namespace: &str,
    ) -> Result<(), CatalogError> {
        let entry: E = self.get(identifier, namespace).await?;
        let mut plan = Plan::default();
        plan.remove(&entry);
        self.run(plan).await
    }

    /// Plan the removal of a workbook's workflows and actions.
    async fn remove_workbook_entries(
        &self,
        plan: &mut Plan,
        workbook: &Workbook,
    ) -> Result<(), CatalogError> {
        let owned = |owner: &Option<String>, namespace: &str| {
            owner.as_deref() == Some(workbook.name.as_str()) && namespace == workbook.namespace
        };
        for w in self.all::<WorkflowDefinition>().await? {
            if owned(&w.workbook, &w.namespace) {
                plan.remove(&w);
            }
        }
        for a in self.all::<AdHocAction>().await? {
            if owned(&a.workbook, &a.namespace) {
                plan.remove(&a);
            }
        }
        Ok(())
    }

    // -- executions, tasks, action executions --------------------------------

    /// The project's executions, in any order; only those in `state` when
    /// the query filters on one.
    async fn executions(&self, query: &ListQuery) -> Result<Vec<ExecutionRecord>, CatalogError> {
        let wanted = query
            .filters
            .iter()
            .find(|(field, _)| field == "state")
            .map(|(_, state)| state.as_str());
        let states: Vec<ExecutionState> = ExecutionState::ALL
            .iter()
            .copied()
            .filter(|s| wanted.is_none_or(|w| w == s.as_str()))
            .collect();
        let mut ids = Vec::new();
        for state in states {
            ids.extend(
                self.store
                    .list_executions(&self.project_id, state, usize::MAX)
                    .await
                    .map_err(store_error)?,
            );
        }
        let keys = ids
            .iter()
            .map(|id| (execution_pk(id), "EXE".to_string()))
            .collect();
        let found = self.store.batch_get(keys).await.map_err(store_error)?;
        // The index lags: an execution deleted since is skipped.
        found
            .values()
            .map(|item| execution_from(item).map_err(store_error))
            .collect()
    }

    /// A page of execution ids read from the `by-project-state` index
    /// alone, when the query asks for the index's own order: by
    /// `created_at` then `id` (the API's default), ascending or descending
    /// together, filtered on nothing but `state`. The index's sort key is
    /// `<created_at>#<id>`, so "after the marker" is a key condition and a
    /// page costs one `Query` per state, not a read of every execution.
    /// `None`: the query needs [`Self::executions`] and paging in memory.
    async fn execution_ids_from_index(
        &self,
        query: &ListQuery,
    ) -> Result<Option<Vec<String>>, CatalogError> {
        let forward = match query.sort.as_slice() {
            [(key, SortDir::Asc)] if key == "created_at" => true,
            [(key, dir), (tie, tie_dir)]
                if key == "created_at" && tie == "id" && dir == tie_dir =>
            {
                *dir == SortDir::Asc
            }
            _ => return Ok(None),
        };
        if query.filters.iter().any(|(field, _)| field != "state") {
            return Ok(None);
        }
        let after = match &query.marker {
            None => None,
            Some(marker) => {
                let item = self
                    .store
                    .get_item(execution_pk(marker), "EXE")
                    .await
                    .map_err(store_error)?
                    .ok_or_else(|| {
                        CatalogError::Invalid(format!("marker: no entry with id '{marker}'"))
                    })?;
                Some(text(&item, "gsi1sk").ok_or_else(|| backend("execution without gsi1sk"))?)
            }
        };
        let limit = query.limit.unwrap_or(usize::MAX);
        let wanted = filter(query, "state");
        let mut keys: Vec<(String, String)> = Vec::new();
        for state in ExecutionState::ALL
            .iter()
            .filter(|s| wanted.is_none_or(|w| w == s.as_str()))
        {
            keys.extend(
                self.store
                    .index_page(&self.project_id, *state, after.as_deref(), forward, limit)
                    .await
                    .map_err(store_error)?,
            );
        }
        keys.sort();
        if !forward {
            keys.reverse();
        }
        Ok(Some(
            keys.into_iter().take(limit).map(|(_, id)| id).collect(),
        ))
    }

    async fn tasks_of(&self, execution_ids: Vec<String>) -> Result<Vec<TaskRecord>, CatalogError> {
        let lists: Vec<Vec<TaskRecord>> = stream::iter(execution_ids)
            .map(|id| async move { self.store.list_tasks(&id).await })
            .buffer_unordered(READ_CONCURRENCY)
            .try_collect()
            .await
            .map_err(store_error)?;
        Ok(lists.into_iter().flatten().collect())
    }

    async fn actions_of(&self, task_ids: Vec<String>) -> Result<Vec<ActionRecord>, CatalogError> {
        let lists: Vec<Vec<ActionRecord>> = stream::iter(task_ids)
            .map(|id| async move { self.store.list_actions(&id).await })
            .buffer_unordered(READ_CONCURRENCY)
            .try_collect()
            .await
            .map_err(store_error)?;
        Ok(lists.into_iter().flatten().collect())
    }

    /// The tasks a query can be answered from: one execution's when it
    /// names one, else every task of the project's executions.
    async fn candidate_tasks(&self, query: &ListQuery) -> Result<Vec<TaskRecord>, CatalogError> {
        let execution_ids = match filter(query, "workflow_execution_id") {
            Some(id) => vec![id.to_string()],
            None => self
                .executions(&ListQuery::default())
                .await?
                .into_iter()
                .map(|e| e.id)
                .collect(),
        };
        self.tasks_of(execution_ids).await
    }

    /// The execution `id` and every execution under it (sub-workflows,
    /// found through the actions that started them), parents first.
    async fn execution_tree(&self, id: &str) -> Result<Vec<String>, CatalogError> {
        let mut all = vec![id.to_string()];
        let mut seen: HashSet<String> = all.iter().cloned().collect();
        let mut i = 0;
        while i < all.len() {
            let tasks = self.tasks_of(vec![all[i].clone()]).await?;
            let actions = self.actions_of(tasks.into_iter().map(|t| t.id).collect());
            for child in actions
                .await?
                .into_iter()
                .filter_map(|a| a.child_execution_id)
            {
                if seen.insert(child.clone()) {
                    all.push(child);
                }
            }
            i += 1;
        }
        Ok(all)
    }

    /// The keys of every item of one execution except its own item.
    async fn execution_item_keys(&self, id: &str) -> Result<Vec<(String, String)>, CatalogError> {
        let mut keys = Vec::new();
        let index: Vec<Item> = self
            .store
            .query_prefix(execution_pk(id), "TASK#", true)
            .try_collect()
            .await
            .map_err(store_error)?;
        for entry in &index {
            let Some(task_id) = text(entry, "task_id") else {
                continue;
            };
            let items: Vec<Item> = self
                .store
                .query_prefix(task_pk(&task_id), "", true)
                .try_collect()
                .await
                .map_err(store_error)?;
            for item in &items {
                if text(item, "sk").is_some_and(|sk| sk.starts_with("ACT#")) {
                    let action = action_from(item).map_err(store_error)?;
                    keys.push((format!("ACT#{}", action.id), "ACT".to_string()));
                }
                keys.push((
                    text(item, "pk").unwrap_or_default(),
                    text(item, "sk").unwrap_or_default(),
                ));
            }
        }
        keys.extend(index.iter().map(|entry| {
            (
                text(entry, "pk").unwrap_or_default(),
                text(entry, "sk").unwrap_or_default(),
            )
        }));
        Ok(keys)
    }

    /// Delete items in `BatchWriteItem` chunks of 25, in order, following
    /// unprocessed items.
    async fn delete_keys(&self, mut keys: Vec<(String, String)>) -> Result<(), CatalogError> {
        // One request may not name a key twice.
        let mut seen = HashSet::new();
        keys.retain(|key| seen.insert(key.clone()));
        for chunk in keys.chunks(25) {
            let mut pending: Vec<WriteRequest> = chunk
                .iter()
                .map(|(pk, sk)| {
                    let delete = aws_sdk_dynamodb::types::DeleteRequest::builder()
                        .set_key(Some(key_item(pk.clone(), sk.clone())))
                        .build()
                        .map_err(backend)?;
                    Ok(WriteRequest::builder().delete_request(delete).build())
                })
                .collect::<Result<_, CatalogError>>()?;
            let mut rounds = 0u64;
            while !pending.is_empty() {
                rounds += 1;
                let out = self
                    .store
                    .client
                    .batch_write_item()
                    .request_items(self.store.table(), std::mem::take(&mut pending))
                    .send()
                    .await
                    .map_err(|e| {
                        backend(format!(
                            "DynamoDB BatchWriteItem: {}",
                            crate::aws::describe_sdk_error(&e)
                        ))
                    })?;
                if let Some(mut rest) = out.unprocessed_items
                    && let Some(rest) = rest.remove(self.store.table())
                {
                    if rounds > 20 {
                        return Err(backend(
                            "DynamoDB BatchWriteItem: items stayed unprocessed (throttled)",
                        ));
                    }
                    pending = rest;
                    tokio::time::sleep(Duration::from_millis(20 * rounds)).await;
                }
            }
        }
        Ok(())
    }
}

/// The value of an equality filter on `field`, if the query has one.
fn filter<'q>(query: &'q ListQuery, field: &str) -> Option<&'q str> {
    query
        .filters
        .iter()
        .find(|(f, _)| f == field)
        .map(|(_, v)| v.as_str())
}

fn text_or_null(value: Option<&str>) -> Value {
    value.map(Value::from).unwrap_or(Value::Null)
}

const EXECUTION_FIELDS: &[&str] = &[
    "id",
    "workflow_name",
    "workflow_id",
    "workflow_namespace",
    "description",
    "state",
    "task_execution_id",
    "root_execution_id",
    "project_id",
    "created_at",
    "updated_at",
];

fn execution_value(e: &ExecutionRecord, field: &str) -> Value {
    match field {
        "id" => Value::from(e.id.as_str()),
        "workflow_name" => Value::from(e.workflow_name.as_str()),
        "workflow_id" => text_or_null(e.workflow_id.as_deref()),
        "workflow_namespace" => Value::from(e.workflow_namespace.as_str()),
        "description" => Value::from(e.description.as_str()),
        "state" => Value::from(e.state.as_str()),
        "task_execution_id" => {
            text_or_null(e.parent.as_ref().map(|p| p.task_execution_id.as_str()))
        }
        "root_execution_id" => text_or_null(e.root_execution_id.as_deref()),
        "project_id" => Value::from(e.project_id.as_str()),
        "created_at" => Value::from(e.created_at),
        "updated_at" => Value::from(e.updated_at),
        _ => Value::Null,
    }
}

const TASK_FIELDS: &[&str] = &[
    "id",
    "name",
    "workflow_execution_id",
    "workflow_name",
    "state",
    "created_at",
    "updated_at",
    "started_at",
    "finished_at",
];

fn task_value(t: &TaskRecord, field: &str) -> Value {
    match field {
        "id" => Value::from(t.id.as_str()),
        "name" => Value::from(t.name.as_str()),
        "workflow_execution_id" => Value::from(t.execution_id.as_str()),
        "workflow_name" => Value::from(t.workflow_name.as_str()),
        "state" => Value::from(t.state.as_str()),
        "created_at" => Value::from(t.created_at),
        "updated_at" => Value::from(t.updated_at),
        "started_at" => t.started_at.map(Value::from).unwrap_or(Value::Null),
        "finished_at" => t.finished_at.map(Value::from).unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

const ACTION_FIELDS: &[&str] = &[
    "id",
    "name",
    "task_execution_id",
    "workflow_execution_id",
    "state",
    "created_at",
    "updated_at",
];

fn action_value(a: &ActionRecord, field: &str) -> Value {
    match field {
        "id" => Value::from(a.id.as_str()),
        "name" => Value::from(a.name.as_str()),
        "task_execution_id" => Value::from(a.task_execution_id.as_str()),
        "workflow_execution_id" => Value::from(a.execution_id.as_str()),
        "state" => Value::from(a.state.as_str()),
        "created_at" => Value::from(a.created_at),
        "updated_at" => Value::from(a.updated_at),
        _ => Value::Null,
    }
}

#[async_trait::async_trait]
impl Catalog for DynamoDbCatalog {
    async fn insert_workflows(&self, workflows: &[WorkflowDefinition]) -> Result<(), CatalogError> {
        self.insert_all(workflows).await
    }

    async fn update_workflows(&self, workflows: &[WorkflowDefinition]) -> Result<(), CatalogError> {
        self.update_all(workflows).await
    }

    async fn get_workflow(
        &self,
        identifier: &str,
        namespace: &str,
    ) -> Result<WorkflowDefinition, CatalogError> {
        self.get(identifier, namespace).await
    }

    async fn list_workflows(
        &self,
        query: &ListQuery,
    ) -> Result<Vec<WorkflowDefinition>, CatalogError> {
        self.list(query).await
    }

    async fn delete_workflow(&self, identifier: &str, namespace: &str) -> Result<(), CatalogError> {
        self.delete::<WorkflowDefinition>(identifier, namespace)
            .await
    }

    async fn put_workbook(
        &self,
        workbook: &Workbook,
        workflows: &[WorkflowDefinition],
        actions: &[AdHocAction],
        replace: bool,
    ) -> Result<(), CatalogError> {
        let mut plan = Plan::default();
        if replace {
            let old: Workbook = self
                .find(&workbook.name, &workbook.namespace)
                .await?
                .ok_or_else(|| Workbook::missing_id(&workbook.id))?;
            self.remove_workbook_entries(&mut plan, &old).await?;
            plan.replace(&old, workbook)?;
        } else {
            plan.insert(workbook)?;
        }
        for w in workflows {
            plan.insert(w)?;
        }
        for a in actions {
            plan.insert(a)?;
        }
        self.run(plan).await
    }

    async fn get_workbook(&self, name: &str, namespace: &str) -> Result<Workbook, CatalogError> {
        self.get(name, namespace).await
    }

    async fn list_workbooks(&self, query: &ListQuery) -> Result<Vec<Workbook>, CatalogError> {
        self.list(query).await
    }

    async fn delete_workbook(&self, name: &str, namespace: &str) -> Result<(), CatalogError> {
        let workbook: Workbook = self.get(name, namespace).await?;
        let mut plan = Plan::default();
        self.remove_workbook_entries(&mut plan, &workbook).await?;
        plan.remove(&workbook);
        self.run(plan).await
    }

    async fn insert_actions(&self, actions: &[AdHocAction]) -> Result<(), CatalogError> {
        self.insert_all(actions).await
    }

    async fn update_actions(&self, actions: &[AdHocAction]) -> Result<(), CatalogError> {
        self.update_all(actions).await
    }

    async fn get_action(
        &self,
        identifier: &str,
        namespace: &str,
    ) -> Result<AdHocAction, CatalogError> {
        self.get(identifier, namespace).await
    }

    async fn list_actions(&self, query: &ListQuery) -> Result<Vec<AdHocAction>, CatalogError> {
        self.list(query).await
    }

    async fn delete_action(&self, identifier: &str, namespace: &str) -> Result<(), CatalogError> {
        self.delete::<AdHocAction>(identifier, namespace).await
    }

    async fn insert_environment(&self, environment: &Environment) -> Result<(), CatalogError> {
        self.insert_all(std::slice::from_ref(environment)).await
    }

    async fn update_environment(&self, environment: &Environment) -> Result<(), CatalogError> {
        self.update_all(std::slice::from_ref(environment)).await
    }

    async fn get_environment(&self, name: &str) -> Result<Environment, CatalogError> {
        self.get(name, "").await
    }

    async fn list_environments(&self, query: &ListQuery) -> Result<Vec<Environment>, CatalogError> {
        self.list(query).await
    }

    async fn delete_environment(&self, name: &str) -> Result<(), CatalogError> {
        self.delete::<Environment>(name, "").await
    }

    async fn list_execution_ids(&self, query: &ListQuery) -> Result<Vec<String>, CatalogError> {
        if let Some(ids) = self.execution_ids_from_index(query).await? {
            return Ok(ids);
        }
        let rows = self.executions(query).await?;
        Ok(
            page_in_memory(rows, query, EXECUTION_FIELDS, execution_value)?
                .into_iter()
                .map(|e| e.id)
                .collect(),
        )
    }

    async fn list_task_ids(&self, query: &ListQuery) -> Result<Vec<String>, CatalogError> {
        let rows = self.candidate_tasks(query).await?;
        Ok(page_in_memory(rows, query, TASK_FIELDS, task_value)?
            .into_iter()
            .map(|t| t.id)
            .collect())
    }

    async fn list_action_execution_ids(
        &self,
        query: &ListQuery,
    ) -> Result<Vec<String>, CatalogError> {
        let rows = match filter(query, "task_execution_id") {
            Some(task_id) => self.actions_of(vec![task_id.to_string()]).await?,
            None => {
                let scoped = filter(query, "workflow_execution_id").is_some();
                let tasks = self.candidate_tasks(query).await?;
                let mut task_ids: Vec<String> = tasks.into_iter().map(|t| t.id).collect();
                if !scoped {
                    // Actions run on their own (no task) live under the
                    // empty task id.
                    task_ids.push(String::new());
                }
                self.actions_of(task_ids).await?
            }
        };
        Ok(page_in_memory(rows, query, ACTION_FIELDS, action_value)?
            .into_iter()
            .map(|a| a.id)
            .collect())
    }

    async fn delete_execution(&self, id: &str) -> Result<(), CatalogError> {
        let tree = self.execution_tree(id).await?;
        let mut keys = Vec::new();
        // Sub-executions first, whole; the root's own item last.
        for child in tree.iter().skip(1).rev() {
            keys.extend(self.execution_item_keys(child).await?);
            keys.push((execution_pk(child), "EXE".to_string()));
        }
        keys.extend(self.execution_item_keys(id).await?);
        keys.push((execution_pk(id), "EXE".to_string()));
        self.delete_keys(keys).await
    }
}
