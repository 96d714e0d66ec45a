//! One MQTT client (rumqttc) per subscribed trigger: connects, subscribes on every connect,
//! fires the trigger for every message, and reconnects with a backoff.

use super::firing::fire;
use super::mqtt::{MqttSpec, message_body};
use super::stored::FeedDoc;
use crate::state::AppState;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::time::Duration;

/// First and largest reconnect delays.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(500), Duration::from_secs(30));

fn qos(n: u8) -> QoS {
    match n {
        1 => QoS::AtLeastOnce,
        2 => QoS::ExactlyOnce,
        _ => QoS::AtMostOnce,
    }
}

/// Runs the subscription of `doc` until the task is aborted.
pub(crate) async fn run(state: AppState, key: String, doc: FeedDoc, spec: MqttSpec) {
    let client_id = format!("edgewhisk-{}", uuid::Uuid::new_v4().simple());
    let mut options = MqttOptions::new(client_id, spec.host.clone(), spec.port);
    options.set_keep_alive(Duration::from_secs(30));
    if let Some((user, password)) = &spec.credentials {
        options.set_credentials(user.clone(), password.clone());
    }
    let (client, mut events) = AsyncClient::new(options, 16);
    let mut delay = BACKOFF.0;
    loop {
        match events.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                delay = BACKOFF.0;
                tracing::info!(feed = %key, host = %spec.host, port = spec.port, topic = %spec.topic, "mqtt connected");
                if let Err(e) = client.try_subscribe(spec.topic.clone(), qos(spec.qos)) {
                    tracing::warn!(feed = %key, error = %e, "mqtt subscribe failed");
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let body = message_body(&p.topic, &p.payload);
                fire(&state, &key, &doc, body).await;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(feed = %key, error = %e, retry_ms = delay.as_millis(), "mqtt connection lost");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(BACKOFF.1);
            }
        }
    }
}
