//! End-to-end tests of keys and tenants against the real `edgewhisk serve` binary: entitlement
//! of sequence components checked when the sequence runs, no key of one namespace reaching
//! another namespace's code, the `whisk.system` key staying deleted across restarts, feeds
//! keeping no usable secret, namespace throttles on the web path after a restart, namespace
//! names checked by `edgewhisk admin`, and a private `.wskprops`.

mod support;

#[cfg(test)]
mod tenants {
    use crate::support::admin::{Auth, admin, admin_output, namespace_url, send_as};
    use crate::support::api::{Reply, http, send, send_raw};
    use crate::support::cli::wsk_with;
    use crate::support::{GUEST_KEY, GUEST_SECRET, ServerGuard, spawn_server};
    use serde_json::{Value, json};

    /// Reports the secret parameter it got and the key it was given.
    const LEAK: &str = "function main(p) {\n  return {secret: p.secret || null, key: process.env.__OW_API_KEY || null};\n}\n";

    /// OpenWhisk's well-known `whisk.system` key.
    const SYSTEM_KEY: &str = "789c46b1-71f6-4ed5-8c54-816aa4f8c502:abczO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP";

    /// The secret parameter of alice's shared package.
    const SECRET: &str = "package-secret-4711";

    /// alice, with the shared package `pub` (parameter `secret`) holding `leak` and `keyed`
    /// (`provide-api-key: true`), both running [`LEAK`].
    async fn alice_with_shared_package(s: &ServerGuard) -> Auth {
        let alice = Auth::parse(&admin(s, &["user", "create", "alice"]));
        let pkg = json!({"publish": true, "parameters": [{"key": "secret", "value": SECRET}]});
        send_as(
            &alice,
            http().put(namespace_url(s, "_", "packages/pub")).json(&pkg),
        )
        .await
        .expect_status(200, "create alice's shared package");
        for (name, provide) in [("leak", false), ("keyed", true)] {
            let body = json!({"exec": {"kind": "nodejs:20", "code": LEAK},
                              "annotations": [{"key": "provide-api-key", "value": provide}]});
            send_as(
                &alice,
                http()
                    .put(namespace_url(s, "_", &format!("actions/pub/{name}")))
                    .json(&body),
            )
            .await
            .expect_status(200, &format!("create pub/{name}"));
        }
        alice
    }

    /// The guest's binding `viaBinding` of alice's `pub`.
    async fn bind_alices_package(s: &ServerGuard) {
        send(
            http()
                .put(namespace_url(s, "_", "packages/viaBinding"))
                .json(&json!({"binding": {"namespace": "alice", "name": "pub"}})),
        )
        .await
        .expect_status(200, "bind alice's package");
    }

    async fn put_sequence(s: &ServerGuard, name: &str, components: &[&str]) {
        let body = json!({"exec": {"kind": "sequence", "components": components}});
        send(
            http()
                .put(namespace_url(
                    s,
                    "_",
                    &format!("actions/{name}?overwrite=true"),
                ))
                .json(&body),
        )
        .await
        .expect_status(200, &format!("create sequence {name}"));
    }

    /// Blocking invoke of the guest's `name`.
    async fn run(s: &ServerGuard, name: &str) -> Reply {
        send(
            http()
                .post(namespace_url(
                    s,
                    "_",
                    &format!("actions/{name}?blocking=true"),
                ))
                .json(&json!({})),
        )
        .await
    }

    #[tokio::test]
    async fn a_sequence_stops_at_a_component_whose_package_was_unshared_since() {
        let s = spawn_server(None);
        let alice = alice_with_shared_package(&s).await;
        put_sequence(&s, "direct", &["/alice/pub/leak"]).await;
        bind_alices_package(&s).await;
        put_sequence(&s, "bound", &["/guest/viaBinding/leak"]).await;
        for name in ["direct", "bound"] {
            let r = run(&s, name).await;
            r.expect_status(200, &format!("{name} while shared"));
            assert_eq!(r.body["response"]["result"]["secret"], json!(SECRET));
        }

        let unshared =
            json!({"publish": false, "parameters": [{"key": "secret", "value": SECRET}]});
        send_as(
            &alice,
            http()
                .put(namespace_url(&s, "_", "packages/pub?overwrite=true"))
                .json(&unshared),
        )
        .await
        .expect_status(200, "unshare alice's package");

        for name in ["direct", "bound"] {
            let r = run(&s, name).await;
            assert!(
                !r.text.contains(SECRET),
                "{name} still reaches the unshared package: {}",
                r.text
            );
            assert_eq!(r.status.as_u16(), 502, "{name}: {}", r.text);
            assert_eq!(
                r.body["response"]["status"],
                json!("application error"),
                "{name}: {}",
                r.text
            );
            let error = r.body["response"]["result"]["error"]
                .as_str()
                .unwrap_or_default();
            assert!(error.contains("not authorized"), "{name}: {error}");
        }
    }

    /// The `key` a blocking invoke of `path` (under `/api/v1/namespaces/`) as `auth` saw.
    async fn key_seen(s: &ServerGuard, auth: &Auth, path: &str) -> Value {
        let r = send_as(
            auth,
            http()
                .post(s.url(&format!(
                    "/api/v1/namespaces/{path}?blocking=true&result=true"
                )))
                .json(&json!({})),
        )
        .await;
        r.expect_status(200, &format!("invoke {path}"));
        r.body["key"].clone()
    }

    #[tokio::test]
    async fn code_of_another_namespace_never_gets_the_callers_key() {
        let s = spawn_server(None);
        let alice = alice_with_shared_package(&s).await;
        let guest = Auth::parse(GUEST_KEY);
        bind_alices_package(&s).await;
        put_sequence(&s, "keyedSeq", &["/alice/pub/keyed"]).await;
        let mine = json!({"exec": {"kind": "nodejs:20", "code": LEAK},
                          "annotations": [{"key": "provide-api-key", "value": true}]});
        send(
            http()
                .put(namespace_url(&s, "_", "actions/mine"))
                .json(&mine),
        )
        .await
        .expect_status(200, "create the guest's own keyed action");

        for path in [
            "alice/actions/pub/keyed",
            "guest/actions/viaBinding/keyed",
            "_/actions/keyedSeq",
        ] {
            assert_eq!(
                key_seen(&s, &guest, path).await,
                Value::Null,
                "{path} got the guest's key"
            );
        }
        // The owner's own code still gets the owner's key, as `provide-api-key` asks.
        assert_eq!(
            key_seen(&s, &guest, "_/actions/mine").await,
            json!(GUEST_KEY)
        );
        assert_eq!(
            key_seen(&s, &alice, "_/actions/pub/keyed").await,
            json!(alice.auth_string())
        );
    }

    #[tokio::test]
    async fn a_web_action_does_not_see_the_callers_key_in_its_headers() {
        let s = spawn_server(None);
        let code = "function main(p) { return {headers: p.__ow_headers}; }";
        let body = json!({"exec": {"kind": "nodejs:20", "code": code},
                          "annotations": [{"key": "web-export", "value": true},
                                          {"key": "require-whisk-auth", "value": true}]});
        send(
            http()
                .put(namespace_url(&s, "_", "actions/hdrs"))
                .json(&body),
        )
        .await
        .expect_status(200, "create the web action");
        let web = s.url("/api/v1/web/guest/default/hdrs.json");
        send_raw(http().get(&web))
            .await
            .expect_status(401, "require-whisk-auth without credentials");
        let r = send(http().get(&web).header("x-probe", "1")).await;
        r.expect_status(200, "authenticated web call");
        let headers = r.body["headers"].as_object().expect("__ow_headers");
        assert_eq!(headers.get("x-probe"), Some(&json!("1")), "{}", r.text);
        assert!(
            headers.get("authorization").is_none() && !r.text.contains(GUEST_SECRET),
            "the caller's key reached the action: {}",
            r.text
        );
        assert!(!r.text.contains("MjNiYzQ2YjEt"), "base64 key: {}", r.text);
    }

    #[tokio::test]
    async fn a_deleted_system_key_stays_deleted_across_a_restart() {
        let mut s = spawn_server(None);
        let system = Auth::parse(SYSTEM_KEY);
        send_as(&system, http().get(namespace_url(&s, "_", "actions")))
            .await
            .expect_status(200, "the system key works on first start");
        s.stop();
        admin(&s, &["user", "delete", "whisk.system"]);
        s.restart();
        send_as(&system, http().get(namespace_url(&s, "_", "actions")))
            .await
            .expect_status(401, "the system key is not provisioned again");
        // The catalog itself is still there for everybody.
        let r = send(
            http()
                .post(namespace_url(
                    &s,
                    "whisk.system",
                    "actions/utils/echo?blocking=true&result=true",
                ))
                .json(&json!({"a": 1})),
        )
        .await;
        r.expect_status(200, "the catalog after the restart");
        assert_eq!(r.body, json!({"a": 1}));
    }

    /// The records of the guest's `action`.
    async fn activations_of(s: &ServerGuard, action: &str) -> usize {
        let r = send(http().get(namespace_url(
            s,
            "_",
            &format!("activations?name={action}&limit=200"),
        )))
        .await;
        r.expect_status(200, "list activations");
        r.body.as_array().map_or(0, Vec::len)
    }

    /// Waits (bounded) until the guest's `action` has more than `n` records.
    async fn wait_for_more(s: &ServerGuard, action: &str, n: usize) -> usize {
        for _ in 0..75 {
            let seen = activations_of(s, action).await;
            if seen > n {
                return seen;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        activations_of(s, action).await
    }

    /// Whether any file of the data directory's store holds `needle`.
    fn store_holds(s: &ServerGuard, needle: &str) -> bool {
        let files = std::fs::read_dir(s.data_dir()).expect("read the data directory");
        files.flatten().any(|f| {
            let name = f.file_name().to_string_lossy().into_owned();
            name.starts_with("edgewhisk.db")
                && std::fs::read(f.path())
                    .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
        })
    }

    #[tokio::test]
    async fn a_feed_keeps_no_usable_key_and_fires_again_after_a_restart() {
        let mut s = spawn_server(None);
        let echo = json!({"exec": {"kind": "nodejs:20", "code": "function main(p) { return p; }"}});
        send(
            http()
                .put(namespace_url(&s, "_", "actions/echo"))
                .json(&echo),
        )
        .await
        .expect_status(200, "create echo");
        send(
            http()
                .put(namespace_url(&s, "_", "triggers/tick"))
                .json(&json!({})),
        )
        .await
        .expect_status(200, "create trigger");
        let rule = json!({"trigger": "/_/tick", "action": "/_/echo"});
        send(http().put(namespace_url(&s, "_", "rules/r")).json(&rule))
            .await
            .expect_status(200, "create rule");
        let feed = json!({"lifecycleEvent": "CREATE", "triggerName": "/_/tick",
                          "authKey": GUEST_KEY, "seconds": 1});
        let r = send(
            http()
                .post(namespace_url(
                    &s,
                    "whisk.system",
                    "actions/alarms/interval?blocking=true",
                ))
                .json(&feed),
        )
        .await;
        r.expect_status(200, "create the feed");
        assert!(wait_for_more(&s, "echo", 0).await >= 1, "no fire");

        s.stop();
        assert!(
            !store_holds(&s, GUEST_SECRET),
            "the store holds the guest's secret"
        );
        s.restart();
        let before = activations_of(&s, "echo").await;
        assert!(
            wait_for_more(&s, "echo", before).await > before,
            "no fire after the restart: {}",
            s.log_tail()
        );
    }

    #[tokio::test]
    async fn a_namespace_limit_applies_to_its_web_actions_right_after_a_restart() {
        let mut s = spawn_server(None);
        let body = json!({"exec": {"kind": "nodejs:20", "code": "function main() { return {ok: true}; }"},
                          "annotations": [{"key": "web-export", "value": true}]});
        send(
            http()
                .put(namespace_url(&s, "_", "actions/open"))
                .json(&body),
        )
        .await
        .expect_status(200, "create the web action");
        s.stop();
        admin(
            &s,
            &["limits", "set", "guest", "--invocationsPerMinute", "1"],
        );
        s.restart();
        // Nobody authenticates as guest: only anonymous web calls, which count against it.
        let web = s.url("/api/v1/web/guest/default/open.json");
        let mut statuses = Vec::new();
        for _ in 0..3 {
            statuses.push(send_raw(http().get(&web)).await.status.as_u16());
        }
        assert!(statuses.contains(&429), "{statuses:?}");
        assert!(statuses.contains(&200), "{statuses:?}");
    }

    #[tokio::test]
    async fn admin_refuses_namespaces_that_are_not_entity_names() {
        let s = spawn_server(None);
        for ns in ["bob/pkg", "_", "-bob", ""] {
            let out = admin_output(&s, &["user", "create", "bobby", "-n", ns]);
            assert!(!out.status.success(), "namespace {ns:?} was accepted");
        }
        let out = admin_output(&s, &["user", "create", "bob/pkg"]);
        assert!(!out.status.success(), "a subject-named namespace bob/pkg");
        // Nothing was created on the way.
        for subject in ["bobby", "bob/pkg"] {
            let out = admin_output(&s, &["user", "get", subject]);
            assert!(!out.status.success(), "subject {subject} exists");
        }
        let carol = Auth::parse(&admin(&s, &["user", "create", "carol", "-n", "carol.team"]));
        send_as(&carol, http().get(namespace_url(&s, "_", "actions")))
            .await
            .expect_status(200, "a valid namespace works");
    }

    #[test]
    fn property_set_writes_the_properties_file_for_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("a temporary directory");
        let props = dir.path().join("wskprops");
        let mode = |p: &std::path::Path| {
            std::fs::metadata(p)
                .expect("the file exists")
                .permissions()
                .mode()
                & 0o777
        };
        let set = |args: &[&str]| {
            let (code, _, stderr) = wsk_with(&props, &[&["property", "set"], args].concat());
            assert_eq!(code, 0, "{stderr}");
        };
        set(&["--auth", GUEST_KEY]);
        assert_eq!(mode(&props), 0o600, "a new file");
        // A file an earlier version left world-readable is made private on the next write.
        std::fs::set_permissions(&props, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        set(&["--apihost", "http://127.0.0.1:3233"]);
        assert_eq!(mode(&props), 0o600, "an existing file");
        let text = std::fs::read_to_string(&props).expect("read the file");
        assert!(
            text.contains(GUEST_KEY) && text.contains("APIHOST=http://127.0.0.1:3233"),
            "{text}"
        );
    }
}
