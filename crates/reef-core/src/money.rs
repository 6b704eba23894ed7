//! Money as whole micro-dollars, so caps and sums never drift by float rounding.

use serde::{Deserialize, Serialize};
use std::fmt;

/// US dollars in millionths. Every cap, reservation and settled cost is one of these.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Usd(pub i64);

impl Usd {
    pub const ZERO: Usd = Usd(0);
    pub fn from_dollars(d: f64) -> Self {
        Usd((d * 1_000_000.0).round() as i64)
    }
    pub fn dollars(self) -> f64 {
        self.0 as f64 / 1_000_000.0
    }
    pub fn micros(self) -> i64 {
        self.0
    }
}

impl std::ops::Add for Usd {
    type Output = Usd;
    fn add(self, o: Usd) -> Usd {
        Usd(self.0.saturating_add(o.0))
    }
}
impl std::ops::Mul<i64> for Usd {
    type Output = Usd;
    fn mul(self, n: i64) -> Usd {
        Usd(self.0.saturating_mul(n))
    }
}
impl std::ops::Sub for Usd {
    type Output = Usd;
    fn sub(self, o: Usd) -> Usd {
        Usd(self.0.saturating_sub(o.0))
    }
}
impl std::iter::Sum for Usd {
    fn sum<I: Iterator<Item = Usd>>(it: I) -> Usd {
        it.fold(Usd::ZERO, |a, b| a + b)
    }
}

impl fmt::Display for Usd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.dollars();
        if d != 0.0 && d.abs() < 0.01 {
            write!(f, "${d:.4}")
        } else {
            write!(f, "${d:.2}")
        }
    }
}
