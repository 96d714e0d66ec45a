//! Sequence components and conductor steps as names: parsing them, resolving them to stored
//! actions, the entitlement to use them, and the checks of a sequence when it is created.
//! Sequences and compositions are run by the activation service (`activation::sequence`,
//! `activation::conductor`).

pub(crate) mod resolve;
pub(crate) mod validate;

pub use validate::SEQUENCE_LIMIT;
pub(crate) use validate::sequence_exec;
