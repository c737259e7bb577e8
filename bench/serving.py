"""Serving speed: SQL recommendations on the HNSW index versus an exact scan of the
same query, and cold-item embedding throughput with onnxruntime, on one model.

    python bench/serving.py                  # database reco_demo (run the demo first)
    python bench/serving.py --database NAME    # any database with an active model

Prints latency percentiles, throughput and peak memory, with ratios against the
peer measured in the same run. It asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import numpy as np

from reco import database, registry
from reco.new_items import encoder as content_encoder


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = np.sort(np.asarray(samples)) * 1000
    return {
        "p50": float(np.percentile(ordered, 50)),
        "p95": float(np.percentile(ordered, 95)),
        "p99": float(np.percentile(ordered, 99)),
        "per_s": len(samples) / max(sum(samples), 1e-9),
    }


def time_queries(conn, query: str, users: list[str], k: int) -> list[float]:
    timings = []
    for user in users:
        started = time.perf_counter()
        conn.execute(query, (user, k)).fetchall()
        timings.append(time.perf_counter() - started)
    return timings


def bench_recommend(conn, users: list[str], k: int) -> list[tuple]:
    model = registry.active(conn)
    exact_sql = conn.execute(
        "SELECT reco.nearest_items_sql(%s, %s, %s, true)",
        (model.version, model.dimensions, k),
    ).fetchone()[0]
    # The same query, exact: the user's stored vector, seen items excluded.
    exact_sql = (
        exact_sql.replace("$1", "%(query)s")
        .replace("$2", "'{}'::text[]")
        .replace("$3", "%(user)s")
        .replace("$4", "NULL")
        .replace("$5", "NULL")
    )
    hnsw = time_queries(conn, "SELECT * FROM reco.recommend(%s, %s)", users, k)
    exact_times = []
    for user in users:
        started = time.perf_counter()
        query = conn.execute(
            "SELECT embedding FROM reco.user_embeddings"
            " WHERE model_version = %s AND user_id = %s",
            (model.version, user),
        ).fetchone()[0]
        conn.execute(exact_sql, {"query": query, "user": user}).fetchall()
        exact_times.append(time.perf_counter() - started)
    similar = time_queries(
        conn,
        "SELECT * FROM reco.similar_items(%s, %s)",
        [
            r[0]
            for r in conn.execute(
                "SELECT item_id FROM reco.item_embeddings WHERE model_version = %s"
                " ORDER BY item_id LIMIT %s",
                (model.version, len(users)),
            )
        ],
        k,
    )
    conn.rollback()
    return [
        ("reco.recommend (HNSW, iterative scan)", percentiles(hnsw)),
        ("exact scan, same filters (peer)", percentiles(exact_times)),
        ("reco.similar_items (HNSW)", percentiles(similar)),
    ]


def bench_embedding(conn, items: int) -> list[tuple]:
    version = registry.active(conn).version
    rows = conn.execute(
        "SELECT title, body, coalesce(category, '') FROM reco.items"
        " ORDER BY item_id LIMIT %s",
        (items,),
    ).fetchall()
    conn.rollback()
    titles, bodies, categories = (list(c) for c in zip(*rows, strict=True))
    encoder = content_encoder(conn, version)
    results = []
    for batch in (1, 64):
        timings = []
        for start in range(0, len(titles), batch):
            began = time.perf_counter()
            encoder.embed(
                titles[start : start + batch],
                bodies[start : start + batch],
                categories[start : start + batch],
            )
            timings.append(time.perf_counter() - began)
        stats = percentiles(timings)
        stats["per_s"] = len(titles) / sum(timings)
        results.append((f"onnxruntime, batch {batch} (items/s)", stats))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database", default=os.environ.get("RECO_DATABASE", "reco_demo")
    )
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("-k", type=int, default=10)
    args = parser.parse_args()

    os.environ["RECO_DATABASE"] = args.database
    with database.connect() as conn:
        users = [
            r[0]
            for r in conn.execute(
                "SELECT user_id FROM reco.user_embeddings AS u"
                " WHERE model_version ="
                " (SELECT version FROM reco.models WHERE is_active)"
                " ORDER BY user_id LIMIT %s",
                (args.users,),
            )
        ]
        conn.rollback()
        # Warm the caches once so the first query does not count planning + I/O.
        time_queries(conn, "SELECT * FROM reco.recommend(%s, %s)", users[:20], args.k)
        rows = bench_recommend(conn, users, args.k)
        rows += bench_embedding(conn, args.items)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"\n{'what':44} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'per s':>9}")
    for name, stats in rows:
        print(
            f"{name:44} {stats['p50']:8.2f} {stats['p95']:8.2f} {stats['p99']:8.2f}"
            f" {stats['per_s']:9.0f}"
        )
    hnsw, exact = rows[0][1], rows[1][1]
    print(
        f"\nHNSW vs exact scan: {exact['p50'] / hnsw['p50']:.1f}x faster at p50, "
        f"{exact['p99'] / hnsw['p99']:.1f}x at p99 ({len(users)} users, k={args.k})"
    )
    one, many = rows[3][1], rows[4][1]
    print(
        f"onnxruntime batch 64 vs batch 1: {many['per_s'] / one['per_s']:.1f}x items/s"
    )
    print(f"peak memory of this process: {peak:.0f} MiB")


if __name__ == "__main__":
    main()
