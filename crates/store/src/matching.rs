//! Matching and ordering rules shared by every store implementation, so that the memory store
//! (the test fake), the SQLite store and the PostgreSQL store cannot drift apart.

use crate::{ActivationFilter, Collection, EntityDoc, ListScope};
use edgewhisk_entity::Activation;
use serde_json::Value;
use std::cmp::Ordering;

/// True when an entity at `path` is inside `scope`.
pub(crate) fn scope_matches(scope: &ListScope, path: &str) -> bool {
    match scope {
        ListScope::Namespace(ns) => {
            path == ns
                || path
                    .strip_prefix(ns.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
        }
        ListScope::Path(p) => path == p,
    }
}

/// The collection named `s` (as [`Collection::as_str`] spells it).
pub(crate) fn collection_from_str(s: &str) -> Option<Collection> {
    [
        Collection::Actions,
        Collection::Packages,
        Collection::Triggers,
        Collection::Rules,
        Collection::Apis,
    ]
    .into_iter()
    .find(|c| c.as_str() == s)
}

/// The text parameters that select a list scope in SQL: the exact path, and the range of
/// paths below a namespace (`path = p OR (path >= lo AND path < hi)`; bytewise comparison).
pub(crate) fn scope_params(scope: &ListScope) -> (String, String, String) {
    match scope {
        // `ns/` <= path < `ns0` selects every path below `ns/` ('0' follows '/' in ASCII)
        // without LIKE, whose wildcards `_` and `%` may appear in names.
        ListScope::Namespace(ns) => (ns.clone(), format!("{ns}/"), format!("{ns}0")),
        // An empty range: only the exact path matches.
        ListScope::Path(p) => (p.clone(), String::from("1"), String::from("0")),
    }
}

/// Entity list order: newest `updated` first, ties by name, then by path.
pub(crate) fn entity_order(a: &EntityDoc, b: &EntityDoc) -> Ordering {
    b.updated
        .cmp(&a.updated)
        .then_with(|| a.name.cmp(&b.name))
        .then_with(|| a.path.cmp(&b.path))
}

/// The part of an activation that the `name` filter compares against: `name` or `pkg/name`.
///
/// Taken from the `path` annotation (`ns/[pkg/]name`) without its namespace, like OpenWhisk's
/// activation filter view; a binding invocation's `binding` annotation (`ns/pkg`) names the
/// package the caller used; a record without a `path` annotation matches by its `name`.
pub(crate) fn activation_match_name(activation: &Activation) -> String {
    if let Some(binding) = activation
        .annotations
        .get("binding")
        .and_then(Value::as_str)
    {
        let pkg = binding.rsplit('/').next().unwrap_or(binding);
        return format!("{pkg}/{}", activation.name);
    }
    match activation.path() {
        Some(path) => match path.split_once('/') {
            Some((_ns, tail)) => tail.to_owned(),
            None => path.to_owned(),
        },
        None => activation.name.clone(),
    }
}

/// True when `activation` passes `filter`'s namespace, name and time bounds (not skip/limit).
pub(crate) fn activation_matches(filter: &ActivationFilter, activation: &Activation) -> bool {
    activation.namespace == filter.namespace
        && filter
            .name
            .as_deref()
            .is_none_or(|name| activation_match_name(activation) == name)
        && filter.since.is_none_or(|since| activation.start >= since)
        && filter.upto.is_none_or(|upto| activation.start <= upto)
}

/// Activation list order: newest `start` first, ties by id.
pub(crate) fn activation_order(a: &Activation, b: &Activation) -> Ordering {
    b.start
        .cmp(&a.start)
        .then_with(|| a.activation_id.cmp(&b.activation_id))
}

/// Applies `skip` and `limit` (0 = no limit) to a sorted list.
pub(crate) fn page<T>(items: Vec<T>, skip: usize, limit: usize) -> Vec<T> {
    let take = if limit == 0 { usize::MAX } else { limit };
    items.into_iter().skip(skip).take(take).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_scope_matches_packages_but_not_prefix_namesakes() {
        let scope = ListScope::Namespace("guest".into());
        assert!(scope_matches(&scope, "guest"));
        assert!(scope_matches(&scope, "guest/pkg"));
        assert!(!scope_matches(&scope, "guest2"));
        assert!(!scope_matches(&scope, "guest2/pkg"));
    }

    #[test]
    fn path_scope_matches_only_the_exact_path() {
        let scope = ListScope::Path("guest/pkg".into());
        assert!(scope_matches(&scope, "guest/pkg"));
        assert!(!scope_matches(&scope, "guest"));
        assert!(!scope_matches(&scope, "guest/pkg2"));
    }

    #[test]
    fn page_with_zero_limit_returns_everything_after_skip() {
        assert_eq!(page(vec![1, 2, 3, 4], 1, 0), vec![2, 3, 4]);
        assert_eq!(page(vec![1, 2, 3, 4], 1, 2), vec![2, 3]);
        assert_eq!(page(vec![1, 2], 5, 0), Vec::<i32>::new());
    }
}
