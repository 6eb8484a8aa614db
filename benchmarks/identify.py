"""Milliseconds per identify query against 10⁵ and 10⁶ random 128-d encodings: FaceDatabase.search vs a vectorised
NumPy search over the same matrix, in the same run.

Usage: python benchmarks/identify.py [--sizes 100000 1000000] [--queries 50] [--db-dir DIR]

The database is a real SQLite file (built once per size in a temporary folder, 1,000 encodings per identity);
the first search loads the encodings into memory (timed separately as "load"). The baseline is what a practitioner
writes with NumPy over the same float32 matrix ``E`` (n, 128), already in memory:
``d = (E * E).sum(1) - 2 * E @ q + q @ q; best = d.argmin()`` — one matrix product per query, the squared norms of
``E`` computed in each call ("numpy"), or once beforehand ("numpy, norms kept"). ``FaceDatabase.search`` keeps the
norms and adds ``‖q‖²`` after the arg-min. Both answer the same identity (checked). Target: < 20 ms per query at 10⁵.
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


def numpy_search(matrix: np.ndarray, query: np.ndarray, norms: np.ndarray | None = None) -> tuple[int, float]:
    """The practitioner's vectorised search: squared distances by one matrix product, then the arg-min."""
    squared = (matrix * matrix).sum(axis=1) if norms is None else norms
    distances = squared - 2.0 * (matrix @ query) + query @ query
    best = int(distances.argmin())
    return best, float(distances[best])


def median_ms(function, queries) -> float:
    times = []
    for query in queries:
        start = time.perf_counter()
        function(query)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--db-dir", default=None, help="Where to build the databases [default: a temporary folder].")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    folder = Path(args.db_dir or tempfile.mkdtemp(prefix="vk-identify-"))
    print(f"{'encodings':>10} {'build s':>8} {'load s':>7} {'search ms/q':>12} {'batch ms/q':>11} {'numpy ms/q':>11} "
          f"{'numpy, norms kept':>18} {'numpy / search':>15}")
    for size in args.sizes:
        path = folder / f"bench-{size}.db"
        path.unlink(missing_ok=True)
        built = build(path, size, rng)
        queries = unit_rows(rng, args.queries)
        with FaceDatabase(path) as db:
            start = time.perf_counter()
            vectors, owners, names = db.matrix()
            loaded = time.perf_counter() - start
            norms = (vectors * vectors).sum(axis=1)
            for _ in range(2):  # warm-up
                db.search(queries[0]), numpy_search(vectors, queries[0])
            search_ms = median_ms(lambda q: db.search(q), queries)
            numpy_ms = median_ms(lambda q: numpy_search(vectors, q), queries)
            kept_ms = median_ms(lambda q: numpy_search(vectors, q, norms), queries)
            start = time.perf_counter()
            batch = db.search(queries)
            batch_ms = (time.perf_counter() - start) * 1e3 / len(queries)
            for query, match in zip(queries, batch):
                best, distance = numpy_search(vectors, query, norms)
                assert names[owners[best]] == match.name and abs(distance - match.distance) < 1e-4, (best, match)
        print(f"{size:>10,} {built:>8.1f} {loaded:>7.2f} {search_ms:>12.2f} {batch_ms:>11.2f} {numpy_ms:>11.2f} "
              f"{kept_ms:>18.2f} {numpy_ms / search_ms:>8.2f} / {kept_ms / search_ms:.2f}")
        path.unlink(missing_ok=True)
        for suffix in ("-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    print(f"ms/q: median over {args.queries} single-query calls; batch: all queries in one search call; "
          "numpy / search: the baseline's time over FaceDatabase.search's (numpy, numpy with norms kept).")


if __name__ == "__main__":
    main()
