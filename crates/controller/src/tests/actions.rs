//! Actions: create, update, get, delete, list, validation and size checks.

use super::*;
use edgewhisk_store::{Collection, EntityDoc, EntityStore, ListScope, PutMode, StoreError};
use std::io::Write;

const A: &str = "/api/v1/namespaces/_/actions";

fn zip_of(entries: &[(&str, &str)]) -> String {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, text) in entries {
        w.start_file(*name, opts).unwrap();
        w.write_all(text.as_bytes()).unwrap();
    }
    let bytes = w.finish().unwrap().into_inner();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// PUTs action `name` (with any query) whose body is only `exec` = `{kind, code}`.
async fn put_exec(h: &Harness, name: &str, kind: &str, code: &str) -> Resp {
    h.put(
        &format!("{A}/{name}"),
        json!({"exec": {"kind": kind, "code": code}}),
    )
    .await
}

#[tokio::test]
async fn create_resolves_the_default_kind_and_amends_annotations() {
    let h = Harness::new().await;
    let r = h
        .create(
            "hello",
            json!({"parameters": [{"key": "p", "value": 1}], "annotations": [{"key": "a", "value": "b"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let b = &r.body;
    assert_eq!(b["namespace"], json!("guest"));
    assert_eq!(b["name"], json!("hello"));
    assert_eq!(b["version"], json!("0.0.1"));
    assert_eq!(b["publish"], json!(false));
    assert_eq!(
        b["exec"],
        json!({"kind": "nodejs:20", "code": "function main(){}", "binary": false})
    );
    assert_eq!(b["parameters"], json!([{"key": "p", "value": 1}]));
    assert_eq!(
        b["limits"],
        json!({"timeout": 60000, "memory": 256, "logs": 10, "concurrency": 1})
    );
    assert_eq!(
        b["annotations"],
        json!([{"key": "a", "value": "b"}, {"key": "provide-api-key", "value": false},
               {"key": "exec", "value": "nodejs:20"}])
    );
    assert!(b["updated"].as_u64().unwrap() > 0);
    let stored = h.store.get("guest", "hello").await.unwrap().unwrap();
    assert_eq!(stored.collection, Collection::Actions);
    assert_eq!(&stored.doc, b);
}

#[tokio::test]
async fn create_keeps_an_explicit_provide_api_key_annotation() {
    let h = Harness::new().await;
    let r = h
        .create(
            "k",
            json!({"annotations": [{"key": "provide-api-key", "value": true}]}),
        )
        .await;
    assert_eq!(
        r.body["annotations"],
        json!([{"key": "provide-api-key", "value": true}, {"key": "exec", "value": "nodejs:20"}])
    );
}

#[tokio::test]
async fn create_without_exec_is_400_exec_undefined() {
    let h = Harness::new().await;
    let r = h.put(&format!("{A}/x"), json!({})).await;
    assert_error(&r, 400, "exec undefined");
    let r = h
        .raw(Method::PUT, &format!("{A}/x"), None, Some(GUEST_AUTH), &[])
        .await;
    assert_error(&r, 400, "exec undefined");
}

#[tokio::test]
async fn create_over_an_existing_action_without_overwrite_is_409() {
    let h = Harness::new().await;
    h.create("x", json!({})).await;
    let r = h.create("x", json!({})).await;
    assert_error(&r, 409, "resource already exists");
}

#[tokio::test]
async fn a_name_taken_by_another_collection_is_409_conformance() {
    let h = Harness::new().await;
    h.store
        .put(
            EntityDoc {
                collection: Collection::Packages,
                path: "guest".into(),
                name: "p".into(),
                updated: 1,
                doc: json!({}),
            },
            PutMode::Create,
        )
        .await
        .unwrap();
    let msg = "Resource by this name exists but is not in this collection.";
    assert_error(&h.create("p", json!({})).await, 409, msg);
    let r = put_exec(&h, "p?overwrite=true", "nodejs:20", "x").await;
    assert_error(&r, 409, msg);
    assert_error(&h.get(&format!("{A}/p")).await, 409, msg);
    assert_error(
        &h.call(Method::DELETE, &format!("{A}/p"), None).await,
        409,
        msg,
    );
}

#[tokio::test]
async fn update_bumps_version_merges_annotations_and_limits_and_replaces_parameters() {
    let h = Harness::new().await;
    let first = h
        .create(
            "u",
            json!({"parameters": [{"key": "a", "value": 1}, {"key": "b", "value": 2}],
                   "annotations": [{"key": "keep", "value": 1}, {"key": "drop", "value": 1}, {"key": "web-export", "value": false}],
                   "limits": {"memory": 128}}),
        )
        .await;
    let r = h
        .put(
            &format!("{A}/u?overwrite=true"),
            json!({"parameters": [{"key": "c", "value": 3}],
                   "annotations": [{"key": "web-export", "value": true}],
                   "delAnnotations": ["drop"],
                   "limits": {"timeout": 1000}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let b = &r.body;
    assert_eq!(b["version"], json!("0.0.2"));
    assert_eq!(b["exec"]["code"], json!("function main(){}"));
    assert_eq!(b["parameters"], json!([{"key": "c", "value": 3}]));
    assert_eq!(
        b["limits"],
        json!({"timeout": 1000, "memory": 128, "logs": 10, "concurrency": 1})
    );
    assert_eq!(
        b["annotations"],
        json!([{"key": "keep", "value": 1}, {"key": "web-export", "value": true},
               {"key": "provide-api-key", "value": false}, {"key": "exec", "value": "nodejs:20"}])
    );
    assert!(b["updated"].as_u64() > first.body["updated"].as_u64());
    // An update without parameters keeps them; an explicit version is taken as given.
    let r = h
        .put(
            &format!("{A}/u?overwrite=true"),
            json!({"version": "2.0.0"}),
        )
        .await;
    assert_eq!(r.body["parameters"], json!([{"key": "c", "value": 3}]));
    assert_eq!(r.body["version"], json!("2.0.0"));
}

#[tokio::test]
async fn overwrite_true_on_a_missing_action_creates_it() {
    let h = Harness::new().await;
    let r = put_exec(
        &h,
        "n?overwrite=true",
        "python:default",
        "def main(a): return a",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["exec"]["kind"], json!("python:3"));
    assert_eq!(r.body["version"], json!("0.0.1"));
}

/// A store where every read returns a document one tick older than stored, as if another
/// writer had replaced it right after the read.
#[derive(Debug)]
struct RacingStore(Arc<MemoryStore>);

#[async_trait]
impl EntityStore for RacingStore {
    async fn get(&self, path: &str, name: &str) -> Result<Option<EntityDoc>, StoreError> {
        let doc = self.0.get(path, name).await?;
        Ok(doc.map(|d| EntityDoc {
            updated: d.updated - 1,
            ..d
        }))
    }
    async fn put(&self, doc: EntityDoc, mode: PutMode) -> Result<(), StoreError> {
        self.0.put(doc, mode).await
    }
    async fn delete(&self, path: &str, name: &str) -> Result<Option<EntityDoc>, StoreError> {
        self.0.delete(path, name).await
    }
    async fn list(
        &self,
        c: Collection,
        scope: &ListScope,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<EntityDoc>, StoreError> {
        self.0.list(c, scope, skip, limit).await
    }
    async fn count(&self, c: Collection, scope: &ListScope) -> Result<usize, StoreError> {
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
async fn an_update_racing_another_writer_is_409_concurrent_modification() {
    let h = Harness::builder()
        .entities(|s| Arc::new(RacingStore(s)))
        .build()
        .await;
    assert_eq!(h.create("race", json!({})).await.status, StatusCode::OK);
    let r = h
        .put(
            &format!("{A}/race?overwrite=true"),
            json!({"version": "1.0.0"}),
        )
        .await;
    assert_error(&r, 409, "Concurrent modification to resource detected.");
    let stored = h.store.get("guest", "race").await.unwrap().unwrap();
    assert_eq!(stored.doc["version"], json!("0.0.1"));
}

#[tokio::test]
async fn get_returns_the_action_and_omits_code_with_code_false() {
    let h = Harness::new().await;
    let created = h.create("g", json!({})).await.body;
    let r = h.get(&format!("{A}/g")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, created);
    let r = h.get(&format!("{A}/g?code=false")).await;
    assert_eq!(
        r.body["exec"],
        json!({"kind": "nodejs:20", "binary": false})
    );
    let r = h.get(&format!("{A}/g?code=maybe")).await;
    assert_error(
        &r,
        400,
        "The query parameter 'code' was malformed:\n'maybe' is not a valid Boolean value",
    );
}

#[tokio::test]
async fn get_of_a_missing_action_is_404() {
    let h = Harness::new().await;
    assert_error(
        &h.get(&format!("{A}/nothing")).await,
        404,
        "The requested resource does not exist.",
    );
}

#[tokio::test]
async fn delete_answers_the_deleted_action_and_then_404() {
    let h = Harness::new().await;
    let created = h.create("d", json!({})).await.body;
    let r = h.call(Method::DELETE, &format!("{A}/d"), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, created);
    assert!(h.store.get("guest", "d").await.unwrap().is_none());
    let r = h.call(Method::DELETE, &format!("{A}/d"), None).await;
    assert_error(&r, 404, "The requested resource does not exist.");
}

#[tokio::test]
async fn list_returns_summaries_newest_first_with_skip_limit_and_count() {
    let h = Harness::new().await;
    for n in ["one", "two", "three"] {
        h.create(n, json!({"parameters": [{"key": "p", "value": 1}]}))
            .await;
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let r = h.get(A).await;
    assert_eq!(r.status, StatusCode::OK);
    let names = names_of(&r.body);
    assert_eq!(names, ["three", "two", "one"]);
    let item = &r.body[0];
    assert_eq!(item["exec"], json!({"binary": false}));
    assert!(item.get("parameters").is_none());
    assert_eq!(
        item["annotations"][1],
        json!({"key": "exec", "value": "nodejs:20"})
    );
    let r = h.get(&format!("{A}?limit=1&skip=1")).await;
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    assert_eq!(r.body[0]["name"], json!("two"));
    let r = h.get(&format!("{A}?count=true")).await;
    assert_eq!(r.body, json!({"actions": 3}));
    let r = h.get(&format!("{A}/?limit=2")).await;
    assert_eq!(r.body.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn list_limit_out_of_range_is_400_with_openwhisk_message() {
    let h = Harness::new().await;
    let r = h.get(&format!("{A}?limit=201")).await;
    assert_error(
        &r,
        400,
        "The query parameter 'limit' was malformed:\nThe value '201' is not in the range of 0 to 200 for actions.",
    );
}

#[tokio::test]
async fn package_paths_store_under_ns_pkg_and_list_with_a_trailing_slash() {
    let h = Harness::new().await;
    h.put("/api/v1/namespaces/_/packages/pkg", json!({})).await;
    let r = h.create("pkg/inner", json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["namespace"], json!("guest/pkg"));
    h.create("outer", json!({})).await;
    assert!(h.store.get("guest/pkg", "inner").await.unwrap().is_some());
    let r = h.get(&format!("{A}/pkg/")).await;
    assert_eq!(r.status, StatusCode::OK);
    let names = names_of(&r.body);
    assert_eq!(names, ["inner"]);
    assert_eq!(h.get(A).await.body.as_array().unwrap().len(), 2);
    assert_eq!(
        h.get(&format!("{A}/pkg/inner")).await.body["name"],
        json!("inner")
    );
    assert_eq!(
        h.call(Method::DELETE, &format!("{A}/pkg/inner"), None)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        h.get(&format!("{A}/a/b/c")).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn malformed_json_and_wrong_field_types_are_400() {
    let h = Harness::new().await;
    let r = h.text(Method::PUT, &format!("{A}/m"), "{not json").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let msg = r.body["error"].as_str().unwrap();
    assert!(
        msg.starts_with("The request content was malformed:\n"),
        "{msg}"
    );
    assert_eq!(
        r.body["code"],
        json!(r.headers["x-request-id"].to_str().unwrap())
    );
    let r = h
        .put(
            &format!("{A}/m"),
            json!({"exec": {"kind": "nodejs:20", "code": "x"}, "limits": {"memory": "big"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body["error"].as_str().unwrap().contains("invalid type"),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn illegal_and_too_long_names_are_400() {
    let h = Harness::new().await;
    let r = h.create("bad$name", json!({})).await;
    assert_error(
        &r,
        400,
        "The name of the entity contains illegal characters.",
    );
    let long = "a".repeat(257);
    let r = h.create(&long, json!({})).await;
    assert_error(&r, 400, "name longer than allowed: 257 > 256.");
    let r = h.create("a%20b", json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["name"], json!("a b"));
}

#[tokio::test]
async fn unknown_kind_is_400_listing_the_valid_values() {
    let h = Harness::new().await;
    let r = put_exec(&h, "k", "cobol:1", "x").await;
    assert_error(
        &r,
        400,
        "The specified runtime 'cobol:1' is not supported by this platform. Valid values are: nodejs:20, python:3, nodejs:default, python:default.",
    );
}

#[tokio::test]
async fn out_of_range_limits_are_400_with_the_requirement_text() {
    let h = Harness::new().await;
    let r = h.create("l", json!({"limits": {"memory": 1024}})).await;
    assert_error(
        &r,
        400,
        "requirement failed: memory size 1024 MB exceeds allowed threshold of 512 MB",
    );
    h.create("l", json!({})).await;
    let r = h
        .put(
            &format!("{A}/l?overwrite=true"),
            json!({"limits": {"timeout": 50}}),
        )
        .await;
    assert_error(
        &r,
        400,
        "requirement failed: duration 50 milliseconds below allowed threshold of 100 milliseconds",
    );
}

#[tokio::test]
async fn an_invalid_version_is_400() {
    let h = Harness::new().await;
    let r = h.create("v", json!({"version": "1.0"})).await;
    assert_error(
        &r,
        400,
        "The request content was malformed:\n'1.0' is not a valid semantic version",
    );
}

#[tokio::test]
async fn a_zip_archive_is_stored_as_binary_code() {
    let h = Harness::new().await;
    let code = zip_of(&[("index.js", "exports.main = () => ({})"), ("lib/x.js", "")]);
    let r = h
        .put(
            &format!("{A}/z"),
            json!({"exec": {"kind": "nodejs:default", "code": code, "main": "main"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["exec"]["binary"], json!(true));
    assert_eq!(r.body["exec"]["main"], json!("main"));
}

#[tokio::test]
async fn binary_code_that_is_not_a_zip_is_400() {
    let h = Harness::new().await;
    let r = put_exec(&h, "z", "nodejs:20", "aGVsbG8gd29ybGQh").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let msg = r.body["error"].as_str().unwrap();
    assert!(
        msg.starts_with("The action's code is not a valid zip archive: "),
        "{msg}"
    );
}

#[tokio::test]
async fn a_zip_entry_escaping_the_directory_is_400() {
    let h = Harness::new().await;
    for evil in ["../evil.js", "/etc/evil.js"] {
        let code = zip_of(&[("index.js", "x"), (evil, "x")]);
        let r = put_exec(&h, "z", "nodejs:20", &code).await;
        assert_error(
            &r,
            400,
            &format!("The action's zip archive contains an entry with an unsafe path: '{evil}'."),
        );
    }
}

#[tokio::test]
async fn exec_and_parameters_over_their_limits_are_413() {
    let config = ApiConfig {
        max_code_bytes: 10,
        max_parameter_bytes: 20,
        ..ApiConfig::default()
    };
    let h = Harness::with_config(config).await;
    let r = put_exec(&h, "big", "nodejs:20", "function main(){}").await;
    assert_error(&r, 413, "exec larger than allowed: 17 > 10 bytes.");
    for field in ["parameters", "annotations"] {
        let body = json!({"exec": {"kind": "nodejs:20", "code": "x"},
                          field: [{"key": "k", "value": "0123456789012345678901"}]});
        let r = h.put(&format!("{A}/big"), body).await;
        assert_error(
            &r,
            413,
            &format!("{field} larger than allowed: 25 > 20 bytes."),
        );
    }
}

#[tokio::test]
async fn a_request_body_over_the_entity_limit_is_413() {
    let config = ApiConfig {
        max_code_bytes: 10,
        max_parameter_bytes: 10,
        ..ApiConfig::default()
    };
    let h = Harness::with_config(config).await;
    let body = format!(
        "{{\"exec\":{{\"kind\":\"nodejs:20\",\"code\":\"{}\"}}}}",
        "x".repeat(70_000)
    );
    let r = h.text(Method::PUT, &format!("{A}/big"), &body).await;
    let len = body.len();
    assert_error(
        &r,
        413,
        &format!("Request larger than allowed: {len} > 65566 bytes."),
    );
}

#[tokio::test]
async fn a_corrupt_stored_action_is_500_without_details() {
    let h = Harness::new().await;
    h.store
        .put(
            EntityDoc {
                collection: Collection::Actions,
                path: "guest".into(),
                name: "broken".into(),
                updated: 1,
                doc: json!({"name": 5}),
            },
            PutMode::Create,
        )
        .await
        .unwrap();
    assert_error(
        &h.get(&format!("{A}/broken")).await,
        500,
        "Internal Server Error",
    );
    assert_error(
        &h.post(&format!("{A}/broken"), json!({})).await,
        500,
        "Internal Server Error",
    );
}
