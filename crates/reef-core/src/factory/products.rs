//! Products: saving one (its graph entity and provider edges with it), audited with the
//! product as it was before.

use super::Factory;
use crate::*;

impl Factory {
    /// Creates or replaces a product; the audit entry holds the old and the new document.
    pub async fn save_product(&self, p: Product, who: &str) -> StoreResult<Product> {
        if p.id.is_empty() || !p.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(StoreError::Invalid(format!("product id {:?}: use letters, digits, - and _", p.id)));
        }
        let old = self.ports.revenue.products().await?.items.into_iter().find(|x| x.id == p.id);
        let json = |v: &Product| serde_json::to_value(v).map_err(|e| StoreError::Backend(e.to_string()));
        let old = old.as_ref().map(json).transpose()?.unwrap_or_default();
        crate::books::save_product(&self.ports, p.clone(), self.now()).await?;
        self.audit(who, "product.set", &p.id, old, json(&p)?, None).await?;
        Ok(p)
    }
}
