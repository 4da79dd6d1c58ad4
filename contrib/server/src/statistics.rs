//! The tests experiment results use, computed from aggregates (counts, sums
//! and sums of squares) with statrs's distributions. The method is written in
//! docs/EXPERIMENTS.md; the numbers are checked against statsmodels and
//! scipy in `tests/experiments.rs`.

use serde::Serialize;
use statrs::distribution::{ChiSquared, ContinuousCDF, Normal, StudentsT};

/// The confidence level of every interval.
pub(crate) const CONFIDENCE: f64 = 0.95;

/// The two-sided p-value below which a difference is called significant.
pub(crate) const ALPHA: f64 = 0.05;

/// The p-value below which the sample-ratio check reports a mismatch.
pub(crate) const SRM_ALPHA: f64 = 0.001;

/// A treatment against the control.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Comparison {
    /// Treatment minus control.
    pub(crate) absolute: f64,
    /// Its 95 % confidence interval.
    pub(crate) absolute_ci: Option<[f64; 2]>,
    /// Treatment ÷ control − 1 (absent when the control's is 0).
    pub(crate) relative: Option<f64>,
    /// Its 95 % confidence interval.
    pub(crate) relative_ci: Option<[f64; 2]>,
    /// Two-sided p-value (absent when the test is undefined: no variance).
    pub(crate) p_value: Option<f64>,
    /// `p_value < 0.05`.
    pub(crate) significant: bool,
}

fn standard_normal() -> Normal {
    Normal::standard()
}

/// The normal quantile of the confidence level (1.959964…).
fn z_critical() -> f64 {
    standard_normal().inverse_cdf(1.0 - (1.0 - CONFIDENCE) / 2.0)
}

fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

fn interval(lo: f64, hi: f64) -> Option<[f64; 2]> {
    (lo.is_finite() && hi.is_finite()).then_some([lo, hi])
}

/// Conversions of a treatment (`c1` of `n1` users) against the control
/// (`c0` of `n0`): the pooled two-proportion z-test, a Wald interval for the
/// difference and Katz's log interval for the ratio.
pub(crate) fn two_proportions(c1: u64, n1: u64, c0: u64, n0: u64) -> Option<Comparison> {
    if n1 == 0 || n0 == 0 {
        return None;
    }
    let (c1, n1, c0, n0) = (c1 as f64, n1 as f64, c0 as f64, n0 as f64);
    let (p1, p0) = (c1 / n1, c0 / n0);
    let z = z_critical();
    let absolute = p1 - p0;
    let se = (p1 * (1.0 - p1) / n1 + p0 * (1.0 - p0) / n0).sqrt();
    let pooled = (c1 + c0) / (n1 + n0);
    let se_pooled = (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n0)).sqrt();
    let p_value = (se_pooled > 0.0)
        .then(|| 2.0 * standard_normal().sf((absolute / se_pooled).abs()))
        .and_then(finite);
    let relative = (p0 > 0.0).then(|| p1 / p0 - 1.0);
    let relative_ci = (c1 > 0.0 && c0 > 0.0)
        .then(|| {
            let spread = z * (1.0 / c1 - 1.0 / n1 + 1.0 / c0 - 1.0 / n0).sqrt();
            let log_ratio = (p1 / p0).ln();
            interval(
                (log_ratio - spread).exp() - 1.0,
                (log_ratio + spread).exp() - 1.0,
            )
        })
        .flatten();
    Some(Comparison {
        absolute,
        absolute_ci: interval(absolute - z * se, absolute + z * se),
        relative,
        relative_ci,
        p_value,
        significant: p_value.is_some_and(|p| p < ALPHA),
    })
}

/// A sample given by its size, sum and sum of squares.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Moments {
    pub(crate) n: u64,
    pub(crate) sum: f64,
    pub(crate) sum_squares: f64,
}

impl Moments {
    pub(crate) fn mean(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / self.n as f64)
    }

    /// The sample variance (n − 1 in the denominator).
    fn variance(&self) -> Option<f64> {
        (self.n > 1).then(|| {
            let n = self.n as f64;
            ((self.sum_squares - self.sum * self.sum / n) / (n - 1.0)).max(0.0)
        })
    }

    /// The mean's 95 % interval from Student's t with n − 1 degrees of freedom.
    pub(crate) fn mean_ci(&self) -> Option<[f64; 2]> {
        let (mean, variance) = (self.mean()?, self.variance()?);
        let t = t_critical(self.n as f64 - 1.0)?;
        let spread = t * (variance / self.n as f64).sqrt();
        interval(mean - spread, mean + spread)
    }
}

fn t_critical(df: f64) -> Option<f64> {
    let t = StudentsT::new(0.0, 1.0, df).ok()?;
    finite(t.inverse_cdf(1.0 - (1.0 - CONFIDENCE) / 2.0))
}

/// Per-user values of a treatment against the control: Welch's t-test, its
/// interval for the difference of means (Welch–Satterthwaite degrees of
/// freedom), and the delta method's normal interval for the ratio.
pub(crate) fn welch(treatment: Moments, control: Moments) -> Option<Comparison> {
    let (m1, m0) = (treatment.mean()?, control.mean()?);
    let absolute = m1 - m0;
    let (Some(var1), Some(var0)) = (treatment.variance(), control.variance()) else {
        return Some(Comparison {
            absolute,
            absolute_ci: None,
            relative: (m0 != 0.0).then(|| m1 / m0 - 1.0),
            relative_ci: None,
            p_value: None,
            significant: false,
        });
    };
    let (v1, v0) = (var1 / treatment.n as f64, var0 / control.n as f64);
    let se = (v1 + v0).sqrt();
    let df = (v1 + v0).powi(2)
        / (v1 * v1 / (treatment.n as f64 - 1.0) + v0 * v0 / (control.n as f64 - 1.0));
    let p_value = (se > 0.0)
        .then(|| {
            let t = StudentsT::new(0.0, 1.0, df).ok()?;
            finite(2.0 * t.sf((absolute / se).abs()))
        })
        .flatten();
    let absolute_ci = (se > 0.0)
        .then(|| {
            let spread = t_critical(df)? * se;
            interval(absolute - spread, absolute + spread)
        })
        .flatten();
    let relative = (m0 != 0.0).then(|| m1 / m0 - 1.0);
    let relative_ci = (m0 != 0.0)
        .then(|| {
            let spread = z_critical() * (v1 / (m0 * m0) + m1 * m1 * v0 / m0.powi(4)).sqrt();
            let r = m1 / m0 - 1.0;
            interval(r - spread, r + spread)
        })
        .flatten();
    Some(Comparison {
        absolute,
        absolute_ci,
        relative,
        relative_ci,
        p_value,
        significant: p_value.is_some_and(|p| p < ALPHA),
    })
}

/// Wilson's score interval for `c` successes in `n`.
pub(crate) fn wilson(c: u64, n: u64) -> Option<[f64; 2]> {
    if n == 0 {
        return None;
    }
    let (c, n) = (c as f64, n as f64);
    let p = c / n;
    let z = z_critical();
    let z2 = z * z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let spread = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / (1.0 + z2 / n);
    interval(centre - spread, centre + spread)
}

/// Pearson's chi-square of observed counts against expected shares (which
/// sum to 1): the statistic and its p-value with k − 1 degrees of freedom.
/// A count in a category expected to stay empty gives p = 0.
pub(crate) fn chi_square(observed: &[u64], shares: &[f64]) -> Option<(f64, f64)> {
    let total: u64 = observed.iter().sum();
    if total == 0 || observed.len() < 2 || observed.len() != shares.len() {
        return None;
    }
    let mut statistic = 0.0;
    let mut categories = 0usize;
    for (&o, &share) in observed.iter().zip(shares) {
        let expected = share * total as f64;
        if expected <= 0.0 {
            if o > 0 {
                return Some((f64::INFINITY, 0.0));
            }
            continue;
        }
        categories += 1;
        statistic += (o as f64 - expected).powi(2) / expected;
    }
    if categories < 2 {
        return None;
    }
    let distribution = ChiSquared::new((categories - 1) as f64).ok()?;
    Some((statistic, distribution.sf(statistic)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    // Reference values below from statsmodels 0.15 / scipy 1.17 (the
    // end-to-end check in tests/experiments.rs computes them live).
    #[test]
    fn two_proportions_match_statsmodels() {
        // proportions_ztest([330, 300], [1000, 1000]) → p = 0.1487029…
        let c = two_proportions(330, 1000, 300, 1000).expect("defined");
        assert!(close(c.absolute, 0.03));
        let p = c.p_value.expect("p");
        assert!((p - 0.148_702_968).abs() < 1e-8, "{p}");
        assert!(!c.significant);
        assert!(close(c.relative.expect("relative"), 0.1));
    }

    #[test]
    fn welch_matches_scipy() {
        // ttest_ind([1, 2, 3, 4], [2, 4, 6, 8, 10], equal_var=False) → p = 0.0691335…
        let sample = |xs: &[f64]| Moments {
            n: xs.len() as u64,
            sum: xs.iter().sum(),
            sum_squares: xs.iter().map(|x| x * x).sum(),
        };
        let c = welch(
            sample(&[1.0, 2.0, 3.0, 4.0]),
            sample(&[2.0, 4.0, 6.0, 8.0, 10.0]),
        )
        .expect("defined");
        assert!(close(c.absolute, -3.5));
        let p = c.p_value.expect("p");
        assert!((p - 0.069_133_593).abs() < 1e-8, "{p}");
    }

    #[test]
    fn chi_square_matches_scipy_and_names_impossible_counts() {
        // chisquare([60, 40], [50, 50]) → statistic 4, p = 0.0455…
        let (statistic, p) = chi_square(&[60, 40], &[0.5, 0.5]).expect("defined");
        assert!(close(statistic, 4.0));
        assert!((p - 0.045_500_26).abs() < 1e-7, "{p}");
        assert_eq!(chi_square(&[5, 1], &[1.0, 0.0]), Some((f64::INFINITY, 0.0)));
        assert_eq!(chi_square(&[0, 0], &[0.5, 0.5]), None);
    }

    #[test]
    fn wilson_is_inside_the_unit_interval() {
        let [lo, hi] = wilson(0, 10).expect("defined");
        assert!(lo.abs() < 1e-12 && hi > 0.0 && hi < 0.35);
        assert_eq!(wilson(0, 0), None);
    }
}
