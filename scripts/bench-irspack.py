"""The irspack 0.5 + Optuna side of `cargo bench -p recotem --bench quality`
and `--bench search`: tune each named algorithm on a fixed split, the same
protocol as recotem's `fixed` split scheme.

    python bench-irspack.py SPLIT_CSV N_TRIALS ALGORITHM...

SPLIT_CSV has `user_id,item_id,part` with part in train_inner / val / test.
For each algorithm (recotem names: TopPop, CosineKNN, RP3beta, TruncatedSVD,
IALS, DenseSLIM, BPRFM): tune N_TRIALS trials with irspack's own search
space, Optuna TPE seeded 42, ndcg@10 on val; refit the best parameters on
train_inner + val; score ndcg@10 on test. Prints one JSON line per
algorithm: algorithm, val_ndcg10, test_ndcg10, wall_seconds (tune + refit +
test), or an `error` field when irspack cannot run it.
"""

import json
import logging
import sys
import time

import numpy as np
import optuna
import pandas as pd
import scipy.sparse as sps

import irspack

CLASSES = {
    "TopPop": "TopPopRecommender",
    "CosineKNN": "CosineKNNRecommender",
    "RP3beta": "RP3betaRecommender",
    "TruncatedSVD": "TruncatedSVDRecommender",
    "IALS": "IALSRecommender",
    "DenseSLIM": "DenseSLIMRecommender",
    "BPRFM": "BPRFMRecommender",
}


def matrices(path):
    df = pd.read_csv(path, dtype={"user_id": str, "item_id": str, "part": str})
    users = {u: k for k, u in enumerate(sorted(df.user_id.unique()))}
    items = {i: k for k, i in enumerate(sorted(df.item_id.unique()))}
    rows = df.user_id.map(users).to_numpy()
    cols = df.item_id.map(items).to_numpy()
    shape = (len(users), len(items))

    def part(*names):
        mask = df.part.isin(names).to_numpy()
        m = sps.csr_matrix((np.ones(mask.sum()), (rows[mask], cols[mask])), shape=shape)
        m.data[:] = 1.0
        return m

    return part("train_inner"), part("val"), part("test"), part("train_inner", "val")


def main():
    path, n_trials, algorithms = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    # irspack's progress bars write to stdout without a newline; keep stdout
    # for the result lines only.
    out, sys.stdout = sys.stdout, sys.stderr
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("irspack").setLevel(logging.WARNING)
    train, val, test, train_val = matrices(path)
    for name in algorithms:
        cls = getattr(irspack, CLASSES.get(name, ""), None)
        if cls is None:
            print(json.dumps({"algorithm": name, "error": "no such irspack recommender"}), file=out, flush=True)
            continue
        try:
            started = time.perf_counter()
            evaluator = irspack.Evaluator(val, offset=0, cutoff=10, target_metric="ndcg")
            best, history = cls.tune(train, evaluator, n_trials=n_trials, tuning_random_seed=42)
            val_best = float(-history["value"].min()) if "value" in history else float("nan")
            model = cls(train_val, **best)
            model.learn()
            scores = irspack.Evaluator(test, offset=0, cutoff=10).get_scores(model, [10])
            wall = time.perf_counter() - started
            print(json.dumps({
                "algorithm": name,
                "val_ndcg10": val_best,
                "test_ndcg10": float(scores["ndcg@10"]),
                "wall_seconds": wall,
                "params": {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in best.items()},
            }), file=out, flush=True)
        except Exception as e:  # an algorithm irspack cannot run here (e.g. BPRFM needs LightFM)
            print(json.dumps({"algorithm": name, "error": f"{type(e).__name__}: {e}"}), file=out, flush=True)


if __name__ == "__main__":
    main()
