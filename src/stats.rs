//! The statistics quality management states its numbers with: the
//! t interval of a mean (docs/quality.md). One place, so the formula the
//! docs name is the one the scorecard and the API use.

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, StudentsT};

/// A mean with its two-sided confidence interval.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct MeanInterval {
    pub n: u64,
    pub mean: f64,
    /// Sample standard deviation (n − 1); `None` below two values.
    pub sd: Option<f64>,
    pub confidence: f64,
    /// `t` (Student's t with n − 1 degrees of freedom).
    pub method: &'static str,
    /// Half the interval's width; `None` below two values (unbounded).
    pub half_width: Option<f64>,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
}

impl MeanInterval {
    /// From the count, sum and sum of squares of the values; bounds are
    /// clamped to `[lo, hi]` (a score cannot leave its scale).
    pub fn from_sums(
        n: u64,
        sum: f64,
        sum_sq: f64,
        confidence: f64,
        lo: f64,
        hi: f64,
    ) -> Option<MeanInterval> {
        if n == 0 {
            return None;
        }
        let nf = n as f64;
        let mean = sum / nf;
        let (sd, half) = if n >= 2 {
            // Guard the subtraction against rounding below zero.
            let var = ((sum_sq - sum * sum / nf) / (nf - 1.0)).max(0.0);
            let sd = var.sqrt();
            let t = StudentsT::new(0.0, 1.0, nf - 1.0)
                .map(|d| d.inverse_cdf(1.0 - (1.0 - confidence) / 2.0))
                .ok();
            (Some(sd), t.map(|t| t * sd / nf.sqrt()))
        } else {
            (None, None)
        };
        Some(MeanInterval {
            n,
            mean,
            sd,
            confidence,
            method: "t",
            half_width: half,
            lower: half.map(|h| (mean - h).max(lo)),
            upper: half.map(|h| (mean + h).min(hi)),
        })
    }

    /// Whether the interval is at most `width` wide (never with n < 2).
    pub fn narrow_enough(&self, width: f64) -> bool {
        matches!((self.lower, self.upper), (Some(l), Some(u)) if u - l <= width)
    }

    /// "87 ± 6 (n = 9)", or "87 (n = 1)".
    pub fn display(&self) -> String {
        match self.half_width {
            Some(h) => format!("{:.0} ± {:.0} (n = {})", self.mean, h, self.n),
            None => format!("{:.0} (n = {})", self.mean, self.n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_t_interval_of_a_small_sample() {
        // 80, 90, 85, 95, 75: mean 85, sd = sqrt(62.5) = 7.9057,
        // t(0.975, 4) = 2.7764: half-width 2.7764 * 7.9057 / sqrt(5) = 9.816.
        let v = [80.0, 90.0, 85.0, 95.0, 75.0];
        let sum: f64 = v.iter().sum();
        let sq: f64 = v.iter().map(|x| x * x).sum();
        let m = MeanInterval::from_sums(5, sum, sq, 0.95, 0.0, 100.0).expect("values");
        assert!((m.mean - 85.0).abs() < 1e-9);
        assert!((m.sd.expect("sd") - 62.5f64.sqrt()).abs() < 1e-9);
        assert!((m.half_width.expect("h") - 9.8163).abs() < 1e-3, "{m:?}");
        assert_eq!(m.display(), "85 ± 10 (n = 5)");
        assert!(!m.narrow_enough(19.0) && m.narrow_enough(20.0));
        let one = MeanInterval::from_sums(1, 70.0, 4900.0, 0.95, 0.0, 100.0).expect("one");
        assert_eq!(
            (one.half_width, one.display()),
            (None, "70 (n = 1)".to_string())
        );
        assert!(!one.narrow_enough(100.0));
    }
}
