"""Config validation, overrides, hashing, and bad input through the real CLI."""

from pathlib import Path

import pytest
import yaml
from support.cli import REPO, assert_one_line_error, run_main

from prunebench.core.errors import UserError
from prunebench.harness.config import apply_overrides
from prunebench.harness.validation import load_run_config, validate_run_config

SMOKE = REPO / "configs" / "smoke"


def raw_config(**changes) -> dict:
    raw = yaml.safe_load((SMOKE / "dense.yaml").read_text())
    raw.update(changes)
    return raw


def test_smoke_configs_validate():
    for path in SMOKE.glob("*.yaml"):
        config = load_run_config(path)
        assert config.data.name == "digits" and config.model.name == "resnet20", path


def test_phase_shorthand_and_override_values_are_yaml():
    raw = apply_overrides(raw_config(), ["phases.dense=3", "optimizer.lr=0.2", "data.layout=flat", "model.name=lenet_300_100"])
    config = validate_run_config(raw)
    assert config.phases.dense.epochs == 3 and config.optimizer.lr == 0.2 and config.data.layout == "flat"


def test_config_hash_is_stable_and_ignores_storage():
    a = validate_run_config(raw_config())
    b = validate_run_config(raw_config(output_dir="elsewhere", threads=1))
    c = validate_run_config(raw_config(seed=1))
    assert a.config_hash() == b.config_hash() != c.config_hash()
    assert a.run_id().startswith("dense-resnet20-digits-s0-")


@pytest.mark.parametrize(
    "changes, fragment",
    [
        ({"optimiser": {}}, "optimiser: unknown key"),
        ({"model": {"name": "resnet99"}}, "model.name: unknown model 'resnet99'"),
        ({"data": {"name": "svhn"}}, "data.name: unknown data set 'svhn'"),
        ({"method": {"name": "magic"}}, "method.name: unknown method 'magic'"),
        ({"phases": {"dense": -1}}, "phases.dense.epochs"),
        ({"target_compression": 0.5}, "target_compression"),
        ({"method": {"name": "global", "hparams": {"schedul": "gradual"}}}, "method 'global': hparams.schedul: unknown hyper-parameter"),
        ({"method": {"name": "dense"}, "phases": {"prune": 3}}, "phases.prune: method 'dense' has no prune phase"),
        ({"method": {"name": "global"}, "phases": {"prune": 3}}, "target_compression: method 'global' prunes to a target"),
    ],
)
def test_bad_fields_name_the_field(changes, fragment):
    with pytest.raises(UserError, match=None) as info:
        validate_run_config(raw_config(**changes), source="cfg.yaml")
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("model: {name: resnet20\ndata: [", "malformed YAML at line"),
        ("", "empty config file"),
        ("- just\n- a list\n", "expected a YAML mapping"),
    ],
)
def test_cli_rejects_unreadable_configs(tmp_path, text, fragment):
    result = run_main("run", str(_write(tmp_path, text)), "--out", str(tmp_path / "runs"))
    assert_one_line_error(result, "config.yaml", fragment)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("model.name=resnet99", "model.name"),
        ("data.name=svhn", "data.name"),
        ("method.name=magic", "method.name"),
        ("phases.dense=-2", "phases.dense.epochs"),
        ("target_compression=0.5", "target_compression"),
        ("colour=blue", "colour: unknown key"),
        ("data.name=cifar10", "cifar-10-batches-py"),
        ("data.name=imagenet", "data.root"),
    ],
)
def test_cli_bad_input_exits_2_and_writes_nothing(tmp_path, override, fragment):
    out = tmp_path / "runs"
    extra = ["--set", f"data.root={tmp_path / 'missing'}"] if override.startswith("data.name=") else []
    result = run_main("run", str(SMOKE / "dense.yaml"), "--set", override, *extra, "--out", str(out))
    assert_one_line_error(result, fragment)
    assert not out.exists()


def test_cli_missing_config_file(tmp_path):
    assert_one_line_error(run_main("run", str(tmp_path / "nope.yaml")), "nope.yaml", "not found")


def test_methods_command_lists_each_method_once():
    result = run_main("methods")
    assert result.returncode == 0
    names = [line.split()[0] for line in result.stdout.splitlines()]
    assert "dense" in names and "global" in names and len(names) == len(set(names))


def test_the_run_id_hashes_the_hyper_parameters_the_method_validated():
    """`{}`, the defaults written out and the same values in another order are one run: the
    config that validation hands on carries the method's validated hyper-parameters."""
    from prunebench import methods

    defaults = methods.get("ns").Hparams().model_dump(mode="json")
    written = [{}, defaults, dict(reversed(list(defaults.items())))]
    configs = [validate_run_config(raw_config(method={"name": "ns", "hparams": hparams}, phases={"prune": 1})) for hparams in written]
    assert len({config.run_id() for config in configs}) == 1
    assert len({config.configuration_hash() for config in configs}) == 1
    assert configs[0].method.hparams == defaults
    changed = validate_run_config(raw_config(method={"name": "ns", "hparams": {"lam": defaults["lam"] * 2}}, phases={"prune": 1}))
    assert changed.run_id() != configs[0].run_id()


def test_every_method_s_validated_hyper_parameters_validate_to_themselves():
    """A config validated twice (a grid's run handed to a Ray worker) keeps its run id."""
    from prunebench import methods

    for name in methods.available():
        once = methods.get(name).Hparams().model_dump(mode="json")
        assert methods.validate_hparams(name, once).model_dump(mode="json") == once, name
