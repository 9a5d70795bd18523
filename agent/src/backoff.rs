//! Retry delays: SwarmKit's session backoff `min(initial + 2·previous, max)` with full jitter
//! (a random delay in `[0, backoff)`), shared by the session (100 ms … 8 s) and the status
//! reporter / task retries. Pure: the caller passes the RNG, so tests can seed it.

use std::time::Duration;

use rand::Rng;

/// A growing retry delay, reset after a success.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    /// SwarmKit's agent session backoff: 100 ms, then `100 ms + 2·previous`, capped at 8 s.
    pub fn session() -> Self {
        Self::new(Duration::from_millis(100), Duration::from_secs(8))
    }

    /// A backoff growing as `initial + 2·previous` up to `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            current: Duration::ZERO,
        }
    }

    /// Grows the backoff after a failure and returns its new ceiling (before jitter).
    pub fn grow(&mut self) -> Duration {
        self.current = (self.initial + self.current * 2).min(self.max);
        self.current
    }

    /// Grows the backoff and returns a jittered delay in `[0, ceiling)`.
    pub fn next_delay(&mut self, rng: &mut impl Rng) -> Duration {
        let ceiling = self.grow();
        let nanos = ceiling.as_nanos() as u64;
        Duration::from_nanos(rng.random_range(0..nanos.max(1)))
    }

    /// Back to no delay (after a success).
    pub fn reset(&mut self) {
        self.current = Duration::ZERO;
    }

    /// The current ceiling (zero after a reset).
    pub fn current(&self) -> Duration {
        self.current
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn session_backoff_grows_as_swarmkit_and_caps_at_8s() {
        let mut b = Backoff::session();
        let ms: Vec<u128> = (0..8).map(|_| b.grow().as_millis()).collect();
        assert_eq!(ms, [100, 300, 700, 1500, 3100, 6300, 8000, 8000]);
        b.reset();
        assert_eq!(b.current(), Duration::ZERO);
        assert_eq!(b.grow(), Duration::from_millis(100));
    }

    #[test]
    fn jitter_stays_below_the_ceiling() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut b = Backoff::session();
        for _ in 0..50 {
            let d = b.next_delay(&mut rng);
            assert!(d < b.current(), "{d:?} !< {:?}", b.current());
        }
    }
}
