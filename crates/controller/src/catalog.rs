//! The system namespace and its catalog: `whisk.system` with OpenWhisk's well-known system
//! key, and the published package `/whisk.system/utils` with the actions of OpenWhisk's
//! catalog (`echo`, `cat`, `sort`, `head`, `split`, `date`, `namespace`, `smash`), so that the
//! examples of OpenWhisk's documentation run as written; and the feed packages
//! `/whisk.system/alarms` (`alarm`, `once`, `interval`) and `/whisk.system/mqtt`
//! (`subscribe`), whose actions are annotated `feed` and run by the controller
//! ([`crate::feeds`]).
//!
//! [`provision_system`] runs on the first start of a data directory: it creates the system
//! identity (only when the subject has none) and the catalog. [`provision_catalog`] runs at
//! every later start and writes the package and actions when they are missing or differ from
//! the ones this binary ships (so an upgrade brings the new catalog), without touching any key:
//! an operator who rotated or deleted the well-known key keeps it so across restarts. The action sources live in `catalog/utils/*.js`
//! and are embedded at build time.

use edgewhisk_entity::{Identity, LimitBounds};
use edgewhisk_store::{Collection, EntityDoc, EntityStore, PutMode, StoreError};
use serde_json::{Value, json};

/// The system namespace.
pub const SYSTEM_NAMESPACE: &str = "whisk.system";

/// The annotation naming the built-in feed an action of `whisk.system` runs.
pub const FEED_PROVIDER: &str = "feed-provider";

/// OpenWhisk's well-known default key of `whisk.system` (ansible `files/auth.whisk.system`,
/// standalone `standalone.conf`); production devices should rotate it.
pub const SYSTEM_AUTH: &str = "789c46b1-71f6-4ed5-8c54-816aa4f8c502:abczO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP";

/// The catalog package of utilities.
pub const UTILS_PACKAGE: &str = "utils";

/// The runtime kind of the catalog actions.
const CATALOG_KIND: &str = "nodejs:20";

/// One catalog action: name, source, and the annotations OpenWhisk's catalog gives it.
struct CatalogAction {
    name: &'static str,
    code: &'static str,
    description: &'static str,
    parameters: fn() -> Value,
    sample_input: fn() -> Option<Value>,
    sample_output: fn() -> Value,
}

fn utils() -> [CatalogAction; 8] {
    [
        CatalogAction {
            name: "echo",
            code: include_str!("../catalog/utils/echo.js"),
            description: "Returns the input",
            parameters: || json!([{"name": "payload", "required": false, "description": "Any JSON entity"}]),
            sample_input: || Some(json!({"payload": "Five fuzzy felines"})),
            sample_output: || json!({"payload": "Five fuzzy felines"}),
        },
        CatalogAction {
            name: "cat",
            code: include_str!("../catalog/utils/cat.js"),
            description: "Concatenates input into a string",
            parameters: || {
                json!([{"name": "lines", "required": true, "type": "array",
                        "description": "An array of strings or numbers"}])
            },
            sample_input: || Some(json!({"lines": [4, 2, 3]})),
            sample_output: || json!({"lines": [4, 2, 3], "payload": "4\n2\n3"}),
        },
        CatalogAction {
            name: "sort",
            code: include_str!("../catalog/utils/sort.js"),
            description: "Sorts an array",
            parameters: || {
                json!([{"name": "lines", "required": true, "type": "array",
                        "description": "An array of strings"}])
            },
            sample_input: || Some(json!({"lines": [4, 2, 3]})),
            sample_output: || json!({"lines": [2, 3, 4], "length": 3}),
        },
        CatalogAction {
            name: "head",
            code: include_str!("../catalog/utils/head.js"),
            description: "Extract prefix of an array",
            parameters: || {
                json!([{"name": "lines", "required": true, "type": "array",
                        "description": "An array of strings"},
                       {"name": "num", "required": false, "type": "integer",
                        "description": "The length of the prefix"}])
            },
            sample_input: || Some(json!({"lines": [4, 2, 3], "num": 2})),
            sample_output: || json!({"lines": [4, 2], "num": 2}),
        },
        CatalogAction {
            name: "split",
            code: include_str!("../catalog/utils/split.js"),
            description: "Split a string into an array",
            parameters: || {
                json!([{"name": "payload", "required": true, "description": "A string"},
                       {"name": "separator", "required": false,
                        "description": "The character, or the regular expression, to use for splitting the string"}])
            },
            sample_input: || Some(json!({"payload": "one,two,three", "separator": ","})),
            sample_output: || json!({"lines": ["one", "two", "three"], "payload": "one,two,three"}),
        },
        CatalogAction {
            name: "date",
            code: include_str!("../catalog/utils/date.js"),
            description: "Current date and time",
            parameters: || json!([]),
            sample_input: || None,
            sample_output: || json!({"date": "2016-03-22T00:59:55.961Z"}),
        },
        CatalogAction {
            name: "namespace",
            code: include_str!("../catalog/utils/namespace.js"),
            description: "Returns namespace for the authorization key used to invoke this action",
            parameters: || json!([]),
            sample_input: || None,
            sample_output: || json!({"namespace": "guest"}),
        },
        CatalogAction {
            name: "smash",
            code: include_str!("../catalog/utils/smash.js"),
            description: "Nests all properties under given property",
            parameters: || {
                json!([{"name": "$fieldName", "required": true, "type": "string",
                        "description": "Name of property to nest object under"}])
            },
            sample_input: || Some(json!({"a": 1, "b": {"c": 2, "d": 3}, "$fieldName": "p"})),
            sample_output: || json!({"p": {"a": 1, "b": {"c": 2, "d": 3}}}),
        },
    ]
}

/// The feed packages under `whisk.system` and their feed actions (see [`crate::feeds`]):
/// package, package description, and per action (name, description, parameters).
type FeedPackage = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str, &'static [&'static str])],
);

const FEED_PACKAGES: [FeedPackage; 2] = [
    (
        "alarms",
        "Alarms and periodic utility",
        &[
            (
                "alarm",
                "Fire trigger when alarm occurs",
                &[
                    "cron",
                    "trigger_payload",
                    "startDate",
                    "stopDate",
                    "maxTriggers",
                ],
            ),
            (
                "once",
                "Fire trigger once when alarm occurs",
                &["date", "trigger_payload", "deleteAfterFire"],
            ),
            (
                "interval",
                "Fire trigger at specified interval",
                &[
                    "minutes",
                    "seconds",
                    "trigger_payload",
                    "startDate",
                    "stopDate",
                    "maxTriggers",
                ],
            ),
        ],
    ),
    (
        "mqtt",
        "MQTT feeds for the edge",
        &[(
            "subscribe",
            "Fire trigger for every message on an MQTT topic",
            &["url", "topic", "username", "password", "qos"],
        )],
    ),
];

/// The code of feed actions: never run, the controller handles their invocations.
const FEED_CODE: &str = "function main() {\n  return { error: 'this feed action is run by the edgewhisk controller' };\n}\n";

/// The stored JSON of a published feed package.
fn feed_package(name: &str, description: &str, now: u64) -> Value {
    json!({
        "namespace": SYSTEM_NAMESPACE,
        "name": name,
        "version": "0.0.1",
        "publish": true,
        "parameters": [],
        "annotations": [{"key": "description", "value": description}],
        "binding": {},
        "updated": now,
    })
}

/// The stored JSON of one feed action of `package`.
fn feed_action(package: &str, name: &str, description: &str, params: &[&str], now: u64) -> Value {
    let parameters: Vec<Value> = params
        .iter()
        .map(|p| json!({"name": p, "required": false}))
        .collect();
    json!({
        "namespace": format!("{SYSTEM_NAMESPACE}/{package}"),
        "name": name,
        "version": "0.0.1",
        "publish": false,
        "exec": {"kind": CATALOG_KIND, "code": FEED_CODE, "binary": false},
        "parameters": [],
        "limits": LimitBounds::default().defaults(),
        "annotations": [
            {"key": "description", "value": description},
            {"key": "parameters", "value": parameters},
            {"key": "feed", "value": true},
            {"key": FEED_PROVIDER, "value": format!("{package}/{name}")},
            {"key": "exec", "value": CATALOG_KIND},
        ],
        "updated": now,
    })
}

/// The system identity with OpenWhisk's well-known key.
pub fn system_identity() -> Identity {
    let (uuid, key) = SYSTEM_AUTH.split_once(':').unwrap_or_default();
    Identity {
        subject: SYSTEM_NAMESPACE.into(),
        namespace: SYSTEM_NAMESPACE.into(),
        uuid: uuid.into(),
        key: key.into(),
    }
}

/// The stored JSON of the published `utils` package.
fn utils_package(now: u64) -> Value {
    json!({
        "namespace": SYSTEM_NAMESPACE,
        "name": UTILS_PACKAGE,
        "version": "0.0.1",
        "publish": true,
        "parameters": [],
        "annotations": [
            {"key": "description", "value": "Building blocks that format and assemble data"},
            {"key": "prettyName", "value": "Utilities"},
        ],
        "binding": {},
        "updated": now,
    })
}

/// The stored JSON of one catalog action.
fn action_doc(a: &CatalogAction, now: u64) -> Value {
    let mut annotations = vec![
        json!({"key": "description", "value": a.description}),
        json!({"key": "parameters", "value": (a.parameters)()}),
    ];
    if let Some(input) = (a.sample_input)() {
        annotations.push(json!({"key": "sampleInput", "value": input}));
    }
    annotations.push(json!({"key": "sampleOutput", "value": (a.sample_output)()}));
    annotations.push(json!({"key": "provide-api-key", "value": false}));
    annotations.push(json!({"key": "exec", "value": CATALOG_KIND}));
    json!({
        "namespace": format!("{SYSTEM_NAMESPACE}/{UTILS_PACKAGE}"),
        "name": a.name,
        "version": "0.0.1",
        "publish": false,
        "exec": {"kind": CATALOG_KIND, "code": a.code, "binary": false},
        "parameters": [],
        "limits": LimitBounds::default().defaults(),
        "annotations": annotations,
        "updated": now,
    })
}

/// Everything but `updated`, to tell whether a stored document is the shipped one.
fn same_content(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            o.remove("updated");
        }
        v
    };
    strip(a) == strip(b)
}

/// Writes `doc` unless an equal one is stored; leaves a name of another collection alone.
/// Another process provisioning the same store at the same time (the controllers and invokers
/// of a cluster starting together) may write first: the write is then tried again on what it
/// wrote, which is usually already the same document.
async fn ensure(entities: &dyn EntityStore, doc: EntityDoc) -> Result<(), StoreError> {
    const ATTEMPTS: usize = 3;
    for attempt in 1..=ATTEMPTS {
        let mode = match entities.get(&doc.path, &doc.name).await? {
            None => PutMode::Create,
            Some(old) if old.collection != doc.collection => {
                tracing::warn!(path = %doc.path, name = %doc.name, "catalog name taken; not replaced");
                return Ok(());
            }
            Some(old) if same_content(&old.doc, &doc.doc) => return Ok(()),
            Some(old) => PutMode::Replace {
                expected_updated: old.updated,
            },
        };
        match entities.put(doc.clone(), mode).await {
            Err(StoreError::Conflict { .. } | StoreError::ConcurrentModification)
                if attempt < ATTEMPTS => {}
            result => return result,
        }
    }
    unreachable!("the last attempt returns")
}

/// Provisions a new store: the `whisk.system` identity with [`SYSTEM_AUTH`] (unless the
/// subject already has a key) and the catalog ([`provision_catalog`]). The server calls it on
/// the first start of a data directory only, as it provisions the guest key, so that an
/// operator who deleted the well-known system key keeps it deleted across restarts.
pub async fn provision_system(entities: &dyn EntityStore) -> Result<(), StoreError> {
    if entities.identities_of(SYSTEM_NAMESPACE).await?.is_empty() {
        entities.put_identity(system_identity()).await?;
        tracing::info!("provisioned the default system key for namespace 'whisk.system'");
    }
    provision_catalog(entities).await
}

/// Writes the published `/whisk.system/utils` package and the feed packages with their
/// actions where they are missing or differ from this binary's; never touches a key.
/// Idempotent; the server calls it at every start.
pub async fn provision_catalog(entities: &dyn EntityStore) -> Result<(), StoreError> {
    let now = edgewhisk_entity::time::now_millis();
    ensure(
        entities,
        EntityDoc {
            collection: Collection::Packages,
            path: SYSTEM_NAMESPACE.into(),
            name: UTILS_PACKAGE.into(),
            updated: now,
            doc: utils_package(now),
        },
    )
    .await?;
    for a in utils() {
        ensure(
            entities,
            EntityDoc {
                collection: Collection::Actions,
                path: format!("{SYSTEM_NAMESPACE}/{UTILS_PACKAGE}"),
                name: a.name.into(),
                updated: now,
                doc: action_doc(&a, now),
            },
        )
        .await?;
    }
    for (package, description, actions) in FEED_PACKAGES {
        ensure(
            entities,
            EntityDoc {
                collection: Collection::Packages,
                path: SYSTEM_NAMESPACE.into(),
                name: package.into(),
                updated: now,
                doc: feed_package(package, description, now),
            },
        )
        .await?;
        for (name, description, params) in actions {
            ensure(
                entities,
                EntityDoc {
                    collection: Collection::Actions,
                    path: format!("{SYSTEM_NAMESPACE}/{package}"),
                    name: (*name).into(),
                    updated: now,
                    doc: feed_action(package, name, description, params, now),
                },
            )
            .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgewhisk_entity::{Action, Package};
    use edgewhisk_store::{ListScope, MemoryStore};

    /// A store where another process creates each document first: every create finds its
    /// name just taken by the same document.
    #[derive(Debug)]
    struct BeatenToIt(MemoryStore);

    #[async_trait::async_trait]
    impl EntityStore for BeatenToIt {
        async fn get(&self, path: &str, name: &str) -> Result<Option<EntityDoc>, StoreError> {
            self.0.get(path, name).await
        }
        async fn put(&self, doc: EntityDoc, mode: PutMode) -> Result<(), StoreError> {
            if mode == PutMode::Create {
                self.0.put(doc.clone(), PutMode::Create).await?;
            }
            self.0.put(doc, mode).await
        }
        async fn delete(&self, path: &str, name: &str) -> Result<Option<EntityDoc>, StoreError> {
            self.0.delete(path, name).await
        }
        async fn list(
            &self,
            c: Collection,
            scope: &edgewhisk_store::ListScope,
            skip: usize,
            limit: usize,
        ) -> Result<Vec<EntityDoc>, StoreError> {
            self.0.list(c, scope, skip, limit).await
        }
        async fn count(
            &self,
            c: Collection,
            scope: &edgewhisk_store::ListScope,
        ) -> Result<usize, StoreError> {
            self.0.count(c, scope).await
        }
        async fn identity(&self, uuid: &str) -> Result<Option<Identity>, StoreError> {
            self.0.identity(uuid).await
        }
        async fn put_identity(&self, identity: Identity) -> Result<(), StoreError> {
            self.0.put_identity(identity).await
        }
        async fn identities_of(&self, subject: &str) -> Result<Vec<Identity>, StoreError> {
            self.0.identities_of(subject).await
        }
    }

    #[tokio::test]
    async fn provisioning_that_another_process_does_at_the_same_time_succeeds() {
        let store = BeatenToIt(MemoryStore::new());
        provision_system(&store).await.unwrap();
        assert!(store.get("whisk.system", "utils").await.unwrap().is_some());
        assert!(store.get("whisk.system", "alarms").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn provisioning_creates_the_system_key_and_the_published_utils_package() {
        let store = MemoryStore::new();
        provision_system(&store).await.unwrap();
        let stored = store.identity(&system_identity().uuid).await.unwrap();
        let (_, secret) = SYSTEM_AUTH.split_once(':').unwrap();
        let id = edgewhisk_entity::identity::verify_stored(&stored.unwrap(), secret);
        assert_eq!(id.unwrap().auth_string(), SYSTEM_AUTH);
        let doc = store.get("whisk.system", "utils").await.unwrap().unwrap();
        let p: Package = serde_json::from_value(doc.doc).unwrap();
        assert!(p.is_shared());
        let scope = ListScope::Path("whisk.system/utils".into());
        let mut names: Vec<String> = store
            .list(Collection::Actions, &scope, 0, 0)
            .await
            .unwrap()
            .into_iter()
            .map(|d| {
                let a: Action = serde_json::from_value(d.doc).unwrap();
                a.name
            })
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "cat",
                "date",
                "echo",
                "head",
                "namespace",
                "smash",
                "sort",
                "split"
            ]
        );
    }

    #[tokio::test]
    async fn provisioning_twice_changes_nothing_and_keeps_a_rotated_key() {
        let store = MemoryStore::new();
        let mut rotated = system_identity();
        rotated.uuid = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee".into();
        store.put_identity(rotated).await.unwrap();
        provision_system(&store).await.unwrap();
        let first = store
            .get("whisk.system/utils", "echo")
            .await
            .unwrap()
            .unwrap();
        provision_system(&store).await.unwrap();
        let second = store
            .get("whisk.system/utils", "echo")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first.updated, second.updated);
        assert!(
            store
                .identity(&system_identity().uuid)
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn the_catalog_alone_never_brings_back_a_deleted_system_key() {
        let store = MemoryStore::new();
        provision_system(&store).await.unwrap();
        let uuid = system_identity().uuid;
        store.delete_identity(&uuid).await.unwrap();
        provision_catalog(&store).await.unwrap();
        assert!(store.identity(&uuid).await.unwrap().is_none());
        assert!(store.get("whisk.system", "utils").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn provisioning_restores_a_changed_catalog_action() {
        let store = MemoryStore::new();
        provision_system(&store).await.unwrap();
        let mut doc = store
            .get("whisk.system/utils", "cat")
            .await
            .unwrap()
            .unwrap();
        let old_updated = doc.updated;
        doc.doc["exec"]["code"] = json!("function main(){return {}}");
        doc.updated += 1;
        store
            .put(
                doc,
                PutMode::Replace {
                    expected_updated: old_updated,
                },
            )
            .await
            .unwrap();
        provision_system(&store).await.unwrap();
        let doc = store
            .get("whisk.system/utils", "cat")
            .await
            .unwrap()
            .unwrap();
        assert!(
            doc.doc["exec"]["code"]
                .as_str()
                .unwrap()
                .contains("lines.join")
        );
    }
}
