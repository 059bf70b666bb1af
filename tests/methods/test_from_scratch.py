"""`model.from_architecture`: a finished structured run's widths, freshly initialised, trained as
a dense model; its record compared with the dense architecture; bad sources refused."""

import copy
import json

import pytest
import torch

from prunebench import methods
from prunebench.core.metrics import layer_facts, prunable_modules
from prunebench.harness.from_scratch import source_architecture
from prunebench.harness.models import create
from prunebench.harness.validation import load_run_config
from support.cli import REPO, assert_one_line_error, run_main
from support.sources import write_source

SHAPE = (3, 32, 32)
DENSE = REPO / "configs" / "smoke" / "dense.yaml"


@pytest.fixture(scope="module")
def structured():
    """A trained-looking resnet20 and an L1-pruned copy of it (residual layers too)."""
    torch.manual_seed(5)
    dense = create("resnet20", 10)
    with torch.no_grad():
        for parameter in dense.parameters():
            parameter.add_(0.5)  # unlike any fresh initialisation
    method = methods.create("l1_filters", prune_ratio=0.4, prune_residual=True)
    method.setup(None, 0, 1, SHAPE)
    return dense, method.finalize(copy.deepcopy(dense))


def widths(model) -> dict[str, int]:
    return {name: facts["out_channels"] for name, facts in layer_facts(model, SHAPE).items()}


def test_the_architecture_has_the_sources_widths_and_fresh_weights(structured, tmp_path):
    dense, pruned = structured
    run_id = write_source(tmp_path, "smoke", dense, pruned, SHAPE)
    config = load_run_config(DENSE, [f"model.from_architecture={run_id}", f"output_dir={tmp_path}"])
    torch.manual_seed(0)
    fresh = create("resnet20", 10)
    initial = {name: module.weight.detach().clone() for name, module in prunable_modules(fresh)}
    model = source_architecture(config, fresh, SHAPE)
    assert widths(model) == widths(pruned)
    trained = dict(prunable_modules(pruned))
    for name, module in prunable_modules(model):
        weight = module.weight.detach()
        assert not torch.equal(weight, trained[name].weight.detach())  # not the source's weights...
        out, inputs = weight.shape[:2]
        assert torch.equal(weight, initial[name][:out, :inputs])  # ...the fresh model's, its first channels
    assert model(torch.zeros(2, *SHAPE)).shape == (2, 10)


def test_a_branch_the_source_removed_is_removed(structured, tmp_path):
    dense, pruned = structured
    run_id = write_source(tmp_path, "smoke", dense, pruned, SHAPE)
    record_file = next(tmp_path.glob(f"smoke/{run_id}/result.json"))
    record = json.loads(record_file.read_text())
    for layer in record["layers"]:
        if layer["name"] in ("layer2.1.conv1", "layer2.1.conv2"):  # as OT removes a branch
            layer.update(out_channels=0, weights_nonzero=0, macs=0)
    record_file.write_text(json.dumps(record))
    config = load_run_config(DENSE, [f"model.from_architecture={run_id}", f"output_dir={tmp_path}"])
    model = source_architecture(config, create("resnet20", 10), SHAPE)
    assert type(model.layer2[1].conv2).__name__ == "ZeroBranch"
    assert widths(model) == {name: width for name, width in widths(pruned).items() if not name.startswith("layer2.1.conv")}


def test_a_run_trains_it_as_a_structured_row_named_by_its_source(structured, tmp_path):
    dense, pruned = structured
    run_id = write_source(tmp_path, "smoke", dense, pruned, SHAPE)
    sets = ["max_steps_per_epoch=2", "phases.dense=1", "threads=1", "latency.enabled=false", f"model.from_architecture={run_id}"]
    result = run_main("run", str(DENSE), "--out", str(tmp_path), *(part for value in sets for part in ("--set", value)), timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    (path,) = [p for p in tmp_path.glob("smoke/dense-*/result.json")]
    record = json.loads(path.read_text())
    assert record["granularity"] == "structured" and record["config"]["model"]["from_architecture"] == run_id
    assert {layer["name"]: layer["out_channels"] for layer in record["layers"]} == widths(pruned)
    assert record["macs"] < record["macs_dense"] and record["density"] < 1
    assert [layer["out_channels_dense"] for layer in record["layers"]] == list(widths(dense).values())
    other = write_source(tmp_path, "smoke", dense, dense, SHAPE, seed=1)
    ids = {load_run_config(DENSE, sets[:1] + [f"model.from_architecture={source}"]).run_id() for source in (run_id, other)}
    assert len(ids | {load_run_config(DENSE, sets[:1]).run_id()}) == 3  # the source is part of the identity


@pytest.mark.parametrize("case", ["missing", "unfinished", "other_model", "unstructured", "with_a_method", "with_pretrained"])
def test_a_bad_source_is_one_line_and_writes_nothing(case, structured, tmp_path):
    dense, pruned = structured
    fields = {"other_model": {"model": "resnet32"}, "unstructured": {"method": "global", "granularity": "unstructured"}}.get(case, {})
    run_id = write_source(tmp_path, "smoke", dense, pruned, SHAPE, status="failed" if case == "unfinished" else "finished", **fields)
    name = "ns-resnet20-digits-s0-000000000000" if case == "missing" else run_id
    sets = [f"model.from_architecture={name}"]
    sets += {"with_a_method": ["method.name=global", "target_compression=2"], "with_pretrained": ["model.pretrained=torchvision"]}.get(case, [])
    before = sorted(tmp_path.rglob("*"))
    result = run_main("run", str(DENSE), "--out", str(tmp_path), *(part for value in sets for part in ("--set", value)))
    expected = {"missing": "no finished run", "unfinished": "has not finished", "other_model": "not resnet20 on digits",
                "unstructured": "not a structured run", "with_a_method": "use method dense",
                "with_pretrained": "takes no pretrained file"}[case]  # fmt: skip
    assert_one_line_error(result, "from_architecture", expected)
    assert sorted(tmp_path.rglob("*")) == before
