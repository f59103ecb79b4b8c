//! Exact money and quantities: integers, never floats, inside the engine.
//!
//! Amounts are counted in hundredths of the configured currency's unit
//! ("cents") as `i64`, quantities in thousandths. Binary floats cannot
//! hold 0.1 exactly, so summing and then cancelling sales in `f64` left
//! residues like 2.8e-17 in net revenue; integers add up and cancel out
//! exactly. Values are rendered as currency units (`f64`) only at the
//! edge, in views and metrics, where one rounding is harmless.
//!
//! Bounds (checked at decode, see docs/events.md): a unit price or a
//! previous value is at most [`MAX_PRICE`] units, a quantity at most
//! [`MAX_QUANTITY`]; so one sale's revenue is at most 10^15 units =
//! 10^17 cents, far inside `i64`. Sums saturate at `i64::MAX` cents by
//! design (≈ 9.2 × 10^16 units), they never wrap.

use serde::{Deserialize, Serialize};

/// Largest unit price or previous value accepted, in currency units.
pub const MAX_PRICE: f64 = 1e9;
/// Largest quantity accepted.
pub const MAX_QUANTITY: f64 = 1e6;

/// An amount in hundredths of the currency unit.
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Money(pub i64);

/// A quantity in thousandths.
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Quantity(pub i64);

/// Why a number cannot be money or a quantity.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AmountError {
    #[error("must be a finite number >= 0, got {0}")]
    NotFinite(f64),
    #[error("is {value}, above the limit of {max}")]
    TooLarge { value: f64, max: f64 },
}

fn checked(value: f64, max: f64) -> Result<f64, AmountError> {
    if !value.is_finite() || value < 0.0 {
        return Err(AmountError::NotFinite(value));
    }
    if value > max {
        return Err(AmountError::TooLarge { value, max });
    }
    Ok(value)
}

impl Money {
    pub const ZERO: Money = Money(0);

    /// From currency units, rounded half away from zero to the cent.
    pub fn from_units(units: f64) -> Result<Money, AmountError> {
        // Within the bound the product is below 2^53: the rounding is exact.
        Ok(Money((checked(units, MAX_PRICE)? * 100.0).round() as i64))
    }

    /// In currency units, for views and metrics.
    pub fn units(self) -> f64 {
        self.0 as f64 / 100.0
    }

    pub fn saturating_add(self, o: Money) -> Money {
        Money(self.0.saturating_add(o.0))
    }

    pub fn saturating_sub(self, o: Money) -> Money {
        Money(self.0.saturating_sub(o.0))
    }

    pub fn is_negative(self) -> bool {
        self.0 < 0
    }

    pub fn abs(self) -> Money {
        Money(self.0.saturating_abs())
    }
}

impl Quantity {
    pub const ONE: Quantity = Quantity(1000);

    /// From a decimal count, rounded half away from zero to a thousandth.
    pub fn from_f64(q: f64) -> Result<Quantity, AmountError> {
        Ok(Quantity((checked(q, MAX_QUANTITY)? * 1000.0).round() as i64))
    }

    pub fn as_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }

    /// `self × price`, rounded half away from zero to the cent. Exact: the
    /// product is taken in 128 bits; within the decode bounds the result
    /// fits `i64` (it saturates otherwise).
    pub fn times(self, price: Money) -> Money {
        let p = i128::from(self.0) * i128::from(price.0);
        let r = (p + 500 * p.signum()) / 1000;
        Money(i64::try_from(r).unwrap_or(if r < 0 { i64::MIN } else { i64::MAX }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cents_add_and_cancel_exactly() {
        let p = Money::from_units(0.1).expect("price");
        let mut sum = Money::ZERO;
        for _ in 0..3 {
            sum = sum.saturating_add(p);
        }
        for _ in 0..3 {
            sum = sum.saturating_sub(p);
        }
        assert_eq!(sum, Money::ZERO);
        assert_eq!(Money::from_units(19.99).expect("price").0, 1999);
    }

    #[test]
    fn bounds_are_enforced() {
        assert!(Money::from_units(1e20).is_err());
        assert!(Money::from_units(-1.0).is_err());
        assert!(Money::from_units(f64::NAN).is_err());
        assert!(Quantity::from_f64(1e7).is_err());
        assert!(Money::from_units(MAX_PRICE).is_ok());
    }

    #[test]
    fn revenue_is_rounded_half_away_from_zero() {
        let q = Quantity::from_f64(2.5).expect("q");
        assert_eq!(q.times(Money(3)).0, 8); // 7.5 cents -> 8
        let max = Quantity::from_f64(MAX_QUANTITY)
            .expect("q")
            .times(Money::from_units(MAX_PRICE).expect("p"));
        assert_eq!(max.0, 100_000_000_000_000_000);
    }
}
