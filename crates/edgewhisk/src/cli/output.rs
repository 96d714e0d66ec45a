//! How the CLI prints: `wsk`'s pretty JSON (4-space indentation, trailing newline), its list
//! rows and tables, its durations, and its log timestamp stripping. Pure functions that return
//! strings, so each layout is unit-tested.
//!
//! Times are shown in UTC (`wsk` uses the local zone; the container default is UTC too).

use serde::Serialize;
use serde_json::Value;

/// JSON pretty-printed as `wsk` prints it: 4-space indentation and a final newline.
pub(crate) fn pretty_json(v: &Value) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    // Serialising a `Value` into memory cannot fail.
    if v.serialize(&mut ser).is_err() {
        return format!("{v}\n");
    }
    let mut s = String::from_utf8_lossy(&buf).into_owned();
    s.push('\n');
    s
}

/// The value of annotation `key` in an entity's or activation's `annotations` array.
pub(crate) fn annotation<'a>(entity: &'a Value, key: &str) -> Option<&'a Value> {
    entity
        .get("annotations")?
        .as_array()?
        .iter()
        .find(|kv| kv.get("key").and_then(Value::as_str) == Some(key))?
        .get("value")
}

fn str_field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn publish_state(v: &Value) -> &'static str {
    if v.get("publish").and_then(Value::as_bool) == Some(true) {
        "shared"
    } else {
        "private"
    }
}

fn full_name(v: &Value) -> String {
    format!("/{}/{}", str_field(v, "namespace"), str_field(v, "name"))
}

/// One row of `wsk action list`: `/ns/name` padded to 70, `private|shared`, kind from the
/// `exec` annotation.
pub(crate) fn action_row(action: &Value) -> String {
    let kind = annotation(action, "exec")
        .and_then(Value::as_str)
        .unwrap_or("");
    format!(
        "{:<70} {} {}\n",
        full_name(action),
        publish_state(action),
        kind
    )
}

/// One row of a package or trigger list.
pub(crate) fn package_or_trigger_row(entity: &Value) -> String {
    format!("{:<70} {}\n", full_name(entity), publish_state(entity))
}

/// One row of a rule list; `status` comes from a GET of the rule.
pub(crate) fn rule_row(rule: &Value, status: &str) -> String {
    format!(
        "{:<70} {} {}\n",
        full_name(rule),
        publish_state(rule),
        status
    )
}

/// A `wsk` list: the collection header, then the rows (only the header when empty).
pub(crate) fn entity_list(header: &str, rows: impl IntoIterator<Item = String>) -> String {
    let mut out = format!("{header}\n");
    out.extend(rows);
    out
}

/// `wsk`'s status texts by list-summary `statusCode`.
const STATUS_TEXTS: [&str; 4] = [
    "success",
    "application error",
    "developer error",
    "internal error",
];

/// `wsk activation list`: Datetime, Activation ID, Kind, Start (cold when the record has an
/// `initTime` annotation), Duration, Status, Entity (`ns/name:version`). An empty list prints
/// one empty line, as `wsk` does.
pub(crate) fn activation_table(activations: &[Value]) -> String {
    if activations.is_empty() {
        return "\n".into();
    }
    let kind_of = |a: &Value| {
        annotation(a, "kind")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_owned()
    };
    let status_of = |a: &Value| {
        let code = a.get("statusCode").and_then(Value::as_u64).unwrap_or(0);
        usize::try_from(code)
            .ok()
            .and_then(|c| STATUS_TEXTS.get(c))
            .copied()
            .unwrap_or(STATUS_TEXTS[0])
    };
    let kind_w = activations
        .iter()
        .map(|a| kind_of(a).len())
        .max()
        .unwrap_or(0)
        .max("Kind".len());
    let status_w = activations
        .iter()
        .map(|a| status_of(a).len())
        .max()
        .unwrap_or(0)
        .max(STATUS_TEXTS[0].len())
        .max("Status".len());
    let mut out = format!(
        "{:<19} {:<32} {:<kind_w$} {:<6}{:<10} {:<status_w$} {:<6}\n",
        "Datetime", "Activation ID", "Kind", "Start", "Duration", "Status", "Entity"
    );
    for a in activations {
        let start = a.get("start").and_then(Value::as_u64).unwrap_or(0);
        let duration = match a.get("duration").and_then(Value::as_u64) {
            Some(d) if d > 0 => a
                .get("end")
                .and_then(Value::as_u64)
                .map_or(d, |end| end.saturating_sub(start)),
            _ => 0,
        };
        let cold = if annotation(a, "initTime").is_some() {
            "cold"
        } else {
            "warm"
        };
        let entity = format!(
            "{}/{}:{}",
            truncate_middle(str_field(a, "namespace"), 20),
            truncate_middle(str_field(a, "name"), 30),
            truncate_middle(str_field(a, "version"), 20)
        );
        out.push_str(&format!(
            "{} {:<32} {:<kind_w$} {:<5} {:<10} {:<status_w$} {}\n",
            datetime(start),
            str_field(a, "activationId"),
            kind_of(a),
            cold,
            go_duration(duration),
            status_of(a),
            entity
        ));
    }
    out
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) of an epoch-ms instant.
pub(crate) fn datetime(epoch_ms: u64) -> String {
    let nanos = i128::from(epoch_ms) * 1_000_000;
    match time::OffsetDateTime::from_unix_timestamp_nanos(nanos) {
        Ok(t) => format!(
            "{}-{:02}-{:02} {:02}:{:02}:{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => epoch_ms.to_string(),
    }
}

/// A millisecond duration as Go's `time.Duration` prints it: `0s`, `45ms`, `1.5s`, `2m3s`,
/// `1h0m0.25s`.
pub(crate) fn go_duration(ms: u64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let hours = ms / 3_600_000;
    let minutes = (ms / 60_000) % 60;
    let secs = (ms / 1000) % 60;
    let frac = ms % 1000;
    let mut seconds = secs.to_string();
    if frac > 0 {
        let digits = format!("{frac:03}");
        seconds.push('.');
        seconds.push_str(digits.trim_end_matches('0'));
    }
    if hours > 0 {
        format!("{hours}h{minutes}m{seconds}s")
    } else if minutes > 0 {
        format!("{minutes}m{seconds}s")
    } else {
        format!("{seconds}s")
    }
}

/// `wsk`'s middle truncation: longer than `max` becomes `head...tail` of `max` characters.
pub(crate) fn truncate_middle(s: &str, max: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= max {
        return s.to_owned();
    }
    let mut mid = max / 2;
    let upp = chars.len() - mid + 3;
    if !max.is_multiple_of(2) {
        mid += 1;
    }
    let head: String = chars[..mid].iter().collect();
    let tail: String = chars[upp.min(chars.len())..].iter().collect();
    format!("{head}...{tail}")
}

/// `wsk activation logs --strip`: drops a leading `YYYY-MM-DDTHH:MM:SS.<digits>Z` timestamp
/// and an optional `stdout:`/`stderr:` stream tag; other lines are returned unchanged.
pub(crate) fn strip_timestamp(line: &str) -> &str {
    strip_at_start(line).unwrap_or(line)
}

fn strip_at_start(line: &str) -> Option<&str> {
    let b = line.as_bytes();
    // Fixed part: `dddd-dd-ddTdd:dd:dd` then any one character, then digits, then `Z`.
    let shape = b"dddd-dd-ddTdd:dd:dd";
    if b.len() < shape.len() + 3 {
        return None;
    }
    for (c, s) in b.iter().zip(shape.iter()) {
        let ok = match s {
            b'd' => c.is_ascii_digit(),
            other => c == other,
        };
        if !ok {
            return None;
        }
    }
    let mut i = shape.len() + 1;
    let digits_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if i == digits_start || b.get(i) != Some(&b'Z') {
        return None;
    }
    let mut rest = &line[i + 1..];
    let after_spaces = rest.trim_start_matches(' ');
    for tag in ["stdout:", "stderr:"] {
        if let Some(r) = after_spaces.strip_prefix(tag) {
            rest = r;
            break;
        }
    }
    // One whitespace character separates the prefix from the message.
    let mut chars = rest.chars();
    match chars.next() {
        Some(c) if c.is_whitespace() => {
            let msg = chars.as_str();
            (!msg.is_empty()).then_some(msg)
        }
        _ => None,
    }
}

/// `wsk action get --summary`: `action /ns/name[: description]` and its parameters, bound
/// ones starred (`**` when the action is `final`).
pub(crate) fn action_summary(action: &Value) -> String {
    let description = annotation(action, "description")
        .and_then(Value::as_str)
        .unwrap_or("");
    let tag = if annotation(action, "final").and_then(Value::as_bool) == Some(true) {
        "**"
    } else {
        "*"
    };
    let bound: Vec<String> = action
        .get("parameters")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .filter_map(|p| p.get("key").and_then(Value::as_str))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let mut names: Vec<String> = bound.clone();
    if let Some(Value::Array(declared)) = annotation(action, "parameters") {
        names.extend(
            declared
                .iter()
                .filter_map(|p| p.get("name").and_then(Value::as_str))
                .map(str::to_owned),
        );
    }
    names.sort();
    names.dedup();
    let params: Vec<String> = names
        .into_iter()
        .map(|n| {
            if bound.contains(&n) {
                format!("{tag}{n}")
            } else {
                n
            }
        })
        .collect();
    let params = if params.is_empty() {
        "none defined".to_owned()
    } else {
        params.join(", ")
    };
    let name = full_name(action);
    let head = if description.is_empty() {
        format!("action {name}\n")
    } else {
        format!("action {name}: {description}\n")
    };
    format!("{head}   (parameters: {params})\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pretty_json_uses_four_spaces_and_a_final_newline() {
        assert_eq!(
            pretty_json(&json!({"payload": "Hello, World!"})),
            "{\n    \"payload\": \"Hello, World!\"\n}\n"
        );
        assert_eq!(
            pretty_json(&json!({"a": [1, {}]})),
            "{\n    \"a\": [\n        1,\n        {}\n    ]\n}\n"
        );
        assert_eq!(pretty_json(&json!("<&>")), "\"<&>\"\n");
    }

    #[test]
    fn action_rows_pad_the_name_and_read_the_kind_from_the_exec_annotation() {
        let a = json!({"namespace":"guest","name":"hello","publish":false,
            "annotations":[{"key":"provide-api-key","value":false},{"key":"exec","value":"nodejs:20"}]});
        let row = action_row(&a);
        assert_eq!(row, format!("{:<70} private nodejs:20\n", "/guest/hello"));
        assert_eq!(row.find("private"), Some(71));
        let shared = json!({"namespace":"guest","name":"x","publish":true,"annotations":[]});
        assert_eq!(action_row(&shared), format!("{:<70} shared \n", "/guest/x"));
        assert_eq!(
            entity_list("actions", [row.clone()]),
            format!("actions\n{row}")
        );
        assert_eq!(entity_list("actions", Vec::new()), "actions\n");
    }

    #[test]
    fn activation_table_has_wsk_columns_cold_warm_and_status() {
        let rows = vec![
            json!({"namespace":"guest","name":"hello","version":"0.0.1",
                "activationId":"0123456789abcdef0123456789abcdef","start":0,"end":45,"duration":45,
                "statusCode":0,"annotations":[{"key":"kind","value":"nodejs:20"},{"key":"initTime","value":30}]}),
            json!({"namespace":"guest","name":"hello","version":"0.0.1",
                "activationId":"fedcba9876543210fedcba9876543210","start":1500,"end":3000,"duration":1500,
                "statusCode":1,"annotations":[{"key":"kind","value":"nodejs:20"}]}),
        ];
        let t = activation_table(&rows);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0],
            "Datetime            Activation ID                    Kind      Start Duration   Status            Entity"
        );
        assert_eq!(
            lines[1],
            "1970-01-01 00:00:00 0123456789abcdef0123456789abcdef nodejs:20 cold  45ms       success           guest/hello:0.0.1"
        );
        assert_eq!(
            lines[2],
            "1970-01-01 00:00:01 fedcba9876543210fedcba9876543210 nodejs:20 warm  1.5s       application error guest/hello:0.0.1"
        );
        assert_eq!(activation_table(&[]), "\n");
    }

    #[test]
    fn missing_kind_shows_unknown() {
        let t = activation_table(&[json!({"activationId":"a","start":0,"annotations":[]})]);
        assert!(t.lines().nth(1).unwrap().contains(" unknown "), "{t}");
    }

    #[test]
    fn durations_print_like_go() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(45), "45ms");
        assert_eq!(go_duration(1000), "1s");
        assert_eq!(go_duration(1500), "1.5s");
        assert_eq!(go_duration(61_250), "1m1.25s");
        assert_eq!(go_duration(3_600_000), "1h0m0s");
    }

    #[test]
    fn long_names_are_truncated_in_the_middle() {
        assert_eq!(truncate_middle("short", 20), "short");
        assert_eq!(
            truncate_middle("abcdefghijklmnopqrstuvwxyz", 10),
            "abcde...yz"
        );
        assert_eq!(
            truncate_middle("abcdefghijklmnopqrstuvwxyz", 9),
            "abcde...z"
        );
    }

    #[test]
    fn strip_removes_timestamp_and_stream() {
        assert_eq!(
            strip_timestamp("2024-01-01T00:00:00.123456789Z stdout: hello world"),
            "hello world"
        );
        assert_eq!(
            strip_timestamp("2024-01-01T00:00:00.1Z     stderr: oops"),
            "oops"
        );
        assert_eq!(strip_timestamp("2024-01-01T00:00:00.5Z plain"), "plain");
        assert_eq!(strip_timestamp("no timestamp here"), "no timestamp here");
        assert_eq!(
            strip_timestamp("2024-01-01T00:00:00Z x"),
            "2024-01-01T00:00:00Z x"
        );
    }

    #[test]
    fn summary_lists_bound_parameters_with_a_star() {
        let a = json!({"namespace":"guest","name":"hello",
            "parameters":[{"key":"name","value":"x"}],
            "annotations":[{"key":"description","value":"says hi"}]});
        assert_eq!(
            action_summary(&a),
            "action /guest/hello: says hi\n   (parameters: *name)\n"
        );
        let bare = json!({"namespace":"guest","name":"b","parameters":[],"annotations":[]});
        assert_eq!(
            action_summary(&bare),
            "action /guest/b\n   (parameters: none defined)\n"
        );
    }

    #[test]
    fn datetime_is_utc() {
        assert_eq!(datetime(1_700_000_000_000), "2023-11-14 22:13:20");
    }
}
