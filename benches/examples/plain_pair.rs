//! One fixed in-memory transfer (16 MiB over one reliable stream between two endpoints, no
//! IO), for counting instructions: on a shared machine the count is steadier than any
//! timing. `valgrind --tool=callgrind target/release/examples/plain_pair [plain]`.

use std::time::Duration;

use carrier_benches::pair::Pair;
use carrier_proto::{Config, StreamOptions};

fn main() {
    let plain = std::env::args().any(|a| a == "plain");
    let options = if plain {
        StreamOptions::RELIABLE | StreamOptions::PLAIN
    } else {
        StreamOptions::RELIABLE
    };
    let mut pair = Pair::connect(Config::default(), options);
    let source = vec![0x5Au8; 256 * 1024];
    let got = pair.transfer(16 * 1024 * 1024, &source, Duration::from_micros(1));
    println!("{got} bytes in {} packets", pair.packets);
}
