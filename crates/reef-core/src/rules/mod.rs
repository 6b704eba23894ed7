//! The pure rules: functions of their inputs, no store and no clock of their own — the approval
//! policy, routing, model prices, schedule arithmetic, webhook subscriptions and egress allow-lists. Invariant: every
//! module here imports only leaves and the domain, so config and every engine can use them.

pub mod egress;
pub mod langfuse;
pub mod policy;
pub mod pricing;
pub mod routing;
pub mod schedule;
pub mod webhook;
