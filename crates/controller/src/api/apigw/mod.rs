//! OpenWhisk's API gateway, built in: the route management endpoints
//! (`/api/v1/web/whisk.system/apimgmt/{createApi,getApi,deleteApi}`, module `mgmt`), APIs
//! stored per namespace in the entity store (`store`, `model`), and the routes served at
//! `/api/<key uuid>/<basepath>/<relpath>` through the web action code (`gateway`).
//!
//! The contract, the URL form, CORS and what is left out are described in
//! `docs/design/022-api-gateway.md`.

mod gateway;
mod mgmt;
mod model;
mod store;

use crate::error::TransactionId;
use crate::state::AppState;
use axum::extract::{Path, Request, State};
use axum::response::Response;

/// The package of `whisk.system` that holds the route management actions.
const APIMGMT: &str = "apimgmt";

/// Any method on `/api/v1/web/whisk.system/{pkg}/{*rest}`: the route management endpoints
/// for `apimgmt`, any other `whisk.system` web action as `api::web` serves it.
pub async fn system_web(
    State(state): State<AppState>,
    tid: TransactionId,
    Path((pkg, rest)): Path<(String, String)>,
    req: Request,
) -> Response {
    if pkg == APIMGMT {
        return mgmt::handle(&state, &rest, req).await;
    }
    let path = Path(("whisk.system".to_owned(), pkg, rest));
    crate::api::web::handle(State(state), tid, path, req).await
}

/// Any method on `/api/{uuid}/{*rest}`: a route of the namespace whose key has that UUID.
pub async fn routes(
    State(state): State<AppState>,
    tid: TransactionId,
    Path((uuid, rest)): Path<(String, String)>,
    req: Request,
) -> Response {
    gateway::serve(state, tid, &uuid, &rest, req).await
}
