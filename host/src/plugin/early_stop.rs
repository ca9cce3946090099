//! `recotem:plugin/early-stop` (WIT 0.2.1): a trainer hands the host the
//! model it reached after an epoch and learns whether to go on.
//!
//! The plugin layer only checks what the guest passes (epochs move
//! forward, the model has the declared kind and the data's shape, every
//! value is finite: anything else traps the call, so the *trial* fails with
//! the reason, never the run) and hands the model to the call's
//! [`EarlyStop`]. Scoring, patience and pruning live in the search
//! (`train::search`), which is the one that has a validation part. Without
//! an [`EarlyStop`] (the final refit) the answer is "go on" and nothing is
//! scored.

use wasmtime::component::Resource;

use super::bindings::trainer::recotem::plugin::early_stop::Host;
use super::bindings::source::recotem::plugin::types::Model as WitModel;
use super::linalg::IalsFactors;
use super::sandbox::{HostState, TrainCall};
use crate::model::Model;

/// Most reports one call may make (a trainer reporting in a tight loop
/// would otherwise turn the host into its evaluation service).
pub const MAX_REPORTS: u32 = 10_000;

/// What scores a trial's intermediate models and decides whether it goes
/// on. Implemented by the search for each trial.
pub trait EarlyStop: Send {
    /// Score `model` (reached after `epoch` epochs). `Ok(true)`: go on;
    /// `Ok(false)`: stop and return the current model; `Err`: the trial
    /// fails with this message.
    fn report(&mut self, epoch: u32, model: Model) -> Result<bool, String>;
}

impl HostState {
    /// Check a report's epoch and record it; `Ok(None)`: no hook (the
    /// final refit), answer "go on" without looking at the model.
    fn accept_report(&mut self, epoch: u32) -> wasmtime::Result<Option<&mut TrainCall>> {
        let Some(call) = self.call.as_mut() else {
            return Err(wasmtime::Error::msg("early-stop report outside a train call"));
        };
        if epoch == 0 || epoch <= call.last_epoch {
            return Err(wasmtime::Error::msg(format!(
                "early-stop report for epoch {epoch} after epoch {}: epochs count from 1 and must increase",
                call.last_epoch
            )));
        }
        if epoch > MAX_REPORTS {
            return Err(wasmtime::Error::msg(format!("early-stop report for epoch {epoch}: at most {MAX_REPORTS} epochs")));
        }
        call.last_epoch = epoch;
        Ok(call.early_stop.is_some().then_some(call))
    }
}

/// Hand a checked `model` to the call's hook (an unusable one fails the
/// call, naming the reason).
fn score(call: &mut TrainCall, epoch: u32, model: std::result::Result<Model, String>) -> wasmtime::Result<bool> {
    let model =
        model.map_err(|m| wasmtime::Error::msg(format!("early-stop report after epoch {epoch}: unusable model: {m}")))?;
    match call.early_stop.as_mut() {
        Some(hook) => hook.report(epoch, model).map_err(wasmtime::Error::msg),
        None => Ok(true),
    }
}

impl Host for HostState {
    fn report(&mut self, epoch: u32, model: WitModel) -> wasmtime::Result<bool> {
        let Some(call) = self.accept_report(epoch)? else {
            // The final refit: nothing to score against, go on.
            return Ok(true);
        };
        let (rows, cols) = (call.matrix.get().rows, call.matrix.get().cols);
        let model = super::trainer::model_from_wit(model, call.declared, rows, cols);
        score(call, epoch, model)
    }

    fn report_factors(&mut self, epoch: u32, factors: Resource<IalsFactors>) -> wasmtime::Result<bool> {
        if self.accept_report(epoch)?.is_none() {
            // The final refit: nothing is read, nothing is copied.
            return Ok(true);
        }
        let (table, call) = self.table_and_call();
        let f = table.get(&factors)?;
        // The search scores an owned model (it may keep the best one), so
        // here, and only here, the factors are copied.
        let (users, items) = f.parts();
        let model = Model::Factors { dim: f.dim() as u32, users: users.to_vec().into(), items: items.to_vec().into() };
        match call {
            Some(call) => {
                let (rows, cols) = (call.matrix.get().rows, call.matrix.get().cols);
                let model = super::trainer::check_model(model, call.declared, rows, cols);
                score(call, epoch, model)
            }
            None => Err(wasmtime::Error::msg("early-stop report outside a train call")),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::model::Csr;
    use crate::plugin::bindings::source::recotem::plugin::types::{DenseFactors, FactorModel};
    use crate::plugin::bindings::trainer::recotem::plugin::linalg::{Host as _, IalsHalfEpoch, Side};
    use crate::plugin::sandbox::test_train_store;

    /// Records what it was asked and answers "go on" until epoch 4.
    struct Recorder(Arc<Mutex<Vec<u32>>>);

    impl EarlyStop for Recorder {
        fn report(&mut self, epoch: u32, _model: Model) -> Result<bool, String> {
            self.0.lock().unwrap().push(epoch);
            Ok(epoch < 4)
        }
    }

    fn factors(users: u32, items: u32, dim: u32, fill: f32) -> WitModel {
        WitModel::Factors(FactorModel {
            users: DenseFactors { count: users, dim, values: vec![fill; (users * dim) as usize] },
            items: DenseFactors { count: items, dim, values: vec![fill; (items * dim) as usize] },
        })
    }

    fn store(hook: Option<Box<dyn EarlyStop>>) -> wasmtime::Store<HostState> {
        // 2 users × 3 items.
        let matrix = Csr { rows: 2, cols: 3, indptr: vec![0, 1, 3], indices: vec![0, 1, 2], values: vec![1.0; 3] };
        test_train_store(matrix, None, hook)
    }

    #[test]
    fn reports_reach_the_hook_and_bad_models_fail_the_call() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut s = store(Some(Box::new(Recorder(seen.clone()))));
        let st = s.data_mut();
        assert!(Host::report(st, 2, factors(2, 3, 4, 0.5)).unwrap());
        assert!(!Host::report(st, 4, factors(2, 3, 4, 0.5)).unwrap());
        assert_eq!(*seen.lock().unwrap(), [2, 4]);
        // Not increasing, wrong shape, non-finite, wrong kind: the call traps
        // (the trial fails) and the hook never sees it.
        let e = Host::report(st, 4, factors(2, 3, 4, 0.5)).unwrap_err().to_string();
        assert!(e.contains("must increase"), "{e}");
        let e = Host::report(st, 5, factors(2, 4, 4, 0.5)).unwrap_err().to_string();
        assert!(e.contains("unusable model") && e.contains("2 × 3"), "{e}");
        let e = Host::report(st, 6, factors(2, 3, 4, f32::NAN)).unwrap_err().to_string();
        assert!(e.contains("unusable model") && e.contains("NaN"), "{e}");
        let e = Host::report(st, 7, WitModel::Popularity(vec![1.0; 3])).unwrap_err().to_string();
        assert!(e.contains("declares model kind factors"), "{e}");
        assert_eq!(*seen.lock().unwrap(), [2, 4]);
    }

    #[test]
    fn host_held_factors_are_reported_without_the_guest() {
        use crate::plugin::bindings::trainer::recotem::plugin::linalg::{HostIalsFactors, Side};
        use crate::plugin::linalg::IalsFactors;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut s = store(Some(Box::new(Recorder(seen.clone()))));
        let st = s.data_mut();
        let h = HostIalsFactors::create(st, 2).unwrap().unwrap();
        let again = |h: &Resource<IalsFactors>| Resource::<IalsFactors>::new_borrow(h.rep());
        st.write_rows(again(&h), Side::Users, 0, vec![0.5; 4]).unwrap().unwrap();
        st.write_rows(again(&h), Side::Items, 0, vec![0.25; 6]).unwrap().unwrap();
        assert!(Host::report_factors(st, 2, again(&h)).unwrap());
        assert!(!Host::report_factors(st, 4, again(&h)).unwrap());
        assert_eq!(*seen.lock().unwrap(), [2, 4]);
        let e = Host::report_factors(st, 3, again(&h)).unwrap_err().to_string();
        assert!(e.contains("must increase"), "{e}");
        // Without a hook nothing is read.
        let mut s = store(None);
        let st = s.data_mut();
        let h = HostIalsFactors::create(st, 2).unwrap().unwrap();
        assert!(Host::report_factors(st, 1, h).unwrap());
    }

    #[test]
    fn without_a_hook_the_answer_is_go_on() {
        let mut s = store(None);
        assert!(Host::report(s.data_mut(), 1, factors(2, 3, 4, 0.5)).unwrap());
        // Nothing is scored, so nothing about the model is looked at beyond
        // the epoch order.
        assert!(Host::report(s.data_mut(), 2, factors(9, 9, 1, f32::NAN)).unwrap());
    }

    #[test]
    fn linalg_refuses_bad_shapes_and_values_with_a_message() {
        let mut s = store(None);
        let st = s.data_mut();
        let step = |side, dim, cg_steps| IalsHalfEpoch { side, dim, alpha0: 0.1, reg: 0.01, cg_steps };
        // users side: target 2 × k, fixed 3 × k.
        let ok = st.solve_ials(step(Side::Users, 2, 3), vec![0.1; 6], vec![0.1; 4]).unwrap().unwrap();
        assert_eq!(ok.len(), 4);
        assert!(ok.iter().all(|v| v.is_finite()));
        let items = st.solve_ials(step(Side::Items, 2, 3), ok.clone(), vec![0.1; 6]).unwrap().unwrap();
        assert_eq!(items.len(), 6);
        let e = st.solve_ials(step(Side::Users, 2, 3), vec![0.1; 5], vec![0.1; 4]).unwrap().unwrap_err();
        assert!(e.contains("3 × 2"), "{e}");
        let e = st.solve_ials(step(Side::Users, 0, 3), vec![], vec![]).unwrap().unwrap_err();
        assert!(e.contains("dim"), "{e}");
        let e = st.solve_ials(step(Side::Users, 2, 65), vec![0.1; 6], vec![0.1; 4]).unwrap().unwrap_err();
        assert!(e.contains("cg-steps"), "{e}");
        let e = st.solve_ials(step(Side::Users, 2, 3), vec![f32::INFINITY; 6], vec![0.1; 4]).unwrap().unwrap_err();
        assert!(e.contains("NaN or infinite"), "{e}");
    }
}
