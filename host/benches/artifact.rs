//! Artifact load time for a large factor model, as ratios against baselines
//! measured in the same run on the same bytes.
//!
//! ```text
//! cargo bench -p recotem --bench artifact
//! RECOTEM_BENCH_ITEMS=200000 RECOTEM_BENCH_DIM=64 cargo bench -p recotem --bench artifact
//! ```
//!
//! Model: `RECOTEM_BENCH_ITEMS` items (default 1 000 000) and
//! `RECOTEM_BENCH_USERS` users (default 100 000) × `RECOTEM_BENCH_DIM`
//! factors (default 128), 20 interactions per user of history. Each figure is
//! the best of `RECOTEM_BENCH_REPEAT` (default 3) runs.
//!
//! Baselines: `memcpy` (copy the artifact bytes) and `sha256` (hash them
//! once; verifying the HMAC is one SHA-256 pass over the file).
//!
//! Printed: the old copying path step by step (read whole, verify, decode
//! with the float arrays copied), then the load path serving uses
//! (`store::load_verified`: the read overlapped with the HMAC on another
//! thread, then `Payload::decode_shared` viewing the arrays in the verified
//! bytes), each against its baseline; last, the whole of what `recotem
//! serve` does per artifact (`registry::load_served`: that load plus the
//! id lookup tables and response fragments), the figure the < 1 s target is
//! about.

use std::hint::black_box;
use std::time::{Duration, Instant};

use recotem::artifact::container::{Container, seal};
use recotem::artifact::keys::{KeyRing, SigningKey};
use recotem::artifact::payload::{DataStats, ItemMetadata, Payload};
use recotem::artifact::store;
use recotem::data::Interner;
use recotem::model::{Csr, Model};
use recotem::serve::registry::{LoadContext, load_served};
use sha2::Digest;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

fn best<T>(repeat: usize, mut f: impl FnMut() -> T) -> Duration {
    (0..repeat.max(1))
        .map(|_| {
            let t = Instant::now();
            black_box(f());
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn model(n_users: usize, n_items: usize, dim: usize) -> Payload {
    let ids = |prefix: &str, n: usize| Interner::from_ids((0..n).map(|i| format!("{prefix}-{i:07}"))).expect("distinct ids");
    let factors = |n: usize, salt: u32| {
        (0..n * dim).map(|i| ((i as u32).wrapping_mul(2_654_435_761) ^ salt) as f32 / u32::MAX as f32 - 0.5).collect::<Vec<f32>>()
    };
    let per_user = 20.min(n_items);
    let mut indptr = Vec::with_capacity(n_users + 1);
    let mut indices = Vec::with_capacity(n_users * per_user);
    indptr.push(0u32);
    for u in 0..n_users {
        let start = (u * 7919) % (n_items - per_user + 1);
        indices.extend((start..start + per_user).map(|i| i as u32));
        indptr.push(indices.len() as u32);
    }
    let values = vec![1.0f32; indices.len()];
    let nnz = indices.len() as u64;
    Payload {
        users: ids("user", n_users),
        items: ids("item", n_items),
        model: Model::Factors { dim: dim as u32, users: factors(n_users, 1).into(), items: factors(n_items, 2).into() },
        history: Csr { rows: n_users as u32, cols: n_items as u32, indptr, indices, values },
        stats: DataStats { n_rows: nnz, n_users: n_users as u64, n_items: n_items as u64, drop_count: 0 },
        metadata: ItemMetadata::default(),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let n_items = env_usize("RECOTEM_BENCH_ITEMS", 1_000_000);
    let n_users = env_usize("RECOTEM_BENCH_USERS", 100_000);
    let dim = env_usize("RECOTEM_BENCH_DIM", 128);
    let repeat = env_usize("RECOTEM_BENCH_REPEAT", 3);

    let t = Instant::now();
    let payload = model(n_users, n_items, dim);
    let encoded = payload.encode();
    drop(payload);
    let key = SigningKey::new("bench", [9u8; 32]);
    let ring = KeyRing::single(key.clone());
    let artifact = seal(&key, br#"{"recipe_name":"bench"}"#, &encoded).expect("seal");
    drop(encoded);
    println!(
        "artifact bench: {n_items} items + {n_users} users x {dim} factors; artifact {:.1} MiB (built in {:.1} s)",
        artifact.len() as f64 / (1 << 20) as f64,
        t.elapsed().as_secs_f64()
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bench.recotem");
    std::fs::write(&path, &artifact).expect("write");

    // Baselines.
    let memcpy = best(repeat, || artifact.to_vec());
    let sha256 = best(repeat, || sha2::Sha256::digest(&artifact));
    // Steps of the copying path (read whole, then verify, then decode with
    // the arrays copied out), kept as the reference.
    let read = best(repeat, || store::read_artifact(&path, u64::MAX).expect("read"));
    let verify = best(repeat, || {
        Container::parse(&artifact, u64::MAX).and_then(|c| c.verify(&ring).map(|v| v.payload.len())).expect("verify")
    });
    let container = Container::parse(&artifact, u64::MAX).expect("parse");
    let verified = container.verify(&ring).expect("verify");
    let decode = best(repeat, || Payload::decode(verified.payload).expect("decode"));
    let copying = best(repeat, || {
        let (bytes, _) = store::read_artifact(&path, u64::MAX).expect("read");
        let c = Container::parse(&bytes, u64::MAX).expect("parse");
        let v = c.verify(&ring).expect("verify");
        Payload::decode(v.payload).expect("decode")
    });
    // The load path: read in chunks while another thread computes the HMAC,
    // keep the verified bytes, view the float arrays in place.
    let overlapped = best(repeat, || store::load_verified(&path, u64::MAX, u64::MAX, &ring, false).expect("load"));
    let loaded = store::load_verified(&path, u64::MAX, u64::MAX, &ring, false).expect("load");
    let view = best(repeat, || Payload::decode_shared(&loaded.bytes, loaded.payload.clone()).expect("decode"));
    let decoded = Payload::decode_shared(&loaded.bytes, loaded.payload.clone()).expect("decode");
    let in_place = match &decoded.model {
        Model::Factors { users, items, .. } => users.is_view() && items.is_view(),
        _ => false,
    };
    drop(decoded);
    let total = best(repeat, || {
        let a = store::load_verified(&path, u64::MAX, u64::MAX, &ring, false).expect("load");
        Payload::decode_shared(&a.bytes, a.payload.clone()).expect("decode")
    });
    // Serving also needs the SHA-256 of the file (its version), hashed on a
    // third thread during the same read.
    let served = best(repeat, || {
        let a = store::load_verified(&path, u64::MAX, u64::MAX, &ring, true).expect("load");
        Payload::decode_shared(&a.bytes, a.payload.clone()).expect("decode")
    });

    // What `recotem serve` does per artifact: the load above plus the id
    // lookups and the response fragments it prepares before serving.
    let ctx = LoadContext { caps: store::Caps { artifact: u64::MAX, payload: u64::MAX }, ring: ring.clone(), deny: Vec::new() };
    let serve_load = best(repeat, || match load_served(&path, &ctx, None) {
        Ok(Some(served)) => served,
        Ok(None) => panic!("no previous version was given"),
        Err(e) => panic!("serve load failed: {}", e.error),
    });

    let ratio = |d: Duration, base: Duration| d.as_secs_f64() / base.as_secs_f64().max(1e-9);
    println!("  baseline memcpy of the artifact   {:>9.1} ms", ms(memcpy));
    println!("  baseline sha256 of the artifact   {:>9.1} ms", ms(sha256));
    println!("  copying path (before):");
    println!("    read file (page cache)          {:>9.1} ms  {:>6.2}x memcpy", ms(read), ratio(read, memcpy));
    println!("    parse + HMAC verify             {:>9.1} ms  {:>6.2}x sha256", ms(verify), ratio(verify, sha256));
    println!("    payload decode, arrays copied   {:>9.1} ms  {:>6.2}x memcpy", ms(decode), ratio(decode, memcpy));
    println!(
        "    total                           {:>9.1} ms  {:>6.2}x (memcpy + sha256)",
        ms(copying),
        ratio(copying, memcpy + sha256)
    );
    println!("  load path (now):");
    println!(
        "    read overlapped with HMAC       {:>9.1} ms  {:>6.2}x max(memcpy, sha256)",
        ms(overlapped),
        ratio(overlapped, memcpy.max(sha256))
    );
    println!(
        "    payload decode, arrays in place {:>9.1} ms  {:>6.2}x memcpy  (viewed in place: {in_place})",
        ms(view),
        ratio(view, memcpy)
    );
    println!(
        "    total load                      {:>9.1} ms  {:>6.2}x (memcpy + sha256), {:>5.2}x the copying path; target < 1000 ms",
        ms(total),
        ratio(total, memcpy + sha256),
        ratio(total, copying)
    );
    println!(
        "    + SHA-256 version (as serve)    {:>9.1} ms  {:>6.2}x (memcpy + sha256)",
        ms(served),
        ratio(served, memcpy + sha256)
    );
    println!(
        "  as `recotem serve` loads it        {:>9.1} ms  {:>6.2}x (memcpy + sha256); target < 1000 ms",
        ms(serve_load),
        ratio(serve_load, memcpy + sha256)
    );
}
