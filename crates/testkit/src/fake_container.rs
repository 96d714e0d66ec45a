//! A scriptable, counting fake of the container backend.
//!
//! Runs reply per a script: first the global FIFO of [`FakeContainerFactory::push_run`], then a
//! per-action reply set with [`FakeContainerFactory::reply_for_action`], else an echo of the
//! arguments. Delays use tokio time, so tests run on the paused clock. Every call is counted per
//! factory and per instance, and calls that break the [`Container`] concurrency contract (run
//! before init, run while suspended, overlapping runs without concurrency, destroy while a run
//! is in flight, …) are recorded as violations for tests to assert on.

use async_trait::async_trait;
use edgewhisk_entity::time::log_line;
use edgewhisk_invoker::container::{
    CollectedLogs, Container, ContainerError, ContainerFactory, ContainerSpec, InitRequest,
    Interval, RunRequest, RunnerOutcome, RunnerReply,
};
use parking_lot::Mutex;
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How a scripted request ends.
#[derive(Debug, Clone, PartialEq)]
pub enum FakeReply {
    /// Status 200 with the run's arguments as the result (for init: `{"ok":true}`).
    Echo,
    /// This status and JSON body.
    Json(u16, Value),
    /// Waits this long (tokio time), then ends as the inner reply; if the wait is longer than
    /// the request's timeout, ends as `TimedOut` when the timeout elapses.
    Delay(Duration, Box<FakeReply>),
    /// Never replies: ends as `TimedOut` when the request's timeout elapses.
    Hang,
    /// The runner exits before replying.
    Exit,
    /// The runner is killed for exceeding its memory.
    OutOfMemory,
    /// The backend panics (to test that the invoker contains it).
    Panic,
}

impl FakeReply {
    /// `Json(200, value)`.
    pub fn ok(value: Value) -> Self {
        FakeReply::Json(200, value)
    }

    /// `Delay(d, inner)`.
    pub fn delayed(d: Duration, inner: FakeReply) -> Self {
        FakeReply::Delay(d, Box::new(inner))
    }
}

/// Calls counted over all instances of a factory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FakeCounts {
    /// `ContainerFactory::create` calls that succeeded.
    pub create: usize,
    /// `initialize` calls.
    pub init: usize,
    /// `run` calls.
    pub run: usize,
    /// `suspend` calls.
    pub suspend: usize,
    /// `resume` calls.
    pub resume: usize,
    /// `destroy` calls.
    pub destroy: usize,
    /// `cleanup` calls.
    pub cleanup: usize,
}

/// A snapshot of one fake instance.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeInstance {
    /// The spec it was created with.
    pub spec: ContainerSpec,
    /// `initialize` calls.
    pub inits: usize,
    /// `run` calls.
    pub runs: usize,
    /// `suspend` calls.
    pub suspends: usize,
    /// `resume` calls.
    pub resumes: usize,
    /// Whether it is suspended now.
    pub suspended: bool,
    /// Whether `destroy` was called.
    pub destroyed: bool,
    /// Runs in flight now.
    pub in_flight: usize,
    /// Most runs ever in flight at once.
    pub max_in_flight: usize,
    /// The environment of its `/init`, once initialised.
    pub init_env: Option<serde_json::Map<String, Value>>,
}

/// One run, in the order runs started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeRun {
    /// Index of the instance (into [`FakeContainerFactory::instances`]).
    pub instance: usize,
    /// The activation id.
    pub activation_id: String,
    /// `/ns/[pkg/]name`.
    pub action_name: String,
    /// The invoking namespace.
    pub namespace: String,
}

#[derive(Debug, Default)]
struct State {
    counts: FakeCounts,
    run_script: VecDeque<FakeReply>,
    init_script: VecDeque<FakeReply>,
    action_replies: HashMap<String, FakeReply>,
    create_failures: usize,
    instances: Vec<FakeInstance>,
    pending_logs: Vec<Vec<String>>,
    runs: Vec<FakeRun>,
    violations: Vec<String>,
}

/// The fake backend. Clones share state, so a test keeps one clone to inspect while the
/// invoker holds another.
#[derive(Debug, Clone, Default)]
pub struct FakeContainerFactory {
    state: Arc<Mutex<State>>,
}

impl FakeContainerFactory {
    /// A factory whose instances echo their arguments.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues the reply of the next run (of any instance).
    pub fn push_run(&self, reply: FakeReply) {
        self.state.lock().run_script.push_back(reply);
    }

    /// Queues the reply of the next init (of any instance).
    pub fn push_init(&self, reply: FakeReply) {
        self.state.lock().init_script.push_back(reply);
    }

    /// Sets the reply of every run of `action_name` (`/ns/[pkg/]name`) not covered by
    /// `push_run`.
    pub fn reply_for_action(&self, action_name: &str, reply: FakeReply) {
        self.state
            .lock()
            .action_replies
            .insert(action_name.to_owned(), reply);
    }

    /// Makes the next `n` creates fail.
    pub fn fail_creates(&self, n: usize) {
        self.state.lock().create_failures += n;
    }

    /// Counts over all instances.
    pub fn counts(&self) -> FakeCounts {
        self.state.lock().counts
    }

    /// Snapshots of all instances ever created, in creation order.
    pub fn instances(&self) -> Vec<FakeInstance> {
        self.state.lock().instances.clone()
    }

    /// All runs, in the order they started.
    pub fn runs(&self) -> Vec<FakeRun> {
        self.state.lock().runs.clone()
    }

    /// Contract violations seen so far (empty when the caller behaved).
    pub fn violations(&self) -> Vec<String> {
        self.state.lock().violations.clone()
    }
}

#[async_trait]
impl ContainerFactory for FakeContainerFactory {
    async fn create(&self, spec: &ContainerSpec) -> Result<Box<dyn Container>, ContainerError> {
        let mut s = self.state.lock();
        if s.create_failures > 0 {
            s.create_failures -= 1;
            return Err(ContainerError::Start(std::io::Error::other(
                "scripted create failure",
            )));
        }
        s.counts.create += 1;
        s.instances.push(FakeInstance {
            spec: spec.clone(),
            inits: 0,
            runs: 0,
            suspends: 0,
            resumes: 0,
            suspended: false,
            destroyed: false,
            in_flight: 0,
            max_in_flight: 0,
            init_env: None,
        });
        s.pending_logs.push(Vec::new());
        Ok(Box::new(FakeContainer {
            index: s.instances.len() - 1,
            state: Arc::clone(&self.state),
        }))
    }

    async fn cleanup(&self) {
        self.state.lock().counts.cleanup += 1;
    }

    fn is_isolated(&self) -> bool {
        false
    }
}

/// One fake instance.
#[derive(Debug)]
struct FakeContainer {
    index: usize,
    state: Arc<Mutex<State>>,
}

/// Decrements the in-flight count even when the run future is dropped (aborted).
struct InFlight<'a> {
    container: &'a FakeContainer,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut s = self.container.state.lock();
        let i = &mut s.instances[self.container.index];
        i.in_flight = i.in_flight.saturating_sub(1);
    }
}

fn raw(v: &Value) -> Box<RawValue> {
    RawValue::from_string(v.to_string()).expect("serialized JSON is valid JSON")
}

/// Plays a reply; `echo` is what `Echo` returns.
async fn play(reply: FakeReply, echo: Box<RawValue>, timeout: Duration) -> RunnerOutcome {
    let mut reply = reply;
    loop {
        match reply {
            FakeReply::Echo => {
                return RunnerOutcome::Replied(RunnerReply {
                    status: 200,
                    body: echo,
                });
            }
            FakeReply::Json(status, body) => {
                return RunnerOutcome::Replied(RunnerReply {
                    status,
                    body: raw(&body),
                });
            }
            FakeReply::Delay(d, inner) => {
                if d > timeout {
                    tokio::time::sleep(timeout).await;
                    return RunnerOutcome::TimedOut;
                }
                tokio::time::sleep(d).await;
                reply = *inner;
            }
            FakeReply::Hang => {
                tokio::time::sleep(timeout).await;
                return RunnerOutcome::TimedOut;
            }
            FakeReply::Exit => return RunnerOutcome::Exited,
            FakeReply::OutOfMemory => return RunnerOutcome::OutOfMemory,
            FakeReply::Panic => panic!("scripted panic in the fake container"),
        }
    }
}

impl FakeContainer {
    fn check(&self, s: &mut State, what: &str, ok: bool, why: &str) {
        if !ok {
            let name = s.instances[self.index].spec.name.clone();
            s.violations.push(format!("{what} on {name}: {why}"));
        }
    }
}

#[async_trait]
impl Container for FakeContainer {
    async fn initialize(
        &self,
        init: InitRequest,
        timeout: Duration,
    ) -> Result<(Interval, RunnerOutcome), ContainerError> {
        let reply = {
            let mut s = self.state.lock();
            s.counts.init += 1;
            let i = s.instances[self.index].clone();
            self.check(&mut s, "init", i.inits == 0, "initialised twice");
            self.check(&mut s, "init", !i.destroyed, "destroyed");
            self.check(&mut s, "init", !i.suspended, "suspended");
            let inst = &mut s.instances[self.index];
            inst.inits += 1;
            inst.init_env = Some(init.env.clone());
            s.init_script.pop_front().unwrap_or(FakeReply::Echo)
        };
        let start = SystemTime::now();
        let echo = raw(&serde_json::json!({"ok": true}));
        let outcome = play(reply, echo, timeout).await;
        if !matches!(&outcome, RunnerOutcome::Replied(r) if r.status == 200) {
            let line = log_line(SystemTime::now(), "stderr", "init failed");
            self.state.lock().pending_logs[self.index].push(line);
        }
        let interval = Interval {
            start,
            end: SystemTime::now(),
        };
        Ok((interval, outcome))
    }

    async fn run(
        &self,
        run: RunRequest,
        timeout: Duration,
    ) -> Result<(Interval, RunnerOutcome), ContainerError> {
        let reply = {
            let mut s = self.state.lock();
            s.counts.run += 1;
            let i = s.instances[self.index].clone();
            self.check(&mut s, "run", i.inits == 1, "not initialised");
            self.check(&mut s, "run", !i.destroyed, "destroyed");
            self.check(&mut s, "run", !i.suspended, "suspended");
            self.check(
                &mut s,
                "run",
                i.in_flight == 0 || i.spec.allow_concurrent,
                "overlapping runs without concurrency",
            );
            let inst = &mut s.instances[self.index];
            inst.runs += 1;
            inst.in_flight += 1;
            inst.max_in_flight = inst.max_in_flight.max(inst.in_flight);
            s.runs.push(FakeRun {
                instance: self.index,
                activation_id: run.activation_id.clone(),
                action_name: run.action_name.clone(),
                namespace: run.namespace.clone(),
            });
            let line = log_line(
                SystemTime::now(),
                "stdout",
                &format!("run {}", run.activation_id),
            );
            s.pending_logs[self.index].push(line);
            s.run_script
                .pop_front()
                .or_else(|| s.action_replies.get(&run.action_name).cloned())
                .unwrap_or(FakeReply::Echo)
        };
        let _in_flight = InFlight { container: self };
        let start = SystemTime::now();
        let outcome = play(reply, run.value, timeout).await;
        let interval = Interval {
            start,
            end: SystemTime::now(),
        };
        Ok((interval, outcome))
    }

    async fn logs(&self, limit_bytes: u64, _wait_for_sentinel: bool) -> CollectedLogs {
        let mut s = self.state.lock();
        let lines = std::mem::take(&mut s.pending_logs[self.index]);
        CollectedLogs {
            lines: if limit_bytes == 0 { Vec::new() } else { lines },
        }
    }

    async fn suspend(&self) -> Result<(), ContainerError> {
        let mut s = self.state.lock();
        s.counts.suspend += 1;
        let i = s.instances[self.index].clone();
        self.check(&mut s, "suspend", i.in_flight == 0, "run in flight");
        self.check(&mut s, "suspend", !i.suspended, "already suspended");
        let inst = &mut s.instances[self.index];
        inst.suspends += 1;
        inst.suspended = true;
        Ok(())
    }

    async fn resume(&self) -> Result<(), ContainerError> {
        let mut s = self.state.lock();
        s.counts.resume += 1;
        let i = s.instances[self.index].clone();
        self.check(&mut s, "resume", i.suspended, "not suspended");
        let inst = &mut s.instances[self.index];
        inst.resumes += 1;
        inst.suspended = false;
        Ok(())
    }

    async fn destroy(&self) {
        let mut s = self.state.lock();
        s.counts.destroy += 1;
        let i = s.instances[self.index].clone();
        self.check(&mut s, "destroy", i.in_flight == 0, "run in flight");
        s.instances[self.index].destroyed = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(allow_concurrent: bool) -> ContainerSpec {
        ContainerSpec {
            name: "c1".into(),
            kind: "nodejs:20".into(),
            memory_mb: 256,
            allow_concurrent,
        }
    }

    fn init() -> InitRequest {
        InitRequest {
            name: "a".into(),
            main: "main".into(),
            binary: false,
            code: "x".into(),
            env: serde_json::Map::new(),
        }
    }

    fn run(id: &str) -> RunRequest {
        RunRequest {
            value: RawValue::from_string(r#"{"n":1}"#.into()).unwrap(),
            namespace: "guest".into(),
            action_name: "/guest/a".into(),
            action_version: "0.0.1".into(),
            activation_id: id.into(),
            transaction_id: "t".into(),
            deadline: "0".into(),
            api_key: None,
        }
    }

    const T: Duration = Duration::from_secs(1);

    #[tokio::test(start_paused = true)]
    async fn replies_follow_the_script_then_the_action_reply_then_echo() {
        let f = FakeContainerFactory::new();
        f.push_run(FakeReply::ok(json!({"first": true})));
        f.reply_for_action("/guest/a", FakeReply::Exit);
        let c = f.create(&spec(false)).await.unwrap();
        c.initialize(init(), T).await.unwrap();
        let (_, o1) = c.run(run("1"), T).await.unwrap();
        let (_, o2) = c.run(run("2"), T).await.unwrap();
        match o1 {
            RunnerOutcome::Replied(r) => assert_eq!(r.body.get(), r#"{"first":true}"#),
            other => panic!("{other:?}"),
        }
        assert!(matches!(o2, RunnerOutcome::Exited));
        let g = FakeContainerFactory::new();
        let c = g.create(&spec(false)).await.unwrap();
        c.initialize(init(), T).await.unwrap();
        match c.run(run("1"), T).await.unwrap().1 {
            RunnerOutcome::Replied(r) => assert_eq!(r.body.get(), r#"{"n":1}"#),
            other => panic!("{other:?}"),
        }
        assert_eq!(f.counts().run, 2);
        assert!(f.violations().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn delays_longer_than_the_timeout_time_out() {
        let f = FakeContainerFactory::new();
        f.push_run(FakeReply::delayed(Duration::from_secs(5), FakeReply::Echo));
        f.push_run(FakeReply::Hang);
        let c = f.create(&spec(false)).await.unwrap();
        c.initialize(init(), T).await.unwrap();
        let before = tokio::time::Instant::now();
        assert!(matches!(
            c.run(run("1"), T).await.unwrap().1,
            RunnerOutcome::TimedOut
        ));
        assert!(matches!(
            c.run(run("2"), T).await.unwrap().1,
            RunnerOutcome::TimedOut
        ));
        assert_eq!(before.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn contract_violations_are_recorded() {
        let f = FakeContainerFactory::new();
        let c = f.create(&spec(false)).await.unwrap();
        c.run(run("1"), T).await.unwrap();
        c.suspend().await.unwrap();
        c.suspend().await.unwrap();
        let v = f.violations();
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(v[0].contains("not initialised") && v[1].contains("already suspended"));
    }

    #[tokio::test(start_paused = true)]
    async fn logs_are_handed_out_once_and_respect_a_zero_limit() {
        let f = FakeContainerFactory::new();
        let c = f.create(&spec(false)).await.unwrap();
        c.initialize(init(), T).await.unwrap();
        c.run(run("1"), T).await.unwrap();
        let logs = c.logs(1024, true).await.lines;
        assert_eq!(logs.len(), 1);
        assert!(logs[0].ends_with("stdout: run 1"));
        assert!(c.logs(1024, true).await.lines.is_empty());
        c.run(run("2"), T).await.unwrap();
        assert!(c.logs(0, true).await.lines.is_empty());
    }

    #[tokio::test]
    async fn scripted_create_failures_fail_creates() {
        let f = FakeContainerFactory::new();
        f.fail_creates(1);
        assert!(f.create(&spec(false)).await.is_err());
        assert!(f.create(&spec(false)).await.is_ok());
        assert_eq!(f.counts().create, 1);
    }
}
