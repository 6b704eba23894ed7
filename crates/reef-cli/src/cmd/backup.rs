//! `reef backup` / `reef restore`: the whole store as gzip'd JSON lines, in the store-neutral
//! document shape, so an archive from the embedded store restores into MongoDB and back.

use super::Out;
use anyhow::{bail, Context};
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use reef_core::factory::Factory;
use reef_core::*;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

const FORMAT: u32 = 1;

pub async fn backup(f: &Factory, file: &Path, out: &Out) -> anyhow::Result<()> {
    let dump = f.ports.archive.export().await?;
    // Write beside the target and rename, so a crash never leaves a half archive under the name.
    let tmp = file.with_extension("partial");
    {
        // The whole factory is in it: readable by this user only.
        let fh = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)
        }
        .with_context(|| format!("creating {}", tmp.display()))?;
        let mut gz = GzEncoder::new(std::io::BufWriter::new(fh), flate2::Compression::default());
        let header =
            serde_json::json!({"reef_backup": FORMAT, "created_at": reef_core::time::fmt_ts(&f.now()), "store": f.ports.kind.to_string()});
        writeln!(gz, "{header}")?;
        for (coll, docs) in &dump {
            for d in docs {
                writeln!(gz, "{}", serde_json::json!({"c": coll, "d": d}))?;
            }
        }
        gz.finish()?.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    }
    std::fs::rename(&tmp, file).with_context(|| format!("moving the archive to {}", file.display()))?;
    let counts: BTreeMap<&str, usize> = dump.iter().map(|(c, d)| (c.as_str(), d.len())).collect();
    out.print(&serde_json::json!({"file": file, "documents": counts}), || {
        format!("wrote {} ({} documents)", file.display(), counts.values().sum::<usize>())
    });
    Ok(())
}

pub async fn restore(f: &Factory, file: &Path, force: bool, out: &Out) -> anyhow::Result<()> {
    let fh = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let mut lines = BufReader::new(GzDecoder::new(fh)).lines();
    let header: serde_json::Value =
        serde_json::from_str(&lines.next().context("the archive is empty")?.context("reading the archive (is it a `reef backup` file?)")?)
            .context("the archive's first line is not a REEF backup header")?;
    match header.get("reef_backup").and_then(|v| v.as_u64()) {
        Some(v) if v as u32 == FORMAT => {}
        Some(v) => bail!("archive format {v} is not supported by this REEF (it reads format {FORMAT})"),
        None => bail!("{} is not a REEF backup", file.display()),
    }
    let mut by_coll: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    for (n, line) in lines.enumerate() {
        let line = line.with_context(|| format!("reading line {}", n + 2))?;
        let mut v: serde_json::Value = serde_json::from_str(&line).with_context(|| format!("line {} of the archive is not JSON", n + 2))?;
        let c = v.get("c").and_then(|c| c.as_str()).with_context(|| format!("line {} has no collection", n + 2))?.to_string();
        if !collections::ALL.contains(&c.as_str()) {
            bail!("line {} names collection {c:?}, which REEF does not keep", n + 2);
        }
        by_coll.entry(c).or_default().push(v["d"].take());
    }
    let existing: u64 = f.ports.tasks.counts().await?.iter().map(|(_, n)| n).sum();
    if existing > 0 && !force {
        bail!("the store already holds {existing} tasks; restore with --force to merge (same ids are replaced)");
    }
    let mut counts = BTreeMap::new();
    for c in collections::ALL {
        if let Some(docs) = by_coll.remove(c) {
            let n = docs.len();
            for chunk in docs.chunks(5000) {
                f.ports.archive.import(c, chunk.to_vec()).await.with_context(|| format!("restoring {c}"))?;
            }
            counts.insert(c, n);
        }
    }
    out.print(&serde_json::json!({"restored": counts}), || {
        format!("restored {} documents into {}", counts.values().sum::<usize>(), f.ports.kind)
    });
    Ok(())
}
