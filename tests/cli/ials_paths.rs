//! The two ways the host trains IALS, through the real components: the
//! built-in (WIT 0.2.2, `trainer-by-shape`: host-held factors, no matrix in
//! the component) and the 0.2.1 IALS kept as a fixture (`train`: matrix
//! lowered, half-epochs through `linalg.solve-ials` as lists). Same data,
//! same seed: the same model, bit for bit.

use std::time::Duration;

use recotem::model::{Csr, Model};
use recotem::plugin::Registry;
use recotem::plugin::bindings::source::recotem::plugin::types::{Param, ParamValue};
use recotem::plugin::engine::Runtime;
use recotem::plugin::trainer::TrainerComponent;

use crate::common::repo_root;

/// A seeded random matrix with a few empty rows and columns.
fn matrix(users: u32, items: u32) -> Csr {
    let mut rng = recotem_numerics::Rng::new(9);
    let mut entries = Vec::new();
    for u in 0..users {
        for i in 0..items {
            if u % 17 != 3 && i % 23 != 5 && rng.next_f64() < 0.08 {
                entries.push((u, i, 1.0 + (rng.next_f64() * 2.0) as f32));
            }
        }
    }
    Csr::from_triplets(users, items, &entries)
}

fn params(k: i64, epochs: i64) -> Vec<Param> {
    let p = |name: &str, value| Param { name: name.into(), value };
    vec![
        p("n_components", ParamValue::Int(k)),
        p("alpha0", ParamValue::Float(0.3)),
        p("reg", ParamValue::Float(0.01)),
        p("epochs", ParamValue::Int(epochs)),
    ]
}

fn factors(m: Model) -> (u32, Vec<f32>, Vec<f32>) {
    match m {
        Model::Factors { dim, users, items } => (dim, users.to_vec(), items.to_vec()),
        other => panic!("expected factors, got {}", other.kind()),
    }
}

#[test]
fn ials_by_shape_and_the_0_2_1_component_give_the_same_model() {
    let runtime = Runtime::new().unwrap();
    let registry = Registry::load(&runtime, None).unwrap();
    let builtin = registry.trainer("IALS").unwrap();
    assert!(builtin.trains_by_shape(), "the built-in IALS exports trainer-by-shape");

    let file = repo_root().join("tests/fixtures/wit-0.2.1/ials-trainer.wasm");
    let bytes = std::fs::read(&file).unwrap();
    let digest = recotem::util::sha256_hex(&bytes);
    let component = runtime.compile("ials-0.2.1", &digest, &bytes).unwrap();
    let old = TrainerComponent::load(&runtime, file.to_str().unwrap(), &digest, &component).unwrap();
    assert!(!old.trains_by_shape(), "a 0.2.1 component is called through train");
    assert_eq!(old.info.name, "IALS");

    // More users than one host block (2 048 rows), so blocks are exercised.
    let x = matrix(2500, 90);
    let t = Duration::from_secs(120);
    let (k, epochs) = (8, 3);
    let new = factors(builtin.train(&runtime, &x, &params(k, epochs), 5, t).unwrap());
    let again = factors(builtin.train(&runtime, &x, &params(k, epochs), 5, t).unwrap());
    let before = factors(old.train(&runtime, &x, &params(k, epochs), 5, t).unwrap());
    assert_eq!(new.0, k as u32);
    assert_eq!((new.1.len(), new.2.len()), (2500 * 8, 90 * 8));
    assert!(new.1.iter().any(|v| *v != 0.0) && new.2.iter().any(|v| *v != 0.0));
    assert_eq!(new, again, "same seed, same model");
    assert_eq!(new, before, "the host-held path and the 0.2.1 list path agree bit for bit");
    let other = factors(builtin.train(&runtime, &x, &params(k, epochs), 6, t).unwrap());
    assert_ne!(new, other, "another seed, another model");
}
