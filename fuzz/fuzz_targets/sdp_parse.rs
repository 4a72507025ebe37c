//! SDP parse: arbitrary bytes never panic; whatever parses serializes and parses back equal.
#![no_main]

use carrier_proto::SdpLimits;
use carrier_proto::sdp::SessionDescription;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = SdpLimits::default();
    if let Ok(desc) = SessionDescription::parse_bytes(data, &limits) {
        // Our output can be longer than the input (CRLF, c= and a=mid in every section), so
        // the re-parse gets room to spare; everything else must hold.
        let text = desc.to_sdp_string();
        let roomy = SdpLimits { max_bytes: usize::MAX, max_lines: usize::MAX, max_line_len: usize::MAX, ..limits };
        let again = SessionDescription::parse(&text, &roomy).expect("our own output parses");
        assert_eq!(again, desc, "round trip");
    }
});
