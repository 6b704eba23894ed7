//! `Ledger` on SQLite: a reservation is one transaction over every scope it touches.

use super::{db_err, json_err, parse_doc, SqliteStore};
use async_trait::async_trait;
use reef_core::time::fmt_ts;
use reef_core::*;
use rusqlite::{params, OptionalExtension, Transaction};

fn load_reservation(tx: &Transaction<'_>, id: &str) -> Result<Reservation, StoreError> {
    let doc: String = tx
        .query_row("SELECT doc FROM reservations WHERE id = ?1", [id], |r| r.get(0))
        .optional()
        .map_err(db_err)?
        .ok_or_else(|| StoreError::not_found(format!("reservation {id}")))?;
    parse_doc("reservations", id, &doc).map_err(|m| StoreError::Malformed { collection: m.collection, id: m.id, reason: m.reason })
}

fn save_reservation(tx: &Transaction<'_>, r: &Reservation) -> Result<(), StoreError> {
    let doc = serde_json::to_string(r).map_err(json_err)?;
    tx.execute("INSERT OR REPLACE INTO reservations (id, doc) VALUES (?1, ?2)", params![r.id, doc]).map_err(db_err)?;
    Ok(())
}

/// Moves an open reservation's held amount out of every scope, adding `spent` where settled.
fn close(tx: &Transaction<'_>, r: &mut Reservation, state: ReservationState, spent: Usd, now: &str) -> Result<(), StoreError> {
    for s in &r.scopes {
        tx.execute(
            "UPDATE ledger SET reserved = max(reserved - ?2, 0), spent = spent + ?3,
               overshoot = overshoot + max(spent + ?3 - cap, 0) - max(spent - cap, 0), updated_at = ?4
             WHERE scope = ?1",
            params![s.0, r.amount.0, spent.0, now],
        )
        .map_err(db_err)?;
    }
    r.state = state;
    if state == ReservationState::Settled {
        r.settled = Some(spent);
    }
    save_reservation(tx, r)
}

#[async_trait]
impl Ledger for SqliteStore {
    async fn reserve(&self, req: ReserveRequest, now: Timestamp) -> StoreResult<Reservation> {
        if req.amount.0 < 0 {
            return Err(StoreError::Invalid("a reservation amount cannot be negative".into()));
        }
        if req.scopes.is_empty() {
            return Err(StoreError::Invalid("a reservation needs at least one scope".into()));
        }
        self.write(move |tx| {
            let now_s = fmt_ts(&now);
            for sc in &req.scopes {
                // The cap in force is the caller's (config may have changed since the period began).
                tx.execute(
                    "INSERT INTO ledger (scope, cap, updated_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (scope) DO UPDATE SET cap = excluded.cap",
                    params![sc.scope.0, sc.cap.0, now_s],
                )
                .map_err(db_err)?;
                let (spent, reserved): (i64, i64) = tx
                    .query_row("SELECT spent, reserved FROM ledger WHERE scope = ?1", [&sc.scope.0], |r| Ok((r.get(0)?, r.get(1)?)))
                    .map_err(db_err)?;
                if spent + reserved + req.amount.0 > sc.cap.0 {
                    // Returning an error rolls the whole transaction back: nothing was reserved.
                    return Err(StoreError::BudgetRefused {
                        scope: sc.scope.0.clone(),
                        cap: sc.cap,
                        spent: Usd(spent),
                        reserved: Usd(reserved),
                        requested: req.amount,
                    });
                }
                tx.execute(
                    "UPDATE ledger SET reserved = reserved + ?2, updated_at = ?3 WHERE scope = ?1",
                    params![sc.scope.0, req.amount.0, now_s],
                )
                .map_err(db_err)?;
            }
            let r = req.to_reservation(now);
            let exists: bool = tx
                .query_row("SELECT 1 FROM reservations WHERE id = ?1", [&r.id], |_| Ok(true))
                .optional()
                .map_err(db_err)?
                .unwrap_or(false);
            if exists {
                return Err(StoreError::Conflict(format!("reservation {} already exists", r.id)));
            }
            save_reservation(tx, &r)?;
            Ok(r)
        })
        .await
    }

    async fn settle(&self, id: &str, actual: Usd, now: Timestamp) -> StoreResult<Reservation> {
        let id = id.to_string();
        self.write(move |tx| {
            let mut r = load_reservation(tx, &id)?;
            match r.state {
                ReservationState::Open => close(tx, &mut r, ReservationState::Settled, actual.max(Usd::ZERO), &fmt_ts(&now))?,
                ReservationState::Settled => {}
                // Expired or released while the call was still running: the money was spent all
                // the same, so it is recorded (an overshoot if it no longer fits).
                ReservationState::Expired | ReservationState::Released => {
                    for s in &r.scopes {
                        tx.execute(
                            "UPDATE ledger SET spent = spent + ?2, overshoot = overshoot + max(spent + ?2 - cap, 0) - max(spent - cap, 0), updated_at = ?3 WHERE scope = ?1",
                            params![s.0, actual.0, fmt_ts(&now)],
                        )
                        .map_err(db_err)?;
                    }
                    r.state = ReservationState::Settled;
                    r.settled = Some(actual);
                    save_reservation(tx, &r)?;
                }
            }
            Ok(r)
        })
        .await
    }

    async fn release(&self, id: &str, now: Timestamp) -> StoreResult<Reservation> {
        let id = id.to_string();
        self.write(move |tx| {
            let mut r = load_reservation(tx, &id)?;
            if r.state == ReservationState::Open {
                close(tx, &mut r, ReservationState::Released, Usd::ZERO, &fmt_ts(&now))?;
            }
            Ok(r)
        })
        .await
    }

    async fn extend(&self, id: &str, expires_at: Timestamp) -> StoreResult<Reservation> {
        let id = id.to_string();
        self.write(move |tx| {
            let mut r = load_reservation(tx, &id)?;
            if r.state != ReservationState::Open {
                return Err(StoreError::Conflict(format!("reservation {id} is {:?}, not open", r.state)));
            }
            r.expires_at = expires_at;
            save_reservation(tx, &r)?;
            Ok(r)
        })
        .await
    }

    async fn expire(&self, now: Timestamp) -> StoreResult<u64> {
        self.write(move |tx| {
            let now_s = fmt_ts(&now);
            let ids: Vec<String> = {
                let mut st = tx.prepare_cached("SELECT id FROM reservations WHERE state = 'open' AND expires_at < ?1").map_err(db_err)?;
                let rows = st.query_map([&now_s], |r| r.get(0)).map_err(db_err)?;
                rows.collect::<Result<_, _>>().map_err(db_err)?
            };
            for id in &ids {
                let mut r = load_reservation(tx, id)?;
                close(tx, &mut r, ReservationState::Expired, Usd::ZERO, &now_s)?;
            }
            Ok(ids.len() as u64)
        })
        .await
    }

    async fn totals(&self, scopes: &[ScopeKey]) -> StoreResult<Vec<ScopeTotal>> {
        let scopes = scopes.to_vec();
        self.read(move |c| {
            let mut st = c
                .prepare_cached("SELECT scope, cap, spent, reserved, overshoot, updated_at FROM ledger WHERE scope = ?1")
                .map_err(db_err)?;
            let mut out = vec![];
            for s in scopes {
                if let Some(t) = st.query_row([&s.0], row_total).optional().map_err(db_err)? {
                    out.push(t);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn totals_with_prefix(&self, prefix: &str) -> StoreResult<Vec<ScopeTotal>> {
        let p = format!("{}%", prefix.replace('%', "\\%").replace('_', "\\_"));
        self.read(move |c| {
            let mut st = c
                .prepare_cached(
                    "SELECT scope, cap, spent, reserved, overshoot, updated_at FROM ledger WHERE scope LIKE ?1 ESCAPE '\\' ORDER BY scope",
                )
                .map_err(db_err)?;
            let rows = st.query_map([&p], row_total).map_err(db_err)?;
            rows.collect::<Result<_, _>>().map_err(db_err)
        })
        .await
    }

    async fn record_call(&self, call: LlmCall, rollups: &[ScopeKey]) -> StoreResult<()> {
        let rollups = rollups.to_vec();
        self.write(move |tx| {
            let doc = serde_json::to_string(&call).map_err(json_err)?;
            // A call recorded twice (a retry after a crash) is counted once.
            let n = tx.execute("INSERT OR IGNORE INTO llm_calls (id, doc) VALUES (?1, ?2)", params![call.id, doc]).map_err(db_err)?;
            if n == 1 {
                let now = fmt_ts(&call.at);
                for k in &rollups {
                    tx.execute(
                        "INSERT INTO ledger (scope, cap, spent, updated_at) VALUES (?1, 0, ?2, ?3)
                         ON CONFLICT (scope) DO UPDATE SET spent = spent + excluded.spent, updated_at = excluded.updated_at",
                        params![k.0, call.cost.0, now],
                    )
                    .map_err(db_err)?;
                }
            }
            Ok(())
        })
        .await
    }

    async fn spend(&self, group: SpendGroup, since: Timestamp, until: Timestamp) -> StoreResult<Vec<SpendRow>> {
        let key = match group {
            SpendGroup::Agent => "json_extract(doc, '$.agent')",
            SpendGroup::Model => "json_extract(doc, '$.model')",
            SpendGroup::Product => "coalesce(json_extract(doc, '$.product'), '(none)')",
            SpendGroup::Day => "substr(at, 1, 10)",
        };
        let sql = format!(
            "SELECT {key} AS k, CAST(sum(json_extract(doc, '$.cost')) AS INTEGER), count(*) FROM llm_calls
             WHERE at >= ?1 AND at < ?2 GROUP BY k ORDER BY 2 DESC"
        );
        self.read(move |c| {
            let mut st = c.prepare_cached(&sql).map_err(db_err)?;
            let rows = st
                .query_map(params![fmt_ts(&since), fmt_ts(&until)], |r| {
                    Ok(SpendRow {
                        key: r.get::<_, Option<String>>(0)?.unwrap_or_default(),
                        cost: Usd(r.get(1)?),
                        calls: r.get::<_, i64>(2)? as u64,
                    })
                })
                .map_err(db_err)?;
            rows.collect::<Result<_, _>>().map_err(db_err)
        })
        .await
    }
}

fn row_total(r: &rusqlite::Row<'_>) -> rusqlite::Result<ScopeTotal> {
    let updated: String = r.get(5)?;
    Ok(ScopeTotal {
        scope: ScopeKey(r.get(0)?),
        cap: Usd(r.get(1)?),
        spent: Usd(r.get(2)?),
        reserved: Usd(r.get(3)?),
        overshoot: Usd(r.get(4)?),
        updated_at: reef_core::time::parse_ts(&updated).unwrap_or_default(),
    })
}
