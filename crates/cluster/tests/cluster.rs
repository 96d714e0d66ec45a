//! The cluster balancer and the invoker agent against a real `nats-server`, with real
//! `Invoker`s on fake containers. Each test starts its own server on a free port; without
//! `nats-server` installed the tests skip (and fail under `CI=true`).

#[cfg(test)]
mod tests {
    use edgewhisk_cluster::wire::{self, Ack, ActivateEnvelope, InvokerPing, Subjects};
    use edgewhisk_cluster::{
        AgentSettings, BalancerSettings, COMPLETION_TIMED_OUT, ClusterBalancer, INVOKER_LOST,
        InvokerAgent,
    };
    use edgewhisk_controller::loadbalancer::sharding::{placement_hash, probe_order};
    use edgewhisk_controller::loadbalancer::{LoadBalancer, LoadBalancerError};
    use edgewhisk_entity::ActivationId;
    use edgewhisk_entity::Status;
    use edgewhisk_entity::connector::{CompletionMessage, ExecutableAction};
    use edgewhisk_invoker::{Invoker, PoolConfig};
    use edgewhisk_store::{ActivationStore, MemoryStore};
    use edgewhisk_testkit::services::nats::Nats;
    use edgewhisk_testkit::{FakeContainerFactory, FakeReply, fixtures};
    use futures_util::StreamExt;
    use parking_lot::Mutex;
    use serde_json::json;
    use std::sync::Arc;
    use std::time::{Duration, Instant};
    use tokio::sync::oneshot;
    use tokio::task::JoinHandle;

    const PING: Duration = Duration::from_millis(100);
    const OFFLINE_AFTER: Duration = Duration::from_secs(1);

    /// One invoker process: its agent (with its own NATS connection), invoker and fake backend.
    struct Node {
        agent: Option<InvokerAgent>,
        client: async_nats::Client,
        url: String,
        id: u32,
        invoker: Invoker,
        factory: FakeContainerFactory,
    }

    impl Node {
        async fn start(nats: &Nats, id: u32, memory_mb: u64) -> Node {
            let factory = FakeContainerFactory::new();
            let config = PoolConfig {
                user_memory_mb: memory_mb,
                prewarm: Vec::new(),
                ..PoolConfig::default()
            };
            let invoker = Invoker::start(
                config,
                Arc::new(factory.clone()),
                Arc::new(MemoryStore::new()),
            );
            let client = edgewhisk_cluster::connect(&nats.url()).await.unwrap();
            let settings = AgentSettings {
                ping_interval: PING,
                ..AgentSettings::new(id, memory_mb)
            };
            let agent = InvokerAgent::start(client.clone(), settings, invoker.clone())
                .await
                .unwrap();
            Node {
                agent: Some(agent),
                client,
                url: nats.url(),
                id,
                invoker,
                factory,
            }
        }

        /// The activation ids this invoker ran.
        fn ran(&self) -> Vec<String> {
            self.factory
                .runs()
                .into_iter()
                .map(|r| r.activation_id)
                .collect()
        }

        /// Simulates a crash: the agent stops at once, nothing in flight is answered, and its
        /// NATS connection closes (the server drops its subscription).
        async fn kill(&mut self) {
            self.agent.take();
            self.client.drain().await.unwrap();
            // Until the server has dropped the subscription, a message sent there is lost
            // (the ambiguous case); the test wants the moment after.
            let probe = edgewhisk_cluster::connect(&self.url).await.unwrap();
            let subject = edgewhisk_cluster::wire::Subjects::default().activate(self.id);
            loop {
                let request = async_nats::Request::new()
                    .payload("probe".into())
                    .timeout(Some(Duration::from_millis(100)));
                match probe.send_request(subject.clone(), request).await {
                    Err(e) if e.kind() == async_nats::client::RequestErrorKind::NoResponders => {
                        break;
                    }
                    _ => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
        }
    }

    /// A hand-made invoker 0 on plain NATS: it pings as its current instance, records the
    /// activations it receives, acknowledges the first `acks` of them and completes none.
    struct SilentInvoker {
        received: Arc<Mutex<Vec<ActivationId>>>,
        instance: Arc<Mutex<String>>,
        tasks: Vec<JoinHandle<()>>,
    }

    impl SilentInvoker {
        async fn start(nats: &Nats, acks: usize) -> SilentInvoker {
            let client = edgewhisk_cluster::connect(&nats.url()).await.unwrap();
            let subjects = Subjects::default();
            let mut activations = client.subscribe(subjects.activate(0)).await.unwrap();
            let received = Arc::new(Mutex::new(Vec::new()));
            let instance = Arc::new(Mutex::new("first".to_owned()));
            let (seen, replier) = (Arc::clone(&received), client.clone());
            let taker = tokio::spawn(async move {
                while let Some(m) = activations.next().await {
                    let env: ActivateEnvelope = wire::decode(&m.payload).unwrap();
                    let count = {
                        let mut seen = seen.lock();
                        seen.push(env.message.activation_id.clone());
                        seen.len()
                    };
                    if let (true, Some(reply)) = (count <= acks, m.reply) {
                        let ack = wire::encode(&Ack::accepted()).unwrap();
                        replier.publish(reply, ack).await.unwrap();
                    }
                }
            });
            let current = Arc::clone(&instance);
            let pinger = tokio::spawn(async move {
                loop {
                    let ping = InvokerPing {
                        invoker_id: 0,
                        instance: current.lock().clone(),
                        user_memory_mb: 1024,
                        in_flight: 0,
                        draining: false,
                    };
                    let bytes = wire::encode(&ping).unwrap();
                    client.publish(subjects.health(), bytes).await.unwrap();
                    tokio::time::sleep(PING).await;
                }
            });
            SilentInvoker {
                received,
                instance,
                tasks: vec![taker, pinger],
            }
        }

        /// From now on it pings as a new process.
        fn restart(&self) {
            *self.instance.lock() = "second".to_owned();
        }

        fn received(&self) -> Vec<ActivationId> {
            self.received.lock().clone()
        }
    }

    impl Drop for SilentInvoker {
        fn drop(&mut self) {
            for task in &self.tasks {
                task.abort();
            }
        }
    }

    fn settings() -> BalancerSettings {
        BalancerSettings {
            offline_after: OFFLINE_AFTER,
            ping_interval: PING,
            ack_timeout: Duration::from_millis(500),
            completion_margin: Duration::from_secs(2),
            ..BalancerSettings::default()
        }
    }

    async fn balancer(nats: &Nats, store: Arc<dyn ActivationStore>) -> ClusterBalancer {
        let client = edgewhisk_cluster::connect(&nats.url()).await.unwrap();
        ClusterBalancer::start(client, store, settings())
            .await
            .unwrap()
    }

    /// A server, invoker 0 with 1024 MB and a balancer that sees it up; `None` to skip.
    async fn one_invoker() -> Option<(Nats, Node, ClusterBalancer)> {
        let nats = Nats::start_or_skip().await?;
        let node = Node::start(&nats, 0, 1024).await;
        let b = balancer(&nats, Arc::new(MemoryStore::new())).await;
        all_up(&b, 1).await;
        Some((nats, node, b))
    }

    /// Publishes one activation of `action` and asserts it succeeds.
    async fn runs_fine(b: &ClusterBalancer, action: &Arc<ExecutableAction>) {
        let msg = fixtures::activation_message(action).build();
        let c = done(b.publish(msg).await.unwrap()).await;
        assert_eq!(c.activation.response.status, Status::Success);
    }

    async fn eventually(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
        let start = Instant::now();
        while !check() {
            assert!(start.elapsed() < within, "not within {within:?}: {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn all_up(b: &ClusterBalancer, n: usize) {
        eventually(&format!("{n} invokers up"), Duration::from_secs(5), || {
            let invokers = b.invokers();
            invokers.len() == n && invokers.iter().all(|(_, s)| *s == "up")
        })
        .await;
    }

    async fn done(rx: oneshot::Receiver<CompletionMessage>) -> CompletionMessage {
        tokio::time::timeout(Duration::from_secs(20), rx)
            .await
            .expect("a completion in time")
            .expect("an answer")
    }

    fn hello() -> Arc<ExecutableAction> {
        fixtures::action("guest", "hello").memory(256).build()
    }

    /// The invoker order the sharding balancer tries for `action` among `n` invokers.
    fn order(action: &ExecutableAction, n: u32) -> Vec<usize> {
        let hash = placement_hash(action.name.namespace(), &action.name.path_string());
        probe_order(hash, n)
            .into_iter()
            .map(|i| i as usize)
            .collect()
    }

    /// Invokers 0 and 1 with `memory_mb` each, on which `action` takes `delay`; with the
    /// index of its home and of the other.
    async fn two_slow_invokers(
        nats: &Nats,
        memory_mb: u64,
        action: &ExecutableAction,
        delay: Duration,
    ) -> (Vec<Node>, usize, usize) {
        let nodes = vec![
            Node::start(nats, 0, memory_mb).await,
            Node::start(nats, 1, memory_mb).await,
        ];
        let path = format!("/{}", action.name.path_string());
        for node in &nodes {
            node.factory
                .reply_for_action(&path, FakeReply::delayed(delay, FakeReply::Echo));
        }
        let order = order(action, 2);
        (nodes, order[0], order[1])
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_action_stays_on_its_home_invoker() {
        let Some(nats) = Nats::start_or_skip().await else {
            return;
        };
        let mut nodes = Vec::new();
        for id in 0..3 {
            nodes.push(Node::start(&nats, id, 1024).await);
        }
        let b = balancer(&nats, Arc::new(MemoryStore::new())).await;
        all_up(&b, 3).await;
        let action = hello();
        let home = order(&action, 3)[0];
        for i in 0..5 {
            let msg = fixtures::activation_message(&action)
                .content(json!({"i": i}))
                .build();
            let c = done(b.publish(msg).await.unwrap()).await;
            assert_eq!(c.activation.response.status, Status::Success);
            assert_eq!(c.activation.response.result, Some(json!({"i": i})));
        }
        for (i, node) in nodes.iter().enumerate() {
            let expected = if i == home { 5 } else { 0 };
            assert_eq!(node.ran().len(), expected, "invoker {i} (home {home})");
        }
        assert_eq!(nodes[home].factory.counts().create, 1, "one warm instance");
        assert_eq!(b.in_flight(), 0);
        assert_eq!(b.slots(home.id()), Some((1024, 1024)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_controllers_divide_each_invokers_slots() {
        let Some(nats) = Nats::start_or_skip().await else {
            return;
        };
        let _node = Node::start(&nats, 0, 1024).await;
        let store: Arc<dyn ActivationStore> = Arc::new(MemoryStore::new());
        let one = balancer(&nats, Arc::clone(&store)).await;
        all_up(&one, 1).await;
        assert_eq!(one.slots(0), Some((1024, 1024)));
        let two = balancer(&nats, store).await;
        all_up(&two, 1).await;
        eventually("both see two controllers", Duration::from_secs(5), || {
            one.controllers() == 2 && two.controllers() == 2
        })
        .await;
        eventually("half the memory each", Duration::from_secs(5), || {
            one.slots(0) == Some((512, 512)) && two.slots(0) == Some((512, 512))
        })
        .await;
        // Each gets the completions of its own activations.
        let action = hello();
        runs_fine(&one, &action).await;
        runs_fine(&two, &action).await;
        assert_eq!((one.in_flight(), two.in_flight()), (0, 0));
        // The other controller goes away: after the offline window this one holds it all again.
        two.shutdown().await;
        drop(two);
        eventually("the whole memory again", Duration::from_secs(5), || {
            one.controllers() == 1 && one.slots(0) == Some((1024, 1024))
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_home_passes_work_on_and_without_room_anywhere_a_healthy_invoker_is_overloaded()
    {
        let Some(nats) = Nats::start_or_skip().await else {
            return;
        };
        let action = hello();
        let (nodes, home, other) =
            two_slow_invokers(&nats, 512, &action, Duration::from_millis(1500)).await;
        let b = balancer(&nats, Arc::new(MemoryStore::new())).await;
        all_up(&b, 2).await;
        let mut pending = Vec::new();
        for i in 0..4 {
            let msg = fixtures::activation_message(&action).build();
            pending.push(b.publish(msg).await.unwrap());
            let (expect_home, expect_other) = if i < 2 { (i + 1, 0) } else { (2, i - 1) };
            eventually("the runs start", Duration::from_secs(5), || {
                nodes[home].ran().len() == expect_home && nodes[other].ran().len() == expect_other
            })
            .await;
        }
        assert_eq!(b.slots(home.id()), Some((0, 512)));
        assert_eq!(b.slots(other.id()), Some((0, 512)));
        // No room anywhere: overloaded onto one of the two, not refused.
        let msg = fixtures::activation_message(&action).build();
        pending.push(b.publish(msg).await.unwrap());
        for rx in pending {
            assert_eq!(done(rx).await.activation.response.status, Status::Success);
        }
        assert_eq!(nodes[0].ran().len() + nodes[1].ran().len(), 5);
        assert_eq!(b.slots(home.id()), Some((512, 512)));
        assert_eq!(b.slots(other.id()), Some((512, 512)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_killed_invoker_is_passed_over_at_once_its_work_ends_with_a_whisk_error_and_it_rejoins()
     {
        let Some(nats) = Nats::start_or_skip().await else {
            return;
        };
        let action = fixtures::action("guest", "slow")
            .memory(256)
            .timeout(10_000)
            .build();
        let (mut nodes, home, other) =
            two_slow_invokers(&nats, 1024, &action, Duration::from_secs(8)).await;
        let store = Arc::new(MemoryStore::new());
        let b = balancer(&nats, store.clone()).await;
        all_up(&b, 2).await;
        let first = fixtures::activation_message(&action).build();
        let first_id = first.activation_id.clone();
        let first_rx = b.publish(first).await.unwrap();
        eventually("the first run starts", Duration::from_secs(5), || {
            nodes[home].ran().len() == 1
        })
        .await;

        nodes[home].kill().await;
        let killed = Instant::now();
        // New work finds no responder on the home and goes to the other invoker at once.
        let second = fixtures::activation_message(&action).build();
        let second_id = second.activation_id.clone();
        let second_rx = b.publish(second).await.unwrap();
        let replaced = killed.elapsed();
        eventually(
            "the second runs on the other",
            Duration::from_secs(5),
            || nodes[other].ran().contains(&second_id.as_str().to_owned()),
        )
        .await;
        assert!(
            replaced < Duration::from_millis(500),
            "placed elsewhere in {replaced:?}"
        );

        // The first ends when its invoker is offline, with a whisk error the controller stored.
        let forced = done(first_rx).await;
        let caller_wait = killed.elapsed();
        assert_eq!(forced.activation.activation_id, first_id);
        assert_eq!(forced.activation.response.status, Status::WhiskError);
        assert_eq!(
            forced.activation.response.result,
            Some(json!({"error": INVOKER_LOST}))
        );
        assert_eq!(forced.activation.path(), Some("guest/slow"));
        let stored = store.get("guest", &first_id).await.unwrap().unwrap();
        assert_eq!(stored.response.status, Status::WhiskError);
        // Offline counts from the last ping, up to one ping interval before the kill.
        assert!(
            caller_wait >= OFFLINE_AFTER - PING * 2 && caller_wait < OFFLINE_AFTER * 3,
            "{caller_wait:?}"
        );
        assert_eq!(b.invokers()[home].1, "down");
        // It never ran twice.
        assert!(!nodes[other].ran().contains(&first_id.as_str().to_owned()));
        eprintln!(
            "killed invoker: new work placed elsewhere in {replaced:?}; its caller answered after \
         {caller_wait:?} (offline window {OFFLINE_AFTER:?})"
        );

        // It comes back (a new process with the same id) and takes its actions again.
        let back = Instant::now();
        nodes[home] = Node::start(&nats, home.id(), 1024).await;
        all_up(&b, 2).await;
        eprintln!("restarted invoker up again after {:?}", back.elapsed());
        nodes[home]
            .factory
            .reply_for_action("/guest/slow", FakeReply::Echo);
        let third = fixtures::activation_message(&action).build();
        let third_id = third.activation_id.clone();
        let c = done(b.publish(third).await.unwrap()).await;
        assert_eq!(c.activation.response.status, Status::Success);
        assert_eq!(nodes[home].ran(), vec![third_id.as_str().to_owned()]);
        assert_eq!(
            done(second_rx).await.activation.response.status,
            Status::Success
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn three_system_errors_make_an_invoker_unhealthy_until_health_tests_succeed() {
        let Some((_nats, node, b)) = one_invoker().await else {
            return;
        };
        node.factory.fail_creates(3);
        let action = hello();
        for _ in 0..3 {
            let msg = fixtures::activation_message(&action).build();
            let c = done(b.publish(msg).await.unwrap()).await;
            assert_eq!(c.activation.response.status, Status::WhiskError);
        }
        assert_eq!(b.invokers(), vec![("invoker0/0".to_owned(), "unhealthy")]);
        let refused = b
            .publish(fixtures::activation_message(&action).build())
            .await;
        assert_eq!(refused.err(), Some(LoadBalancerError::NoInvokers));
        let unhealthy = Instant::now();
        all_up(&b, 1).await;
        let tests: Vec<String> = node
            .factory
            .runs()
            .into_iter()
            .map(|r| r.action_name)
            .filter(|n| n == "/whisk.system/invokerHealthTestAction0")
            .collect();
        assert!(tests.len() >= 8, "{tests:?}");
        eprintln!(
            "unhealthy invoker healthy again after {:?} ({} test actions)",
            unhealthy.elapsed(),
            tests.len()
        );
        runs_fine(&b, &action).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_cluster_recovers_by_itself_after_a_nats_server_restart() {
        let Some((mut nats, _node, b)) = one_invoker().await else {
            return;
        };
        let action = hello();
        runs_fine(&b, &action).await;

        nats.kill();
        let down = Instant::now();
        // While disconnected, publishing fails fast.
        loop {
            let started = Instant::now();
            match b
                .publish(fixtures::activation_message(&action).build())
                .await
            {
                Err(e) => {
                    assert_eq!(e, LoadBalancerError::Unavailable);
                    assert!(started.elapsed() < Duration::from_millis(100));
                    break;
                }
                Ok(_) => {
                    assert!(down.elapsed() < Duration::from_secs(5), "still publishing");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        nats.restart().await.unwrap();
        let restarted = Instant::now();
        let mut answered = None;
        while answered.is_none() {
            assert!(restarted.elapsed() < Duration::from_secs(10), "no recovery");
            if let Ok(rx) = b
                .publish(fixtures::activation_message(&action).build())
                .await
            {
                answered = Some(done(rx).await);
            } else {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let c = answered.unwrap();
        assert_eq!(c.activation.response.status, Status::Success);
        eprintln!(
            "nats-server restart: serving again {:?} after it came back",
            restarted.elapsed()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn large_messages_travel_and_oversize_ones_are_refused_with_a_clear_error() {
        let Some((_nats, node, b)) = one_invoker().await else {
            return;
        };
        let action = hello();
        node.factory
            .reply_for_action("/guest/hello", FakeReply::ok(json!({"ok": true})));
        let two_mb = "x".repeat(2 * 1024 * 1024);
        let msg = fixtures::activation_message(&action)
            .content(json!({"s": two_mb}))
            .build();
        let c = done(b.publish(msg).await.unwrap()).await;
        assert_eq!(c.activation.response.status, Status::Success);

        let nine_mb = "x".repeat(9 * 1024 * 1024);
        let msg = fixtures::activation_message(&action)
            .content(json!({"s": nine_mb}))
            .build();
        let err = b.publish(msg).await.unwrap_err();
        assert!(
            matches!(err, LoadBalancerError::MessageTooLarge { limit, .. } if limit == 8 * 1024 * 1024),
            "{err:?}"
        );
        assert!(err.to_string().contains("max_payload"), "{err}");
        assert_eq!(b.in_flight(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_agent_shutting_down_finishes_its_work_and_takes_no_more() {
        let Some((_nats, mut node, b)) = one_invoker().await else {
            return;
        };
        node.factory.reply_for_action(
            "/guest/hello",
            FakeReply::delayed(Duration::from_millis(500), FakeReply::Echo),
        );
        let action = hello();
        let rx = b
            .publish(fixtures::activation_message(&action).build())
            .await
            .unwrap();
        eventually("the run starts", Duration::from_secs(5), || {
            node.ran().len() == 1
        })
        .await;
        let agent = node.agent.take().unwrap();
        agent.shutdown().await;
        // Its completion was published before shutdown returned.
        let c = done(rx).await;
        assert_eq!(c.activation.response.status, Status::Success);
        eventually("it is down", Duration::from_secs(5), || {
            b.invokers() == vec![("invoker0/0".to_owned(), "down")]
        })
        .await;
        let refused = b
            .publish(fixtures::activation_message(&action).build())
            .await;
        assert_eq!(refused.err(), Some(LoadBalancerError::NoInvokers));
        node.invoker.shutdown(Duration::from_secs(1)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_completion_that_never_comes_ends_with_a_whisk_error_and_nothing_is_sent_twice() {
        let Some(nats) = Nats::start_or_skip().await else {
            return;
        };
        // Acknowledges the first activation and stays silent on the others.
        let fake = SilentInvoker::start(&nats, 1).await;
        let store = Arc::new(MemoryStore::new());
        let b = balancer(&nats, store.clone()).await;
        all_up(&b, 1).await;
        let action = fixtures::action("guest", "lost").timeout(200).build();
        let published = Instant::now();
        let acked = b
            .publish(fixtures::activation_message(&action).build())
            .await
            .unwrap();
        let silent_msg = fixtures::activation_message(&action).build();
        let silent_id = silent_msg.activation_id.clone();
        let before = Instant::now();
        let silent = b.publish(silent_msg).await.unwrap();
        // Without an acknowledgement the activation may have arrived: it is only waited for.
        assert!(before.elapsed() >= Duration::from_millis(500));
        let wait = Duration::from_millis(400) + settings().completion_margin;
        for rx in [acked, silent] {
            let c = done(rx).await;
            assert_eq!(c.activation.response.status, Status::WhiskError);
            assert_eq!(
                c.activation.response.result,
                Some(json!({"error": COMPLETION_TIMED_OUT}))
            );
            let stored = store
                .get("guest", &c.activation.activation_id)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(stored.response.status, Status::WhiskError);
        }
        let answered = published.elapsed();
        assert!(
            answered >= wait && answered < wait + Duration::from_secs(2),
            "{answered:?}"
        );
        eprintln!(
            "lost completions ended after {answered:?} (twice the time limit + margin: {wait:?})"
        );
        let received = fake.received();
        assert_eq!(received.len(), 2, "each sent once");
        assert!(received.contains(&silent_id));
        assert_eq!(b.in_flight(), 0);
        assert_eq!(b.slots(0), Some((1024, 1024)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_invoker_that_restarts_ends_the_work_it_had_at_once() {
        let Some(nats) = Nats::start_or_skip().await else {
            return;
        };
        let fake = SilentInvoker::start(&nats, usize::MAX).await;
        let store = Arc::new(MemoryStore::new());
        let b = balancer(&nats, store.clone()).await;
        all_up(&b, 1).await;
        let rx = b
            .publish(fixtures::activation_message(&hello()).build())
            .await
            .unwrap();
        let restarted = Instant::now();
        fake.restart();
        let c = done(rx).await;
        assert_eq!(
            c.activation.response.result,
            Some(json!({"error": INVOKER_LOST}))
        );
        assert!(
            restarted.elapsed() < OFFLINE_AFTER / 2,
            "{:?}",
            restarted.elapsed()
        );
        assert_eq!(fake.received().len(), 1);
        assert_eq!(b.invokers(), vec![("invoker0/0".to_owned(), "up")]);
        assert_eq!(b.slots(0), Some((1024, 1024)));
    }

    /// An invoker index as an invoker id.
    trait Id {
        fn id(self) -> u32;
    }

    impl Id for usize {
        fn id(self) -> u32 {
            u32::try_from(self).unwrap()
        }
    }
}
