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

/// A hold in force: the factory's (`agent` null) or one agent's; `hold` is pause, stop or cap.
#[derive(Debug, Clone, Serialize, Type)]
pub struct HoldDto {
    pub agent: Option<String>,
    pub hold: String,
    pub by: Option<String>,
    pub at: Option<String>,
    pub reason: Option<String>,
}

/// One daily cap with today's pace projected to the factory's midnight.
#[derive(Debug, Clone, Serialize, Type)]
pub struct OutlookDto {
    pub agent: Option<String>,
    pub cap_usd: f64,
    pub spent_usd: f64,
    pub reserved_usd: f64,
    pub per_hour_usd: f64,
    pub projected_usd: f64,
    pub cap_at: Option<String>,
    pub reached: bool,
}

/// What needs the operator now: the status strip and the sidebar's badges.
#[derive(Debug, Clone, Serialize, Type)]
pub struct AttentionDto {
    pub timezone: String,
    pub day_ends: String,
    pub dispatcher: Option<String>,
    pub hold: Option<HoldDto>,
    pub held_agents: Vec<HoldDto>,
    pub approvals: u32,
    pub questions: u32,
    pub needs_human: u32,
    pub failed: u32,
    pub failed_since: String,
    pub acknowledged_at: Option<String>,
    pub spend: Vec<OutlookDto>,
}

impl From<&reef_core::factory::HoldNote> for HoldDto {
    fn from(h: &reef_core::factory::HoldNote) -> Self {
        Self { agent: h.agent.clone(), hold: h.hold.clone(), by: h.by.clone(), at: h.at.as_ref().map(fmt_ts), reason: h.reason.clone() }
    }
}

impl From<&reef_core::factory::Attention> for AttentionDto {
    fn from(a: &reef_core::factory::Attention) -> Self {
        Self {
            timezone: a.timezone.clone(),
            day_ends: fmt_ts(&a.day_ends),
            dispatcher: a.dispatcher.clone(),
            hold: a.hold.as_ref().map(Into::into),
            held_agents: a.held_agents.iter().map(Into::into).collect(),
            approvals: a.approvals as u32,
            questions: a.questions as u32,
            needs_human: a.needs_human as u32,
            failed: a.failed as u32,
            failed_since: fmt_ts(&a.failed_since),
            acknowledged_at: a.acknowledged_at.as_ref().map(fmt_ts),
            spend: a
                .spend
                .iter()
                .map(|o| OutlookDto {
                    agent: o.agent.clone(),
                    cap_usd: o.cap.dollars(),
                    spent_usd: o.spent.dollars(),
                    reserved_usd: o.reserved.dollars(),
                    per_hour_usd: o.per_hour.dollars(),
                    projected_usd: o.projected.dollars(),
                    cap_at: o.cap_at.as_ref().map(fmt_ts),
                    reached: o.reached,
                })
                .collect(),
        }
    }
}

/// A running task as the overview shows it.
#[derive(Debug, Clone, Serialize, Type)]
pub struct RunningDto {
    pub task_id: String,
    pub title: String,
    pub agent: Option<String>,
    pub product: Option<String>,
    pub since: String,
    pub attempt: u32,
    pub last_line: Option<String>,
    pub last_line_at: Option<String>,
    pub cost_usd: f64,
}

impl From<&reef_core::factory::RunningWork> for RunningDto {
    fn from(r: &reef_core::factory::RunningWork) -> Self {
        Self {
            task_id: r.task_id.clone(),
            title: r.title.clone(),
            agent: r.agent.clone(),
            product: r.product.clone(),
            since: fmt_ts(&r.since),
            attempt: r.attempt,
            last_line: r.last_line.clone(),
            last_line_at: r.last_line_at.as_ref().map(fmt_ts),
            cost_usd: r.cost.dollars(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct TaskCostDto {
    pub id: String,
    pub cost_usd: f64,
}

/// One thing the palette found.
#[derive(Debug, Clone, Serialize, Type)]
pub struct HitDto {
    pub kind: reef_core::factory::HitKind,
    pub id: String,
    pub title: String,
    pub detail: String,
}
