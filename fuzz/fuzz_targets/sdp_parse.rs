//! SDP parse: arbitrary bytes never panic; whatever parses serializes and parses back equal.
#![no_main]

use carrier_proto::SdpLimits;
use carrier_proto::sdp::SessionDescription;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = SdpLimits::default();
    if let Ok(desc) = SessionDescription::parse_bytes(data, &limits) {
        let text = desc.to_sdp_string();
        let again = SessionDescription::parse(&text, &limits).expect("our own output parses");
        assert_eq!(again, desc, "round trip");
    }
});
