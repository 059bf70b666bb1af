"""Model registry: every model runs at its geometry; checkpoints load as data, never as code."""

import pickle

import pytest
import torch

from prunebench.core.errors import UserError
from prunebench.harness.models import available, create, load_pretrained


@pytest.mark.parametrize(
    "name, shape", [("resnet20", (3, 32, 32)), ("resnet56", (3, 32, 32)), ("vgg14_bn", (3, 32, 32)), ("lenet5", (1, 28, 28)),
                    ("lenet_300_100", (64,)), ("resnet18", (3, 64, 64)), ("mobilenet_v2", (3, 64, 64))],
)  # fmt: skip
def test_models_produce_class_logits(name, shape):
    side = shape[-1] if len(shape) == 3 else 8
    model = create(name, 7, shape[0] if len(shape) == 3 else 1, side).eval()
    assert model(torch.zeros(2, *shape)).shape == (2, 7)


def test_registry_has_the_issue_models():
    expected = {"resnet20", "resnet56", "vgg14_bn", "lenet_300_100", "lenet5", "resnet18", "resnet50", "mobilenet_v2",
                "efficientnet_b0", "alexnet", "vgg16_bn", "densenet121", "densenet40_k12", "densenet100_k12", "vgg_like_cifar",
                "resnet50_cifar", "densenet121_cifar", "preresnet50", "mixnet_s"}  # fmt: skip
    assert expected <= set(available())


def test_local_checkpoint_round_trip(tmp_path):
    source = create("resnet20", 10)
    torch.save(source.state_dict(), tmp_path / "dense.pt")
    target = create("resnet20", 10)
    load_pretrained(target, "resnet20", str(tmp_path / "dense.pt"))
    assert all(torch.equal(a, b) for a, b in zip(source.state_dict().values(), target.state_dict().values()))


class Exploit:
    def __reduce__(self):
        return (exec, ("open('PWNED', 'w').write('x')",))


def test_pickled_code_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with open(tmp_path / "evil.pt", "wb") as stream:
        pickle.dump({"weight": Exploit()}, stream)
    with pytest.raises(UserError, match="evil.pt"):
        load_pretrained(create("resnet20", 10), "resnet20", str(tmp_path / "evil.pt"))
    assert not (tmp_path / "PWNED").exists()


def test_checkpoint_of_another_model_is_a_clear_error(tmp_path):
    torch.save(create("resnet20", 10).state_dict(), tmp_path / "r20.pt")
    with pytest.raises(UserError, match="does not fit resnet56"):
        load_pretrained(create("resnet56", 10), "resnet56", str(tmp_path / "r20.pt"))


def test_lenet_300_100_on_mnist_has_266200_prunable_weights():
    from prunebench.core.metrics import count_prunable
    from prunebench.harness.config import DataConfig
    from prunebench.harness.datasets import build_splits

    splits = build_splits(DataConfig(name="mnist", layout="flat"))
    model = create("lenet_300_100", splits.num_classes, splits.in_channels, splits.image_size)
    assert count_prunable(model) == (784 * 300 + 300 * 100 + 100 * 10,) * 2 == (266_200, 266_200)
    assert model(splits.train.tensors[0][:5]).shape == (5, 10)


def test_normal_init_gives_the_dt_papers_std():
    torch.manual_seed(0)
    default = create("lenet_300_100", 10, 1, 28)
    paper = create("lenet_300_100", 10, 1, 28, init="normal_0.01")
    linears = [m for m in paper if isinstance(m, torch.nn.Linear)]
    for layer in linears:
        assert float(layer.weight.detach().std()) == pytest.approx(0.01, rel=0.05) and abs(float(layer.weight.detach().mean())) < 1e-3
        assert not layer.bias.any()
    assert float(default[1].weight.detach().std()) > 0.015  # torch's own init is wider: the option changes something
    lenet5 = create("lenet5", 10, 1, 28, init="normal_0.01")
    assert float(lenet5[0].weight.detach().std()) == pytest.approx(0.01, rel=0.2)  # 500 weights: a looser bound


def test_a_torchvision_weights_refusal_prints_nothing_and_leaves_no_cache(tmp_path, monkeypatch, capsys):
    """Without network (the download itself replaced: nothing leaves this machine), torch hub's
    "Downloading..." line is not printed and its checkpoints folder is not left behind."""
    import urllib.error

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    with pytest.raises(UserError, match="cannot fetch torchvision weights for resnet18"):
        load_pretrained(create("resnet18", 10, 3, 32), "resnet18", "torchvision")
    assert "Downloading" not in capsys.readouterr().err
    assert not (tmp_path / "torch" / "hub" / "checkpoints").exists()
