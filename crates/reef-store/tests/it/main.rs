//! One integration binary for reef-store: the conformance suite, run against the embedded store
//! always and against MongoDB when `REEF_TEST_MONGODB_URI` is set.

mod conformance;
mod foreign;
mod harness;
mod knowledge;
