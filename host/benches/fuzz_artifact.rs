//! Long-running fuzz driver for container + payload decoding (see
//! `recotem::artifact::fuzz`). Seeded and reproducible:
//!
//! ```text
//! RECOTEM_FUZZ_SEED=42 RECOTEM_FUZZ_ITERATIONS=5000000 \
//!     cargo bench -p recotem --bench fuzz_artifact
//! ```
//!
//! Without `RECOTEM_FUZZ_SEED` the seed comes from the clock and is printed;
//! `RECOTEM_FUZZ_ITERATIONS` defaults to 200 000. A finding (panic or broken
//! invariant) prints the seed and case number and exits 1; rerunning with
//! that seed and `RECOTEM_FUZZ_ITERATIONS=<case + 1>` replays it.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use recotem::artifact::fuzz::Fuzzer;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

fn main() {
    let seed = env_u64("RECOTEM_FUZZ_SEED")
        .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64));
    let iterations = env_u64("RECOTEM_FUZZ_ITERATIONS").unwrap_or(200_000);
    println!("fuzz_artifact: seed={seed} iterations={iterations}");
    let mut fuzzer = Fuzzer::new(seed);
    let started = Instant::now();
    let report_every = (iterations / 10).max(1);
    for i in 0..iterations {
        match catch_unwind(AssertUnwindSafe(|| fuzzer.case())) {
            Ok(Ok(())) => {}
            Ok(Err(finding)) => {
                eprintln!(
                    "FINDING seed={seed} case={}: {} (input {} bytes: {})",
                    finding.case,
                    finding.what,
                    finding.input.len(),
                    hex::encode(&finding.input[..finding.input.len().min(256)])
                );
                std::process::exit(1);
            }
            Err(_) => {
                eprintln!("PANIC seed={seed} case={i}: replay with RECOTEM_FUZZ_SEED={seed} RECOTEM_FUZZ_ITERATIONS={}", i + 1);
                std::process::exit(1);
            }
        }
        if (i + 1) % report_every == 0 {
            println!("  {:>10} cases  {:>7.1} s  {:?}", i + 1, started.elapsed().as_secs_f64(), fuzzer.stats);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "fuzz_artifact: {} cases in {secs:.1} s ({:.0}/s), no findings; {:?}",
        fuzzer.stats.cases,
        fuzzer.stats.cases as f64 / secs.max(1e-9),
        fuzzer.stats
    );
}
