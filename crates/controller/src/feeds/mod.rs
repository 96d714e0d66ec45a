//! Feeds for the edge: the alarms (`/whisk.system/alarms/{alarm,once,interval}`) and MQTT
//! (`/whisk.system/mqtt/subscribe`) feed actions, run by the controller itself, and the
//! [`FeedService`] task that fires their triggers (design note `docs/design/003-feeds.md`).
//!
//! A feed action is recognised by the annotation [`FEED_PROVIDER`] on an action of the
//! `whisk.system` namespace (only the system can write there). Invoking one runs a lifecycle
//! event in the controller, as OpenWhisk's feed protocol defines it: the client passes
//! `{lifecycleEvent, triggerName: "/ns/trigger", authKey, ...params}`; `CREATE` validates the
//! parameters and stores the schedule or subscription, `READ` answers it, `UPDATE` changes its
//! parameters, `PAUSE`/`UNPAUSE` stop and resume firing and `DELETE` removes it. Every
//! invocation leaves a normal activation record (success, or an application error
//! `{"error": …}`).
//!
//! Schedules and subscriptions are documents of the entity store under the path
//! [`FEEDS_PATH`] (a path no API name can reach), one per trigger, named `ns:trigger`; they
//! survive restarts. They hold no usable secret: the `authKey` the client passes is verified
//! at every lifecycle event, and the document keeps only its UUID (which is not a secret). A
//! fire resolves that UUID to the identity in the store, which must still belong to the
//! trigger's namespace, and fires as that identity through the activation service's
//! [`fire`](crate::activation::fire), as `POST triggers/{name}` does (so the namespace's fires
//! throttle, with its overrides, applies). A
//! fire answered 401 or 404 (key deleted or regenerated, trigger deleted) removes the feed.
//! Documents written by earlier versions held the whole `uuid:key`; the service migrates them
//! to the UUID when it starts (after verifying the key), and reads them until then.
//!
//! Because the feed holds no key, the actions its fires run get no `__OW_API_KEY`.

mod alarms;
mod firing;
pub(crate) mod kind;
pub(crate) mod lifecycle;
mod mqtt;
mod scheduler;
pub(crate) mod signal;
mod stored;
mod subscription;

pub use crate::catalog::FEED_PROVIDER;
pub use alarms::ONCE_GRACE_MS;
pub use kind::{FeedKind, provider};
pub use lifecycle::run_lifecycle;
pub use scheduler::FeedService;
pub use signal::FeedSignal;
pub use stored::FEEDS_PATH;
