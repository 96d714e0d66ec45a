//! Activations: get, logs, result, list with filters, and their 400/404s.

use super::*;
use edgewhisk_entity::ActivationId;
use edgewhisk_entity::{Activation, ActivationResponse, Parameters, Status};
use edgewhisk_store::ActivationStore;

const ACT: &str = "/api/v1/namespaces/_/activations";

fn stored(id: &str, name: &str, start: u64, status: Status) -> Activation {
    let mut annotations = Parameters::default();
    annotations.set("path", json!(format!("guest/{name}")));
    annotations.set("kind", json!("nodejs:20"));
    Activation {
        namespace: "guest".into(),
        name: name.into(),
        version: "0.0.1".into(),
        subject: "guest".into(),
        activation_id: ActivationId::parse(id).unwrap(),
        cause: None,
        start,
        end: start + 10,
        duration: None,
        response: match status {
            Status::Success => ActivationResponse::success(json!({"n": start})),
            other => ActivationResponse::error(other, "boom"),
        },
        logs: vec!["2024-01-01T00:00:00.000000000Z stdout: hello".into()],
        annotations,
        publish: false,
    }
}

const ID1: &str = "00000000000000000000000000000001";
const ID2: &str = "00000000000000000000000000000002";
const ID3: &str = "00000000000000000000000000000003";

async fn seeded() -> Harness {
    let h = Harness::new().await;
    h.store
        .store(stored(ID1, "a", 1000, Status::Success))
        .await
        .unwrap();
    h.store
        .store(stored(ID2, "b", 2000, Status::ApplicationError))
        .await
        .unwrap();
    h.store
        .store(stored(ID3, "a", 3000, Status::Success))
        .await
        .unwrap();
    h
}

#[tokio::test]
async fn get_answers_the_extended_record() {
    let h = seeded().await;
    let r = h.get(&format!("{ACT}/{ID2}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["activationId"], json!(ID2));
    assert_eq!(r.body["duration"], json!(10));
    assert_eq!(
        r.body["response"],
        json!({"result": {"error": "boom"}, "success": false, "status": "application error"})
    );
    assert_eq!(
        r.body["logs"][0],
        json!("2024-01-01T00:00:00.000000000Z stdout: hello")
    );
}

#[tokio::test]
async fn logs_and_result_routes_answer_their_parts() {
    let h = seeded().await;
    let r = h.get(&format!("{ACT}/{ID1}/logs")).await;
    assert_eq!(
        r.body,
        json!({"logs": ["2024-01-01T00:00:00.000000000Z stdout: hello"]})
    );
    let r = h.get(&format!("{ACT}/{ID1}/result")).await;
    assert_eq!(
        r.body,
        json!({"result": {"n": 1000}, "success": true, "status": "success"})
    );
}

#[tokio::test]
async fn a_bad_activation_id_is_400_and_a_missing_one_404() {
    let h = seeded().await;
    assert_error(
        &h.get(&format!("{ACT}/xyz")).await,
        400,
        "activation id length is 3 but must be 32.",
    );
    assert_error(
        &h.get(&format!("{ACT}/{}", "g".repeat(32))).await,
        400,
        "The activation id is not valid.",
    );
    assert_error(
        &h.get(&format!("{ACT}/{}", "f".repeat(32))).await,
        404,
        "The requested resource does not exist.",
    );
    assert_eq!(
        h.get(&format!("{ACT}/{}/logs", "f".repeat(32)))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn another_namespaces_activation_is_403() {
    let h = seeded().await;
    let r = h
        .get(&format!("/api/v1/namespaces/other/activations/{ID1}"))
        .await;
    assert_error(
        &r,
        403,
        &format!("The supplied authentication is not authorized to access 'other/{ID1}'."),
    );
}

#[tokio::test]
async fn list_answers_summaries_newest_first() {
    let h = seeded().await;
    let r = h.get(ACT).await;
    assert_eq!(r.status, StatusCode::OK);
    let ids: Vec<&str> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["activationId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [ID3, ID2, ID1]);
    assert_eq!(r.body[1]["statusCode"], json!(1));
    assert!(r.body[0].get("response").is_none());
    assert_eq!(
        r.body[0]["annotations"][1],
        json!({"key": "kind", "value": "nodejs:20"})
    );
}

#[tokio::test]
async fn list_filters_by_name_since_upto_and_pages() {
    let h = seeded().await;
    let ids = |r: &Resp| -> Vec<String> {
        r.body
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["activationId"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&h.get(&format!("{ACT}?name=a")).await), [ID3, ID1]);
    assert_eq!(
        ids(&h.get(&format!("{ACT}?since=1500&upto=2500")).await),
        [ID2]
    );
    assert_eq!(ids(&h.get(&format!("{ACT}?limit=1&skip=1")).await), [ID2]);
}

#[tokio::test]
async fn list_with_docs_answers_full_records_and_count_a_number() {
    let h = seeded().await;
    let r = h.get(&format!("{ACT}?docs=true&limit=1")).await;
    assert_eq!(r.body[0]["response"]["status"], json!("success"));
    assert_eq!(r.body[0]["logs"].as_array().unwrap().len(), 1);
    let r = h.get(&format!("{ACT}?count=true&name=a")).await;
    assert_eq!(r.body, json!({"activations": 2}));
}

#[tokio::test]
async fn list_refuses_count_with_docs_bad_names_bad_epochs_and_limits() {
    let h = seeded().await;
    assert_error(
        &h.get(&format!("{ACT}?count=true&docs=true")).await,
        400,
        "The parameter 'docs' is not permitted with 'count'.",
    );
    assert_error(
        &h.get(&format!("{ACT}?name=a/b/c")).await,
        400,
        "The query parameter 'name' was malformed:\nParameter may be a 'simple' name or 'package-name/simple' name: a/b/c",
    );
    assert_error(
        &h.get(&format!("{ACT}?since=yesterday")).await,
        400,
        "The query parameter 'since' was malformed:\nParameter is not a valid value for epoch seconds: yesterday",
    );
    assert_error(
        &h.get(&format!("{ACT}?limit=500")).await,
        400,
        "The query parameter 'limit' was malformed:\nThe value '500' is not in the range of 0 to 200 for activations.",
    );
}
