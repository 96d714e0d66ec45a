//! One page of a collection, or its count: the list routes of actions, triggers, rules and
//! activations.

use crate::config::ApiConfig;
use crate::entities::decode;
use crate::error::{ApiError, ApiQuery};
use crate::messages;
use crate::state::AppState;
use axum::Json;
use edgewhisk_store::{Collection, ListScope};
use serde_json::{Value, json};

/// The list routes of actions, triggers and rules: `{"<collection>": N}` with `count=true`,
/// else one page of `scope`, newest first, each entity rendered by `render`.
pub(crate) async fn list_collection<T: serde::de::DeserializeOwned>(
    state: &AppState,
    collection: Collection,
    scope: &ListScope,
    q: &ApiQuery,
    render: impl Fn(T) -> Value,
) -> Result<Json<Value>, ApiError> {
    let name = collection.as_str();
    let page = ListParams::parse(q, name, state.config())?;
    let store = state.entities();
    if page.count {
        let n = store.count(collection, scope).await?;
        return Ok(Json(json!({ name: n })));
    }
    // Lists show summaries: the store may leave action code out.
    let docs = store
        .list_summaries(collection, scope, page.skip, page.limit)
        .await?;
    let out = docs
        .into_iter()
        .map(|doc| decode(doc).map(&render))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(Value::Array(out)))
}

/// `skip`, `limit` and `count` of a list request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListParams {
    /// Entries to skip.
    pub skip: usize,
    /// Page size.
    pub limit: usize,
    /// Answer `{"<collection>": N}` instead of a list.
    pub count: bool,
}

impl ListParams {
    /// Reads the list parameters with OpenWhisk's messages: `limit` 0 means the maximum,
    /// out of range or not an integer is a 400, as is a negative `skip`.
    pub fn parse(q: &ApiQuery, collection: &str, config: &ApiConfig) -> Result<Self, ApiError> {
        let bad = |name: &str, detail: String| {
            ApiError::BadRequest(messages::malformed_query_param(name, &detail))
        };
        let int = |name: &str, v: &str| {
            v.parse::<i64>()
                .map_err(|_| bad(name, messages::argument_not_integer(collection, v)))
        };
        let max = config.list_max_limit;
        let limit = match q.get("limit") {
            None => config.list_default_limit,
            Some(v) => match int("limit", v)? {
                0 => max,
                n => usize::try_from(n)
                    .ok()
                    .filter(|n| *n <= max)
                    .ok_or_else(|| {
                        bad(
                            "limit",
                            messages::list_limit_out_of_range(collection, n, max),
                        )
                    })?,
            },
        };
        let skip = match q.get("skip") {
            None => 0,
            Some(v) => {
                let n = int("skip", v)?;
                usize::try_from(n)
                    .map_err(|_| bad("skip", messages::list_skip_out_of_range(collection, n)))?
            }
        };
        Ok(Self {
            skip,
            limit,
            count: q.bool("count", false)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> ApiQuery {
        ApiQuery(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn list_params_default_and_treat_zero_as_the_maximum() {
        let c = ApiConfig::default();
        let p = ListParams::parse(&q(&[]), "actions", &c).unwrap();
        assert_eq!((p.skip, p.limit, p.count), (0, 30, false));
        let p = ListParams::parse(
            &q(&[("limit", "0"), ("skip", "5"), ("count", "true")]),
            "actions",
            &c,
        )
        .unwrap();
        assert_eq!((p.skip, p.limit, p.count), (5, 200, true));
    }

    #[test]
    fn list_params_refuse_out_of_range_and_non_integers_with_openwhisk_text() {
        let c = ApiConfig::default();
        let cases = [
            (
                ("limit", "201"),
                "The query parameter 'limit' was malformed:\nThe value '201' is not in the range of 0 to 200 for actions.",
            ),
            (
                ("limit", "-1"),
                "The query parameter 'limit' was malformed:\nThe value '-1' is not in the range of 0 to 200 for actions.",
            ),
            (
                ("limit", "x"),
                "The query parameter 'limit' was malformed:\nThe value 'x' is not an integer for actions.",
            ),
            (
                ("skip", "-2"),
                "The query parameter 'skip' was malformed:\nThe value '-2' is not greater than or equal to 0 for actions.",
            ),
        ];
        for (pair, text) in cases {
            let err = ListParams::parse(&q(&[pair]), "actions", &c).unwrap_err();
            assert_eq!(err.message(), text);
        }
    }
}
