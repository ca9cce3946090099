#!/usr/bin/env python3
"""Generate the quickstart interactions (synthetic, seeded, reproducible).

400 users in 4 taste groups, 150 items in 4 genres plus a few blockbusters.
Users mostly pick items of their group's genre, with a popularity skew, so a
personalised model can beat plain popularity. Run:

    python3 examples/quickstart/generate.py > examples/quickstart/interactions.csv
"""
import random
import sys

rng = random.Random(20261128)
N_USERS, N_ITEMS, N_GROUPS = 400, 150, 4
items_by_genre = {g: [i for i in range(N_ITEMS) if i % N_GROUPS == g] for g in range(N_GROUPS)}
weights = {i: 1.0 / (1 + (i // N_GROUPS)) ** 0.8 for i in range(N_ITEMS)}
blockbusters = [0, 1, 2, 3]

out = sys.stdout
out.write("user_id,item_id,timestamp\n")
t0 = 1_700_000_000
for u in range(N_USERS):
    group = u % N_GROUPS
    n = rng.randint(8, 30)
    seen = set()
    for k in range(n):
        r = rng.random()
        if r < 0.75:
            pool = items_by_genre[group]
        elif r < 0.85:
            pool = blockbusters
        else:
            pool = range(N_ITEMS)
        pool = list(pool)
        item = rng.choices(pool, weights=[weights[i] for i in pool])[0]
        if item in seen:
            continue
        seen.add(item)
        out.write(f"u{u:04d},i{item:04d},{t0 + u * 1000 + k * 37}\n")
