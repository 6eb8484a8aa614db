"""Milliseconds per identify query against 10⁵ and 10⁶ random 128-d encodings: FaceDatabase.search (one matrix
product over the cached encodings) vs a naive Python loop over the same encodings, in the same run.

Usage: python benchmarks/identify.py [--sizes 100000 1000000] [--queries 50] [--naive-queries 3] [--db-dir DIR]

The database is a real SQLite file (built once per size in a temporary folder, 1,000 encodings per identity);
the first search loads the encodings into the cache (timed separately as "load"). The naive loop is what one
writes without vectorising: ``for name, vector in rows: d = ((query - vector) ** 2).sum()`` (NumPy per row),
keeping the smallest. Target: < 20 ms per query at 10⁵ encodings.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from visionkit.faces.db import FaceDatabase  # noqa: E402

DIM = 128
PER_IDENTITY = 1000


def unit_rows(rng, count: int) -> np.ndarray:
    rows = rng.standard_normal((count, DIM), dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def build(path: Path, size: int, rng) -> float:
    start = time.perf_counter()
    with FaceDatabase(path) as db:
        for first in range(0, size, PER_IDENTITY):
            db.enroll(f"person-{first // PER_IDENTITY}", unit_rows(rng, min(PER_IDENTITY, size - first)), model="random")
    return time.perf_counter() - start


def naive_search(rows, query: np.ndarray) -> tuple[str, float]:
    best_name, best = "", float("inf")
    for name, vector in rows:
        distance = float(((query - vector) ** 2).sum())
        if distance < best:
            best_name, best = name, distance
    return best_name, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--naive-queries", type=int, default=3)
    parser.add_argument("--db-dir", default=None, help="Where to build the databases [default: a temporary folder].")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    folder = Path(args.db_dir or tempfile.mkdtemp(prefix="vk-identify-"))
    print(f"{'encodings':>10} {'build s':>8} {'load s':>7} {'search ms/q':>12} {'batch ms/q':>11} "
          f"{'naive ms/q':>11} {'speed-up':>9}")
    for size in args.sizes:
        path = folder / f"bench-{size}.db"
        path.unlink(missing_ok=True)
        built = build(path, size, rng)
        queries = unit_rows(rng, args.queries)
        with FaceDatabase(path) as db:
            start = time.perf_counter()
            vectors, owners, names = db.matrix()
            loaded = time.perf_counter() - start
            single, single_names = [], []
            for query in queries:
                start = time.perf_counter()
                single_names.append(db.search(query)[0].name)
                single.append((time.perf_counter() - start) * 1e3)
            start = time.perf_counter()
            batch = db.search(queries)
            batch_ms = (time.perf_counter() - start) * 1e3 / len(queries)
            rows = [(names[o], v) for o, v in zip(owners, vectors)]
            naive = []
            for query in queries[: args.naive_queries]:
                start = time.perf_counter()
                name, distance = naive_search(rows, query)
                naive.append((time.perf_counter() - start) * 1e3)
                expected = db.search(query)[0]
                assert name == expected.name and abs(distance - expected.distance) < 1e-4, (name, expected)
        assert [m.name for m in batch] == single_names
        search_ms = statistics.median(single)
        naive_ms = statistics.median(naive)
        print(f"{size:>10,} {built:>8.1f} {loaded:>7.2f} {search_ms:>12.2f} {batch_ms:>11.2f} {naive_ms:>11.1f} "
              f"{naive_ms / search_ms:>8.0f}x")
        path.unlink(missing_ok=True)
        for suffix in ("-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    print("search ms/q: median of single-query searches; batch: all queries in one call; naive: Python loop, "
          f"median of {args.naive_queries} queries; results of both agree.")


if __name__ == "__main__":
    main()
