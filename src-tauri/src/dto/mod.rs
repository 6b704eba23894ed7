//! Wire types for the window, one file per area: what commands return and take, with
//! `specta::Type` so the TypeScript bindings match. Money crosses as dollars (f64), times as
//! RFC 3339 strings.

use reef_core::time::fmt_ts;
use reef_core::*;
use serde::{Deserialize, Serialize};
use specta::Type;

mod agents;
mod approvals;
mod delivery;
mod insight;
mod settings;
mod status;
mod tasks;

pub use agents::*;
pub use approvals::*;
pub use delivery::*;
pub use insight::*;
pub use settings::*;
pub use status::*;
pub use tasks::*;
