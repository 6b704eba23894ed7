//! `reef pipeline …`: a product's delivery pipeline as revisions — show the one in force, save
//! an edited table, list the revisions, put an earlier one back (reef_core::factory::pipeline_defs).

use super::Out;
use anyhow::Context;
use clap::Subcommand;
use reef_core::factory::Factory;

#[derive(Subcommand)]
pub enum PipelineCmd {
    /// The pipeline in force for a product, as the TOML table `reef pipeline set` takes.
    Show { product: String },
    /// Save a product's pipeline from a file holding its table (`-` for standard input): a new
    /// revision, validated as the config file's `[[products]]` is.
    Set {
        product: String,
        #[arg(long)]
        file: std::path::PathBuf,
        /// Refuse if the latest revision is not this one (someone saved meanwhile).
        #[arg(long)]
        base: Option<u32>,
        #[arg(long, short = 'r')]
        reason: Option<String>,
    },
    /// Every stored revision of a product's pipeline, newest first.
    Revisions { product: String },
    /// Put an earlier revision back (as a new revision).
    Rollback { product: String, revision: u32 },
}

pub async fn run(f: &Factory, c: PipelineCmd, out: &Out) -> anyhow::Result<()> {
    let who = f.operator();
    match c {
        PipelineCmd::Show { product } => {
            let (text, revision) = f.pipeline_text(&product).await?;
            let exists = f.pipeline(Some(&product)).await?.is_some();
            out.print(&serde_json::json!({"product": product, "revision": revision, "exists": exists, "text": text}), || {
                let from = match (exists, revision) {
                    (false, _) => "no pipeline yet; a template".to_string(),
                    (true, 0) => "from the config file".to_string(),
                    (true, r) => format!("revision {r}"),
                };
                format!("# {product}: {from}\n{text}")
            });
        }
        PipelineCmd::Set { product, file, base, reason } => {
            let text = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin()).context("reading standard input")?
            } else {
                std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?
            };
            let r = f.edit_pipeline(&product, &text, base, &who, reason.as_deref()).await?;
            out.print(&r, || format!("pipeline of {product} is at revision {}", r.revision));
        }
        PipelineCmd::Revisions { product } => {
            let mut revs = f.pipeline_revisions(&product).await?;
            revs.reverse();
            out.print(&serde_json::json!({"product": product, "revisions": revs}), || {
                if revs.is_empty() {
                    return format!("{product} has no stored revisions (its pipeline, if any, is the config file's)");
                }
                revs.iter()
                    .map(|r| format!("{:>4}  {}  {}  {}", r.revision, r.at, r.author, r.reason.as_deref().unwrap_or("")))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        PipelineCmd::Rollback { product, revision } => {
            let r = f.rollback_pipeline(&product, revision, &who).await?;
            out.print(&r, || format!("pipeline of {product} is back to revision {revision}'s, as revision {}", r.revision));
        }
    }
    Ok(())
}
