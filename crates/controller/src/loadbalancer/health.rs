//! Invoker health as OpenWhisk's `InvokerSupervision` judges it, as a pure state machine fed
//! with pings and activation outcomes and asked with the current time (epoch ms).
//!
//! - **Offline**: no ping for [`OFFLINE_AFTER_MS`] (or never one).
//! - **Unhealthy**: pings arrive, but [`UNHEALTHY_ERRORS`] or more of the last
//!   [`OUTCOME_WINDOW`] activations ended in a system (whisk) error. The balancer then sends
//!   the invoker a health test action instead of user work; its outcomes count like any
//!   other, so the invoker recovers once enough of them succeed.
//! - **Healthy**: pings arrive and fewer system errors than that.
//!
//! Only healthy invokers get user work.

use std::collections::VecDeque;

/// Without a ping for this long an invoker is offline.
pub const OFFLINE_AFTER_MS: u64 = 10_000;

/// How many of the latest activation outcomes are judged.
pub const OUTCOME_WINDOW: usize = 10;

/// System errors among the judged outcomes that make an invoker unhealthy.
pub const UNHEALTHY_ERRORS: usize = 3;

/// What the balancer may send an invoker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// User work.
    Healthy,
    /// Only the health test action, until its outcomes bring the errors down.
    Unhealthy,
    /// Nothing: it has not pinged in time.
    Offline,
}

/// How one activation on the invoker ended, as far as its health is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Success, application or developer error: the invoker did its job.
    Ran,
    /// A whisk (system) error, or no answer within the action's time limit and margin.
    SystemError,
}

/// The health record of one invoker, kept by each controller.
#[derive(Debug, Clone, Default)]
pub struct InvokerHealth {
    last_ping: Option<u64>,
    outcomes: VecDeque<Outcome>,
}

impl InvokerHealth {
    /// A ping from the invoker at `now`.
    pub fn ping(&mut self, now: u64) {
        self.last_ping = Some(self.last_ping.map_or(now, |t| t.max(now)));
    }

    /// The outcome of an activation it ran (a health test action's included).
    pub fn record(&mut self, outcome: Outcome) {
        if self.outcomes.len() == OUTCOME_WINDOW {
            self.outcomes.pop_front();
        }
        self.outcomes.push_back(outcome);
    }

    /// System errors among the judged outcomes.
    pub fn system_errors(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|o| **o == Outcome::SystemError)
            .count()
    }

    /// The invoker's health at `now`.
    pub fn at(&self, now: u64) -> Health {
        self.at_with(now, OFFLINE_AFTER_MS)
    }

    /// The invoker's health at `now` when it goes offline `offline_after_ms` after its last
    /// ping (a deployment's setting; [`OFFLINE_AFTER_MS`] upstream).
    pub fn at_with(&self, now: u64, offline_after_ms: u64) -> Health {
        match self.last_ping {
            Some(t) if now.saturating_sub(t) < offline_after_ms => {}
            _ => return Health::Offline,
        }
        if self.system_errors() >= UNHEALTHY_ERRORS {
            Health::Unhealthy
        } else {
            Health::Healthy
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invoker_is_offline_until_it_pings_and_ten_seconds_after_its_last_ping() {
        let mut h = InvokerHealth::default();
        assert_eq!(h.at(0), Health::Offline);
        h.ping(1_000);
        assert_eq!(h.at(1_000), Health::Healthy);
        assert_eq!(h.at(10_999), Health::Healthy);
        assert_eq!(h.at(11_000), Health::Offline);
        // A late, out-of-order ping does not move the last one back.
        h.ping(500);
        assert_eq!(h.at(10_999), Health::Healthy);
        h.ping(20_000);
        assert_eq!(h.at(25_000), Health::Healthy);
    }

    #[test]
    fn three_system_errors_in_the_last_ten_make_an_invoker_unhealthy() {
        let mut h = InvokerHealth::default();
        h.ping(0);
        h.record(Outcome::SystemError);
        h.record(Outcome::SystemError);
        assert_eq!(h.at(1), Health::Healthy);
        h.record(Outcome::Ran);
        h.record(Outcome::SystemError);
        assert_eq!(h.at(1), Health::Unhealthy);
    }

    #[test]
    fn an_unhealthy_invoker_recovers_as_successful_tests_push_errors_out_of_the_window() {
        let mut h = InvokerHealth::default();
        h.ping(0);
        for _ in 0..3 {
            h.record(Outcome::SystemError);
        }
        assert_eq!(h.at(1), Health::Unhealthy);
        // Seven test actions succeed: the three errors are still the last ten's.
        for _ in 0..7 {
            h.record(Outcome::Ran);
        }
        assert_eq!(h.at(1), Health::Unhealthy);
        h.record(Outcome::Ran);
        assert_eq!(h.system_errors(), 2);
        assert_eq!(h.at(1), Health::Healthy);
    }

    #[test]
    fn the_offline_window_can_be_configured() {
        let mut h = InvokerHealth::default();
        h.ping(1_000);
        assert_eq!(h.at_with(1_999, 1_000), Health::Healthy);
        assert_eq!(h.at_with(2_000, 1_000), Health::Offline);
    }

    #[test]
    fn offline_wins_over_unhealthy() {
        let mut h = InvokerHealth::default();
        h.ping(0);
        for _ in 0..5 {
            h.record(Outcome::SystemError);
        }
        assert_eq!(h.at(OFFLINE_AFTER_MS), Health::Offline);
    }
}
