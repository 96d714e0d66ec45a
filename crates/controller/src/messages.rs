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
