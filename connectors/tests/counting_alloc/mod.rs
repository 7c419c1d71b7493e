//! A global allocator that counts the allocations (and reallocations) of threads that ask it
//! to: the zero-allocation suites set [`COUNTED`] on the thread under test and read
//! [`ALLOCS`] before and after. Other threads (servers, simulators, the test harness) allocate
//! uncounted. Included with `mod counting_alloc;` only by the suites that need it.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

thread_local! {
    /// Set on a thread whose allocations count.
    pub static COUNTED: Cell<bool> = const { Cell::new(false) };
}

/// Allocations counted so far, across every counted thread.
pub static ALLOCS: AtomicU64 = AtomicU64::new(0);

struct Counting;

fn count() {
    if COUNTED.try_with(Cell::get).unwrap_or(false) {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: forwards to the system allocator unchanged; only counts calls made on a thread that
// set `COUNTED`.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;
