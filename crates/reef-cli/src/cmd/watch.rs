//! `reef watch`: every change to the store, from any process, as it happens.

use super::Out;
use futures::StreamExt;
use reef_core::factory::Factory;

pub async fn run(f: &Factory, collection: Option<String>, out: &Out) -> anyhow::Result<()> {
    let mut s = f.ports.changes.watch(None).await?;
    if !out.json {
        eprintln!("watching {} (Ctrl-C to stop)", f.ports.kind);
    }
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            c = s.next() => {
                let Some(c) = c else { return Ok(()) };
                let c = c?;
                if collection.as_ref().is_some_and(|want| *want != c.collection) {
                    continue;
                }
                if out.json {
                    println!("{}", serde_json::json!({"collection": c.collection, "op": c.op, "id": c.id, "token": c.token.0}));
                } else {
                    println!("{:<14} {:<7} {}", super::for_terminal(&c.collection), format!("{:?}", c.op).to_lowercase(), super::for_terminal(&c.id));
                }
            }
        }
    }
}
