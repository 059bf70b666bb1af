"""Grid files: expansion, --set overrides, shared dense stages, dry runs and bad input (no Ray needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from support.cli import REPO, CliResult, assert_one_line_error, run_main
from support.corpus import closed_port

from prunebench.cluster.grid import GridExpansion, expand_grid, load_grid
from prunebench.cli import main
from prunebench.harness.validation import load_run_config

TINY_BASE = {
    "model": {"name": "lenet_300_100"},
    "data": {"name": "digits", "layout": "flat", "batch_size": 64},
}


def write_grid(tmp_path: Path, **fields: object) -> Path:
    grid = {"experiment": "g", "storage_path": str(tmp_path / "runs"), "base": TINY_BASE, **fields}
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(grid))
    return path


def expand(path: Path, overrides: list[str] | None = None) -> list:
    return expand_grid(load_grid(path, overrides), str(path))


def test_expansion_is_the_product_of_the_axes(tmp_path: Path) -> None:
    path = write_grid(
        tmp_path,
        axes={
            "method": {
                "dense": {"phases": {"dense": 1}},
                "global": {"hparams": {"schedule": ["one_shot", "gradual"], "initial_sparsity": 0.1},
                           "phases": {"prune": 1}, "target_compression": 2.0},  # fmt: skip
            },
            "seed": [0, 1, 2],
        },
    )
    runs = expand(path)
    assert len(runs) == 3 + 2 * 3
    schedules = sorted(run.config.method.hparams["schedule"] for run in runs if run.config.method.name == "global")
    assert schedules == ["gradual"] * 3 + ["one_shot"] * 3
    assert {run.config.method.hparams.get("initial_sparsity") for run in runs if run.config.method.name == "global"} == {0.1}
    assert len({run.config.run_id() for run in runs}) == len(runs)
    assert all(run.config.output_dir == str(tmp_path / "runs") and run.config.experiment == "g" for run in runs)


def test_set_overrides_grid_keys_like_run_config_keys(tmp_path: Path) -> None:
    path = write_grid(tmp_path, axes={"method": ["dense"]})
    runs = expand(path, ["axes.method=[dense]", "axes.seed=[3, 4]", "base.phases.dense=2", "base.optimizer.lr=0.01"])
    assert [(run.config.seed, run.config.phases.dense.epochs, run.config.optimizer.lr) for run in runs] == [(3, 2, 0.01), (4, 2, 0.01)]


def test_smoke_grid_takes_each_method_from_its_smoke_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """One place defines a method's smoke settings: the grid run equals `prunebench run configs/smoke/M.yaml`."""
    monkeypatch.chdir(REPO)
    grid = Path("configs/grids/smoke.yaml")
    runs = {run.config.method.name: run for run in expand(grid, ["axes.method=[dense, global, ns]"])}
    for name in ("dense", "ns"):
        alone = load_run_config(Path(f"configs/smoke/{name}.yaml"))
        assert runs[name].config.method == alone.method
        assert runs[name].stage is None
    # global prunes the shared dense run's model; its record still counts the dense epochs
    dense, pruned = runs["dense"].config, runs["global"].config
    assert runs["global"].stage == dense.run_id()
    assert pruned.model.dense_stage.run_id == dense.run_id() and pruned.model.pretrained is None
    assert pruned.model.dense_stage.configuration == dense.configuration_hash()
    assert pruned.phases.dense.epochs == dense.phases.dense.epochs
    assert pruned.phases.total_epochs() == dense.phases.dense.epochs + pruned.phases.prune.epochs + pruned.phases.finetune.epochs


def test_method_overrides_merge_into_phases_given_as_epoch_counts(tmp_path: Path) -> None:
    method_file = tmp_path / "global.yaml"
    method_file.write_text(yaml.safe_dump({"method": {"name": "global", "hparams": {"schedule": "gradual"}},
                                           "phases": {"prune": 4, "finetune": {"epochs": 3, "lr": 0.01}}, "target_compression": 2.0}))  # fmt: skip
    path = write_grid(tmp_path, method_config=str(tmp_path / "{method}.yaml"),
                      axes={"method": {"global": {"phases": {"prune": {"lr": 0.02}, "finetune": {"lr": 0.005}}}}})  # fmt: skip
    (run,) = expand(path)
    phases = run.config.phases
    assert (phases.prune.epochs, phases.prune.lr, phases.finetune.epochs, phases.finetune.lr) == (4, 0.02, 3, 0.005)
    assert run.config.method.hparams["schedule"] == "gradual"


def test_dry_run_prints_one_line_per_run_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = write_grid(tmp_path, axes={"method": {"global": {"hparams": {"schedule": ["one_shot", "gradual"]},
                                                            "phases": {"prune": 1}, "target_compression": 2.0}}})  # fmt: skip
    assert main(["submit", str(path), "--dry-run"]) == 0
    *lines, summary, cost = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert all("[new" in line and "global" in line for line in lines)
    assert "schedule=one_shot" in lines[0] and "schedule=gradual" in lines[1]
    assert summary.startswith(f"g: 2 run(s) (2 new) -> {tmp_path / 'runs'}/g;")
    assert cost == "g: cost 2 of 2 run(s) not finished, 2 epochs, 2,586 training images to process"  # 1 prune epoch each, 1,437 - 144 digits
    assert not (tmp_path / "runs").exists()


def test_the_count_is_the_product_of_the_axes_before_any_run_is_built(tmp_path: Path) -> None:
    path = write_grid(tmp_path, axes={"method": {"dense": {"phases": {"dense": 1}}, "global": {"hparams": {"schedule": ["one_shot", "gradual"], "update_every": [1, 2, 3]},
                                                                           "phases": {"prune": 1}, "target_compression": 2.0}},
                                      "seed": [0, 1], "model": ["lenet_300_100", {"name": "lenet_300_100", "init": "normal_0.01"}]})  # fmt: skip
    expansion = GridExpansion(load_grid(path), str(path))
    assert expansion.count() == (1 + 2 * 3) * 2 * 2 == len(expansion.runs())


def test_yes_plans_a_grid_above_max_runs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = write_grid(tmp_path, axes={"method": ["dense"], "seed": [0, 1, 2]}, base=dict(TINY_BASE, phases={"dense": 1}))
    assert main(["submit", str(path), "--dry-run", "--max-runs", "2"]) == 2
    assert "3 runs, more than --max-runs 2" in capsys.readouterr().err
    assert main(["submit", str(path), "--dry-run", "--max-runs", "2", "--yes"]) == 0
    assert capsys.readouterr().out.splitlines()[-2].startswith("g: 3 run(s) (3 new)")
    assert main(["submit", str(path), "--dry-run", "--max-runs", "3"]) == 0


@pytest.mark.parametrize(
    ("axes", "extra_args", "message"),
    [
        ({"method": ["dense", "magic"]}, [], "axes.method: unknown method 'magic'"),
        ({"method": {"global": {"hparams": {"sparsity_goal": [0.5]}}}}, [], "axes.method.global.hparams.sparsity_goal: unknown hyper-parameter"),
        ({"method": ["dense"], "seeds": [1]}, [], "axes.seeds: unknown key"),
        ({"method": ["dense"]}, ["--set", "cluster.workers_per_run=0"], "cluster.workers_per_run"),
        ({"method": ["dense"]}, ["--set", "storage_path={tmp}/file.txt/runs"], "storage_path: cannot write"),
        ({"method": ["dense"]}, ["--address", "127.0.0.1:{port}"], "cannot reach the Ray cluster"),
    ],
    ids=["unknown-method", "unknown-hparam", "unknown-axis", "bad-cluster", "unwritable-storage", "unreachable-address"],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture, axes: dict, extra_args: list[str], message: str) -> None:
    (tmp_path / "file.txt").write_text("not a directory")
    base = dict(TINY_BASE, phases={"dense": 1})
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump({"experiment": "g", "storage_path": str(tmp_path / "runs"), "base": base, "axes": axes}))
    args = [arg.format(tmp=tmp_path, port=closed_port()) for arg in extra_args]
    result = CliResult(main(["submit", str(path), *args]), *capsys.readouterr())
    assert_one_line_error(result, message)
    assert result.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt", "grid.yaml"]


def test_run_ids_do_not_depend_on_where_results_are_stored(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """The same grid planned into two storage paths names every run the same, shared-dense runs included."""
    monkeypatch.chdir(REPO)
    plans = []
    for storage in ("store-a", "/tmp/elsewhere/store-b"):
        assert main(["submit", "configs/grids/smoke.yaml", "--dry-run", "--set", f"storage_path={storage}"]) == 0
        *lines, summary, _ = capsys.readouterr().out.splitlines()
        assert summary.startswith("smoke: 9 run(s) (9 new)")
        plans.append([line.split()[-1] if "from dense stage" not in line else line.split()[-5] for line in lines])
    assert plans[0] == plans[1] and len(plans[0]) == 9


def test_seeds_of_a_shared_dense_grid_are_one_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pruning runs of different seeds start from different dense stages, yet are seeds of one configuration."""
    monkeypatch.chdir(REPO)
    runs = [run for run in expand(Path("configs/grids/smoke.yaml"), ["axes.method=[dense, global]", "axes.seed=[0, 1, 2]"])
            if run.config.method.name == "global"]  # fmt: skip
    assert len({run.stage for run in runs}) == 3 and len({run.config.run_id() for run in runs}) == 3
    assert len({run.config.configuration_hash() for run in runs}) == 1


@pytest.mark.parametrize("content", ["[" * 100_000 + "]" * 100_000, '{"status": "finished", "top1": ' + "9" * 5000 + "}", '{"status": "finished", "status": "failed"}'],
                         ids=["nested-100000-deep", "5000-digits", "duplicate-key"])  # fmt: skip
def test_dry_run_reads_a_hostile_result_file_as_no_result(tmp_path: Path, capsys: pytest.CaptureFixture, content: str) -> None:
    """A planned run's result.json that no writer made (core.storage.parse_result's limits) is
    no result: the run is planned as new, and the dry run does not crash on it."""
    path = write_grid(tmp_path, axes={"method": ["dense"]}, base=dict(TINY_BASE, phases={"dense": 1}))
    (run,) = expand(path)
    run_dir = tmp_path / "runs" / "g" / run.config.run_id()
    run_dir.mkdir(parents=True)
    (run_dir / "result.json").write_text(content)
    assert main(["submit", str(path), "--dry-run"]) == 0
    assert capsys.readouterr().out.startswith("[new     ] dense")


def test_a_store_named_before_validated_hyper_parameters_is_said_once(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A finished run recorded under the old rule (its run id hashed `method.hparams` as written)
    is named once, with the id its run has now; a current record of another run is not."""
    from support.records import make_record, write_runs

    from prunebench.core import identity
    from prunebench.cluster.plan import plan_grid

    path = write_grid(tmp_path, axes={"method": {"global": {"phases": {"prune": 1}, "target_compression": 2.0}}})
    (run,) = plan_grid(str(path), []).runs
    config = run.config.model_dump(mode="json", exclude={"output_dir"})
    as_written = identity.with_hparams(config, {})  # what an old record's config carried
    old_hash = identity.config_hash(as_written)
    old_id = f"global-lenet_300_100-digits-s0-{old_hash}"
    assert old_hash != run.config.config_hash()
    old = make_record("global", run_id=old_id, experiment="g", config=as_written, config_hash=old_hash, hparams=run.config.method.hparams)
    current = make_record("dense", experiment="g")  # its config hash is its own: not renamed, not read as one
    write_runs(tmp_path / "runs", [old, current])

    assert main(["submit", str(path), "--dry-run"]) == 0
    captured = capsys.readouterr()
    (warning,) = captured.err.splitlines()
    assert "1 finished run(s)" in warning and f"{old_id} -> {run.config.run_id()}" in warning
    assert "[new" in captured.out  # trained again under its new id


def test_an_imagenet_grid_plans_at_the_papers_global_batch(tmp_path: Path) -> None:
    """OT Table IV: 256 images a step on 8 GPUs, 32 on each (not 256 on each)."""
    grid = REPO / "configs" / "grids" / "reproduce" / "ot-table4.yaml"
    result = run_main("submit", str(grid), "--dry-run", "--set", f"storage_path={tmp_path / 'runs'}")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("[")]
    assert lines and all(line.endswith(" global batch 256 = 8 x 32") for line in lines)


def test_a_global_batch_the_workers_cannot_share_is_refused_when_planning(tmp_path: Path) -> None:
    path = write_grid(tmp_path, axes={"method": {"dense": {"phases": {"dense": 1}}}}, cluster={"workers_per_run": 3})
    assert_one_line_error(run_main("submit", str(path), "--dry-run"), "data.batch_size: the global batch 64 is not divisible by the run's 3 workers",
                          "cluster.workers_per_run")  # fmt: skip
    assert not (tmp_path / "runs").exists()
