"""Published figures (a report's table as CSV) read as results and scored."""

from __future__ import annotations

import pytest

from ntire_bench.results.published import PublishedTableError, load_metrics_csv
from ntire_bench.scoring.leaderboard import score_results

from support.factory import T


def row(board, name: str) -> dict:
    return board.table.set_index("submission").loc[name].to_dict()


# --------------------------------------------------------------------------- metrics CSV


@pytest.mark.parametrize("body, message", [
    ("submission,psnr_valid,runtime_ms,params_m,flops_g\nA,27,1,1,1\n", "missing column(s) psnr_test"),
    ("submission,psnr_valid,psnr_test,runtime_ms,params_m,flops_g\nA,27,27,1,1,1\nB,27,abc,1,1,1\n",
     "row 3, column psnr_test: 'abc' is not a valid number"),
    ("submission,psnr_valid,psnr_test,runtime_ms,params_m,flops_g\nA,27,27,-1,1,1\n",
     "row 2, column runtime_ms: '-1'"),
    ("submission,psnr_valid,psnr_test,runtime_ms,params_m,flops_g\n,27,27,1,1,1\n", "row 2, column submission"),
])
def test_bad_metrics_csv_names_file_row_and_column(tmp_path, body, message):
    path = tmp_path / "published.csv"
    path.write_text(body)
    with pytest.raises(PublishedTableError) as info:
        load_metrics_csv(path)
    assert message in str(info.value) and str(path) in str(info.value)


def test_empty_psnr_cell_means_not_evaluated(tmp_path):
    path = tmp_path / "published.csv"
    path.write_text("submission,psnr_valid,psnr_test,runtime_ms,params_m,flops_g\n"
                    "rlfn,26.96,27.07,11.77,0.317,19.67\nx,27.0,,5,0.1,5\n")
    board = score_results(load_metrics_csv(path), edition="ntire2024")
    assert row(board, "x")["reason"] == f"not evaluated on {T}"


