//! `edgewhisk serve`'s wiring started in-process through the library ([`Server::start`]), the
//! same code the binary runs: a node action is created and invoked over HTTP with the guest
//! key the first start provisions, and after a shutdown a restart on the same data directory
//! still finds the action.

use edgewhisk::config::{Config, Isolation};
use edgewhisk::serve::Server;
use edgewhisk_entity::identity::GUEST_AUTH;
use serde_json::{Value, json};
use std::path::Path;

/// The Raspberry Pi study's hello action.
const HELLO: &str = "function main(params) {\n  return { payload: 'Hello, ' + (params.name || 'World') + '!' };\n}\n";

/// A loopback server with process isolation on `data_dir`, throttles raised for a test.
fn config(data_dir: &Path) -> Config {
    let mut config = Config::default();
    config.server.listen = ([127, 0, 0, 1], 0).into();
    config.server.data_dir = data_dir.to_owned();
    config.server.isolation = Isolation::Process;
    config.server.shutdown_grace_ms = 2000;
    config.api.invocations_per_minute = 100_000;
    config.api.concurrent_invocations = 1000;
    config
}

/// A request to `path` under the guest namespace of `server`, with the guest key.
fn guest(
    http: &reqwest::Client,
    method: reqwest::Method,
    server: &Server,
    path: &str,
) -> reqwest::RequestBuilder {
    let (uuid, key) = GUEST_AUTH.split_once(':').expect("uuid:key");
    http.request(
        method,
        format!("{}/api/v1/namespaces/guest/{path}", server.url()),
    )
    .basic_auth(uuid, Some(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn serve_runs_in_process_invokes_a_node_action_and_keeps_it_across_a_restart() {
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = dir.path().join("data");
        let http = reqwest::Client::new();

        let server = Server::start(config(&data_dir))
            .await
            .expect("server starts");
        assert!(server.addr().ip().is_loopback());
        assert_ne!(server.addr().port(), 0, "the real port is reported");
        let put = guest(&http, reqwest::Method::PUT, &server, "actions/hello")
            .json(&json!({"exec": {"kind": "nodejs:default", "code": HELLO}}))
            .send()
            .await
            .expect("create the action");
        assert_eq!(
            put.status(),
            200,
            "create: {}",
            put.text().await.unwrap_or_default()
        );

        let invoke = guest(
            &http,
            reqwest::Method::POST,
            &server,
            "actions/hello?blocking=true&result=true",
        )
        .json(&json!({"name": "in-process"}))
        .send()
        .await
        .expect("invoke the action");
        assert_eq!(invoke.status(), 200);
        let result: Value = invoke.json().await.expect("a JSON result");
        assert_eq!(result, json!({"payload": "Hello, in-process!"}));
        server.shutdown().await.expect("a clean shutdown");

        let server = Server::start(config(&data_dir))
            .await
            .expect("server restarts");
        let get = guest(&http, reqwest::Method::GET, &server, "actions/hello")
            .send()
            .await
            .expect("get the action");
        assert_eq!(get.status(), 200, "the action survives a restart");
        let action: Value = get.json().await.expect("the action as JSON");
        assert_eq!(action["exec"]["code"], HELLO);
        server.shutdown().await.expect("a clean shutdown");
    }
}
