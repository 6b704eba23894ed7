//! One integration binary for the `reef` command: real processes against real store files.

mod agent_clis;
mod agent_loop;
mod agent_work;
mod cli;
mod common;
mod containment;
mod delivery;
mod deploy_files;
mod doctor;
mod engine;
mod engine_ops;
mod foreign;
mod forge;
mod gateway;
mod hostile;
mod http_limits;
mod local_model;
mod mcp;
mod metered;
mod openclaw;
mod pipelines;
mod policy;
mod revenue;
mod runs;
mod scripted;
mod webhooks;
