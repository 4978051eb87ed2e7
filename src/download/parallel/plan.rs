//! The part plan: the ranges of an object not stored yet, cut into parts.

/// The ranges of `from..total` not covered by `done`, cut into parts of at most `part_size` bytes, in order. Lazy:
/// `total` comes from the server, and a hostile one may announce 2^64 bytes, so the parts are never all listed at
/// once; only the gaps between done extents are (at most one more than `done`).
pub(crate) fn missing(total: u64, from: u64, done: &[(u64, u64)], part_size: u64) -> Missing {
    let mut done: Vec<(u64, u64)> = done.iter().copied().filter(|(start, end)| start < end).collect();
    done.sort_unstable();
    let mut gaps = Vec::with_capacity(done.len() + 1);
    let mut at = from;
    for (start, end) in done {
        if start > at {
            gaps.push((at, start.min(total)));
        }
        at = at.max(end);
    }
    if at < total {
        gaps.push((at, total));
    }
    gaps.retain(|(start, end)| start < end);
    Missing { gaps: gaps.into_iter(), current: None, part: part_size.max(1) }
}

/// The parts [`missing`] yields, one at a time.
#[derive(Debug)]
pub(crate) struct Missing {
    gaps: std::vec::IntoIter<(u64, u64)>,
    /// What is left of the gap being cut.
    current: Option<(u64, u64)>,
    part: u64,
}

impl Iterator for Missing {
    type Item = (u64, u64);

    fn next(&mut self) -> Option<(u64, u64)> {
        loop {
            match self.current {
                Some((at, end)) if at < end => {
                    let stop = end.min(at.saturating_add(self.part));
                    self.current = Some((stop, end));
                    return Some((at, stop));
                }
                _ => self.current = Some(self.gaps.next()?),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_ranges_are_cut_into_parts_in_order() {
        let parts = |total, from, done: &[(u64, u64)], part| missing(total, from, done, part).collect::<Vec<_>>();
        assert_eq!(parts(10, 0, &[], 4), [(0, 4), (4, 8), (8, 10)]);
        assert_eq!(parts(10, 4, &[], 4), [(4, 8), (8, 10)]);
        assert_eq!(parts(12, 0, &[(4, 8)], 4), [(0, 4), (8, 12)]);
        assert_eq!(parts(12, 0, &[(8, 12), (0, 4)], 3), [(4, 7), (7, 8)]);
        assert_eq!(parts(8, 0, &[(0, 8)], 4), []);
        assert_eq!(parts(1, 0, &[], 4), [(0, 1)]);
        assert_eq!(parts(0, 0, &[], 4), []);
        assert_eq!(parts(10, 0, &[(2, 3), (2, 5)], 100), [(0, 2), (5, 10)]);
    }

    #[test]
    fn a_server_announcing_an_object_of_two_to_the_64_bytes_costs_no_memory() {
        let mut parts = missing(u64::MAX - 1, 0, &[], 1);
        assert_eq!(parts.next(), Some((0, 1)));
        assert_eq!(parts.next(), Some((1, 2)));
        let mut tail = missing(u64::MAX - 1, u64::MAX - 3, &[], 8 << 20);
        assert_eq!(tail.next(), Some((u64::MAX - 3, u64::MAX - 1)));
        assert_eq!(tail.next(), None);
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn the_missing_parts_and_the_done_ranges_cover_the_object_once(
            total in 0u64..10_000,
            part in 1u64..1_000,
            done in proptest::collection::vec((0u64..10_000, 0u64..2_000), 0..8),
        ) {
            let done: Vec<(u64, u64)> = done.into_iter().map(|(start, len)| (start.min(total), (start + len).min(total))).collect();
            let parts: Vec<_> = missing(total, 0, &done, part).collect();
            let mut covered = vec![0u8; total as usize];
            for (start, end) in &done {
                for byte in &mut covered[*start as usize..*end as usize] {
                    *byte = 1;
                }
            }
            let mut at = 0;
            for (start, end) in &parts {
                prop_assert!(start < end && end - start <= part && *start >= at && *end <= total);
                at = *end;
                for byte in &mut covered[*start as usize..*end as usize] {
                    prop_assert_eq!(*byte, 0, "a part overlaps a done range");
                    *byte = 1;
                }
            }
            prop_assert!(covered.iter().all(|byte| *byte == 1));
        }
    }
}
