//! The activation record of one run (OpenWhisk `ContainerProxy.constructWhiskActivation`):
//! what the proxy learned about a job, turned into the `Activation` that is stored and
//! answered.

use crate::container::Interval;
use edgewhisk_entity::connector::ActivationMessage;
use edgewhisk_entity::{Activation, ActivationResponse, Parameters, Status};
use serde_json::json;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What happened to one activation, for its record.
#[derive(Debug, Clone)]
pub(crate) struct RunFacts {
    /// The `/init` this activation paid for (cold start), if any.
    pub(crate) init: Option<Interval>,
    /// The `/run`, if it happened.
    pub(crate) run: Option<Interval>,
    /// The outcome.
    pub(crate) response: ActivationResponse,
    /// Log lines.
    pub(crate) logs: Vec<String>,
    /// Whether the run hit its time limit.
    pub(crate) timed_out: bool,
}

impl RunFacts {
    /// An activation that never reached an instance.
    pub(crate) fn unstarted(response: ActivationResponse) -> Self {
        Self {
            init: None,
            run: None,
            response,
            logs: Vec::new(),
            timed_out: false,
        }
    }
}

fn epoch_ms(t: SystemTime) -> u64 {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Builds the record as OpenWhisk's `ContainerProxy.constructWhiskActivation` does:
/// `start` is the run start minus the init time, `waitTime` runs from receipt to the first
/// instance work (init on a cold start, else run), `initTime` only on cold starts.
pub(crate) fn activation_record(msg: &ActivationMessage, facts: RunFacts) -> Activation {
    let now = SystemTime::now();
    let (start, end, busy_from) = match (facts.init, facts.run) {
        (Some(init), Some(run)) => (
            epoch_ms(run.start).saturating_sub(millis(init.duration())),
            epoch_ms(run.end),
            init.start,
        ),
        (Some(init), None) => (epoch_ms(init.start), epoch_ms(init.end), init.start),
        (None, Some(run)) => (epoch_ms(run.start), epoch_ms(run.end), run.start),
        (None, None) => (epoch_ms(now), epoch_ms(now), now),
    };
    let action = &msg.action;
    let mut annotations = Parameters::default();
    annotations.set("path", json!(action.name.path_string()));
    annotations.set("kind", json!(action.exec.kind));
    annotations.set("limits", json!(action.limits));
    annotations.set("timeout", json!(facts.timed_out));
    annotations.set(
        "waitTime",
        json!(epoch_ms(busy_from).saturating_sub(msg.received_at)),
    );
    if let Some(init) = facts.init {
        annotations.set("initTime", json!(millis(init.duration())));
    }
    for extra in &msg.annotations.0 {
        annotations.set(&extra.key, extra.value.clone());
    }
    Activation {
        namespace: msg.namespace.clone(),
        name: action.name.name.clone(),
        version: action.version.clone(),
        subject: msg.subject.clone(),
        activation_id: msg.activation_id.clone(),
        cause: msg.cause.clone(),
        start,
        end,
        duration: Some(end.saturating_sub(start)),
        response: facts.response,
        logs: facts.logs,
        annotations,
        publish: false,
    }
}

/// The record of an activation that never reached an instance and ended in a whisk error
/// with `message` (status "whisk internal error", `{"error": message}`): what the invoker
/// stores for work it cannot run, and what a cluster controller stores when an invoker's
/// completion never comes.
pub fn whisk_error_record(msg: &ActivationMessage, message: &str) -> Activation {
    let response = ActivationResponse::error(Status::WhiskError, message);
    activation_record(msg, RunFacts::unstarted(response))
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgewhisk_entity::Status;
    use edgewhisk_testkit::fixtures;

    fn msg(received_at: u64) -> ActivationMessage {
        let action = fixtures::action("guest", "hello")
            .package("pkg")
            .version("0.0.3")
            .code("x")
            .timeout(1000)
            .build();
        fixtures::activation_message(&action)
            .activation_id("0123456789abcdef0123456789abcdef")
            .namespace("alice")
            .subject("alice-subject")
            .received_at(received_at)
            .build()
    }

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    #[test]
    fn cold_record_starts_init_time_before_the_run_and_carries_init_time() {
        let facts = RunFacts {
            init: Some(Interval {
                start: at(1_000),
                end: at(1_300),
            }),
            run: Some(Interval {
                start: at(1_310),
                end: at(1_400),
            }),
            response: ActivationResponse::success(json!({"ok": true})),
            logs: vec!["l".into()],
            timed_out: false,
        };
        let a = activation_record(&msg(900), facts);
        assert_eq!((a.start, a.end, a.duration), (1_010, 1_400, Some(390)));
        assert_eq!(a.namespace, "alice");
        assert_eq!(a.name, "hello");
        assert_eq!(a.version, "0.0.3");
        assert_eq!(a.subject, "alice-subject");
        assert!(!a.publish);
        assert_eq!(
            serde_json::to_value(&a.annotations).unwrap(),
            json!([
                {"key":"path","value":"guest/pkg/hello"},
                {"key":"kind","value":"nodejs:20"},
                {"key":"limits","value":{"timeout":1000,"memory":256,"logs":10,"concurrency":1}},
                {"key":"timeout","value":false},
                {"key":"waitTime","value":100},
                {"key":"initTime","value":300},
            ])
        );
    }

    #[test]
    fn record_carries_the_annotations_the_controller_sent() {
        let mut m = msg(0);
        m.annotations.set("causedBy", json!("sequence"));
        let facts = RunFacts {
            init: None,
            run: Some(Interval {
                start: at(10),
                end: at(20),
            }),
            response: ActivationResponse::success(json!({})),
            logs: vec![],
            timed_out: false,
        };
        let a = activation_record(&m, facts);
        assert_eq!(a.annotations.get("causedBy"), Some(&json!("sequence")));
        assert_eq!(a.annotations.get("kind"), Some(&json!("nodejs:20")));
    }

    #[test]
    fn warm_record_has_no_init_time_and_waits_until_the_run() {
        let facts = RunFacts {
            init: None,
            run: Some(Interval {
                start: at(2_000),
                end: at(2_050),
            }),
            response: ActivationResponse::error(Status::DeveloperError, "x"),
            logs: vec![],
            timed_out: true,
        };
        let a = activation_record(&msg(1_990), facts);
        assert_eq!((a.start, a.end), (2_000, 2_050));
        assert_eq!(a.annotations.get("initTime"), None);
        assert_eq!(a.annotations.get("waitTime"), Some(&json!(10)));
        assert_eq!(a.annotations.get("timeout"), Some(&json!(true)));
    }

    #[test]
    fn failed_init_record_spans_the_init() {
        let facts = RunFacts {
            init: Some(Interval {
                start: at(5_000),
                end: at(5_020),
            }),
            run: None,
            response: ActivationResponse::error(Status::DeveloperError, "x"),
            logs: vec![],
            timed_out: false,
        };
        let a = activation_record(&msg(4_000), facts);
        assert_eq!((a.start, a.end, a.duration), (5_000, 5_020, Some(20)));
        assert_eq!(a.annotations.get("initTime"), Some(&json!(20)));
    }
}
