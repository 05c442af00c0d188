"""scripts/bench_retrieval.py end to end at a small scale: the DiskRefine rows it measures."""

import json

import bench_retrieval


def test_the_benchmark_measures_a_disk_index_against_exact_search(tmp_path, capsys):
    bench_retrieval.main([
        "--n", "3000", "--queries", "200", "--dim", "64", "--centres", "64", "--train", "2000",
        "--configs", "flat", "disk_int8", "--skip_encoder", "--repeats", "1",
        "--data_cache", str(tmp_path / "vectors.npy"), "--disk_dir", str(tmp_path / "disk"),
        "--json", str(tmp_path / "out.json")])
    out = json.loads((tmp_path / "out.json").read_text())
    rows = out["disk_refine"]
    assert [r["search_params"] for r in rows][0] == "nprobe=32,shortlist=256"
    for row in rows:
        assert 0 <= row["recall_at_20"] <= 1 and row["queries_per_s"] > 0
        shortlist = int(row["search_params"].split("shortlist=")[1])
        assert 0 < row["rows_per_query"] <= shortlist  # 3,000 vectors in 1,024 lists: fewer
        assert abs(row["bytes_read_per_query"] - row["rows_per_query"] * (64 + 4)) < 1e-6
        assert row["build_peak_growth_MB"] <= row["build_bound_MB"]
    assert "cold_queries_per_s" in rows[0]
    assert out["indexes"][0]["name"] == "flat" and out["indexes"][0]["recall_at_20"] == 1.0
    assert "DiskRefine config" in capsys.readouterr().out
