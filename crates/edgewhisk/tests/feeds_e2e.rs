//! End-to-end tests of the feeds against the real `edgewhisk serve` binary: an interval alarm
//! created with the `wsk`-style CLI fires its rule within its period and again after a
//! restart and stops when the trigger is deleted; a `once` alarm fires once; an MQTT message
//! published to a loopback mosquitto fires a rule with the message.

mod support;

use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::api::{Reply, create_action, http, send};
use support::cli::{guest_props, wsk_with};
use support::{GUEST_KEY, ServerGuard, spawn_server};

const ECHO: &str = "function main(params) { return params; }";

async fn put(s: &ServerGuard, path: &str, body: Value) -> Reply {
    send(http().put(s.ns_url(path)).json(&body)).await
}

/// The records of `action`, newest first.
async fn activations_of(s: &ServerGuard, action: &str) -> Vec<Value> {
    let url = s.ns_url(&format!("activations?name={action}&docs=true&limit=200"));
    let reply = send(http().get(url)).await;
    reply.expect_status(200, "list activations");
    reply.body.as_array().cloned().unwrap_or_default()
}

/// Waits until `action` has at least `n` records; returns how many it has.
async fn wait_for_activations(s: &ServerGuard, action: &str, n: usize, within: Duration) -> usize {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let seen = activations_of(s, action).await.len();
        if seen >= n || tokio::time::Instant::now() >= deadline {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs the CLI against `s` as the guest; exit code, stdout, stderr.
fn wsk(s: &ServerGuard, args: &[&str]) -> (i32, String, String) {
    wsk_with(&guest_props(s), args)
}

/// A trigger-to-`echo` rule named `rule`.
async fn rule(s: &ServerGuard, rule: &str, trigger: &str) {
    put(
        s,
        &format!("rules/{rule}"),
        json!({"trigger": format!("/_/{trigger}"), "action": "/_/echo"}),
    )
    .await
    .expect_status(200, "create rule");
}

/// Invokes a feed action blocking with a lifecycle event.
async fn feed(s: &ServerGuard, feed: &str, event: &str, trigger: &str, params: Value) -> Reply {
    let mut body = json!({"lifecycleEvent": event, "triggerName": format!("/_/{trigger}"),
                          "authKey": GUEST_KEY});
    let extra = params.as_object().cloned().unwrap_or_default();
    body.as_object_mut().expect("an object").extend(extra);
    let url = s.url(&format!(
        "/api/v1/namespaces/whisk.system/actions/{feed}?blocking=true"
    ));
    send(http().post(url).json(&body)).await
}

/// A mosquitto broker on a free loopback port, killed on drop.
struct Broker {
    child: Child,
    port: u16,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts mosquitto, or says why it cannot.
async fn start_broker() -> Result<Broker, String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port: {e}"))?
        .port();
    let child = Command::new("mosquitto")
        .args(["-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("mosquitto is not installed ({e}); apt-get install mosquitto"))?;
    let broker = Broker { child, port };
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(broker);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err("mosquitto did not start listening".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_interval_alarm_fires_its_rule_again_after_a_restart_until_deleted() {
        let mut s = spawn_server(None);
        create_action(&s, "echo", "nodejs:20", ECHO).await;
        let (code, stdout, stderr) = wsk(
            &s,
            &[
                "trigger",
                "create",
                "tick",
                "--feed",
                "/whisk.system/alarms/interval",
                "-p",
                "seconds",
                "2",
                "-p",
                "trigger_payload",
                r#"{"from": "alarm"}"#,
            ],
        );
        assert_eq!(code, 0, "{stderr}");
        assert!(
            stdout.contains("ok: invoked /whisk.system/alarms/interval with id"),
            "{stdout}"
        );
        assert!(stdout.contains("ok: created trigger tick"), "{stdout}");
        rule(&s, "r", "tick").await;
        assert!(wait_for_activations(&s, "echo", 1, Duration::from_secs(15)).await >= 1);
        let first = &activations_of(&s, "echo").await[0];
        assert_eq!(
            first["response"]["result"]["from"],
            json!("alarm"),
            "{first}"
        );

        s.restart();
        let before = activations_of(&s, "echo").await.len();
        assert!(
            wait_for_activations(&s, "echo", before + 1, Duration::from_secs(15)).await > before,
            "no fire after the restart: {}",
            s.log_tail()
        );

        let (code, stdout, stderr) = wsk(&s, &["trigger", "delete", "tick"]);
        assert_eq!(code, 0, "{stderr}");
        assert!(
            stdout.contains("ok: invoked /whisk.system/alarms/interval"),
            "{stdout}"
        );
        assert!(stdout.contains("ok: deleted trigger tick"), "{stdout}");
        // Let an activation in flight land, then nothing more may come.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let stopped = activations_of(&s, "echo").await.len();
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(activations_of(&s, "echo").await.len(), stopped);
    }

    #[tokio::test]
    async fn a_once_alarm_fires_once_and_a_bad_feed_leaves_no_trigger() {
        let s = spawn_server(None);
        create_action(&s, "echo", "nodejs:20", ECHO).await;
        put(&s, "triggers/once", json!({}))
            .await
            .expect_status(200, "trigger");
        rule(&s, "r", "once").await;
        let at = edgewhisk_entity::time::now_millis() + 1_500;
        feed(&s, "alarms/once", "CREATE", "once", json!({"date": at}))
            .await
            .expect_status(200, "create once");
        assert_eq!(
            wait_for_activations(&s, "echo", 1, Duration::from_secs(15)).await,
            1
        );
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(activations_of(&s, "echo").await.len(), 1);

        let (code, _, stderr) = wsk(
            &s,
            &[
                "trigger",
                "create",
                "bad",
                "--feed",
                "/whisk.system/alarms/alarm",
                "-p",
                "cron",
                "nope",
            ],
        );
        assert_ne!(code, 0);
        assert!(stderr.contains("is not valid"), "{stderr}");
        let reply = send(http().get(s.ns_url("triggers/bad"))).await;
        reply.expect_status(404, "the trigger of a failed feed is deleted");
    }

    #[tokio::test]
    async fn an_mqtt_message_fires_a_rule_with_the_message() {
        let broker = match start_broker().await {
            Ok(b) => b,
            Err(reason) => {
                eprintln!("skipped: {reason}");
                return;
            }
        };
        let s = spawn_server(None);
        create_action(&s, "echo", "nodejs:20", ECHO).await;
        put(&s, "triggers/sensor", json!({}))
            .await
            .expect_status(200, "trigger");
        rule(&s, "r", "sensor").await;
        let url = format!("mqtt://127.0.0.1:{}", broker.port);
        feed(
            &s,
            "mqtt/subscribe",
            "CREATE",
            "sensor",
            json!({"url": url, "topic": "edge/+/temp"}),
        )
        .await
        .expect_status(200, "subscribe");
        // The subscription is set up in the background: publish until a fire arrives.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while activations_of(&s, "echo").await.is_empty() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no fire: {}",
                s.log_tail()
            );
            let status = Command::new("mosquitto_pub")
                .args(["-h", "127.0.0.1", "-p", &broker.port.to_string()])
                .args(["-t", "edge/room1/temp", "-m", r#"{"celsius": 21.5}"#])
                .status()
                .expect("run mosquitto_pub");
            assert!(status.success());
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let record = &activations_of(&s, "echo").await[0];
        let result = &record["response"]["result"];
        assert_eq!(result["topic"], json!("edge/room1/temp"), "{record}");
        assert_eq!(result["payload"], json!(r#"{"celsius": 21.5}"#));
        assert_eq!(result["data"], json!({"celsius": 21.5}));

        feed(&s, "mqtt/subscribe", "DELETE", "sensor", json!({}))
            .await
            .expect_status(200, "unsubscribe");
    }
}
