//! Shared by the benches: the generated 10 M-interaction data set of issue 9
//! (200 000 users × 50 000 items, Zipf-like item popularity, seeded), so
//! the trainer and evaluation benches measure the same data.

use std::path::Path;

use recotem_core::model::Csr;
use recotem_numerics::Rng;

/// Seed of the generated data.
const SEED: u64 = 20_261_201;

/// Generate (once per scale) the interactions into `dir`: `meta.txt`
/// (`users items nnz`), `indptr.bin` and `indices.bin` (little-endian u32,
/// CSR, columns sorted per row). Returns `(users, items, nnz)`.
pub fn generate(scale: f64, dir: &Path) -> (u32, u32, u64) {
    let users = ((200_000.0 * scale).round() as u32).max(100);
    let items = ((50_000.0 * scale).round() as u32).max(200);
    let nnz = ((10_000_000.0 * scale).round() as u64).max(1000);
    if dir.join("meta.txt").is_file() {
        return (users, items, nnz);
    }
    std::fs::create_dir_all(dir).expect("data dir");
    let mut rng = Rng::new(SEED);
    // Item popularity ∝ 1 / rank^0.8, ranks shuffled over the item ids.
    let mut ids: Vec<u32> = (0..items).collect();
    rng.shuffle(&mut ids);
    let mut cdf = Vec::with_capacity(items as usize);
    let mut total = 0f64;
    for r in 0..items {
        total += 1.0 / (r as f64 + 1.0).powf(0.8);
        cdf.push(total);
    }
    // Lengths uniform in [1, 2·mean − 1], then nudged to the exact total.
    let mean = nnz as f64 / users as f64;
    let cap = (items / 2).max(1);
    let mut lengths: Vec<u32> =
        (0..users).map(|_| ((1.0 + rng.next_f64() * (2.0 * mean - 2.0)).round() as u32).clamp(1, cap)).collect();
    let mut sum: u64 = lengths.iter().map(|&l| l as u64).sum();
    while sum != nnz {
        let u = rng.below(users as u64) as usize;
        if sum < nnz && lengths[u] < cap {
            lengths[u] += 1;
            sum += 1;
        } else if sum > nnz && lengths[u] > 1 {
            lengths[u] -= 1;
            sum -= 1;
        }
    }
    let mut indptr = Vec::with_capacity(users as usize + 1);
    let mut indices: Vec<u32> = Vec::with_capacity(nnz as usize);
    let mut mark = vec![u32::MAX; items as usize];
    indptr.push(0u32);
    for (u, &len) in lengths.iter().enumerate() {
        let start = indices.len();
        while indices.len() - start < len as usize {
            let x = rng.next_f64() * total;
            let rank = cdf.partition_point(|&c| c < x).min(items as usize - 1);
            let item = ids[rank];
            if mark[item as usize] != u as u32 {
                mark[item as usize] = u as u32;
                indices.push(item);
            }
        }
        indices[start..].sort_unstable();
        indptr.push(indices.len() as u32);
    }
    write_u32s(&dir.join("indptr.bin"), &indptr);
    write_u32s(&dir.join("indices.bin"), &indices);
    std::fs::write(dir.join("meta.txt"), format!("{users} {items} {nnz}\n")).expect("meta");
    (users, items, nnz)
}

fn write_u32s(path: &Path, v: &[u32]) {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(path, bytes).expect("write data");
}

fn read_u32s(path: &Path) -> Vec<u32> {
    let bytes = std::fs::read(path).expect("read data");
    bytes.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}


/// The matrix `generate` wrote into `dir` (every value 1).
pub fn read_matrix(dir: &Path) -> Csr {
    let meta = std::fs::read_to_string(dir.join("meta.txt")).expect("meta");
    let dims: Vec<u32> = meta.split_whitespace().map(|v| v.parse().expect("number")).collect();
    let indptr = read_u32s(&dir.join("indptr.bin"));
    let indices = read_u32s(&dir.join("indices.bin"));
    let values = vec![1f32; indices.len()];
    Csr { rows: dims[0], cols: dims[1], indptr, indices, values }
}
