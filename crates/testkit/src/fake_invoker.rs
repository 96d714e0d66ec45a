//! A scriptable stand-in for the invoker side of the load balancer: it takes an
//! [`ActivationMessage`], records it, and answers through a `oneshot` channel as its script says
//! (a finished record, echo, later, never, drop the answer path, or refuse).
//!
//! It knows only entity, store and tokio types, so any crate's load-balancer seam can wrap it
//! in a few lines (the controller's tests implement its `LoadBalancer` trait over it).

use crate::fixtures::activation_record;
use edgewhisk_entity::connector::{ActivationMessage, CompletionMessage};
use edgewhisk_entity::{Activation, Status};
use edgewhisk_store::ActivationStore;
use parking_lot::{Mutex, MutexGuard};
use serde_json::Value;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// How the fake invoker answers one message.
#[derive(Debug, Clone)]
pub enum Answer {
    /// A finished activation with this status and result (see
    /// [`activation_record`]).
    Finished(Status, Value),
    /// A successful activation whose result is the message's content.
    Echo,
    /// This answer, after this long (tokio time, so a paused clock drives it).
    Later(Duration, Box<Answer>),
    /// Keep the answer path open and never answer (see [`FakeInvoker::answer_pending`]).
    Never,
    /// Drop the answer path without answering.
    Drop,
    /// Refuse the message.
    Refuse,
}

/// The fake refused a message ([`Answer::Refuse`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused;

type Script = Arc<dyn Fn(&ActivationMessage) -> Answer + Send + Sync>;

/// The fake invoker: see the module docs.
pub struct FakeInvoker {
    script: Mutex<Script>,
    published: Mutex<Vec<ActivationMessage>>,
    pending: Mutex<Vec<(ActivationMessage, oneshot::Sender<CompletionMessage>)>>,
    store: Option<Arc<dyn ActivationStore>>,
}

impl fmt::Debug for FakeInvoker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeInvoker")
            .field("published", &self.published.lock().len())
            .field("pending", &self.pending.lock().len())
            .finish_non_exhaustive()
    }
}

impl Default for FakeInvoker {
    /// Answers every message with a success whose result is `{"ok": true}`.
    fn default() -> Self {
        Self::answering(Answer::Finished(
            Status::Success,
            serde_json::json!({"ok": true}),
        ))
    }
}

impl FakeInvoker {
    /// Answers every message with `answer`.
    pub fn answering(answer: Answer) -> Self {
        Self::scripted(move |_| answer.clone())
    }

    /// Answers each message as `script` decides.
    pub fn scripted(script: impl Fn(&ActivationMessage) -> Answer + Send + Sync + 'static) -> Self {
        Self {
            script: Mutex::new(Arc::new(script)),
            published: Mutex::new(Vec::new()),
            pending: Mutex::new(Vec::new()),
            store: None,
        }
    }

    /// Also stores every record in `store` before answering, as the real invoker does.
    pub fn storing(mut self, store: Arc<dyn ActivationStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Answers every message from now on with `answer`.
    pub fn set(&self, answer: Answer) {
        *self.script.lock() = Arc::new(move |_| answer.clone());
    }

    /// The messages taken so far (refused ones are not), oldest first.
    pub fn published(&self) -> MutexGuard<'_, Vec<ActivationMessage>> {
        self.published.lock()
    }

    /// The last message taken.
    ///
    /// # Panics
    ///
    /// When none was.
    pub fn last(&self) -> ActivationMessage {
        self.published
            .lock()
            .last()
            .cloned()
            .expect("a published message")
    }

    /// Answers the newest message left waiting by [`Answer::Never`] with a finished record.
    ///
    /// # Panics
    ///
    /// When no message is waiting or its receiver is gone.
    pub fn answer_pending(&self, status: Status, result: Value) {
        let (msg, tx) = self.pending.lock().pop().expect("a pending activation");
        tx.send(CompletionMessage {
            activation: activation_record(&msg, status, result),
        })
        .expect("receiver alive");
    }

    /// Takes `msg` and answers it per the script.
    ///
    /// # Errors
    ///
    /// [`Refused`] when the script says [`Answer::Refuse`].
    ///
    /// # Panics
    ///
    /// When the store refuses a record.
    pub async fn take(
        &self,
        msg: ActivationMessage,
    ) -> Result<oneshot::Receiver<CompletionMessage>, Refused> {
        let script = Arc::clone(&self.script.lock());
        let answer = script(&msg);
        if matches!(answer, Answer::Refuse) {
            return Err(Refused);
        }
        self.published.lock().push(msg.clone());
        let (tx, rx) = oneshot::channel();
        self.answer(msg, answer, tx).await;
        Ok(rx)
    }

    async fn answer(
        &self,
        msg: ActivationMessage,
        answer: Answer,
        tx: oneshot::Sender<CompletionMessage>,
    ) {
        match answer {
            Answer::Never => self.pending.lock().push((msg, tx)),
            Answer::Drop | Answer::Refuse => {}
            Answer::Later(after, answer) => {
                let record = finished(&msg, *answer);
                let store = self.store.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(after).await;
                    complete(store.as_deref(), record, tx).await;
                });
            }
            answer => complete(self.store.as_deref(), finished(&msg, answer), tx).await,
        }
    }
}

/// The record for a finishing answer.
fn finished(msg: &ActivationMessage, answer: Answer) -> Activation {
    match answer {
        Answer::Finished(status, result) => activation_record(msg, status, result),
        Answer::Echo => {
            let content = serde_json::from_str(msg.content.get()).expect("JSON content");
            activation_record(msg, Status::Success, content)
        }
        other => panic!("{other:?} does not finish an activation"),
    }
}

/// Stores `activation` when there is a store, then answers with it.
async fn complete(
    store: Option<&dyn ActivationStore>,
    activation: Activation,
    tx: oneshot::Sender<CompletionMessage>,
) {
    if let Some(store) = store {
        store.store(activation.clone()).await.expect("stored");
    }
    // The caller may have given up already; that is its business.
    let _ = tx.send(CompletionMessage { activation });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{action, activation_message};
    use serde_json::json;

    fn msg(content: Value) -> ActivationMessage {
        activation_message(&action("guest", "a").build())
            .content(content)
            .build()
    }

    #[tokio::test]
    async fn each_answer_reaches_the_receiver_as_scripted() {
        let fake = FakeInvoker::default();
        let done = fake.take(msg(json!({}))).await.unwrap().await.unwrap();
        assert_eq!(done.activation.response.result, Some(json!({"ok": true})));

        fake.set(Answer::Echo);
        let done = fake
            .take(msg(json!({"n": 1})))
            .await
            .unwrap()
            .await
            .unwrap();
        assert_eq!(done.activation.response.result, Some(json!({"n": 1})));

        fake.set(Answer::Drop);
        assert!(fake.take(msg(json!({}))).await.unwrap().await.is_err());

        fake.set(Answer::Refuse);
        assert_eq!(fake.take(msg(json!({}))).await.unwrap_err(), Refused);
        assert_eq!(fake.published().len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn never_waits_for_answer_pending_and_later_for_the_clock() {
        let fake = FakeInvoker::answering(Answer::Never);
        let rx = fake.take(msg(json!({}))).await.unwrap();
        fake.answer_pending(Status::ApplicationError, json!({"error": "x"}));
        assert_eq!(
            rx.await.unwrap().activation.response.status,
            Status::ApplicationError
        );

        fake.set(Answer::Later(
            Duration::from_secs(5),
            Box::new(Answer::Echo),
        ));
        let started = tokio::time::Instant::now();
        let done = fake
            .take(msg(json!({"n": 2})))
            .await
            .unwrap()
            .await
            .unwrap();
        assert_eq!(done.activation.response.result, Some(json!({"n": 2})));
        assert!(started.elapsed() >= Duration::from_secs(5));
    }
}
