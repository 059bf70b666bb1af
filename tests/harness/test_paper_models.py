"""The models the papers' tables need: parameters and MACs against the counts the papers print,
the architecture facts they state, and NS / OT finalizing each one they prune structurally."""

import pytest
import torch
from torch import nn

from prunebench import methods
from prunebench.core.metrics import count_macs, count_prunable
from prunebench.harness.models import create
from prunebench.methods.channels import batchnorms

CIFAR = (3, 32, 32)
IMAGENET = (3, 224, 224)
MiB, GiB = 2**20, 2**30  # OT's authors print thop counts in units of 1024^k (yeyun11/netslim networks.py: "K = 1024")

# (model, classes, input, parameters, MACs or None, where the paper prints them)
PAPER_COUNTS = [
    ("densenet40_k12", 10, CIFAR, 1.02e6, 0.27e9, "PSP Table 3, CIFAR10: 1.02M, 0.27G"),
    ("densenet40_k12", 100, CIFAR, 1.06e6, None, "PSP Table 3, CIFAR100: 1.06M"),
    ("densenet100_k12", 10, CIFAR, 6.98e6, 1.77e9, "PSP Table 3, CIFAR10: 6.98M, 1.77G"),
    ("densenet100_k12", 100, CIFAR, 7.09e6, None, "PSP Table 3, CIFAR100: 7.09M"),
    ("resnet50_cifar", 10, CIFAR, 22.43 * MiB, 1.22 * GiB, "OT Table II, CIFAR-10: 22.43M, 1.22G"),
    ("resnet50_cifar", 100, CIFAR, 22.61 * MiB, None, "OT Table II, CIFAR-100: 22.61M"),
    ("densenet121_cifar", 10, CIFAR, 6.63 * MiB, 866.14 * MiB, "OT Table II, CIFAR-10: 6.63M, 866.14M"),
    ("densenet121_cifar", 100, CIFAR, 6.72 * MiB, None, "OT Table II, CIFAR-100: 6.72M"),
    ("preresnet50", 1000, IMAGENET, None, 3.85 * GiB, "OT Table IV, baseline: 3.85 GFLOPs"),
    ("mixnet_s", 1000, IMAGENET, 4.1e6, None, "MixConv (Tan & Le 2019, LTP's MixNet-S reference) Table 2: 4.1M"),
]  # fmt: skip
# PSP Table 2 prints 0.53G MACs for the same DenseNet-40 baseline, twice Table 3's 0.27G (FLOPs, presumably);
# ours is 0.265G. The MixConv paper's 256M FLOPs for MixNet-S are not reached: our Conv/Linear MACs are 239M
# (-6.6%; the counter is exact for those layers, SE blocks' 1x1 convs and the classifier included), so that
# figure is not asserted. The 17M gap is the size of the element-wise work our metric leaves out by
# definition (README, Metrics): at 224x224 timm's MixNet-S outputs 6.2M BatchNorm, 5.6M activation
# (ReLU/Swish/sigmoid) and 1.3M SE-gating elements, 13.2M in all, plus the residual adds; the paper does not
# say how it counts, so a counter of the whole graph is the likely reading, not a verified one.


@pytest.mark.parametrize("name, classes, shape, params, macs, source", PAPER_COUNTS, ids=lambda v: v if isinstance(v, str) else None)
def test_parameters_and_macs_match_the_paper(name, classes, shape, params, macs, source):
    model = create(name, classes, shape[0], shape[-1])
    if params is not None:
        assert sum(p.numel() for p in model.parameters()) == pytest.approx(params, rel=0.05), source
    if macs is not None:
        assert count_macs(model, shape) == pytest.approx(macs, rel=0.05), source


def layers_of(model: nn.Module, kind: type) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, kind)]


@pytest.mark.parametrize("name, depth", [("densenet40_k12", 40), ("densenet100_k12", 100)])
def test_densenet_depth_counts_convs_and_the_classifier(name, depth):
    """Huang et al.: depth = first conv + 3 blocks of (depth - 4) / 3 layers + 2 transitions + FC;
    growth rate 12, no bottleneck (every dense-layer conv is 3x3 with 12 outputs)."""
    model = create(name, 10)
    convs = layers_of(model, nn.Conv2d)
    assert len(convs) + len(layers_of(model, nn.Linear)) == depth
    dense = [m for m in convs if m.kernel_size == (3, 3) and m is not model.conv1]
    assert len(dense) == depth - 4 and all(m.out_channels == 12 for m in dense)  # it runs: the MACs test


def test_vgg_like_has_the_layers_dt_states():
    """DT Sec. 4.2.1: 'VGG-like ... having 13 convolutional and two fully connected layers'."""
    model = create("vgg_like_cifar", 10).eval()
    assert len(layers_of(model, nn.Conv2d)) == 13 and len(layers_of(model, nn.Linear)) == 2
    assert model(torch.zeros(2, *CIFAR)).shape == (2, 10)


@pytest.mark.parametrize("name", ["resnet50_cifar", "densenet121_cifar"])
def test_ot_cifar_variants_have_a_3x3_stride_1_stem_and_no_max_pool(name):
    """OT Sec. IV-A: first conv 3x3, stride 1, padding 1; the max-pool removed. So a 32x32 input
    reaches the last stage at 4x4 (three stride-2 steps), not 1x1."""
    model = create(name, 10).eval()
    stem = layers_of(model, nn.Conv2d)[0]
    assert (stem.kernel_size, stem.stride, stem.padding) == ((3, 3), (1, 1), (1, 1))
    assert not layers_of(model, nn.MaxPool2d)
    last = layers_of(model, nn.Conv2d)[-1]
    sizes = []
    last.register_forward_hook(lambda module, inputs, output: sizes.append(tuple(output.shape[-2:])))
    assert model(torch.zeros(1, *CIFAR)).shape == (1, 10) and sizes == [(4, 4)]


def test_preresnet50_is_resnet50_with_pre_activation():
    """He et al. 2016 ("Identity mappings", OT's [35]): ResNet-50's convs with BN-ReLU moved before
    each conv, so the Conv/Linear weights equal torchvision's ResNet-50 (25.56M parameters in all)."""
    import torchvision

    model = create("preresnet50", 1000).eval()
    assert count_prunable(model)[0] == count_prunable(torchvision.models.resnet50())[0]
    block, seen = model.stages[1].blocks[0], {}
    block.norm1.register_forward_hook(lambda module, inputs, output: seen.update(preact=output.clone()))
    block.downsample.register_forward_hook(lambda module, inputs, output: seen.update(shortcut_input=inputs[0]))
    with torch.no_grad():
        model(torch.randn(1, 3, 64, 64))
    assert torch.equal(seen["shortcut_input"], seen["preact"])  # the projection sees the pre-activated input
    assert isinstance(model.norm, nn.BatchNorm2d)  # the final BN-ReLU before pooling


def test_mixnet_s_runs_on_a_small_input():
    model = create("mixnet_s", 7, 3, 64).eval()
    assert model(torch.zeros(2, 3, 64, 64)).shape == (2, 7)


# --- structured methods on the models their papers prune -------------------------------------

TINY = (3, 8, 8)  # enough for every stride of the CIFAR models; tracing cost grows with the graph, not the input

# One method per model (NS and OT share the sparsity training and the channel removal): NS where its
# target share is checked, OT where it traces fewer times (the DenseNets' graphs are the largest).
FINALIZED = [
    ("ns", "densenet40_k12", TINY),  # PSP Table 3 (and NS's own DenseNet-40)
    ("ot", "densenet100_k12", TINY),  # PSP Table 3
    ("ns", "vgg_like_cifar", TINY),  # DT prunes it unstructured; cheap, so checked as well
    ("ot", "resnet50_cifar", TINY),  # OT Fig. 5, OT and NS rows
    ("ot", "densenet121_cifar", TINY),
    ("ns", "preresnet50", (3, 32, 32)),  # OT Table IV, OT and NS rows
]


@pytest.mark.parametrize("method, name, shape", FINALIZED)
def test_structured_methods_finalize_the_paper_models(method, name, shape):
    torch.manual_seed(0)
    model = create(name, 10, shape[0], shape[-1]).eval()
    with torch.no_grad():
        for bn in batchnorms(model):
            bn.weight.uniform_(0.0, 1.0)
    channels, macs = sum(bn.num_features for bn in batchnorms(model)), count_macs(model, shape)
    pruner = methods.create(method, gamma_init=None, **({"prune_ratio": 0.5} if method == "ns" else {}))
    pruner.setup(None, 1, 1, shape)
    pruned = pruner.finalize(pruner.attach(model))
    left = sum(bn.num_features for bn in batchnorms(pruned))
    if method == "ns":
        assert abs((channels - left) / channels - 0.5) <= 0.02
    assert left < channels and count_macs(pruned, shape) < macs
    assert pruned(torch.randn(2, *shape)).shape == (2, 10)
