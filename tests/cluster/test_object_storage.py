"""`prunebench run`, `prunebench leaderboard` and a grid's leaderboard page on object storage: a
real S3-compatible server (moto) on loopback. The grid on `s3://` (a killed driver resumed, the shared dense stage, the
leaderboard of the bucket) is tests/cluster/test_driver_interrupt.py."""

from __future__ import annotations

import json

import pyarrow.fs
import pytest
from support.cli import REPO, assert_one_line_error, run_cli, run_main
from support.records import make_record
from support.object_storage import BUCKET, S3Server

from prunebench.cluster.plan import plan_grid
from prunebench.cluster.submit import LEADERBOARD_FILE, write_leaderboard
from prunebench.core.storage import CONFIG_FILE, LOG_FILE, MODEL_FILE, RESULT_FILE, json_bytes

pytestmark = pytest.mark.cluster

TINY = ["--set", "model.name=lenet_300_100", "--set", "data.layout=flat", "--set", "phases={dense: 1}"]


@pytest.fixture
def aws_env(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    for name, value in s3.env().items():
        monkeypatch.setenv(name, value)
    return s3


def put(s3: S3Server, key: str, data: bytes) -> None:
    with s3.filesystem().open_output_stream(f"{BUCKET}/{key}") as stream:
        stream.write(data)


def test_run_writes_its_files_to_a_bucket_named_with_its_endpoint_in_the_uri(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """The endpoint as URI options instead of AWS_ENDPOINT_URL: the URI alone says where."""
    for name, value in s3.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    options = f"?endpoint_override={s3.endpoint}&region=us-east-1"
    result = run_cli("run", str(REPO / "configs" / "smoke" / "dense.yaml"), *TINY, "--out", f"s3://{BUCKET}/single{options}", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith(f"/{RESULT_FILE}{options}"), result.stdout
    (run_dir,) = {info.base_name for info in s3.filesystem().get_file_info(pyarrow.fs.FileSelector(f"{BUCKET}/single/smoke"))}
    names = {info.base_name for info in s3.filesystem().get_file_info(pyarrow.fs.FileSelector(f"{BUCKET}/single/smoke/{run_dir}"))}
    assert {RESULT_FILE, CONFIG_FILE, MODEL_FILE, LOG_FILE} <= names and "checkpoint.pt" not in names
    with s3.filesystem().open_input_stream(f"{BUCKET}/single/smoke/{run_dir}/{RESULT_FILE}") as stream:
        assert json.loads(stream.read())["status"] == "finished"
    with s3.filesystem().open_input_stream(f"{BUCKET}/single/smoke/{run_dir}/{LOG_FILE}") as stream:
        assert "epoch   1/1 [dense   ] live model:" in stream.read().decode()


def test_a_bucket_that_does_not_exist_is_refused_before_training(aws_env: S3Server) -> None:
    result = run_main("run", str(REPO / "configs" / "smoke" / "dense.yaml"), *TINY, "--out", "s3://no-such-bucket/runs")
    assert_one_line_error(result, "storage_path", "s3://no-such-bucket/runs/smoke")


def test_leaderboard_reads_a_bucket_and_skips_what_is_no_record(aws_env: S3Server) -> None:
    dense, pruned = make_record("dense", density=1.0, top1=0.92), make_record("global", top1=0.90)
    for record in (dense, pruned):
        put(aws_env, f"board/exp/{record['run_id']}/{RESULT_FILE}", json_bytes(record))
    put(aws_env, f"board/exp/broken/{RESULT_FILE}", b'{"run_id": ')
    result = run_main("leaderboard", f"s3://{BUCKET}/board", "--format", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    ranked = {run_id for track in document["tracks"] for row in track["rows"] for run_id in row["run_ids"] or []}
    assert ranked == {dense["run_id"], pruned["run_id"]}
    (warning,) = result.stderr.strip().splitlines()
    assert f"s3://{BUCKET}/board/exp/broken/{RESULT_FILE}" in warning and "not valid JSON" in warning


def test_leaderboard_of_an_empty_prefix_is_one_line(aws_env: S3Server) -> None:
    assert_one_line_error(run_main("leaderboard", f"s3://{BUCKET}/nothing-here"), f"s3://{BUCKET}/nothing-here", RESULT_FILE)


def test_a_grid_on_a_bucket_gets_its_leaderboard_page_in_the_bucket(aws_env: S3Server) -> None:
    """What `submit` does after the runs: the HTML page goes beside them, here into the bucket."""
    dense, pruned = make_record("dense", density=1.0, top1=0.92), make_record("global", top1=0.90)
    for record in (dense, pruned):
        put(aws_env, f"grid/smoke/{record['run_id']}/{RESULT_FILE}", json_bytes(record))
    plan = plan_grid(str(REPO / "configs" / "grids" / "smoke.yaml"), [f"storage_path=s3://{BUCKET}/grid", "axes.method=[dense]"])
    _, page_uri = write_leaderboard(plan)
    assert page_uri == f"s3://{BUCKET}/grid/{LEADERBOARD_FILE.format(experiment='smoke')}"
    with aws_env.filesystem().open_input_stream(f"{BUCKET}/grid/{LEADERBOARD_FILE.format(experiment='smoke')}") as stream:
        page = stream.read().decode()
    assert page.lstrip().lower().startswith("<!doctype html") and dense["run_id"] in page and pruned["run_id"] in page
