//! Wire types of the window's status area. The overview: task counts, caps in force, the store and engine state.

use super::*;

#[derive(Debug, Clone, Serialize, Type)]
pub struct CountDto {
    pub status: TaskStatus,
    pub count: u32,
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct CapDto {
    pub scope: String,
    pub cap_usd: f64,
    pub spent_usd: f64,
    pub reserved_usd: f64,
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct StatusDto {
    pub store: String,
    pub remote: bool,
    pub timezone: String,
    pub operator: String,
    pub tasks: Vec<CountDto>,
    pub caps_today: Vec<CapDto>,
    pub pending_approvals: u32,
    pub dispatcher: Option<String>,
    pub malformed: Vec<MalformedDto>,
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct MalformedDto {
    pub collection: String,
    pub id: String,
    pub reason: String,
}

impl From<&Malformed> for MalformedDto {
    fn from(m: &Malformed) -> Self {
        Self { collection: m.collection.clone(), id: m.id.clone(), reason: m.reason.clone() }
    }
}
