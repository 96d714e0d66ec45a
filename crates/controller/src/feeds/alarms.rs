//! The alarms feeds' parameters and schedule, as pure functions (facts from OpenWhisk's
//! `openwhisk-package-alarms`).
//!
//! - `alarm`: `cron` (5 fields as OpenWhisk; edgewhisk also takes a leading seconds field, 6
//!   fields), optional `startDate`, `stopDate`, `maxTriggers`.
//! - `once`: `date` (must be in the future), optional `deleteAfterFire` (`false`, `rules`,
//!   `true`).
//! - `interval`: `minutes` (integer ≥ 1) — or, an edgewhisk extension for short periods and
//!   tests, `seconds` (integer ≥ 1) — optional `startDate`, `stopDate`, `maxTriggers`.
//!
//! Every feed takes `trigger_payload`: an object is the fire body; anything else is sent as
//! `{"payload": value}`. Dates are ISO 8601 strings or epoch milliseconds; times are UTC.
//!
//! Catch-up after downtime: a cron alarm fires at its next tick after now (missed ticks are
//! not replayed); an interval fires once at once when its period elapsed while the server was
//! down, then every period; a `once` alarm whose date passed while down fires at start when it
//! is at most [`ONCE_GRACE_MS`] late, else it is dropped.

use chrono::{DateTime, TimeZone, Utc};
use croner::Cron;
use serde_json::{Map, Value};

/// How late a missed `once` alarm may still fire after a restart.
pub const ONCE_GRACE_MS: u64 = 10 * 60 * 1000;

/// When an alarm fires.
#[derive(Debug, Clone)]
pub(crate) enum Schedule {
    /// At every tick of a cron expression.
    Cron(Box<Cron>),
    /// Once, at epoch ms.
    Once(u64),
    /// Every period ms.
    Interval(u64),
}

/// What a `once` alarm deletes after it fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeleteAfterFire {
    /// Nothing but the schedule.
    No,
    /// The rules linked to the trigger.
    Rules,
    /// The trigger and its rules.
    All,
}

/// A validated alarm.
#[derive(Debug, Clone)]
pub(crate) struct AlarmSpec {
    pub(crate) schedule: Schedule,
    pub(crate) start: Option<u64>,
    pub(crate) stop: Option<u64>,
    pub(crate) max_triggers: Option<u64>,
    pub(crate) delete_after_fire: DeleteAfterFire,
}

/// The persisted progress of an alarm.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Progress {
    /// When the schedule was created, epoch ms.
    pub(crate) created: u64,
    /// The last fire, epoch ms.
    pub(crate) last_fired: Option<u64>,
    /// How many times it fired.
    pub(crate) fired: u64,
}

/// Which alarm feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AlarmKind {
    /// `alarms/alarm` (cron).
    Cron,
    /// `alarms/once`.
    Once,
    /// `alarms/interval`.
    Interval,
}

/// Parses and validates the parameters of an alarm feed at `now`. `creating` checks that a
/// `once` date lies in the future (a restart re-reads stored alarms without that check).
pub(crate) fn parse(
    kind: AlarmKind,
    params: &Map<String, Value>,
    now: u64,
    creating: bool,
) -> Result<AlarmSpec, String> {
    let schedule = match kind {
        AlarmKind::Cron => {
            let expr = params
                .get("cron")
                .and_then(Value::as_str)
                .ok_or("alarms trigger feed is missing the cron parameter")?;
            Schedule::Cron(Box::new(parse_cron(expr)?))
        }
        AlarmKind::Once => {
            let v = params
                .get("date")
                .ok_or("alarms once trigger feed is missing the date parameter")?;
            let at = parse_date("date", v)?;
            if creating && at <= now {
                return Err(format!("date parameter '{v}' must be in the future"));
            }
            Schedule::Once(at)
        }
        AlarmKind::Interval => Schedule::Interval(parse_period(params)?),
    };
    let date = |key: &str| params.get(key).map(|v| parse_date(key, v)).transpose();
    let (start, stop) = (date("startDate")?, date("stopDate")?);
    if let (Some(a), Some(b)) = (start, stop) {
        if b <= a {
            return Err("stopDate parameter must be after startDate".to_owned());
        }
    }
    if creating && stop.is_some_and(|s| s <= now) {
        return Err("stopDate parameter must be in the future".to_owned());
    }
    let max_triggers = match params.get("maxTriggers") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_i64() {
            Some(n) if n < 0 => None,
            Some(n) if n > 0 => Some(n.unsigned_abs()),
            _ => return Err("maxTriggers parameter must be a positive integer or -1".to_owned()),
        },
    };
    let delete_after_fire = match params.get("deleteAfterFire") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => DeleteAfterFire::No,
        Some(Value::Bool(true)) => DeleteAfterFire::All,
        Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
            "false" => DeleteAfterFire::No,
            "rules" => DeleteAfterFire::Rules,
            "true" => DeleteAfterFire::All,
            _ => {
                return Err(format!(
                    "deleteAfterFire parameter '{s}' must be false, rules or true"
                ));
            }
        },
        Some(v) => {
            return Err(format!(
                "deleteAfterFire parameter '{v}' must be false, rules or true"
            ));
        }
    };
    Ok(AlarmSpec {
        schedule,
        start,
        stop,
        max_triggers,
        delete_after_fire,
    })
}

/// A 5-field cron expression, or 6 fields with leading seconds.
fn parse_cron(expr: &str) -> Result<Cron, String> {
    let fields = expr.split_whitespace().count();
    if !(5..=6).contains(&fields) {
        return Err(format!(
            "cron pattern '{expr}' is not valid: expected 5 fields (or 6 with seconds)"
        ));
    }
    Cron::new(expr)
        .with_seconds_optional()
        .parse()
        .map_err(|e| format!("cron pattern '{expr}' is not valid: {e}"))
}

/// `minutes` (or `seconds`) as a period in ms.
fn parse_period(params: &Map<String, Value>) -> Result<u64, String> {
    let positive = |key: &str, unit: u64| -> Option<Result<u64, String>> {
        let v = params.get(key)?;
        let n = v
            .as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()));
        Some(match n {
            Some(n) if n >= 1 => Ok(n.saturating_mul(unit)),
            _ => Err(format!(
                "{key} parameter '{v}' must be an integer of at least 1"
            )),
        })
    };
    positive("minutes", 60_000)
        .or_else(|| positive("seconds", 1_000))
        .unwrap_or_else(|| Err("interval trigger feed is missing the minutes parameter".to_owned()))
}

/// An ISO 8601 date or epoch ms.
fn parse_date(key: &str, v: &Value) -> Result<u64, String> {
    let invalid = || format!("{key} parameter '{v}' is not a valid date");
    match v {
        Value::Number(n) => n.as_u64().ok_or_else(invalid),
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .ok()
            .and_then(|d| u64::try_from(d.timestamp_millis()).ok())
            .ok_or_else(invalid),
        _ => Err(invalid()),
    }
}

/// The body of every fire: `trigger_payload` as an object.
pub(crate) fn payload(params: &Map<String, Value>) -> Map<String, Value> {
    match params.get("trigger_payload") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(Value::String(s)) => match serde_json::from_str(s) {
            Ok(Value::Object(m)) => m,
            _ => Map::from_iter([("payload".to_owned(), Value::String(s.clone()))]),
        },
        Some(v) => Map::from_iter([("payload".to_owned(), v.clone())]),
    }
}

/// When the alarm fires next, epoch ms, or `None` when it is done for good.
pub(crate) fn next_fire(spec: &AlarmSpec, progress: Progress, now: u64) -> Option<u64> {
    if spec.max_triggers.is_some_and(|m| progress.fired >= m) {
        return None;
    }
    let next = match &spec.schedule {
        Schedule::Once(_) if progress.fired > 0 => return None,
        Schedule::Once(at) if at.saturating_add(ONCE_GRACE_MS) < now => return None,
        Schedule::Once(at) => (*at).max(now),
        Schedule::Cron(cron) => {
            let from = now
                .max(progress.last_fired.unwrap_or(0))
                .max(spec.start.unwrap_or(0));
            let from = Utc
                .timestamp_millis_opt(i64::try_from(from).ok()?)
                .single()?;
            let tick = cron.find_next_occurrence(&from, false).ok()?;
            u64::try_from(tick.timestamp_millis()).ok()?
        }
        Schedule::Interval(period) => match (progress.last_fired, spec.start) {
            (Some(last), _) => last.saturating_add(*period).max(now),
            (None, Some(start)) if start > progress.created => start.max(now),
            (None, _) => progress.created.saturating_add(*period).max(now),
        },
    };
    match spec.stop {
        Some(stop) if next > stop => None,
        _ => Some(next),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    /// 2026-01-01T00:00:00Z.
    const T0: u64 = 1_767_225_600_000;

    #[test]
    fn cron_alarms_fire_at_the_next_tick_and_skip_missed_ones() {
        let spec = parse(
            AlarmKind::Cron,
            &params(json!({"cron": "*/5 * * * *"})),
            T0,
            true,
        )
        .unwrap();
        let p = Progress {
            created: T0,
            ..Progress::default()
        };
        assert_eq!(next_fire(&spec, p, T0 + 1), Some(T0 + 5 * 60_000));
        // After a long downtime the next tick after now, not the missed ones.
        let last = Progress {
            last_fired: Some(T0),
            fired: 1,
            ..p
        };
        assert_eq!(
            next_fire(&spec, last, T0 + 61 * 60_000),
            Some(T0 + 65 * 60_000)
        );
    }

    #[test]
    fn six_field_cron_has_seconds_resolution() {
        let spec = parse(
            AlarmKind::Cron,
            &params(json!({"cron": "*/2 * * * * *"})),
            T0,
            true,
        )
        .unwrap();
        let p = Progress {
            created: T0,
            ..Progress::default()
        };
        assert_eq!(next_fire(&spec, p, T0 + 500), Some(T0 + 2_000));
    }

    #[test]
    fn invalid_cron_and_missing_parameters_are_refused() {
        for (kind, p, msg) in [
            (AlarmKind::Cron, json!({}), "missing the cron parameter"),
            (AlarmKind::Cron, json!({"cron": "* * *"}), "is not valid"),
            (
                AlarmKind::Cron,
                json!({"cron": "99 * * * *"}),
                "is not valid",
            ),
            (AlarmKind::Once, json!({}), "missing the date parameter"),
            (
                AlarmKind::Once,
                json!({"date": "yesterday"}),
                "not a valid date",
            ),
            (
                AlarmKind::Once,
                json!({"date": T0 - 1}),
                "must be in the future",
            ),
            (
                AlarmKind::Interval,
                json!({}),
                "missing the minutes parameter",
            ),
            (AlarmKind::Interval, json!({"minutes": 0}), "at least 1"),
            (
                AlarmKind::Interval,
                json!({"minutes": 1, "maxTriggers": 0}),
                "maxTriggers",
            ),
        ] {
            let err = parse(kind, &params(p.clone()), T0, true).unwrap_err();
            assert!(err.contains(msg), "{p}: {err}");
        }
    }

    #[test]
    fn interval_fires_every_period_and_catches_up_once_after_downtime() {
        let spec = parse(
            AlarmKind::Interval,
            &params(json!({"seconds": 3})),
            T0,
            true,
        )
        .unwrap();
        let p = Progress {
            created: T0,
            ..Progress::default()
        };
        assert_eq!(next_fire(&spec, p, T0), Some(T0 + 3_000));
        let fired = Progress {
            last_fired: Some(T0 + 3_000),
            fired: 1,
            ..p
        };
        assert_eq!(next_fire(&spec, fired, T0 + 3_001), Some(T0 + 6_000));
        assert_eq!(next_fire(&spec, fired, T0 + 60_000), Some(T0 + 60_000));
        let minutes = parse(
            AlarmKind::Interval,
            &params(json!({"minutes": 2})),
            T0,
            true,
        )
        .unwrap();
        assert_eq!(next_fire(&minutes, p, T0), Some(T0 + 120_000));
    }

    #[test]
    fn once_fires_once_and_only_within_the_grace_after_a_restart() {
        let spec = parse(
            AlarmKind::Once,
            &params(json!({"date": "2026-01-01T00:01:00Z"})),
            T0,
            true,
        )
        .unwrap();
        let p = Progress {
            created: T0,
            ..Progress::default()
        };
        assert_eq!(next_fire(&spec, p, T0), Some(T0 + 60_000));
        assert_eq!(next_fire(&spec, p, T0 + 120_000), Some(T0 + 120_000));
        assert_eq!(next_fire(&spec, p, T0 + 60_000 + ONCE_GRACE_MS + 1), None);
        let fired = Progress {
            fired: 1,
            last_fired: Some(T0 + 60_000),
            ..p
        };
        assert_eq!(next_fire(&spec, fired, T0 + 60_001), None);
    }

    #[test]
    fn max_triggers_and_stop_date_end_the_schedule() {
        let spec = parse(
            AlarmKind::Interval,
            &params(json!({"seconds": 10, "maxTriggers": 2, "stopDate": T0 + 25_000})),
            T0,
            true,
        )
        .unwrap();
        let p = Progress {
            created: T0,
            last_fired: Some(T0 + 10_000),
            fired: 1,
        };
        assert_eq!(next_fire(&spec, p, T0 + 10_001), Some(T0 + 20_000));
        assert_eq!(
            next_fire(&spec, Progress { fired: 2, ..p }, T0 + 20_001),
            None
        );
        let late = Progress {
            last_fired: Some(T0 + 20_000),
            fired: 1,
            ..p
        };
        assert_eq!(next_fire(&spec, late, T0 + 20_001), None);
    }

    #[test]
    fn trigger_payload_becomes_the_fire_body() {
        assert_eq!(payload(&params(json!({}))), Map::new());
        assert_eq!(
            payload(&params(json!({"trigger_payload": {"a": 1}})))["a"],
            json!(1)
        );
        assert_eq!(
            payload(&params(json!({"trigger_payload": "{\"b\":2}"})))["b"],
            json!(2)
        );
        assert_eq!(
            payload(&params(json!({"trigger_payload": "hi"})))["payload"],
            json!("hi")
        );
    }

    #[test]
    fn delete_after_fire_takes_openwhisk_values() {
        for (v, want) in [
            (json!("rules"), DeleteAfterFire::Rules),
            (json!("true"), DeleteAfterFire::All),
            (json!(false), DeleteAfterFire::No),
        ] {
            let p = params(json!({"date": T0 + 1000, "deleteAfterFire": v}));
            assert_eq!(
                parse(AlarmKind::Once, &p, T0, true)
                    .unwrap()
                    .delete_after_fire,
                want
            );
        }
    }
}
