//! Component tests of the invoker: pool, proxies and front together, with the fake backend and
//! tokio's paused clock (timers are virtual; nothing sleeps in real time).

#[cfg(test)]
mod tests {
    use edgewhisk_entity::connector::{ActivationMessage, CompletionMessage, ExecutableAction};
    use edgewhisk_entity::{Activation, Status};
    use edgewhisk_invoker::config::PrewarmConfig;
    use edgewhisk_invoker::{Invoker, InvokerError, PoolConfig};
    use edgewhisk_store::{ActivationStore, MemoryStore};
    use edgewhisk_testkit::{FakeContainerFactory, FakeReply, fixtures};
    use serde_json::{Value, json};
    use std::sync::Arc;
    use std::time::Duration;
    use tokio::sync::oneshot;

    struct Harness {
        invoker: Invoker,
        fake: FakeContainerFactory,
        store: Arc<MemoryStore>,
    }

    fn config(user_memory_mb: u64, prewarm: Vec<PrewarmConfig>) -> PoolConfig {
        PoolConfig {
            user_memory_mb,
            prewarm,
            pause_grace_ms: 10_000,
            idle_timeout_ms: 600_000,
            log_sentinel_timeout_ms: 2_000,
            ..PoolConfig::default()
        }
    }

    fn start(config: PoolConfig) -> Harness {
        let fake = FakeContainerFactory::new();
        let store = Arc::new(MemoryStore::new());
        let invoker = Invoker::start(config, Arc::new(fake.clone()), store.clone());
        Harness {
            invoker,
            fake,
            store,
        }
    }

    struct ActionSpec {
        name: &'static str,
        version: &'static str,
        kind: &'static str,
        memory: u64,
        concurrency: u32,
        timeout: u64,
    }

    impl ActionSpec {
        fn new(name: &'static str) -> Self {
            Self {
                name,
                version: "0.0.1",
                kind: "nodejs:20",
                memory: 256,
                concurrency: 1,
                timeout: 60_000,
            }
        }

        fn build(self) -> Arc<ExecutableAction> {
            fixtures::action("guest", self.name)
                .version(self.version)
                .kind(self.kind)
                .memory(self.memory)
                .concurrency(self.concurrency)
                .timeout(self.timeout)
                .build()
        }
    }

    fn action(name: &'static str) -> Arc<ExecutableAction> {
        ActionSpec::new(name).build()
    }

    fn message(namespace: &str, action: &Arc<ExecutableAction>, n: u32) -> ActivationMessage {
        fixtures::activation_message(action)
            .transaction_id(&format!("tid-{n}"))
            .namespace(namespace)
            .content(json!({ "n": n }))
            .build()
    }

    impl Harness {
        fn submit(&self, msg: ActivationMessage) -> oneshot::Receiver<CompletionMessage> {
            self.invoker.submit(msg).expect("accepted")
        }

        async fn invoke(
            &self,
            namespace: &str,
            action: &Arc<ExecutableAction>,
            n: u32,
        ) -> Activation {
            answer(self.submit(message(namespace, action, n))).await
        }

        async fn stored(&self, a: &Activation) -> Activation {
            self.store
                .get(&a.namespace, &a.activation_id)
                .await
                .unwrap()
                .expect("record stored")
        }

        fn assert_contract_kept(&self) {
            assert_eq!(self.fake.violations(), Vec::<String>::new());
        }
    }

    /// The answer to a submitted job. The paused clock turns a stuck pool into a quick failure
    /// instead of a hang.
    async fn answer(rx: oneshot::Receiver<CompletionMessage>) -> Activation {
        tokio::time::timeout(Duration::from_secs(3600), rx)
            .await
            .expect("answered within an hour of virtual time")
            .expect("answer sent")
            .activation
    }

    /// Lets every task run until all wait on something, moving the paused clock by 1 ms.
    async fn settle() {
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    fn error_of(a: &Activation) -> Value {
        a.response.result.as_ref().expect("result")["error"].clone()
    }

    #[tokio::test(start_paused = true)]
    async fn reuses_warm_instance_for_same_action_and_namespace() {
        let h = start(config(1024, vec![]));
        let a = action("hello");
        let first = h.invoke("guest", &a, 1).await;
        let second = h.invoke("guest", &a, 2).await;
        let c = h.fake.counts();
        assert_eq!((c.create, c.init, c.run), (1, 1, 2));
        assert_eq!(first.response.status, Status::Success);
        assert_eq!(first.response.result, Some(json!({"n": 1})));
        assert_eq!(second.response.result, Some(json!({"n": 2})));
        assert!(first.annotations.get("initTime").is_some());
        assert!(second.annotations.get("initTime").is_none());
        assert_eq!(first.annotations.get("path"), Some(&json!("guest/hello")));
        assert_eq!(first.annotations.get("kind"), Some(&json!("nodejs:20")));
        assert_eq!(first.logs.len(), 1);
        assert!(first.logs[0].ends_with(&format!("stdout: run {}", first.activation_id)));
        assert_eq!(h.stored(&second).await, second);
        h.assert_contract_kept();
    }

    #[tokio::test(start_paused = true)]
    async fn does_not_share_instances_across_namespaces_or_versions() {
        let h = start(config(1024, vec![]));
        let v1 = action("hello");
        let v2 = ActionSpec {
            version: "0.0.2",
            ..ActionSpec::new("hello")
        }
        .build();
        h.invoke("guest", &v1, 1).await;
        let other_ns = h.invoke("alice", &v1, 2).await;
        h.invoke("guest", &v2, 3).await;
        assert_eq!(h.fake.counts().create, 3);
        let runs = h.fake.runs();
        let instances: Vec<usize> = runs.iter().map(|r| r.instance).collect();
        assert_eq!(instances, vec![0, 1, 2]);
        assert_eq!(other_ns.namespace, "alice");
        assert_eq!(runs[1].namespace, "alice");
        h.invoke("guest", &v1, 4).await;
        assert_eq!(h.fake.runs()[3].instance, 0);
        h.assert_contract_kept();
    }

    #[tokio::test(start_paused = true)]
    async fn uses_a_stem_cell_for_a_matching_kind_and_refills_it() {
        let prewarm = vec![PrewarmConfig {
            kind: "nodejs:20".into(),
            count: 1,
            memory_mb: 256,
        }];
        let h = start(config(1024, prewarm));
        settle().await;
        assert_eq!(h.fake.counts().create, 1);
        assert_eq!(h.fake.counts().cleanup, 1);
        let first = h.invoke("guest", &action("hello"), 1).await;
        assert_eq!(h.fake.runs()[0].instance, 0, "the stem cell ran it");
        assert!(first.annotations.get("initTime").is_some());
        settle().await;
        assert_eq!(h.fake.counts().create, 2, "a new stem cell replaced it");
        let python = ActionSpec {
            kind: "python:3",
            ..ActionSpec::new("py")
        }
        .build();
        h.invoke("guest", &python, 2).await;
        assert_eq!(
            h.fake.runs()[1].instance,
            2,
            "no stem cell of that kind: cold start"
        );
        assert_eq!(
            h.fake.instances()[1].inits,
            0,
            "the new stem cell is untouched"
        );
        h.assert_contract_kept();
    }

    #[tokio::test(start_paused = true)]
    async fn evicts_least_recently_used_idle_instance_when_memory_is_short() {
        let h = start(config(512, vec![]));
        let (a, b, c) = (action("a"), action("b"), action("c"));
        h.invoke("guest", &a, 1).await;
        h.invoke("guest", &b, 2).await;
        h.invoke("guest", &a, 3).await;
        h.invoke("guest", &c, 4).await;
        settle().await;
        let instances = h.fake.instances();
        assert_eq!(instances.len(), 3);
        assert!(!instances[0].destroyed, "a was used most recently");
        assert!(instances[1].destroyed, "b was the least recently used");
        assert!(!instances[2].destroyed);
        h.assert_contract_kept();
    }

    #[tokio::test(start_paused = true)]
    async fn evicts_a_stem_cell_when_nothing_else_can_free_memory() {
        let prewarm = vec![PrewarmConfig {
            kind: "nodejs:20".into(),
            count: 2,
            memory_mb: 256,
        }];
        let h = start(config(512, prewarm));
        settle().await;
        let python = ActionSpec {
            kind: "python:3",
            ..ActionSpec::new("py")
        }
        .build();
        let r = h.invoke("guest", &python, 1).await;
        assert_eq!(r.response.status, Status::Success);
        settle().await;
        let instances = h.fake.instances();
        assert_eq!(instances.len(), 3);
        assert_eq!(instances.iter().filter(|i| i.destroyed).count(), 1);
        assert_eq!(instances[2].spec.kind, "python:3");
        h.assert_contract_kept();
    }

    #[tokio::test(start_paused = true)]
    async fn init_failure_answers_jobs_buffered_for_the_instance_with_the_same_error() {
        let h = start(config(1024, vec![]));
        let a = ActionSpec {
            concurrency: 2,
            ..ActionSpec::new("broken")
        }
        .build();
        h.fake.push_init(FakeReply::Exit);
        let first = h.submit(message("guest", &a, 1));
        let second = h.submit(message("guest", &a, 2));
        for rx in [first, second] {
            let r = answer(rx).await;
            assert_eq!(r.response.status, Status::DeveloperError);
            assert_eq!(
                error_of(&r),
                json!("The action did not initialize and exited unexpectedly.")
            );
        }
        assert_eq!((h.fake.counts().create, h.fake.counts().run), (1, 0));
        h.assert_contract_kept();
    }

    #[tokio::test(start_paused = true)]
    async fn queues_fifo_when_full_and_drains_in_order() {
        let h = start(config(256, vec![]));
        let slow = Duration::from_secs(1);
        let names = ["a", "b", "c", "d"];
        let actions: Vec<_> = names.iter().map(|n| action(n)).collect();
        for n in names {
            h.fake.reply_for_action(
                &format!("/guest/{n}"),
                FakeReply::delayed(slow, FakeReply::Echo),
            );
        }
        // One receipt time for all, so the later jobs' longer waits cannot hide in the
        // millisecond that passed between two submits.
        let received_at = edgewhisk_entity::time::now_millis();
        let receivers: Vec<_> = actions
            .iter()
            .zip(1..)
            .map(|(a, n)| {
                h.submit(ActivationMessage {
                    received_at,
                    ..message("guest", a, n)
                })
            })
            .collect();
        settle().await;
        assert_eq!(h.fake.counts().run, 1, "only one fits at a time");
        let mut records = Vec::new();
        for rx in receivers {
            records.push(answer(rx).await);
        }
        let order: Vec<String> = h.fake.runs().into_iter().map(|r| r.action_name).collect();
        assert_eq!(order, vec!["/guest/a", "/guest/b", "/guest/c", "/guest/d"]);
        assert!(records.iter().all(|r| r.response.status == Status::Success));
        let wait = |r: &Activation| {
            r.annotations
                .get("waitTime")
                .and_then(Value::as_u64)
                .unwrap()
        };
        assert!(wait(&records[3]) >= wait(&records[0]));
        settle().await;
        assert_eq!(
            h.fake.counts().destroy,
            3,
            "each earlier instance was evicted"
        );
        h.assert_contract_kept();
    }

    #[tokio::test(start_paused = true)]
    async fn destroys_instance_after_developer_error_but_keeps_it_after_application_error() {
        let h = start(config(1024, vec![]));
        let a = action("a");
        h.fake.push_run(FakeReply::ok(json!({"error": "app"})));
        let app = h.invoke("guest", &a, 1).await;
        assert_eq!(app.response.status, Status::ApplicationError);
        assert_eq!(error_of(&app), json!("app"));
        h.invoke("guest", &a, 2).await;
        settle().await;
        assert_eq!((h.fake.counts().create, h.fake.counts().destroy), (1, 0));

        h.fake.push_run(FakeReply::Json(
            502,
            json!({"error": "An error has occurred: x"}),
        ));
        let dev = h.invoke("guest", &a, 3).await;
        assert_eq!(dev.response.status, Status::DeveloperError);
        assert!(dev.logs.last().unwrap().ends_with(
            "stderr: The action did not initialize or run as expected. Log data might be missing."
        ));
        settle().await;
        assert_eq!(h.fake.counts().destroy, 1);
        h.invoke("guest", &a, 4).await;
        assert_eq!(h.fake.counts().create, 2);
        h.assert_contract_kept();
    }

    #[tokio::test(start_paused = true)]
    async fn timeout_destroys_the_instance_and_is_annotated() {
        let h = start(config(1024, vec![]));
        let a = ActionSpec {
            timeout: 1000,
            ..ActionSpec::new("slow")
        }
        .build();
        h.fake.push_run(FakeReply::Hang);
        let r = h.invoke("guest", &a, 1).await;
        assert_eq!(r.response.status, Status::DeveloperError);
        assert_eq!(
            error_of(&r),
            json!("The action exceeded its time limits of 1000 milliseconds.")
        );
        assert_eq!(r.annotations.get("timeout"), Some(&json!(true)));
        settle().await;
        assert_eq!(h.fake.counts().destroy, 1);
        h.invoke("guest", &a, 2).await;
        assert_eq!(h.fake.counts().create, 2);
        h.assert_contract_kept();
    }

    #[tokio::test(start_paused = true)]
    async fn init_failure_is_a_developer_error_and_destroys_the_instance() {
        let h = start(config(1024, vec![]));
        let a = action("broken");
        h.fake.push_init(FakeReply::Json(
            502,
            json!({"error": "Initialization has failed due to: x"}),
        ));
        let r = h.invoke("guest", &a, 1).await;
        assert_eq!(r.response.status, Status::DeveloperError);
        assert_eq!(error_of(&r), json!("Initialization has failed due to: x"));
        assert!(r.annotations.get("initTime").is_some());
        assert_eq!(h.fake.counts().run, 0);
        settle().await;
        assert_eq!(h.fake.counts().destroy, 1);
        h.assert_contract_kept();
    }

    #[tokio::test(start_paused = true)]
    async fn failure_to_start_an_instance_is_a_whisk_error() {
        let h = start(config(1024, vec![]));
        h.fake.fail_creates(1);
        let r = h.invoke("guest", &action("a"), 1).await;
        assert_eq!(r.response.status, Status::WhiskError);
        assert_eq!(
            error_of(&r),
            json!("Failed to provision resources to run the action.")
        );
        let ok = h.invoke("guest", &action("a"), 2).await;
        assert_eq!(ok.response.status, Status::Success);
        h.assert_contract_kept();
    }

    #[tokio::test(start_paused = true)]
    async fn a_panicking_run_becomes_a_whisk_error_and_the_pool_keeps_working() {
        let h = start(config(1024, vec![]));
        let a = action("a");
        h.fake.push_run(FakeReply::Panic);
        let r = h.invoke("guest", &a, 1).await;
        assert_eq!(r.response.status, Status::WhiskError);
        assert_eq!(h.stored(&r).await.response.status, Status::WhiskError);
        settle().await;
        assert_eq!(h.fake.counts().destroy, 1);
        let ok = h.invoke("guest", &a, 2).await;
        assert_eq!(ok.response.status, Status::Success);
        assert_eq!(h.fake.counts().create, 2);
        h.assert_contract_kept();
    }

    #[tokio::test(start_paused = true)]
    async fn suspends_after_pause_grace_and_resumes_on_next_job() {
        let h = start(config(1024, vec![]));
        let a = action("a");
        h.invoke("guest", &a, 1).await;
        tokio::time::sleep(Duration::from_millis(9_000)).await;
        assert_eq!(h.fake.counts().suspend, 0);
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        assert_eq!(h.fake.counts().suspend, 1);
        assert!(h.fake.instances()[0].suspended);
        let r = h.invoke("guest", &a, 2).await;
        assert_eq!(r.response.status, Status::Success);
        let c = h.fake.counts();
        assert_eq!((c.create, c.resume), (1, 1));
        h.assert_contract_kept();
    }

    #[tokio::test(start_paused = true)]
    async fn removes_idle_instance_after_idle_timeout() {
        let h = start(config(1024, vec![]));
        let a = action("a");
        h.invoke("guest", &a, 1).await;
        tokio::time::sleep(Duration::from_secs(599)).await;
        assert_eq!(h.fake.counts().destroy, 0);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(h.fake.counts().destroy, 1);
        h.invoke("guest", &a, 2).await;
        assert_eq!(h.fake.counts().create, 2);
        h.assert_contract_kept();
    }

    #[tokio::test(start_paused = true)]
    async fn runs_several_activations_on_one_instance_up_to_its_concurrency() {
        let h = start(config(1024, vec![]));
        let a = ActionSpec {
            concurrency: 3,
            ..ActionSpec::new("conc")
        }
        .build();
        h.fake.reply_for_action(
            "/guest/conc",
            FakeReply::delayed(Duration::from_millis(100), FakeReply::Echo),
        );
        let receivers: Vec<_> = (1..=4).map(|n| h.submit(message("guest", &a, n))).collect();
        for rx in receivers {
            assert_eq!(answer(rx).await.response.status, Status::Success);
        }
        let instances = h.fake.instances();
        assert_eq!(instances.len(), 2, "the fourth needed a second instance");
        assert!(instances[0].spec.allow_concurrent);
        assert_eq!((instances[0].inits, instances[0].max_in_flight), (1, 3));
        assert_eq!(instances[1].runs, 1);
        h.assert_contract_kept();
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_stores_a_record_for_every_accepted_activation() {
        let h = start(config(256, vec![]));
        let a = action("a");
        h.fake.reply_for_action(
            "/guest/a",
            FakeReply::delayed(Duration::from_secs(30), FakeReply::Echo),
        );
        let receivers: Vec<_> = (1..=3).map(|n| h.submit(message("guest", &a, n))).collect();
        settle().await;
        h.invoker.shutdown(Duration::from_secs(1)).await;
        for rx in receivers {
            let r = answer(rx).await;
            assert_eq!(r.response.status, Status::WhiskError);
            assert_eq!(error_of(&r), json!("The invoker is shutting down."));
            assert_eq!(h.stored(&r).await, r);
        }
        assert_eq!(
            h.invoker.submit(message("guest", &a, 9)).unwrap_err(),
            InvokerError::ShuttingDown
        );
        let c = h.fake.counts();
        assert_eq!((c.create, c.destroy), (1, 1));
        h.assert_contract_kept();
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_lets_in_flight_activations_finish_within_grace() {
        let h = start(config(1024, vec![]));
        let a = action("a");
        h.fake.reply_for_action(
            "/guest/a",
            FakeReply::delayed(Duration::from_secs(1), FakeReply::Echo),
        );
        let rx = h.submit(message("guest", &a, 1));
        settle().await;
        h.invoker.shutdown(Duration::from_secs(5)).await;
        let r = answer(rx).await;
        assert_eq!(r.response.status, Status::Success);
        assert_eq!(h.fake.counts().destroy, 1);
        h.assert_contract_kept();
    }
}
