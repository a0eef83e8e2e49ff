//! A log-linear latency histogram in the style of HdrHistogram: exact below 128 ns, then 64
//! sub-buckets per power of two (under 1.6 % error), fixed size, no allocation when recording.
//!
//! It owns bucketing, merging and percentile reads; it knows nothing about sockets or time
//! sources (values are plain nanoseconds).

/// Values below this are counted exactly.
const LINEAR: u64 = 128;
/// Sub-buckets per power of two above [`LINEAR`].
const SUB: u64 = 64;
/// Enough buckets for every `u64`.
const BUCKETS: usize = (LINEAR + (64 - 7) * SUB) as usize;

/// A latency histogram of nanosecond values.
#[derive(Clone, Debug)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

fn index(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    let e = 63 - u64::from(v.leading_zeros()); // >= 7
    let mantissa = v >> (e - 6); // 64..128
    (LINEAR + (e - 7) * SUB + (mantissa - SUB)) as usize
}

/// The middle of bucket `i` (what a percentile reports).
fn value_at(i: usize) -> u64 {
    let i = i as u64;
    if i < LINEAR {
        return i;
    }
    let k = i - LINEAR;
    let e = 7 + k / SUB;
    let m = SUB + k % SUB;
    let low = m << (e - 6);
    let width = 1u64 << (e - 6);
    low.saturating_add(width / 2)
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Histogram {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }

    /// Records one value (nanoseconds).
    pub fn record(&mut self, v: u64) {
        if let Some(c) = self.counts.get_mut(index(v)) {
            *c += 1;
        }
        self.total += 1;
        self.sum += u128::from(v);
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// Number of values recorded.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The value below which a fraction `q` (0..=1) of the recorded values lie; 0 when empty.
    pub fn percentile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return value_at(i).clamp(self.min, self.max);
            }
        }
        self.max
    }

    /// Largest value recorded; 0 when empty.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// Mean of the values recorded; 0 when empty.
    pub fn mean(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.sum as f64 / self.total as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_tight() {
        let mut last = 0;
        for v in (0..5_000_000u64).step_by(7).chain([u64::MAX / 3, u64::MAX]) {
            let i = index(v);
            assert!(i >= last, "index must not go down at {v}");
            assert!(i < BUCKETS);
            last = i;
            let mid = value_at(i);
            let err = mid.abs_diff(v) as f64 / (v.max(1)) as f64;
            assert!(err <= 0.016, "value {v} reported as {mid}");
        }
    }

    #[test]
    fn percentiles_of_a_uniform_range() {
        let mut h = Histogram::new();
        for v in 1..=100_000u64 {
            h.record(v * 1_000);
        }
        let p50 = h.percentile(0.5) as f64;
        let p99 = h.percentile(0.99) as f64;
        assert!((p50 / 50_000_000.0 - 1.0).abs() < 0.02, "{p50}");
        assert!((p99 / 99_000_000.0 - 1.0).abs() < 0.02, "{p99}");
        assert_eq!(h.max(), 100_000_000);
        let mut other = Histogram::new();
        other.record(5);
        h.merge(&other);
        assert_eq!(h.len(), 100_001);
        assert_eq!(h.percentile(0.0), 5);
        assert_eq!(Histogram::new().percentile(0.99), 0);
    }
}
