//! Every user-visible string of the REST API, worded as OpenWhisk words it
//! (`common/scala/.../http/ErrorResponse.scala` `Messages`, and the Pekko rejection texts that
//! OpenWhisk wraps into its error body). Clients only display these, but scripts and tests
//! compare them, so they live in one place.

/// 404 for an entity or route that does not exist.
pub const RESOURCE_DOES_NOT_EXIST: &str = "The requested resource does not exist.";
/// 409 when `PUT` targets an existing entity without `overwrite=true`.
pub const RESOURCE_ALREADY_EXISTS: &str = "resource already exists";
/// 409 when the name is taken by an entity of another collection.
pub const CONFORMANCE: &str = "Resource by this name exists but is not in this collection.";
/// 409 when the stored document changed between read and write.
pub const CONCURRENT_MODIFICATION: &str = "Concurrent modification to resource detected.";
/// 400 on create without `exec`.
pub const EXEC_UNDEFINED: &str = "exec undefined";
/// 401 when no credentials were sent (Pekko's `CredentialsMissing` text).
pub const CREDENTIALS_MISSING: &str =
    "The resource requires authentication, which was not supplied with the request";
/// 401 when the credentials are not valid (Pekko's `CredentialsRejected` text).
pub const CREDENTIALS_REJECTED: &str = "The supplied authentication is invalid";
/// The `WWW-Authenticate` challenge of 401 responses.
pub const AUTH_CHALLENGE: &str = "Basic realm=\"OpenWhisk secure realm\"";
/// 500 for anything unexpected; details go to the log, never to the client.
pub const INTERNAL_SERVER_ERROR: &str = "Internal Server Error";
/// 503 when the load balancer cannot take the activation.
pub const SERVICE_UNAVAILABLE: &str =
    "The server is currently unavailable (because it is overloaded or down for maintenance).";
/// 503 when a cluster balancer has no healthy invoker (OpenWhisk's text).
pub const NO_INVOKERS_AVAILABLE: &str = "No invokers available.";
/// 507 while the store refuses writes: its disk is full or below the configured free-space
/// floor. Reads keep working; writes work again once space is freed.
pub const STORE_FULL: &str = "The server is out of storage space: the request was not stored. Delete \
activations or entities, or free disk space on the server, then retry.";
/// 503 while the store cannot reach its database (a cluster's PostgreSQL is down or
/// unreachable). The controller reconnects by itself.
pub const STORE_UNAVAILABLE: &str = "The server cannot reach its database: the request may not \
have been carried out. Retry shortly.";
/// 400 when a body defines parameters that a `final` action already fixes.
pub const PARAMETERS_NOT_ALLOWED: &str =
    "Request defines parameters that are not allowed (e.g., reserved properties).";
/// 400 when an activation list asks for both `docs` and `count`.
pub const DOCS_NOT_ALLOWED_WITH_COUNT: &str = "The parameter 'docs' is not permitted with 'count'.";
/// 400 for an activation id that is not 32 hex characters.
pub const ACTIVATION_ID_ILLEGAL: &str = "The activation id is not valid.";
/// The request body of an invoke must be a JSON object.
pub const OBJECT_EXPECTED: &str = "Object expected";

/// 403 for a resource of another namespace; `value` is `namespace[/entity]`.
pub fn not_authorized(value: &str) -> String {
    format!("The supplied authentication is not authorized to access '{value}'.")
}

/// 429 over the per-minute rate.
pub fn too_many_requests(count: u64, allowed: u64) -> String {
    format!("Too many requests in the last minute (count: {count}, allowed: {allowed}).")
}

/// 429 over the concurrent-activations limit.
pub fn too_many_concurrent_requests(count: u64, allowed: u64) -> String {
    format!("Too many concurrent requests in flight (count: {count}, allowed: {allowed}).")
}

/// 413 for a field (or the whole request) over its size limit.
pub fn entity_too_big(field: &str, is: u64, allowed: u64) -> String {
    format!("{field} larger than allowed: {is} > {allowed} bytes.")
}

/// 400 for an invoke `timeout` out of range.
pub fn invalid_timeout(max_ms: u64) -> String {
    format!("Timeout must be number of milliseconds up to {max_ms}.")
}

/// 400 for a list `limit` out of range.
pub fn list_limit_out_of_range(collection: &str, value: i64, max: usize) -> String {
    format!("The value '{value}' is not in the range of 0 to {max} for {collection}.")
}

/// 400 for a negative list `skip`.
pub fn list_skip_out_of_range(collection: &str, value: i64) -> String {
    format!("The value '{value}' is not greater than or equal to 0 for {collection}.")
}

/// 400 for a list `limit`/`skip` that is not an integer.
pub fn argument_not_integer(collection: &str, value: &str) -> String {
    format!("The value '{value}' is not an integer for {collection}.")
}

/// 400 for an activation `name` filter that is not `name` or `pkg/name`.
pub fn bad_name_filter(value: &str) -> String {
    format!("Parameter may be a 'simple' name or 'package-name/simple' name: {value}")
}

/// 400 for an activation `since`/`upto` that is not epoch milliseconds.
pub fn bad_epoch(value: &str) -> String {
    format!("Parameter is not a valid value for epoch seconds: {value}")
}

/// 400 for an activation id of the wrong length.
pub fn activation_id_length(len: usize) -> String {
    format!("activation id length is {len} but must be 32.")
}

/// 400 for a boolean query parameter that is not `true`/`false`.
pub fn not_a_boolean(value: &str) -> String {
    format!("'{value}' is not a valid Boolean value")
}

/// Pekko's text for a query parameter that could not be read, which OpenWhisk wraps.
pub fn malformed_query_param(name: &str, detail: &str) -> String {
    format!("The query parameter '{name}' was malformed:\n{detail}")
}

/// Pekko's text for a request body that could not be read, which OpenWhisk wraps.
pub fn malformed_content(detail: &str) -> String {
    format!("The request content was malformed:\n{detail}")
}

/// Pekko's text for a method the route does not serve.
pub fn method_not_allowed(allowed: &str) -> String {
    format!("HTTP method not allowed, supported methods: {allowed}")
}

/// 400 for an `exec` whose `version` is not `major.minor.patch`.
pub fn invalid_version(value: &str) -> String {
    malformed_content(&format!("'{value}' is not a valid semantic version"))
}

/// 400 for binary code that is not base64 or not a zip archive.
pub fn invalid_archive(detail: &str) -> String {
    format!("The action's code is not a valid zip archive: {detail}.")
}

/// 400 for a zip archive entry that would escape the unpack directory.
pub fn unsafe_archive_entry(name: &str) -> String {
    format!("The action's zip archive contains an entry with an unsafe path: '{name}'.")
}

/// 400 for PUT/DELETE of an action addressed through a package binding.
pub const NOT_ALLOWED_ON_BINDING: &str = "Operation not permitted on package binding.";
/// 400 for a binding whose target package does not exist.
pub const BINDING_DOES_NOT_EXIST: &str = "Binding references a package that does not exist.";
/// 400 for a binding whose target is itself a binding.
pub const BINDING_CANNOT_REFERENCE_BINDING: &str = "Cannot bind to another package binding.";
/// 409 when an update would turn a plain package into a binding.
pub const PACKAGE_CANNOT_BECOME_BINDING: &str =
    "Resource is a package and cannot be converted into a binding.";

/// 400 for a package named `default`.
pub fn package_name_reserved(name: &str) -> String {
    format!("Package name '{name}' is reserved.")
}

/// 409 for deleting a package that still contains entities without `force=true`.
pub fn package_not_empty(count: usize) -> String {
    format!(
        "Package not empty (contains {count} entities). Set force param or delete package contents."
    )
}

/// 400 on creating a sequence without components.
pub const SEQUENCE_NO_COMPONENT: &str = "No component specified for the sequence.";
/// 400 at create, application error at run: more atomic actions than the sequence limit.
pub const SEQUENCE_IS_TOO_LONG: &str = "Too many actions in the sequence.";
/// 400 on creating a sequence that contains itself.
pub const SEQUENCE_IS_CYCLIC: &str = "Sequence may not refer to itself.";
/// 400 at create, application error at run: a component does not exist.
pub const SEQUENCE_COMPONENT_NOT_FOUND: &str = "Sequence component does not exist.";
/// Whisk error of a sequence whose component could not be invoked.
pub const SEQUENCE_ACTIVATION_FAILURE: &str = "Sequence failed.";
/// Application error of a composition over its component or conductor limit.
pub const COMPOSITION_IS_TOO_LONG: &str = "Too many actions in the composition.";
/// Whisk error of a composition whose conductor or component could not be invoked.
pub const COMPOSITION_ACTIVATION_FAILURE: &str = "Activation failure during composition.";

/// Whisk error of a sequence whose component gave no result in time.
pub fn sequence_retrieve_activation_timeout(id: &str) -> String {
    format!("Timeout reached when retrieving activation {id} for sequence component.")
}

/// Whisk error of a composition whose conductor or component gave no result in time.
pub fn composition_activation_timeout(id: &str) -> String {
    format!("Timeout reached when retrieving activation {id} during composition.")
}

/// Application error of a conductor result whose `action` is not a name.
pub fn composition_component_invalid(value: &str) -> String {
    format!("Failed to parse action name from json value {value} during composition.")
}

/// Application error of a conductor result naming an action that does not exist.
pub fn composition_component_not_found(name: &str) -> String {
    format!("Failed to resolve action with name '{name}' during composition.")
}

/// Application error of a conductor result naming an action the caller may not run.
pub fn composition_component_not_accessible(name: &str) -> String {
    format!("Failed entitlement check for action with name '{name}' during composition.")
}

/// 400 for a trigger whose `feed` annotation is not a fully qualified entity path.
pub const FEED_NAME_INVALID: &str = "Feed name is not valid";
/// 404 for enabling or disabling a rule whose trigger is gone.
pub const RULE_TRIGGER_MISSING: &str = "Only rules with existing triggers can be activated";
/// 400 for a rule created without a trigger or an action.
pub const RULE_NEEDS_TRIGGER_AND_ACTION: &str = "A rule requires a trigger and an action.";
/// 400 for a rule whose trigger is not in the rule's namespace or inside a package.
pub const RULE_TRIGGER_NOT_LOCAL: &str = "A rule's trigger must be in the rule's namespace.";

/// The trigger activation's error for a linked rule that is not active.
pub fn rule_inactive(rule: &str, action: &str) -> String {
    format!("Rule '{rule}' is inactive, action '{action}' was not activated.")
}

/// 400 for a rule whose trigger or action (`kind`) does not exist; `name` is `/ns/[pkg/]x`.
pub fn rule_target_missing(kind: &str, name: &str) -> String {
    format!("The {kind} '{name}' does not exist.")
}

/// 400 for a rule status other than `active` or `inactive`.
pub fn rule_status_invalid(value: &str) -> String {
    format!("Status '{value}' is not valid; use 'active' or 'inactive'.")
}

/// Web actions: 404 when the result lacks the property the extension renders (`.text`), or an
/// application error has no `error` field.
pub const PROPERTY_NOT_FOUND: &str = "Response does not include requested property.";
/// Web actions: 202 when the action did not finish within the wait.
pub const RESPONSE_NOT_READY: &str = "Response not yet ready.";
/// Web actions: 400 for a `.http` result whose content type does not parse.
pub const HTTP_UNKNOWN_CONTENT_TYPE: &str = "Response did not specify a known content-type.";
/// Web actions: 400 for a `.http` body that does not match its declared content type.
pub const HTTP_CONTENT_TYPE_ERROR: &str =
    "Response type in header did not match generated content type.";
/// Web actions: 400 when the action failed with a developer or whisk error.
pub const ERROR_PROCESSING_REQUEST: &str = "There was an error processing your request.";
/// Web actions: 401 for `require-whisk-auth` not satisfied (Pekko's `Unauthorized` text).
pub const WEB_UNAUTHORIZED: &str =
    "Authentication is possible but has failed or not yet been provided.";

/// Web actions: 400 for a result that cannot be rendered as `media_type`.
pub fn invalid_media(media_type: &str) -> String {
    format!("Response is not valid '{media_type}'.")
}
