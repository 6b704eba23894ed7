//! reef-store: the stores behind reef-core's ports.
//!
//! `sqlite` is the embedded default (one file, no services); `mongo` is the official MongoDB
//! driver against database `factory` in seed 000's shape. Both pass one conformance suite
//! (`tests/it`).

pub mod doctor;
pub mod mongo;
pub mod sqlite;

use reef_core::config::StoreChoice;
use reef_core::{Ports, StoreError};

/// Opens the store the config chose and returns its ports.
pub async fn open(choice: &StoreChoice) -> Result<Ports, StoreError> {
    match choice {
        StoreChoice::Embedded { path } => Ok(sqlite::SqliteStore::open(path)?.ports()),
        StoreChoice::Mongo { uri, database } => Ok(mongo::MongoStore::connect(uri.expose(), database).await?.ports()),
    }
}
