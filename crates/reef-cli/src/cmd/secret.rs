//! `reef secret …`: secrets in the OS keyring (never in a file or the store), by environment name.

use super::Out;
use clap::Subcommand;
use reef_core::factory::Factory;
use reef_host::vault::{self, Vault};

#[derive(Subcommand)]
pub enum SecretCmd {
    /// Every secret REEF knows of and where its value comes from (environment, keyring, unset).
    List,
    /// Keep a secret in the OS keyring. The value is read from standard input, never the command
    /// line (which other users and the shell history can see).
    Set {
        /// e.g. REEF_LLM_API_KEY; with --product, the secret's own name (e.g. STRIPE_KEY).
        name: String,
        /// A product's secret: stored as REEF_PRODUCT_<PRODUCT>_<NAME>.
        #[arg(long)]
        product: Option<String>,
    },
    /// Remove a secret from the OS keyring.
    Delete {
        name: String,
        #[arg(long)]
        product: Option<String>,
    },
}

fn full_name(name: &str, product: Option<&str>) -> anyhow::Result<String> {
    Ok(match product {
        Some(p) => vault::product_secret(p, name)?,
        None => name.to_string(),
    })
}

/// `f`: the factory, or why the store could not be opened (a wrong URI in the keyring is fixed
/// from here, so these commands work without it).
pub async fn run(f: Result<Factory, String>, operator: &str, c: SecretCmd, out: &Out) -> anyhow::Result<()> {
    let v = Vault::os();
    let who = format!("operator:{operator}");
    if let Err(why) = &f {
        eprintln!("note: the store is unreachable ({why}); product secrets are not listed and changes are not audited");
    }
    let f = f.as_ref().ok();
    match c {
        SecretCmd::List => {
            let all = vault::list(f, &v).await?;
            out.print(&all, || {
                all.iter()
                    .map(|s| format!("{:<40} {:<12} {}", s.name, format!("{:?}", s.source).to_lowercase(), s.purpose))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        SecretCmd::Set { name, product } => {
            let name = full_name(&name, product.as_deref())?;
            vault::validate_name(&name)?;
            let mut value = String::new();
            std::io::stdin().read_line(&mut value)?;
            let value = value.trim_end_matches(['\n', '\r']).to_string();
            vault::put(f, &v, &name, value, &who).await?;
            out.print(&serde_json::json!({"name": name, "source": "keyring"}), || {
                format!("{name} kept in the OS keyring (service {:?})", v.service())
            });
        }
        SecretCmd::Delete { name, product } => {
            let name = full_name(&name, product.as_deref())?;
            let had = vault::remove(f, &v, &name, &who).await?;
            out.print(&serde_json::json!({"name": name, "removed": had}), || {
                if had {
                    format!("{name} removed from the OS keyring")
                } else {
                    format!("the OS keyring held no {name}")
                }
            });
        }
    }
    Ok(())
}
