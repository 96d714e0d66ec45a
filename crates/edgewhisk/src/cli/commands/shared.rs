//! What several nouns share: how `wsk` names entities in its messages, the `-p`/`-P` and
//! `-a`/`-A` flags, and the lists.

use crate::cli::error::CliError;
use crate::cli::output::{pretty_json, rule_row};
use edgewhisk_client::{Client, ClientError, ListPage, split_qualified};
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};

/// The name as wsk prints it in messages: the entity part of a qualified name.
pub(crate) fn short(name: &str) -> &str {
    split_qualified(name).1
}

/// `/ns/name` as wsk sends or prints a name: namespace `_` unless the name is qualified.
pub(crate) fn qualified(name: &str) -> String {
    match split_qualified(name) {
        (Some(ns), rest) => format!("/{ns}/{rest}"),
        (None, rest) => format!("/_/{rest}"),
    }
}

/// `create`/`created`, or `update`/`updated`: the verbs of wsk's messages about a PUT.
pub(crate) fn put_verbs(update: bool) -> (&'static str, &'static str) {
    if update {
        ("update", "updated")
    } else {
        ("create", "created")
    }
}

/// The error of a failed request on `kind` `name`, with wsk's context
/// `Unable to {verb} {kind} '{short name}'`.
pub(crate) fn unable(verb: &str, kind: &str, name: &str) -> impl Fn(ClientError) -> CliError {
    let context = format!("Unable to {verb} {kind} '{}'", short(name));
    move |e| CliError::api(context.clone(), e)
}

/// The error of a failed list of `kinds` in the caller's namespace, which wsk calls `default`.
pub(crate) fn unable_to_list(kinds: &str) -> impl Fn(ClientError) -> CliError {
    let context = format!("Unable to obtain the list of {kinds} for namespace 'default'");
    move |e| CliError::api(context.clone(), e)
}

/// Prints wsk's confirmation `ok: {done} {kind} {short name}`.
pub(crate) fn print_ok(done: &str, kind: &str, name: &str) {
    println!("ok: {done} {kind} {}", short(name));
}

/// What `X get` prints without options: `ok: got {kind} {short name}`, then the entity as
/// pretty JSON.
pub(crate) fn print_got(kind: &str, name: &str, entity: &Value) {
    print_ok("got", kind, name);
    print!("{}", pretty_json(entity));
}

/// A list page from `--limit` and `--skip`.
pub(crate) fn page(limit: u32, skip: u32) -> ListPage {
    ListPage {
        limit: Some(limit),
        skip: Some(skip),
    }
}

/// The `name` of an entity in a list; empty when missing.
pub(crate) fn name_of(v: &Value) -> &str {
    v.get("name").and_then(Value::as_str).unwrap_or("")
}

/// `--name-sort`: entities in alphabetical order of their names.
pub(crate) fn sort_by_name(list: &mut [Value]) {
    list.sort_by(|a, b| name_of(a).cmp(name_of(b)));
}

/// The table rows of `rules`: a list omits each rule's `status`, so, as wsk does, each rule
/// is fetched to show it (empty when that fails).
pub(crate) async fn rule_rows(client: &Client, rules: &[Value]) -> Vec<String> {
    let mut rows = Vec::with_capacity(rules.len());
    for r in rules {
        let status = client
            .get_rule(name_of(r))
            .await
            .ok()
            .and_then(|full| {
                full.get("status")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .unwrap_or_default();
        rows.push(rule_row(r, &status));
    }
    rows
}

/// Parameters, as `-p KEY VALUE` / `-P FILE`.
#[derive(clap::Args, Debug, Default)]
pub(crate) struct ParamArgs {
    /// Parameter values in KEY VALUE format.
    #[arg(short = 'p', long = "param", num_args = 2, value_names = ["KEY", "VALUE"])]
    pub(crate) param: Vec<String>,
    /// FILE containing parameter values in JSON format.
    #[arg(short = 'P', long = "param-file", value_name = "FILE")]
    pub(crate) param_file: Option<PathBuf>,
}

impl ParamArgs {
    /// The parameters, the file's first and the flags over them.
    pub(crate) fn read(&self) -> Result<Map<String, Value>, CliError> {
        key_values(&self.param, self.param_file.as_deref(), "parameter")
    }
}

/// Parameters and annotations, as `-p KEY VALUE` / `-P FILE` and `-a KEY VALUE` / `-A FILE`.
#[derive(clap::Args, Debug, Default)]
pub(crate) struct KeyValueArgs {
    #[command(flatten)]
    pub(crate) params: ParamArgs,
    /// Annotation values in KEY VALUE format.
    #[arg(short = 'a', long = "annotation", num_args = 2, value_names = ["KEY", "VALUE"])]
    pub(crate) annotation: Vec<String>,
    /// FILE containing annotation values in JSON format.
    #[arg(short = 'A', long = "annotation-file", value_name = "FILE")]
    pub(crate) annotation_file: Option<PathBuf>,
}

impl KeyValueArgs {
    /// The annotations, the file's first and the flags over them.
    pub(crate) fn annotations(&self) -> Result<Map<String, Value>, CliError> {
        key_values(
            &self.annotation,
            self.annotation_file.as_deref(),
            "annotation",
        )
    }
}

/// `parameters` and `annotations` of a package or trigger PUT body; on an update, each is
/// omitted when empty so that the server keeps the old ones.
pub(crate) fn key_value_body(
    params: Map<String, Value>,
    annotations: Map<String, Value>,
    update: bool,
) -> Map<String, Value> {
    let mut body = Map::new();
    if !update || !params.is_empty() {
        body.insert("parameters".into(), to_key_value_array(params));
    }
    if !update || !annotations.is_empty() {
        body.insert("annotations".into(), to_key_value_array(annotations));
    }
    body
}

/// A `-p`/`-a` value as `wsk` reads it: JSON when it parses as JSON, otherwise a string.
pub(crate) fn parse_value(raw: &str) -> Value {
    serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()))
}

/// Pairs from a `KEY VALUE KEY VALUE …` list, after the JSON object of `file` (flags win).
fn key_values(
    flat: &[String],
    file: Option<&Path>,
    what: &str,
) -> Result<Map<String, Value>, CliError> {
    let mut out = Map::new();
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            CliError::Usage(format!(
                "File '{}' is not a valid file or it does not exist: {e}",
                path.display()
            ))
        })?;
        match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(m)) => out.extend(m),
            Ok(_) | Err(_) => {
                return Err(CliError::Usage(format!(
                    "Invalid {what} argument '{}': the file must hold a JSON object",
                    path.display()
                )));
            }
        }
    }
    for pair in flat.chunks(2) {
        if let [k, v] = pair {
            out.insert(k.clone(), parse_value(v));
        }
    }
    Ok(out)
}

/// A map as OpenWhisk's `[{"key", "value"}]` array.
pub(crate) fn to_key_value_array(m: Map<String, Value>) -> Value {
    Value::Array(
        m.into_iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn param_values_are_json_when_valid_else_strings() {
        assert_eq!(parse_value("Edge"), json!("Edge"));
        assert_eq!(parse_value("42"), json!(42));
        assert_eq!(parse_value("true"), json!(true));
        assert_eq!(parse_value(r#"{"a":[1]}"#), json!({"a":[1]}));
        assert_eq!(parse_value(r#""quoted""#), json!("quoted"));
        assert_eq!(parse_value("{not json"), json!("{not json"));
    }

    #[test]
    fn flag_params_override_the_param_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("p.json");
        std::fs::write(&f, r#"{"name":"file","other":1}"#).unwrap();
        let flat = vec!["name".to_string(), "Edge".to_string()];
        let m = key_values(&flat, Some(&f), "parameter").unwrap();
        assert_eq!(Value::Object(m), json!({"name":"Edge","other":1}));
        std::fs::write(&f, "[1]").unwrap();
        assert!(matches!(
            key_values(&[], Some(&f), "parameter"),
            Err(CliError::Usage(_))
        ));
    }

    #[test]
    fn names_are_shortened_and_qualified_as_wsk_does() {
        assert_eq!(short("/guest/pkg/a"), "pkg/a");
        assert_eq!(qualified("/guest/pkg/a"), "/guest/pkg/a");
    }
}
