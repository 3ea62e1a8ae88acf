//! NodePort allocation from a port range.

use std::fmt;
use std::str::FromStr;

use rand::rngs::SmallRng;

use crate::band;
use crate::error::Error;
use crate::pool::Pool;
use crate::rng::{self, RandomSource};
use crate::snapshot::Snapshot;

/// An inclusive range of ports, `first-last`, with `1 <= first <= last`.
///
/// Parses from and displays as `"30000-32767"`; a single port `"30000"` is
/// the range of that one port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortRange {
    first: u16,
    last: u16,
}

impl PortRange {
    /// The default NodePort range, `30000-32767` (2768 ports).
    pub const NODE_PORTS: Self = Self {
        first: 30000,
        last: 32767,
    };

    /// The range `first..=last`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidRange`] if `first` is 0 or greater than `last`.
    pub fn new(first: u16, last: u16) -> Result<Self, Error> {
        let invalid = |reason: &str| Error::InvalidRange {
            range: format!("{first}-{last}"),
            reason: reason.to_owned(),
        };
        if first == 0 {
            return Err(invalid("port 0 cannot be allocated"));
        }
        if first > last {
            return Err(invalid("the first port is greater than the last"));
        }
        Ok(Self { first, last })
    }

    /// The first port.
    pub fn first(self) -> u16 {
        self.first
    }

    /// The last port (inclusive).
    pub fn last(self) -> u16 {
        self.last
    }

    /// How many ports the range has.
    pub fn size(self) -> usize {
        usize::from(self.last - self.first) + 1
    }

    /// Whether `port` is in the range.
    pub fn contains(self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }
}

impl Default for PortRange {
    fn default() -> Self {
        Self::NODE_PORTS
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

impl FromStr for PortRange {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let port = |p: &str| {
            p.trim().parse::<u16>().map_err(|e| Error::InvalidRange {
                range: format!("{s:?}"),
                reason: format!("{p:?} is not a port number ({e})"),
            })
        };
        match s.split_once('-') {
            Some((first, last)) => Self::new(port(first)?, port(last)?),
            None => {
                let single = port(s)?;
                Self::new(single, single)
            }
        }
    }
}

/// Hands out ports of one [`PortRange`], one bit per port.
///
/// The lowest [`static_band_size`] ports form the static band (86 ports,
/// 30000-30085, for the default range), which [`allocate_next`] only uses
/// once the rest of the range is full; [`allocate`] accepts a port in either
/// band.
///
/// [`static_band_size`]: PortAllocator::static_band_size
/// [`allocate_next`]: PortAllocator::allocate_next
/// [`allocate`]: PortAllocator::allocate
///
/// # Example
///
/// ```
/// use svcnet_allocator::{PortAllocator, PortRange};
///
/// let mut ports = PortAllocator::new(PortRange::NODE_PORTS);
/// assert_eq!(ports.size(), 2768);
/// assert_eq!(ports.static_band_size(), 86);
///
/// ports.allocate(30080)?;
/// assert_eq!(
///     ports.allocate(30080).unwrap_err().to_string(),
///     "port 30080 is already allocated"
/// );
/// assert_eq!(
///     ports.allocate(29999).unwrap_err().to_string(),
///     "port 29999 is not in range 30000-32767"
/// );
///
/// let next = ports.allocate_next()?; // from the dynamic band, 30086 and up
/// assert!(next >= 30086);
/// assert_eq!(ports.iter().collect::<Vec<_>>(), [30080, next]);
/// assert!(ports.release(next));
/// assert_eq!(ports.used(), 1);
/// # Ok::<(), svcnet_allocator::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct PortAllocator<R = SmallRng> {
    range: PortRange,
    pool: Pool<R>,
}

impl PortAllocator<SmallRng> {
    /// An allocator over `range` whose scans start at random positions drawn
    /// from a generator seeded by the operating system.
    pub fn new(range: PortRange) -> Self {
        Self::with_rng(range, rng::default_rng())
    }

    /// Like [`new`](Self::new) with a generator seeded with `seed`, so the
    /// sequence of [`allocate_next`](Self::allocate_next) results is
    /// reproducible (on the same platform and `rand` version).
    pub fn with_seed(range: PortRange, seed: u64) -> Self {
        Self::with_rng(range, rng::seeded_rng(seed))
    }
}

impl<R: RandomSource> PortAllocator<R> {
    /// An allocator over `range` that draws scan starts from `rng`.
    pub fn with_rng(range: PortRange, rng: R) -> Self {
        let size = range.size();
        Self {
            range,
            pool: Pool::new(size, band::port_static_band(size), rng),
        }
    }

    /// The range.
    pub fn range(&self) -> PortRange {
        self.range
    }

    /// How many ports the range has.
    pub fn size(&self) -> usize {
        self.pool.size()
    }

    /// How many of the lowest ports form the static band.
    pub fn static_band_size(&self) -> usize {
        self.pool.static_size()
    }

    /// How many ports are allocated.
    pub fn used(&self) -> usize {
        self.pool.used()
    }

    /// How many ports are free.
    pub fn free(&self) -> usize {
        self.pool.free()
    }

    /// Allocates `port`, in either band.
    ///
    /// # Errors
    ///
    /// [`Error::PortNotInRange`] if `port` is outside the range,
    /// [`Error::PortAlreadyAllocated`] if it is taken.
    pub fn allocate(&mut self, port: u16) -> Result<(), Error> {
        let offset = self.offset_of(port).ok_or(Error::PortNotInRange {
            port,
            range: self.range,
        })?;
        if self.pool.allocate(offset) {
            Ok(())
        } else {
            Err(Error::PortAlreadyAllocated { port })
        }
    }

    /// Allocates a free port: from a random start in the dynamic band,
    /// wrapping within it; only when that band is full, from a random start
    /// in the static band.
    ///
    /// # Errors
    ///
    /// [`Error::PortRangeFull`] if every port is allocated.
    pub fn allocate_next(&mut self) -> Result<u16, Error> {
        match self.pool.allocate_next() {
            Some(offset) => Ok(self.port_at(offset)),
            None => Err(Error::PortRangeFull {
                range: self.range,
                used: self.used(),
                size: self.size(),
            }),
        }
    }

    /// Releases `port`. Returns whether it was allocated; releasing a free or
    /// out-of-range port does nothing.
    pub fn release(&mut self, port: u16) -> bool {
        self.offset_of(port)
            .is_some_and(|offset| self.pool.release(offset))
    }

    /// Whether `port` is allocated (`false` for out-of-range ports).
    pub fn has(&self, port: u16) -> bool {
        self.offset_of(port)
            .is_some_and(|offset| self.pool.has(offset))
    }

    /// The allocated ports in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        self.pool.iter().map(|offset| self.port_at(offset))
    }

    /// The current state, to persist and later [`restore`](Self::restore).
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            range: self.range.to_string(),
            data: self.pool.snapshot_data(),
        }
    }

    /// Replaces the state with `snapshot`'s.
    ///
    /// The snapshot's range must start at the same port as this allocator's;
    /// its last port may differ (the range was grown or shrunk). Every
    /// allocated port that is in this range is kept; the others are
    /// returned in ascending order.
    ///
    /// # Errors
    ///
    /// [`Error::RangeMismatch`] if the first port differs,
    /// [`Error::InvalidSnapshot`] if the range text or the data cannot be
    /// read. The state is unchanged on error.
    pub fn restore(&mut self, snapshot: &Snapshot) -> Result<Vec<u16>, Error> {
        let theirs: PortRange =
            snapshot
                .range
                .parse()
                .map_err(|e: Error| Error::InvalidSnapshot {
                    range: snapshot.range.clone(),
                    reason: e.to_string(),
                })?;
        if theirs.first != self.range.first {
            return Err(Error::RangeMismatch {
                snapshot: snapshot.range.clone(),
                current: self.range.to_string(),
                reason: "the first ports differ",
            });
        }
        let dropped = self
            .pool
            .restore(&snapshot.data, theirs.size())
            .map_err(|reason| Error::InvalidSnapshot {
                range: snapshot.range.clone(),
                reason,
            })?;
        Ok(dropped.into_iter().map(|o| self.port_at(o)).collect())
    }

    fn offset_of(&self, port: u16) -> Option<usize> {
        self.range
            .contains(port)
            .then(|| usize::from(port - self.range.first))
    }

    fn port_at(&self, offset: usize) -> u16 {
        // Offsets come from a range starting at `first` that ends at or
        // before 65535, so the sum fits.
        (usize::from(self.range.first) + offset) as u16
    }
}
