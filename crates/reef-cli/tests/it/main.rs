//! One integration binary for the `reef` command: real processes against real store files.

mod cli;
mod deploy_files;
