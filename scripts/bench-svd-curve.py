"""The TruncatedSVD rank curve for `cargo bench -p recotem --bench sampler_replay`.

    python bench-svd-curve.py SPLIT_CSV

Fits irspack 0.5's TruncatedSVDRecommender at ranks 4..100 (every rank) and
104..512 (every 8th) on the fixed split (the same matrices as
bench-irspack.py): validation ndcg@10 trained on train_inner, test ndcg@10
trained on train_inner + val. Prints `rank val test` per line.
"""

import importlib.util
import logging
import os
import sys

import irspack

spec = importlib.util.spec_from_file_location("bench_irspack", os.path.join(os.path.dirname(__file__), "bench-irspack.py"))
bench_irspack = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench_irspack)


def main():
    out, sys.stdout = sys.stdout, sys.stderr
    logging.getLogger("irspack").setLevel(logging.WARNING)
    train, val, test, train_val = bench_irspack.matrices(sys.argv[1])
    on_val = irspack.Evaluator(val, offset=0, cutoff=10)
    on_test = irspack.Evaluator(test, offset=0, cutoff=10)
    for k in list(range(4, 101)) + list(range(104, 513, 8)):
        model = irspack.TruncatedSVDRecommender(train, n_components=k)
        model.learn()
        v = on_val.get_scores(model, [10])["ndcg@10"]
        model = irspack.TruncatedSVDRecommender(train_val, n_components=k)
        model.learn()
        t = on_test.get_scores(model, [10])["ndcg@10"]
        print(k, v, t, file=out, flush=True)


if __name__ == "__main__":
    main()
