//! The one reorder buffer: items arrive out of order, tagged with their
//! sequence number, and leave strictly in order. It only accepts the next
//! `capacity` sequence numbers it expects (a window), so it can never hold
//! more than `capacity` items, whatever the senders do.
//!
//! Every engine that runs work out of order and must fold it in order uses
//! it: each receiver of pipeline mode's actors (its inbox, `credits.rs`),
//! and the chunk engine's scheduler (`engine/schedule.rs`), which orders
//! the partials of pipeline mode's reading lanes and of multiprocess
//! workers alike. The producers are
//! actors, threads and sockets, not futures, so `FuturesOrdered` (which
//! owns and polls the futures it orders) does not fit; the window here is
//! also what refuses a duplicate or stray sequence number from a peer.
//!
//! A buffer may expect every `stride`-th number (a stage replica `r` of `n`
//! receives the batches whose `seq % n == r`).

use std::collections::VecDeque;

/// Why an item was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The sequence number is not one this buffer expects (wrong residue,
    /// already delivered, or beyond the window).
    OutOfWindow,
    /// An item with this sequence number is already waiting.
    Duplicate,
}

/// Items waiting to leave in sequence order.
#[derive(Debug)]
pub struct ReorderBuffer<T> {
    /// The sequence number of `slots[0]`.
    next: u64,
    stride: u64,
    capacity: usize,
    slots: VecDeque<Option<T>>,
    len: usize,
}

impl<T> ReorderBuffer<T> {
    /// A buffer whose first expected item is `first`, then `first + stride`, …;
    /// at most `capacity` items may wait. `stride` and `capacity` are at least 1.
    pub fn new(first: u64, stride: u64, capacity: usize) -> Self {
        ReorderBuffer {
            next: first,
            stride: stride.max(1),
            capacity: capacity.max(1),
            slots: VecDeque::new(),
            len: 0,
        }
    }

    /// The sequence number the buffer delivers next.
    pub fn next_seq(&self) -> u64 {
        self.next
    }

    /// Items waiting.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no item waits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Accepts item `seq` if it falls in the window.
    pub fn insert(&mut self, seq: u64, item: T) -> Result<(), Refused> {
        if seq < self.next || !(seq - self.next).is_multiple_of(self.stride) {
            return Err(Refused::OutOfWindow);
        }
        let index = ((seq - self.next) / self.stride) as usize;
        if index >= self.capacity {
            return Err(Refused::OutOfWindow);
        }
        while self.slots.len() <= index {
            self.slots.push_back(None);
        }
        let slot = &mut self.slots[index];
        if slot.is_some() {
            return Err(Refused::Duplicate);
        }
        *slot = Some(item);
        self.len += 1;
        Ok(())
    }

    /// The next item in order, if it has arrived.
    pub fn pop(&mut self) -> Option<T> {
        let item = self.slots.front_mut()?.take()?;
        self.slots.pop_front();
        self.next += self.stride;
        self.len -= 1;
        Some(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivers_in_order_whatever_the_arrival_order() {
        let mut b = ReorderBuffer::new(0, 1, 4);
        b.insert(2, "c").unwrap();
        b.insert(1, "b").unwrap();
        assert_eq!(b.pop(), None);
        b.insert(0, "a").unwrap();
        assert_eq!(b.len(), 3);
        assert_eq!(b.pop(), Some("a"));
        assert_eq!(b.pop(), Some("b"));
        assert_eq!(b.pop(), Some("c"));
        assert_eq!(b.pop(), None);
        assert_eq!(b.next_seq(), 3);
        assert!(b.is_empty());
    }

    #[test]
    fn the_window_bounds_what_it_holds() {
        let mut b = ReorderBuffer::new(0, 1, 2);
        assert_eq!(b.insert(2, ()), Err(Refused::OutOfWindow));
        b.insert(1, ()).unwrap();
        b.insert(0, ()).unwrap();
        assert_eq!(b.insert(0, ()), Err(Refused::Duplicate));
        assert_eq!(b.pop(), Some(()));
        assert_eq!(b.insert(0, ()), Err(Refused::OutOfWindow));
        b.insert(2, ()).unwrap();
        assert_eq!(b.len(), 2);
    }

    #[test]
    fn strided_buffers_take_only_their_residue() {
        // Replica 1 of 3, starting after a probe of 5 batches: 7, 10, 13, …
        let mut b = ReorderBuffer::new(7, 3, 2);
        assert_eq!(b.insert(8, 'x'), Err(Refused::OutOfWindow));
        assert_eq!(b.insert(13, 'x'), Err(Refused::OutOfWindow));
        b.insert(10, 'b').unwrap();
        b.insert(7, 'a').unwrap();
        assert_eq!(b.pop(), Some('a'));
        assert_eq!(b.next_seq(), 10);
        b.insert(13, 'c').unwrap();
        assert_eq!(b.pop(), Some('b'));
        assert_eq!(b.pop(), Some('c'));
        assert_eq!(b.next_seq(), 16);
    }
}
