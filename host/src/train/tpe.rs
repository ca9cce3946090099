//! The Tree-structured Parzen Estimator (TPE) sampler, after Bergstra et
//! al. (2011) and Optuna's `TPESampler` defaults: independent per parameter,
//! 10 random start-up trials, 24 candidates, `γ(n) = min(⌈0.1·n⌉, 25)`,
//! a prior component, and Optuna's bandwidth rule (each kernel as wide as
//! its larger gap to a neighbour).
//!
//! Every numeric domain is mapped onto `[0, 1]` ("unit space") before the
//! estimators see it — linear ranges by position, log ranges by position of
//! the logarithm — and mapped back with `i128`/`f64` arithmetic and a clamp,
//! so a range such as `i64::MIN..=i64::MAX`, `1..=i64::MAX` (log) or
//! `-f64::MAX..=f64::MAX` neither overflows nor collapses to one value.
//! Categorical parameters use a smoothed histogram of the good and bad
//! observations.
//!
//! The sampler keeps no state: [`suggest`] sees the whole history, so a
//! resumed study (history read from the journal) continues exactly as an
//! uninterrupted one would, and trials still running enter the history with
//! the worst score seen so far (the "constant liar"), which steers parallel
//! workers away from the region a running trial already explores.

use recotem_numerics::Rng;

use crate::plugin::bindings::source::recotem::plugin::types::ParamValue;
use crate::plugin::bindings::trainer::exports::recotem::plugin::trainer_plugin::{ParamDomain, ParamSpec};

/// Random trials before the estimators take over (Optuna's default).
pub const N_STARTUP: usize = 10;
/// Candidates drawn from the good estimator per parameter.
const N_CANDIDATES: usize = 24;

/// How trials are sampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sampler {
    /// TPE after [`N_STARTUP`] random trials.
    Tpe,
    /// Uniform (log-uniform) random sampling, for comparison.
    Random,
}

/// One observed (or running) trial of an algorithm: its values, one per
/// parameter of the space in order, and its score (`None` while running,
/// or when it failed: such trials count as the worst score seen).
#[derive(Debug, Clone)]
pub struct Observation {
    /// Values in the order of the space.
    pub values: Vec<ParamValue>,
    /// Score when it completed.
    pub score: Option<f64>,
}

/// Suggest the values of the next trial. `history` holds every finished or
/// running trial of this algorithm.
pub fn suggest(space: &[ParamSpec], history: &[Observation], sampler: Sampler, rng: &mut Rng) -> Vec<ParamValue> {
    if sampler == Sampler::Random || history.len() < N_STARTUP {
        return space.iter().map(|p| random_value(&p.domain, rng)).collect();
    }
    // The worst completed score stands in for failed and running trials;
    // with no completed trial at all, everything is equally bad: random.
    let Some(worst) = history.iter().filter_map(|o| o.score).min_by(f64::total_cmp) else {
        return space.iter().map(|p| random_value(&p.domain, rng)).collect();
    };
    let mut order: Vec<(f64, usize)> = history.iter().enumerate().map(|(i, o)| (o.score.unwrap_or(worst), i)).collect();
    // Best first; ties keep the older trial first (deterministic).
    order.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let n_below = history.len().div_ceil(10).clamp(1, 25);
    let below: Vec<usize> = order[..n_below].iter().map(|&(_, i)| i).collect();
    let above: Vec<usize> = order[n_below..].iter().map(|&(_, i)| i).collect();
    space
        .iter()
        .enumerate()
        .map(|(k, p)| {
            let pick = |set: &[usize]| set.iter().map(|&i| history[i].values.get(k)).collect::<Vec<_>>();
            match &p.domain {
                ParamDomain::Categorical(c) if !c.choices.is_empty() => {
                    let index = |v: Option<&ParamValue>| match v {
                        Some(ParamValue::Text(t)) => c.choices.iter().position(|x| x == t),
                        _ => None,
                    };
                    let good: Vec<usize> = pick(&below).into_iter().filter_map(index).collect();
                    let bad: Vec<usize> = pick(&above).into_iter().filter_map(index).collect();
                    let choice = categorical(c.choices.len(), &good, &bad, rng);
                    ParamValue::Text(c.choices[choice].clone())
                }
                ParamDomain::Categorical(c) => ParamValue::Text(c.default.clone()),
                domain => {
                    let unit = |v: Option<&ParamValue>| v.and_then(|v| to_unit(domain, v));
                    let good: Vec<f64> = pick(&below).into_iter().filter_map(unit).collect();
                    let bad: Vec<f64> = pick(&above).into_iter().filter_map(unit).collect();
                    from_unit(domain, numeric(&good, &bad, rng))
                }
            }
        })
        .collect()
}

/// A uniform draw (log-uniform for log ranges) from a domain.
pub fn random_value(domain: &ParamDomain, rng: &mut Rng) -> ParamValue {
    match domain {
        ParamDomain::Int(r) if !r.log || r.low < 1 => {
            let (lo, hi) = (r.low.min(r.high), r.low.max(r.high));
            // The span fits in u64 (at most 2^64 − 1); the full range takes
            // all 64 random bits.
            let span = (i128::from(hi) - i128::from(lo)) as u64;
            let offset = if span == u64::MAX { rng.next_u64() } else { rng.below(span + 1) };
            ParamValue::Int((i128::from(lo) + i128::from(offset)) as i64)
        }
        ParamDomain::Categorical(c) if !c.choices.is_empty() => {
            ParamValue::Text(c.choices[rng.below(c.choices.len() as u64) as usize].clone())
        }
        ParamDomain::Categorical(c) => ParamValue::Text(c.default.clone()),
        domain => from_unit(domain, rng.next_f64()),
    }
}

/// The position of `v` in `[0, 1]`, or `None` when it does not belong to
/// the domain's type.
pub fn to_unit(domain: &ParamDomain, v: &ParamValue) -> Option<f64> {
    let u = match (domain, v) {
        (ParamDomain::Int(r), ParamValue::Int(x)) => {
            let (lo, hi) = (r.low.min(r.high), r.low.max(r.high));
            if r.log && lo >= 1 {
                log_position(lo as f64, hi as f64 + 1.0, (*x).max(1) as f64 + 0.5)
            } else if hi == lo {
                0.5
            } else {
                (i128::from(*x) - i128::from(lo)) as f64 / (i128::from(hi) - i128::from(lo)) as f64
            }
        }
        (ParamDomain::Float(r), ParamValue::Float(x)) => {
            let (lo, hi) = (r.low.min(r.high), r.low.max(r.high));
            if r.log && lo > 0.0 {
                log_position(lo, hi, x.max(lo))
            } else if hi == lo {
                0.5
            } else {
                // Halves keep `hi − lo` finite for ±f64::MAX.
                (x / 2.0 - lo / 2.0) / (hi / 2.0 - lo / 2.0)
            }
        }
        _ => return None,
    };
    u.is_finite().then(|| u.clamp(0.0, 1.0))
}

fn log_position(lo: f64, hi: f64, x: f64) -> f64 {
    let (a, b) = (lo.ln(), hi.ln());
    if b > a { (x.ln() - a) / (b - a) } else { 0.5 }
}

/// The value at position `u ∈ [0, 1]` of a numeric domain, clamped to it.
pub fn from_unit(domain: &ParamDomain, u: f64) -> ParamValue {
    let u = if u.is_finite() { u.clamp(0.0, 1.0) } else { 0.5 };
    match domain {
        ParamDomain::Int(r) => {
            let (lo, hi) = (r.low.min(r.high), r.low.max(r.high));
            let x: i128 = if r.log && lo >= 1 {
                // [lo, hi + 1) in log space, floored: every integer gets the
                // share of the log range its unit interval covers.
                let (a, b) = ((lo as f64).ln(), (hi as f64 + 1.0).ln());
                (a + u * (b - a)).exp().floor() as i128
            } else {
                let span = (i128::from(hi) - i128::from(lo)) as f64;
                // `as` saturates; the clamp below bounds the result.
                i128::from(lo) + (u * span).round() as i128
            };
            ParamValue::Int(x.clamp(i128::from(lo), i128::from(hi)) as i64)
        }
        ParamDomain::Float(r) => {
            let (lo, hi) = (r.low.min(r.high), r.low.max(r.high));
            let x = if r.log && lo > 0.0 {
                (lo.ln() + u * (hi.ln() - lo.ln())).exp()
            } else {
                (lo / 2.0 + u * (hi / 2.0 - lo / 2.0)) * 2.0
            };
            ParamValue::Float(if x.is_finite() { x.clamp(lo, hi) } else { lo })
        }
        ParamDomain::Categorical(c) => ParamValue::Text(c.default.clone()),
    }
}

/// One truncated-Gaussian mixture over `[0, 1]`: a prior kernel at 0.5
/// (width 1) plus one kernel per observation.
struct Parzen {
    mus: Vec<f64>,
    sigmas: Vec<f64>,
}

impl Parzen {
    fn new(points: &[f64]) -> Self {
        let mut mus: Vec<f64> = points.to_vec();
        mus.push(0.5);
        mus.sort_by(f64::total_cmp);
        let n = mus.len();
        let min_sigma = 1.0 / (n as f64).clamp(1.0, 100.0) / 10.0;
        let mut sigmas = Vec::with_capacity(n);
        for i in 0..n {
            let left = if i == 0 { mus[i] } else { mus[i] - mus[i - 1] };
            let right = if i + 1 == n { 1.0 - mus[i] } else { mus[i + 1] - mus[i] };
            sigmas.push(left.max(right).clamp(min_sigma, 1.0));
        }
        // The prior keeps its own width.
        if let Some(i) = mus.iter().position(|&m| m == 0.5) {
            sigmas[i] = 1.0;
        }
        Parzen { mus, sigmas }
    }

    fn sample(&self, rng: &mut Rng) -> f64 {
        let k = rng.below(self.mus.len() as u64) as usize;
        let (mu, sigma) = (self.mus[k], self.sigmas[k]);
        for _ in 0..64 {
            let x = mu + sigma * normal(rng);
            if (0.0..=1.0).contains(&x) {
                return x;
            }
        }
        mu.clamp(0.0, 1.0)
    }

    fn log_density(&self, x: f64) -> f64 {
        let w = 1.0 / self.mus.len() as f64;
        let p: f64 = self
            .mus
            .iter()
            .zip(&self.sigmas)
            .map(|(&mu, &s)| {
                let mass = (phi((1.0 - mu) / s) - phi(-mu / s)).max(1e-12);
                let z = (x - mu) / s;
                w * (-0.5 * z * z).exp() / (s * (2.0 * std::f64::consts::PI).sqrt() * mass)
            })
            .sum();
        p.max(1e-300).ln()
    }
}

fn numeric(good: &[f64], bad: &[f64], rng: &mut Rng) -> f64 {
    let (l, g) = (Parzen::new(good), Parzen::new(bad));
    let mut best = (f64::NEG_INFINITY, 0.5);
    for _ in 0..N_CANDIDATES {
        let x = l.sample(rng);
        let ei = l.log_density(x) - g.log_density(x);
        if ei > best.0 {
            best = (ei, x);
        }
    }
    best.1
}

fn categorical(k: usize, good: &[usize], bad: &[usize], rng: &mut Rng) -> usize {
    let weights = |set: &[usize]| {
        let mut w = vec![1.0 / k as f64; k];
        for &i in set {
            w[i] += 1.0;
        }
        let total: f64 = w.iter().sum();
        w.into_iter().map(|x| x / total).collect::<Vec<f64>>()
    };
    let (l, g) = (weights(good), weights(bad));
    let mut best = (f64::NEG_INFINITY, 0);
    for _ in 0..N_CANDIDATES {
        let mut r = rng.next_f64();
        let mut x = k - 1;
        for (i, &p) in l.iter().enumerate() {
            if r < p {
                x = i;
                break;
            }
            r -= p;
        }
        let ei = l[x].ln() - g[x].ln();
        if ei > best.0 {
            best = (ei, x);
        }
    }
    best.1
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut Rng) -> f64 {
    let u1 = rng.next_f64().max(1e-300);
    let u2 = rng.next_f64();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// The standard normal CDF (Abramowitz–Stegun 7.1.26 for erf, error < 1.5e-7).
fn phi(x: f64) -> f64 {
    let z = x / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z.abs());
    let y = 1.0
        - (((((1.061_405_429 * t - 1.453_152_027) * t) + 1.421_413_741) * t - 0.284_496_736) * t + 0.254_829_592)
            * t
            * (-z * z).exp();
    let erf = if z >= 0.0 { y } else { -y };
    0.5 * (1.0 + erf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::bindings::trainer::exports::recotem::plugin::trainer_plugin::{Categorical, FloatRange, IntRange};

    fn spec(name: &str, domain: ParamDomain) -> ParamSpec {
        ParamSpec { name: name.into(), description: String::new(), domain }
    }

    fn int(low: i64, high: i64, log: bool) -> ParamDomain {
        ParamDomain::Int(IntRange { low, high, log, default: low })
    }

    fn float(low: f64, high: f64, log: bool) -> ParamDomain {
        ParamDomain::Float(FloatRange { low, high, log, default: low })
    }

    #[test]
    fn extreme_domains_neither_overflow_nor_collapse() {
        let domains = [
            int(i64::MIN, i64::MAX, false),
            int(1, i64::MAX, true),
            int(i64::MAX - 1, i64::MAX, false),
            int(i64::MIN, i64::MIN, false),
            int(i64::MAX, i64::MAX, true),
            float(-f64::MAX, f64::MAX, false),
            float(f64::MIN_POSITIVE, f64::MAX, true),
            float(1e-300, 1e300, true),
            float(2.0, 2.0, false),
        ];
        let mut rng = Rng::new(11);
        for d in &domains {
            let mut seen = std::collections::BTreeSet::new();
            for u in [0.0, 1e-9, 0.25, 0.5, 0.75, 1.0 - 1e-9, 1.0, f64::NAN] {
                let v = from_unit(d, u);
                check_in(d, &v);
                seen.insert(format!("{v:?}"));
                let back = to_unit(d, &v).expect("same type");
                assert!((0.0..=1.0).contains(&back), "{d:?} {v:?} -> {back}");
            }
            for _ in 0..200 {
                let v = random_value(d, &mut rng);
                check_in(d, &v);
                seen.insert(format!("{v:?}"));
            }
            let single = match d {
                ParamDomain::Int(r) => r.low == r.high,
                ParamDomain::Float(r) => r.low == r.high,
                _ => false,
            };
            assert!(single || seen.len() > 1, "{d:?} collapsed to {seen:?}");
        }
    }

    fn check_in(d: &ParamDomain, v: &ParamValue) {
        match (d, v) {
            (ParamDomain::Int(r), ParamValue::Int(x)) => assert!((r.low..=r.high).contains(x), "{x} not in {r:?}"),
            (ParamDomain::Float(r), ParamValue::Float(x)) => assert!(x.is_finite() && (r.low..=r.high).contains(x), "{x} not in {r:?}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn log_int_covers_its_range_evenly_in_log_space() {
        let d = int(1, 1024, true);
        let mut rng = Rng::new(5);
        let (mut small, mut large) = (0, 0);
        for _ in 0..2000 {
            match random_value(&d, &mut rng) {
                ParamValue::Int(x) if x <= 32 => small += 1,
                ParamValue::Int(_) => large += 1,
                other => panic!("{other:?}"),
            }
        }
        // log2(33)/log2(1025) ≈ 0.50 of the draws land in 1..=32.
        assert!((800..1200).contains(&small), "{small} vs {large}");
    }

    /// A noisy objective with its optimum at x = 0.8, k = 64, mode = "b".
    fn objective(v: &[ParamValue]) -> f64 {
        let (ParamValue::Float(x), ParamValue::Int(k), ParamValue::Text(m)) = (&v[0], &v[1], &v[2]) else { panic!() };
        -(x - 0.8).powi(2) - ((*k as f64).log2() - 6.0).powi(2) / 20.0 - if m == "b" { 0.0 } else { 0.3 }
    }

    fn search(sampler: Sampler, seed: u64, n: usize, liars: usize) -> (f64, Vec<Vec<ParamValue>>) {
        let space = vec![
            spec("x", float(0.0, 1.0, false)),
            spec("k", int(1, 4096, true)),
            spec("mode", ParamDomain::Categorical(Categorical { choices: vec!["a".into(), "b".into(), "c".into()], default: "a".into() })),
        ];
        let mut history: Vec<Observation> = Vec::new();
        let mut picked = Vec::new();
        let mut best = f64::NEG_INFINITY;
        for t in 0..n {
            let mut rng = Rng::new(seed ^ (t as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            // `liars` trials still running, as seen by the sampler.
            let mut seen = history.clone();
            for p in picked.iter().rev().take(liars) {
                seen.push(Observation { values: Vec::clone(p), score: None });
            }
            let v = suggest(&space, &seen, sampler, &mut rng);
            let s = objective(&v);
            best = best.max(s);
            history.push(Observation { values: v.clone(), score: Some(s) });
            picked.push(v);
        }
        (best, picked)
    }

    #[test]
    fn seeded_and_deterministic() {
        let (a, pa) = search(Sampler::Tpe, 3, 30, 0);
        let (b, pb) = search(Sampler::Tpe, 3, 30, 0);
        assert_eq!(a, b);
        assert_eq!(format!("{pa:?}"), format!("{pb:?}"));
        let (_, pc) = search(Sampler::Tpe, 4, 30, 0);
        assert_ne!(format!("{pa:?}"), format!("{pc:?}"));
    }

    #[test]
    fn tpe_beats_random_on_average() {
        let seeds = 0..20u64;
        let tpe: f64 = seeds.clone().map(|s| search(Sampler::Tpe, s, 40, 0).0).sum::<f64>() / 20.0;
        let random: f64 = seeds.map(|s| search(Sampler::Random, s, 40, 0).0).sum::<f64>() / 20.0;
        assert!(tpe > random, "tpe {tpe} random {random}");
    }

    #[test]
    fn running_trials_change_the_suggestion() {
        // With the same history, a running trial (constant liar) moves the
        // suggestion away from the plain one.
        let (_, picked) = search(Sampler::Tpe, 9, 20, 0);
        let space = vec![
            spec("x", float(0.0, 1.0, false)),
            spec("k", int(1, 4096, true)),
            spec("mode", ParamDomain::Categorical(Categorical { choices: vec!["a".into(), "b".into(), "c".into()], default: "a".into() })),
        ];
        let history: Vec<Observation> =
            picked.iter().map(|v| Observation { values: v.clone(), score: Some(objective(v)) }).collect();
        let plain = suggest(&space, &history, Sampler::Tpe, &mut Rng::new(1));
        let mut with_running = history.clone();
        with_running.push(Observation { values: plain.clone(), score: None });
        let other = suggest(&space, &with_running, Sampler::Tpe, &mut Rng::new(1));
        assert_ne!(format!("{plain:?}"), format!("{other:?}"));
    }
}
