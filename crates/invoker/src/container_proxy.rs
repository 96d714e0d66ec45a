//! The life of one action instance (OpenWhisk `ContainerProxy.scala`).

use crate::container::response::{self, DEVELOPER_ERROR_LOG_NOTICE, RESOURCE_PROVISION_ERROR};
use crate::container::{
    Container, ContainerError, ContainerFactory, ContainerSpec, InitRequest, Interval, RunRequest,
    RunnerOutcome,
};
use crate::record::RunFacts;
use crate::seam::{InstanceId, Job, PoolMsg, ProxyCommand};
use edgewhisk_entity::connector::ActivationMessage;
use edgewhisk_entity::time::{log_line, now_millis};
use edgewhisk_entity::{ActionLimits, ActivationResponse, Status};
use serde_json::Value;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;
use tokio::task::{JoinError, JoinSet};
use tracing::Instrument;

/// Where an instance is in its life (OpenWhisk's proxy states).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContainerState {
    /// Nothing started yet (a cold start before its first job is looked at).
    Uninitialized,
    /// The runner is being started.
    Starting,
    /// The runner is up but not initialised with an action (a stem cell).
    Started,
    /// `/init` or at least one `/run` is in flight.
    Running,
    /// Initialised and idle.
    Ready,
    /// Being suspended after `pause_grace` idle.
    Pausing,
    /// Suspended; resumed by the next job.
    Paused,
    /// Going away: takes no new jobs, finishes in-flight runs, then is destroyed.
    Removing,
}

/// One instance and the task that drives it.
///
/// # Pool ↔ proxy contract
///
/// - The pool owns the scheduling data (its `ContainerData`); the proxy owns the instance. They
///   talk only through messages: `ProxyCommand`s in, `PoolMsg` events out.
/// - The pool sends `Run` only while the instance's `active` count is below the action's
///   `limits.concurrency` (so at most that many jobs are in the proxy at once, queued in its
///   channel or in flight). Jobs that arrive before `/init` finished wait in the channel;
///   `/init` runs once, for the first of them, and later ones run on the initialised instance.
/// - The proxy reports `Started` (stem cell up), `Initialized` (data becomes `Warmed`),
///   `JobDone` for each finished job — *before* the job's record is stored and answered, so a
///   caller that saw the answer and submits again finds the instance idle — and `Removed` when
///   it decides to go away, carrying the jobs it received but never started so the pool can
///   place them elsewhere. After `Removed` it closes its channel; a `Run` that races with that
///   fails to send and stays with the pool.
/// - Developer and whisk errors, timeouts, failed suspends/resumes and panics of a run remove
///   the instance; the jobs buffered for an instance whose `/init` failed get the same error
///   (OpenWhisk does the same). Application errors keep it.
/// - `Remove` from the pool is deferred by nothing: in-flight runs are aborted (their jobs are
///   recorded as whisk errors by their drop guards), then the instance is destroyed. The pool
///   only sends it to idle instances, except at shutdown.
/// - Destroying, suspending and resuming happen in this task, never in the pool's, and never
///   while a run is in flight (the [`Container`] contract).
/// - When idle for `pause_grace` the instance is suspended; the next `Run` resumes it first.
///   Removal after the idle timeout is the pool's decision.
#[derive(Debug)]
pub struct ContainerProxy {
    id: InstanceId,
    spec: ContainerSpec,
    factory: Arc<dyn ContainerFactory>,
    pool: mpsc::UnboundedSender<PoolMsg>,
    commands: mpsc::UnboundedReceiver<ProxyCommand>,
    pause_grace: Duration,
    state: ContainerState,
    container: Arc<OnceLock<Arc<dyn Container>>>,
    initialized: bool,
    runs: JoinSet<RunDone>,
}

/// A finished run, before its record is written.
#[derive(Debug)]
struct RunDone {
    job: Job,
    facts: RunFacts,
}

/// How a proxy is started.
#[derive(Debug)]
pub(crate) struct ProxyStart {
    /// The pool's id of the instance.
    pub(crate) id: InstanceId,
    /// What to start.
    pub(crate) spec: ContainerSpec,
    /// The backend.
    pub(crate) factory: Arc<dyn ContainerFactory>,
    /// The pool's event channel.
    pub(crate) pool: mpsc::UnboundedSender<PoolMsg>,
    /// Idle time before suspending.
    pub(crate) pause_grace: Duration,
    /// The first job of a cold start; `None` starts a stem cell.
    pub(crate) first: Option<Job>,
}

impl ContainerProxy {
    /// Spawns the proxy task; returns its command channel and the task handle (which ends when
    /// the instance is destroyed).
    pub(crate) fn spawn(
        start: ProxyStart,
        tasks: &mut JoinSet<()>,
    ) -> mpsc::UnboundedSender<ProxyCommand> {
        let (tx, rx) = mpsc::unbounded_channel();
        let prewarm = start.first.is_none();
        if let Some(job) = start.first {
            // The receiver is alive: this cannot fail.
            let _ = tx.send(ProxyCommand::Run(job));
        }
        let cell: Arc<OnceLock<Arc<dyn Container>>> = Arc::new(OnceLock::new());
        let proxy = ContainerProxy {
            id: start.id,
            spec: start.spec,
            factory: start.factory,
            pool: start.pool.clone(),
            commands: rx,
            pause_grace: start.pause_grace,
            state: ContainerState::Uninitialized,
            container: Arc::clone(&cell),
            initialized: false,
            runs: JoinSet::new(),
        };
        let (id, pool) = (start.id, start.pool);
        tasks.spawn(async move {
            // The proxy runs in its own task so that a panic in it is caught here: the pool
            // is told the instance is gone and the instance is destroyed. Jobs it held are
            // dropped and recorded as whisk errors by their guards.
            if let Err(e) = tokio::spawn(proxy.run(prewarm)).await {
                tracing::error!(instance = id, error = %e, "container proxy failed");
                let _ = pool.send(PoolMsg::Removed {
                    id,
                    returned: Vec::new(),
                });
                if let Some(c) = cell.get() {
                    c.destroy().await;
                }
            }
        });
        tx
    }

    async fn run(mut self, prewarm: bool) {
        if prewarm {
            if self.create().await.is_err() {
                self.begin_removal();
                self.send(PoolMsg::Removed {
                    id: self.id,
                    returned: Vec::new(),
                });
                return;
            }
            self.send(PoolMsg::Started(self.id));
        }
        loop {
            let idle = self.state == ContainerState::Ready && self.runs.is_empty();
            let removing = self.state == ContainerState::Removing;
            tokio::select! {
                biased;
                Some(done) = self.runs.join_next(), if !self.runs.is_empty() => {
                    self.run_finished(done).await;
                }
                cmd = self.commands.recv(), if !removing => match cmd {
                    Some(ProxyCommand::Run(job)) => {
                        let span = job.span().clone();
                        self.accept(job).instrument(span).await;
                    }
                    Some(ProxyCommand::Remove) | None => {
                        self.runs.abort_all();
                        while self.runs.join_next().await.is_some() {}
                        let returned = self.begin_removal();
                        self.send(PoolMsg::Removed { id: self.id, returned });
                    }
                },
                () = tokio::time::sleep(self.pause_grace), if idle => self.pause().await,
                else => {}
            }
            if self.state == ContainerState::Removing && self.runs.is_empty() {
                if let Some(c) = self.container.get() {
                    c.destroy().await;
                }
                tracing::debug!(instance = self.id, "instance destroyed");
                return;
            }
        }
    }

    fn send(&self, msg: PoolMsg) {
        // The pool outlives its proxies except at the very end of shutdown; then the message
        // (and any job in it) is dropped and the job's guard records it.
        let _ = self.pool.send(msg);
    }

    fn set_state(&mut self, state: ContainerState) {
        tracing::trace!(instance = self.id, from = ?self.state, to = ?state, "proxy state");
        self.state = state;
    }

    async fn create(&mut self) -> Result<Arc<dyn Container>, ContainerError> {
        if let Some(c) = self.container.get() {
            return Ok(Arc::clone(c));
        }
        self.set_state(ContainerState::Starting);
        match self.factory.create(&self.spec).await {
            Ok(c) => {
                let c: Arc<dyn Container> = Arc::from(c);
                let _ = self.container.set(Arc::clone(&c));
                self.set_state(ContainerState::Started);
                Ok(c)
            }
            Err(e) => {
                tracing::warn!(instance = self.id, kind = %self.spec.kind, error = %e, "starting an instance failed");
                Err(e)
            }
        }
    }

    /// Stops taking jobs and returns the ones received but not started.
    fn begin_removal(&mut self) -> Vec<Job> {
        self.set_state(ContainerState::Removing);
        self.commands.close();
        let mut jobs = Vec::new();
        while let Ok(cmd) = self.commands.try_recv() {
            if let ProxyCommand::Run(job) = cmd {
                jobs.push(job);
            }
        }
        jobs
    }

    async fn accept(&mut self, job: Job) {
        let Ok(container) = self.create().await else {
            let response = ActivationResponse::error(Status::WhiskError, RESOURCE_PROVISION_ERROR);
            self.fail_all(job, RunFacts::unstarted(response)).await;
            return;
        };
        if self.state == ContainerState::Paused {
            if let Err(e) = container.resume().await {
                tracing::warn!(instance = self.id, error = %e, "resuming an instance failed");
                let mut returned = vec![job];
                returned.extend(self.begin_removal());
                self.send(PoolMsg::Removed {
                    id: self.id,
                    returned,
                });
                return;
            }
            self.set_state(ContainerState::Ready);
        }
        let init = if self.initialized {
            None
        } else {
            self.set_state(ContainerState::Running);
            match initialize(&*container, job.msg()).await {
                Ok(interval) => {
                    self.initialized = true;
                    self.send(PoolMsg::Initialized(self.id));
                    Some(interval)
                }
                Err(facts) => {
                    self.fail_all(job, facts).await;
                    return;
                }
            }
        };
        self.set_state(ContainerState::Running);
        let span = job.span().clone();
        self.runs
            .spawn(run_job(container, job, init).instrument(span));
    }

    /// Answers `job` and every job buffered for this instance with the same failure, and goes
    /// away (a failed start or init).
    async fn fail_all(&mut self, job: Job, facts: RunFacts) {
        let buffered = self.begin_removal();
        self.send(PoolMsg::Removed {
            id: self.id,
            returned: Vec::new(),
        });
        for other in buffered {
            let facts = RunFacts {
                logs: Vec::new(),
                ..facts.clone()
            };
            other.finish(facts).await;
        }
        job.finish(facts).await;
    }

    async fn run_finished(&mut self, done: Result<RunDone, JoinError>) {
        match done {
            Ok(RunDone { job, facts }) => {
                if response::destroys_instance(facts.response.status) {
                    let returned = self.begin_removal();
                    self.send(PoolMsg::Removed {
                        id: self.id,
                        returned,
                    });
                } else {
                    self.send(PoolMsg::JobDone(self.id));
                }
                job.finish(facts).await;
            }
            Err(e) => {
                // The job was dropped while unwinding; its guard records a whisk error.
                tracing::error!(instance = self.id, error = %e, "a run task failed");
                if self.state != ContainerState::Removing {
                    let returned = self.begin_removal();
                    self.send(PoolMsg::Removed {
                        id: self.id,
                        returned,
                    });
                }
            }
        }
        if self.runs.is_empty() && self.state == ContainerState::Running {
            self.set_state(ContainerState::Ready);
        }
    }

    async fn pause(&mut self) {
        let Some(c) = self.container.get().cloned() else {
            return;
        };
        self.set_state(ContainerState::Pausing);
        match c.suspend().await {
            Ok(()) => self.set_state(ContainerState::Paused),
            Err(e) => {
                tracing::warn!(instance = self.id, error = %e, "suspending an instance failed");
                let returned = self.begin_removal();
                self.send(PoolMsg::Removed {
                    id: self.id,
                    returned,
                });
            }
        }
    }
}

fn action_timeout(msg: &ActivationMessage) -> Duration {
    Duration::from_millis(msg.action.limits.timeout)
}

/// Whether the action may see the caller's key: `provide-api-key` truthy or absent.
fn api_key_for(msg: &ActivationMessage) -> Option<String> {
    let annotations = &msg.action.annotations;
    let allowed =
        annotations.get("provide-api-key").is_none() || annotations.is_truthy("provide-api-key");
    if allowed { msg.api_key.clone() } else { None }
}

/// An environment value as the runtimes expect it: strings as is, null as "", the rest as
/// compact JSON text.
fn env_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The `/init` request (OpenWhisk `ContainerProxy.initializeAndRun`; the fields are those of
/// `POST /init` in upstream `docs/actions-new.md`): code, entry point and the `__OW_*`
/// context plus `init: true` parameters as environment.
pub(crate) fn init_request(msg: &ActivationMessage) -> InitRequest {
    let action = &msg.action;
    let deadline = now_millis().saturating_add(action.limits.timeout);
    let mut env = serde_json::Map::new();
    let mut put = |k: &str, v: String| {
        env.insert(k.to_owned(), Value::String(v));
    };
    put("__OW_NAMESPACE", msg.namespace.clone());
    put("__OW_ACTION_NAME", action.name.to_string());
    put("__OW_ACTION_VERSION", action.version.clone());
    put("__OW_ACTIVATION_ID", msg.activation_id.to_string());
    put("__OW_TRANSACTION_ID", msg.transaction_id.clone());
    put("__OW_DEADLINE", deadline.to_string());
    if let Some(key) = api_key_for(msg) {
        put("__OW_API_KEY", key);
    }
    for kv in &action.init_parameters.0 {
        put(&kv.key, env_string(&kv.value));
    }
    InitRequest {
        name: action.name.name.clone(),
        main: action
            .exec
            .main
            .clone()
            .unwrap_or_else(|| "main".to_owned()),
        binary: action.exec.binary,
        code: action.exec.code.clone(),
        env,
    }
}

/// The `/run` request (the fields of `POST /run` in upstream `docs/actions-new.md`): the
/// arguments passed through unparsed, with the activation context.
pub(crate) fn run_request(msg: &ActivationMessage) -> RunRequest {
    let action = &msg.action;
    RunRequest {
        value: msg.content.clone(),
        namespace: msg.namespace.clone(),
        action_name: action.name.to_string(),
        action_version: action.version.clone(),
        activation_id: msg.activation_id.to_string(),
        transaction_id: msg.transaction_id.clone(),
        deadline: now_millis()
            .saturating_add(action.limits.timeout)
            .to_string(),
        api_key: api_key_for(msg),
    }
}

/// Bounds a backend call by the action's time limit plus slack; a backend that overruns is
/// treated as timed out, one that fails as exited.
async fn bounded<F>(timeout: Duration, call: F) -> (Interval, RunnerOutcome, Option<ContainerError>)
where
    F: Future<Output = Result<(Interval, RunnerOutcome), ContainerError>>,
{
    let start = SystemTime::now();
    match tokio::time::timeout(timeout + ActionLimits::BACKEND_SLACK, call).await {
        Ok(Ok((interval, outcome))) => (interval, outcome, None),
        Ok(Err(e)) => {
            let interval = Interval {
                start,
                end: SystemTime::now(),
            };
            (interval, RunnerOutcome::Exited, Some(e))
        }
        Err(_) => {
            let interval = Interval {
                start,
                end: SystemTime::now(),
            };
            (interval, RunnerOutcome::TimedOut, None)
        }
    }
}

/// Logs of one request; developer errors get OpenWhisk's notice appended.
async fn collect_logs(
    container: &dyn Container,
    msg: &ActivationMessage,
    outcome: &RunnerOutcome,
    status: Status,
) -> Vec<String> {
    let limit = msg.action.limits.logs.saturating_mul(1024 * 1024);
    let mut lines = container
        .logs(limit, response::runner_alive(outcome))
        .await
        .lines;
    if status == Status::DeveloperError && limit > 0 {
        lines.push(log_line(
            SystemTime::now(),
            "stderr",
            DEVELOPER_ERROR_LOG_NOTICE,
        ));
    }
    lines
}

/// Sends `/init`; on failure returns the facts of the failed activation.
async fn initialize(
    container: &dyn Container,
    msg: &ActivationMessage,
) -> Result<Interval, RunFacts> {
    let timeout = action_timeout(msg);
    let (interval, outcome, error) =
        bounded(timeout, container.initialize(init_request(msg), timeout)).await;
    let failure = match error {
        Some(ContainerError::Archive(e)) => Some(ActivationResponse::error(
            Status::DeveloperError,
            format!("The action failed during initialization: {e}"),
        )),
        Some(e) => {
            tracing::warn!(error = %e, "init request failed");
            response::init_failure(&outcome, timeout)
        }
        None => response::init_failure(&outcome, timeout),
    };
    match failure {
        None => Ok(interval),
        Some(response) => {
            let logs = collect_logs(container, msg, &outcome, response.status).await;
            Err(RunFacts {
                init: Some(interval),
                run: None,
                timed_out: response::is_timeout(&outcome),
                response,
                logs,
            })
        }
    }
}

/// One `/run` with its classification and logs (a task of its own, so a panic is contained).
async fn run_job(container: Arc<dyn Container>, job: Job, init: Option<Interval>) -> RunDone {
    let msg = job.msg();
    let timeout = action_timeout(msg);
    let (interval, outcome, error) =
        bounded(timeout, container.run(run_request(msg), timeout)).await;
    if let Some(e) = error {
        tracing::warn!(error = %e, "run request failed");
    }
    let response = response::run_response(&outcome, timeout);
    let logs = collect_logs(&*container, msg, &outcome, response.status).await;
    let facts = RunFacts {
        init,
        run: Some(interval),
        timed_out: response::is_timeout(&outcome),
        response,
        logs,
    };
    RunDone { job, facts }
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgewhisk_testkit::fixtures;
    use serde_json::json;

    fn msg(annotations: Value, init_params: Value, api_key: Option<&str>) -> ActivationMessage {
        let action = fixtures::action("guest", "hello")
            .package("pkg")
            .version("0.0.2")
            .code("function main(){}")
            .main("run")
            .timeout(1000)
            .init_parameters(init_params)
            .annotations(annotations)
            .build();
        let msg = fixtures::activation_message(&action)
            .transaction_id("tid-1")
            .activation_id("0123456789abcdef0123456789abcdef")
            .namespace("alice")
            .subject("alice")
            .content(json!({"x": 1}))
            .received_at(0);
        match api_key {
            Some(key) => msg.api_key(key).build(),
            None => msg.build(),
        }
    }

    #[test]
    fn init_env_carries_context_and_init_parameters_as_strings() {
        let m = msg(
            json!([]),
            json!([
                {"key":"s","value":"text","init":true},
                {"key":"n","value":3,"init":true},
                {"key":"o","value":{"a":[1]},"init":true},
                {"key":"z","value":null,"init":true},
            ]),
            Some("uuid:key"),
        );
        let before = now_millis();
        let init = init_request(&m);
        assert_eq!(init.name, "hello");
        assert_eq!(init.main, "run");
        assert!(!init.binary);
        let env = &init.env;
        assert_eq!(env["__OW_NAMESPACE"], json!("alice"));
        assert_eq!(env["__OW_ACTION_NAME"], json!("/guest/pkg/hello"));
        assert_eq!(env["__OW_ACTION_VERSION"], json!("0.0.2"));
        assert_eq!(
            env["__OW_ACTIVATION_ID"],
            json!("0123456789abcdef0123456789abcdef")
        );
        assert_eq!(env["__OW_TRANSACTION_ID"], json!("tid-1"));
        assert_eq!(env["__OW_API_KEY"], json!("uuid:key"));
        let deadline: u64 = env["__OW_DEADLINE"].as_str().unwrap().parse().unwrap();
        assert!(deadline >= before + 1000 && deadline <= now_millis() + 1000);
        assert_eq!(env["s"], json!("text"));
        assert_eq!(env["n"], json!("3"));
        assert_eq!(env["o"], json!(r#"{"a":[1]}"#));
        assert_eq!(env["z"], json!(""));
    }

    #[test]
    fn api_key_is_passed_only_when_provide_api_key_is_truthy_or_absent() {
        let cases = [
            (json!([]), true),
            (json!([{"key":"provide-api-key","value":true}]), true),
            (json!([{"key":"provide-api-key","value":false}]), false),
        ];
        for (annotations, passed) in cases {
            let m = msg(annotations.clone(), json!([]), Some("uuid:key"));
            assert_eq!(
                init_request(&m).env.contains_key("__OW_API_KEY"),
                passed,
                "{annotations}"
            );
            assert_eq!(run_request(&m).api_key.is_some(), passed, "{annotations}");
        }
    }

    #[test]
    fn run_request_passes_arguments_through_with_context() {
        let m = msg(json!([]), json!([]), None);
        let run = run_request(&m);
        let v = serde_json::to_value(&run).unwrap();
        assert_eq!(v["value"], json!({"x":1}));
        assert_eq!(v["action_name"], json!("/guest/pkg/hello"));
        assert_eq!(v["namespace"], json!("alice"));
        assert!(v.get("api_key").is_none());
    }
}
