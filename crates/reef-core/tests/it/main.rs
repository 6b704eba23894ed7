//! reef-core's integration tests: one binary (see ARCHITECTURE: one `tests/it` per crate).

mod housekeeping;
mod layers;
mod relay;
mod rules;
