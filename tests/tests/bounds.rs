//! Memory a peer can make an endpoint hold, measured with a counting allocator: offers
//! sprayed at an endpoint whose application does not poll are capped by
//! `Config::max_queued_requests`, and the rest refused and counted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use carrier_proto::{Config, Endpoint, Error, Event, Instant, Output, StreamOptions, StreamType};

/// The system allocator, counting the bytes live.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's layout, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: a pointer System gave out with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

#[test]
fn an_offer_spray_without_polling_is_capped_and_counted() {
    // A real offer with two streams and a candidate.
    let mut alice = Endpoint::new(Config::default().with_seed([1; 32]));
    alice.add_host_candidate("192.0.2.1:4000".parse().unwrap());
    let s = alice.new_session("bob").unwrap();
    for _ in 0..2 {
        alice
            .session(s)
            .unwrap()
            .add_stream(StreamType::Application, StreamOptions::RELIABLE)
            .unwrap();
    }
    let offer = alice
        .session(s)
        .unwrap()
        .request(Instant::ZERO, "chat")
        .unwrap()
        .offer()
        .to_sdp_string();

    let config = Config::default().with_seed([2; 32]);
    let cap = config.max_queued_requests;
    let mut bob = Endpoint::new(config);
    let before = LIVE.load(Ordering::Relaxed);
    let sprayed = 30_000;
    let mut refused = 0;
    for i in 0..sprayed {
        match bob.handle_offer(&format!("peer-{i}"), &offer) {
            Ok(()) => {}
            Err(Error::Limit { max, .. }) => {
                assert_eq!(max, cap);
                refused += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    let held = LIVE.load(Ordering::Relaxed) - before;
    assert_eq!(refused, sprayed - cap);
    assert_eq!(bob.stats().requests_refused, (sprayed - cap) as u64);
    // The documented bound: about 2 KiB per queued request (4 KiB here, with slack).
    assert!(
        held < (cap * 4096) as isize,
        "{held} bytes held for {cap} queued requests"
    );
    // Polling makes room again.
    let mut taken = 0;
    while let Output::Event(e) = bob.poll_output() {
        assert!(matches!(e, Event::SessionRequest { .. }));
        taken += 1;
    }
    assert_eq!(taken, cap);
    assert!(bob.handle_offer("late", &offer).is_ok());
}
