//! End-to-end tests of `edgewhisk admin` against the real `edgewhisk serve` binary running on
//! the same data directory: created keys, namespace isolation, shared packages, regenerated
//! keys and per-namespace throttles (OpenWhisk `docs/rest_api.md` for authentication and
//! `docs/reference.md` for the per-namespace limits; `docs/compat.md` for `edgewhisk admin`).

mod support;

#[cfg(test)]
mod admin {
    use crate::support::admin::{Auth, admin, namespace_url, send_as};
    use crate::support::api::{create_action, http, send};
    use crate::support::{ServerGuard, spawn_server};
    use serde_json::{Value, json};
    use std::time::Duration;

    /// A slow action: answers after 1.5 s, so its activation stays in flight meanwhile.
    const SLOW: &str = "function main() {\n  return new Promise(r => setTimeout(() => r({done: true}), 1500));\n}\n";

    /// How long the server may keep serving a cached key or limit (documented bound: 5 s).
    const CACHE_BOUND: Duration = Duration::from_secs(5);

    /// Parses a key `admin` printed; it is 64 characters long.
    fn parse_key(s: &str) -> Auth {
        let auth = Auth::parse(s);
        assert_eq!(auth.key.len(), 64, "key length of {s}");
        auth
    }

    fn create_user(s: &ServerGuard, subject: &str) -> Auth {
        parse_key(&admin(s, &["user", "create", subject]))
    }

    async fn create_action_as(s: &ServerGuard, auth: &Auth, name: &str, code: &str) {
        let body = json!({"exec": {"kind": "nodejs:20", "code": code}});
        let r = send_as(
            auth,
            http()
                .put(namespace_url(s, "_", &format!("actions/{name}")))
                .json(&body),
        )
        .await;
        r.expect_status(200, &format!("create {name}"));
    }

    fn forbidden(what: &str) -> Value {
        json!(format!(
            "The supplied authentication is not authorized to access '{what}'."
        ))
    }

    #[tokio::test]
    async fn a_created_user_works_and_namespaces_are_isolated_both_ways() {
        let s = spawn_server(None);
        let alice = create_user(&s, "alice");
        let r = send_as(&alice, http().get(s.url("/api/v1/namespaces"))).await;
        r.expect_status(200, "alice lists her namespaces");
        assert_eq!(r.body, json!(["alice"]));

        create_action(&s, "hello", "nodejs:20", "function main() { return {}; }").await;
        create_action_as(&s, &alice, "secret", "function main() { return {}; }").await;

        // Alice cannot list, get or invoke in guest's namespace.
        let list = send_as(&alice, http().get(namespace_url(&s, "guest", "actions"))).await;
        list.expect_status(403, "alice lists guest's actions");
        assert_eq!(list.body["error"], forbidden("guest"));
        let get = send_as(
            &alice,
            http().get(namespace_url(&s, "guest", "actions/hello")),
        )
        .await;
        get.expect_status(403, "alice gets guest's action");
        assert_eq!(get.body["error"], forbidden("guest/hello"));
        let inv = send_as(
            &alice,
            http()
                .post(namespace_url(&s, "guest", "actions/hello?blocking=true"))
                .json(&json!({})),
        )
        .await;
        inv.expect_status(403, "alice invokes guest's action");

        // And guest cannot in alice's.
        let r = send(http().get(namespace_url(&s, "alice", "actions"))).await;
        r.expect_status(403, "guest lists alice's actions");
        let r = send(http().get(namespace_url(&s, "alice", "actions/secret"))).await;
        r.expect_status(403, "guest gets alice's action");
        let r = send(
            http()
                .post(namespace_url(&s, "alice", "actions/secret"))
                .json(&json!({})),
        )
        .await;
        r.expect_status(403, "guest invokes alice's action");

        // Alice's own action works with her key.
        let r = send_as(
            &alice,
            http()
                .post(namespace_url(
                    &s,
                    "_",
                    "actions/secret?blocking=true&result=true",
                ))
                .json(&json!({})),
        )
        .await;
        r.expect_status(200, "alice invokes her action");
    }

    #[tokio::test]
    async fn a_user_reads_a_published_package_of_another_namespace_but_not_a_private_one() {
        let s = spawn_server(None);
        let alice = create_user(&s, "alice");
        let r = send(
            http()
                .put(namespace_url(&s, "_", "packages/shared"))
                .json(&json!({"publish": true})),
        )
        .await;
        r.expect_status(200, "guest creates a shared package");
        let r = send(
            http()
                .put(namespace_url(&s, "_", "packages/private"))
                .json(&json!({})),
        )
        .await;
        r.expect_status(200, "guest creates a private package");

        let r = send_as(
            &alice,
            http().get(namespace_url(&s, "guest", "packages/shared")),
        )
        .await;
        r.expect_status(200, "alice reads guest's shared package");
        assert_eq!(r.body["name"], json!("shared"));
        let r = send_as(
            &alice,
            http().get(namespace_url(&s, "guest", "packages/private")),
        )
        .await;
        r.expect_status(403, "alice reads guest's private package");
        // The system catalog is shared with everybody.
        let r = send_as(
            &alice,
            http().get(namespace_url(&s, "whisk.system", "packages/utils")),
        )
        .await;
        r.expect_status(200, "alice reads /whisk.system/utils");
    }

    #[tokio::test]
    async fn a_regenerated_key_replaces_the_old_one_within_the_cache_bound() {
        let s = spawn_server(None);
        let old = create_user(&s, "alice");
        let r = send_as(&old, http().get(namespace_url(&s, "_", "actions"))).await;
        r.expect_status(200, "old key before regenerate");
        let fresh = parse_key(&admin(&s, &["user", "regenerate", "alice"]));
        assert_ne!(fresh.uuid, old.uuid);
        assert_ne!(fresh.key, old.key);
        // The new key is not cached yet: it works at once.
        let r = send_as(&fresh, http().get(namespace_url(&s, "_", "actions"))).await;
        r.expect_status(200, "new key right after regenerate");
        // The old one is refused no later than the documented bound.
        let deadline = tokio::time::Instant::now() + CACHE_BOUND + Duration::from_secs(2);
        loop {
            let r = send_as(&old, http().get(namespace_url(&s, "_", "actions"))).await;
            if r.status.as_u16() == 401 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "old key still accepted after the cache bound: {}",
                r.status
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        // A deleted user is refused likewise.
        admin(&s, &["user", "delete", "alice"]);
        let deadline = tokio::time::Instant::now() + CACHE_BOUND + Duration::from_secs(2);
        loop {
            let r = send_as(&fresh, http().get(namespace_url(&s, "_", "actions"))).await;
            if r.status.as_u16() == 401 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "deleted key still accepted"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        // The guest key is untouched.
        let r = send(http().get(namespace_url(&s, "_", "actions"))).await;
        r.expect_status(200, "guest after alice's deletion");
    }

    #[tokio::test]
    async fn a_deleted_guest_key_stays_deleted_across_a_restart() {
        let mut s = spawn_server(None);
        let guest_ok = send(http().get(namespace_url(&s, "_", "actions"))).await;
        guest_ok.expect_status(200, "guest works on first start");
        s.stop();
        admin(&s, &["user", "delete", "guest"]);
        s.restart();
        let refused = send(http().get(namespace_url(&s, "_", "actions"))).await;
        refused.expect_status(401, "the guest key is not provisioned again");
    }

    #[tokio::test]
    async fn a_namespace_rate_limit_answers_429_with_openwhisks_message() {
        let s = spawn_server(None);
        let alice = create_user(&s, "alice");
        admin(
            &s,
            &["limits", "set", "alice", "--invocationsPerMinute", "2"],
        );
        assert_eq!(
            admin(&s, &["limits", "get", "alice"]).trim(),
            r#"{"invocationsPerMinute":2}"#
        );
        let r = send_as(&alice, http().get(namespace_url(&s, "_", "limits"))).await;
        r.expect_status(200, "alice's limits");
        assert_eq!(r.body["invocationsPerMinute"], json!(2));
        create_action_as(&s, &alice, "fast", "function main() { return {}; }").await;
        let mut statuses = Vec::new();
        let mut last = None;
        for _ in 0..3 {
            let r = send_as(
                &alice,
                http()
                    .post(namespace_url(&s, "_", "actions/fast"))
                    .json(&json!({})),
            )
            .await;
            statuses.push(r.status.as_u16());
            last = Some(r);
        }
        // The window is a fixed wall-clock minute; three calls a few milliseconds apart fall
        // into one minute but for a chance of about 1 in 10 000.
        assert_eq!(statuses[..2], [202, 202], "statuses {statuses:?}");
        let last = last.expect("three calls");
        last.expect_status(429, "third invocation in a minute");
        assert_eq!(
            last.body["error"],
            json!("Too many requests in the last minute (count: 3, allowed: 2).")
        );
        // Guest keeps the system limits.
        create_action(&s, "fast", "nodejs:20", "function main() { return {}; }").await;
        for _ in 0..3 {
            let r = send(
                http()
                    .post(namespace_url(&s, "_", "actions/fast"))
                    .json(&json!({})),
            )
            .await;
            r.expect_status(202, "guest invocation");
        }
    }

    #[tokio::test]
    async fn a_namespace_concurrency_limit_answers_429_and_recovers_when_the_activation_ends() {
        let s = spawn_server(None);
        let alice = create_user(&s, "alice");
        admin(
            &s,
            &["limits", "set", "alice", "--concurrentInvocations", "1"],
        );
        create_action_as(&s, &alice, "slow", SLOW).await;
        let invoke = || {
            send_as(
                &alice,
                http()
                    .post(namespace_url(&s, "_", "actions/slow"))
                    .json(&json!({})),
            )
        };
        let first = invoke().await;
        first.expect_status(202, "first slow invocation");
        let id = first.body["activationId"].as_str().expect("id").to_owned();
        let second = invoke().await;
        second.expect_status(429, "second while the first runs");
        assert_eq!(
            second.body["error"],
            json!("Too many concurrent requests in flight (count: 1, allowed: 1).")
        );
        // Once the first activation's record exists, its slot is free again.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let r = send_as(
                &alice,
                http().get(namespace_url(&s, "_", &format!("activations/{id}"))),
            )
            .await;
            if r.status.as_u16() == 200 {
                assert_eq!(r.body["response"]["result"], json!({"done": true}));
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "activation {id} never finished"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let mut status = 0;
        for _ in 0..20 {
            status = invoke().await.status.as_u16();
            if status == 202 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(status, 202, "invocation after the first finished");
    }
}
