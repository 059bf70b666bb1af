"""Model registry: the CIFAR-geometry networks of the papers plus torchvision and timm ImageNet models.

`create(name, num_classes, in_channels, image_size)` builds a model; `load_pretrained` fills
it from a local checkpoint (weights only, never pickled code) or torchvision's weights.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from prunebench.core.errors import UserError, first_line
from prunebench.core.metrics import PRUNABLE_TYPES
from prunebench.core.registry import Registry

ModelFactory = Callable[[int, int, int], nn.Module]
_REGISTRY: Registry[ModelFactory] = Registry("model.name", "model")
register = _REGISTRY.decorator
_TORCHVISION = ("resnet18", "resnet50", "mobilenet_v2", "efficientnet_b0", "alexnet", "vgg16_bn", "densenet121")


def available() -> list[str]:
    return _REGISTRY.names()


def get(name: str) -> ModelFactory:
    return _REGISTRY.get(name)


def create(name: str, num_classes: int, in_channels: int = 3, image_size: int = 32, init: str = "default") -> nn.Module:
    return initialize(_REGISTRY.get(name)(num_classes, in_channels, image_size), init)


def initialize(model: nn.Module, init: str) -> nn.Module:
    """`default` keeps the model's own initialisation. `normal_0.01` is the DT paper's (Sec. 4.2.1,
    "randomly initialized with a standard deviation of 0.01"): every Conv/Linear weight drawn
    from N(0, 0.01^2), biases zero; BatchNorm keeps its 1/0."""
    if init == "default":
        return model
    if init != "normal_0.01":
        raise UserError(f"model.init: unknown initialisation {init!r}; expected default or normal_0.01")
    for module in model.modules():
        if isinstance(module, PRUNABLE_TYPES):
            nn.init.normal_(module.weight, mean=0.0, std=0.01)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return model


# --- CIFAR ResNets (He et al. 2016, section 4.2): 6n+2 layers, widths 16/32/64 ---------------


class BasicBlock(nn.Module):
    """3x3-3x3 residual block. Downsampling shortcuts are 1x1 conv + BN (option B), which
    Torch-Pruning's dependency graph follows through the residual add."""

    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    def __init__(self, depth: int, num_classes: int, in_channels: int = 3) -> None:
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError("CIFAR ResNet depth must be 6n+2")
        blocks = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers, in_planes = [], 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            stage = []
            for index in range(blocks):
                stage.append(BasicBlock(in_planes, planes, stride if index == 0 else 1))
                in_planes = planes
            layers.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3 = layers
        self.fc = nn.Linear(64, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.fc(out)


@register("resnet20")
def resnet20(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    return CifarResNet(20, num_classes, in_channels)


@register("resnet56")
def resnet56(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    return CifarResNet(56, num_classes, in_channels)


# --- VGG-14-BN of the OT paper: VGG-16's 13 convs with BN before ReLU, one FC layer ----------

_VGG16_CONVS = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)


@register("vgg14_bn")
def vgg14_bn(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    layers: list[nn.Module] = []
    channels = in_channels
    for item in _VGG16_CONVS:
        if item == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(channels, item, 3, padding=1, bias=False), nn.BatchNorm2d(item), nn.ReLU(inplace=True)]
            channels = item
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes)]
    return nn.Sequential(*layers)


# --- VGG-like of the DT paper (Sec. 4.2.1: "the VGG-like architecture [22] having 13 convolutional
# and two fully connected layers"; [22] is Zagoruyko's cifar.torch network) -----------------------

# (width, dropout after the conv block) for VGG-16's 13 convs; "M" is a 2x2 max-pool
_VGG_LIKE = ((64, 0.3), (64, 0), "M", (128, 0.4), (128, 0), "M", (256, 0.4), (256, 0.4), (256, 0), "M",
             (512, 0.4), (512, 0.4), (512, 0), "M", (512, 0.4), (512, 0.4), (512, 0), "M")  # fmt: skip


@register("vgg_like_cifar")
def vgg_like_cifar(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    """Zagoruyko's VGG-like ("92.45% on CIFAR10 in Torch", 2015), DT's CIFAR-10 network: 13 biased
    3x3 convs with BN, ReLU and the reference's dropout, 5 max-pools (ceil mode, as in the
    reference), then dropout 0.5, FC 512, BN, ReLU, dropout 0.5, FC to the classes."""
    layers: list[nn.Module] = []
    channels, side = in_channels, image_size
    for item in _VGG_LIKE:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
            side = -(-side // 2)
            continue
        width, dropout = item
        layers += [nn.Conv2d(channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
        layers += [nn.Dropout(dropout)] if dropout else []
        channels = width
    layers += [
        nn.Flatten(), nn.Dropout(0.5), nn.Linear(channels * side * side, 512), nn.BatchNorm1d(512), nn.ReLU(inplace=True),
        nn.Dropout(0.5), nn.Linear(512, num_classes),
    ]  # fmt: skip
    return nn.Sequential(*layers)


# --- CIFAR DenseNets (Huang et al. 2017, Sec. 3 "Implementation Details"), as PSP uses them ----
# PSP Table 3 lists DenseNet (k = 12) with 40 and 100 layers at 1.02M and 6.98M parameters: the
# plain DenseNet (no bottleneck, no transition compression; DenseNet-BC-100 would be 0.8M).


class DenseLayer(nn.Module):
    """H_l = BN-ReLU-Conv3x3 producing k new feature maps, concatenated to its input."""

    def __init__(self, in_planes: int, growth_rate: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(in_planes)
        self.conv = nn.Conv2d(in_planes, growth_rate, 3, 1, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.conv(F.relu(self.bn(x)))], 1)


class Transition(nn.Module):
    """BN-ReLU-Conv1x1 keeping the width (no compression), then 2x2 average pooling."""

    def __init__(self, planes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(planes)
        self.conv = nn.Conv2d(planes, planes, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(self.conv(F.relu(self.bn(x))), 2)


class CifarDenseNet(nn.Module):
    """3x3 conv to 16 maps, three dense blocks of (depth - 4) / 3 layers with transitions between
    them, BN-ReLU, global average pooling, FC. Dropout is left out: Huang et al. use it only
    without data augmentation. Module names contain 'transition', which PSP leaves dense (Sec. 4)."""

    def __init__(self, depth: int, growth_rate: int, num_classes: int, in_channels: int = 3) -> None:
        super().__init__()
        if (depth - 4) % 3:
            raise ValueError("CIFAR DenseNet depth must be 3n+4")
        layers = (depth - 4) // 3
        planes = 16
        self.conv1 = nn.Conv2d(in_channels, planes, 3, 1, 1, bias=False)
        stages: list[nn.Module] = []  # block1, transition1, block2, transition2, block3 in forward order
        for stage in range(3):
            block = []
            for _ in range(layers):
                block.append(DenseLayer(planes, growth_rate))
                planes += growth_rate
            stages += [nn.Sequential(*block)] + ([Transition(planes)] if stage < 2 else [])
        self.block1, self.transition1, self.block2, self.transition2, self.block3 = stages
        self.bn = nn.BatchNorm2d(planes)
        self.fc = nn.Linear(planes, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.transition1(self.block1(self.conv1(x)))
        out = self.transition2(self.block2(out))
        out = F.relu(self.bn(self.block3(out)))
        return self.fc(F.adaptive_avg_pool2d(out, 1).flatten(1))


@register("densenet40_k12")
def densenet40_k12(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    return CifarDenseNet(40, 12, num_classes, in_channels)


@register("densenet100_k12")
def densenet100_k12(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    return CifarDenseNet(100, 12, num_classes, in_channels)


# --- LeNets of the DT paper ----------------------------------------------------------------


@register("lenet_300_100")
def lenet_300_100(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    """Fully connected 300-100 network; takes flat vectors or flattens images."""
    features = in_channels * image_size * image_size
    return nn.Sequential(
        nn.Flatten(), nn.Linear(features, 300), nn.ReLU(), nn.Linear(300, 100), nn.ReLU(), nn.Linear(100, num_classes)
    )


@register("lenet5")
def lenet5(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    """Caffe LeNet-5 (20 and 50 5x5 filters, FC 500) as used by the DT paper."""
    spatial = ((image_size - 4) // 2 - 4) // 2
    return nn.Sequential(
        nn.Conv2d(in_channels, 20, 5), nn.MaxPool2d(2), nn.Conv2d(20, 50, 5), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(50 * spatial * spatial, 500), nn.ReLU(), nn.Linear(500, num_classes),
    )  # fmt: skip


# --- torchvision ImageNet models -----------------------------------------------------------


def _torchvision_factory(name: str) -> ModelFactory:
    def factory(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
        import torchvision

        if in_channels != 3:
            raise UserError(f"model.name: {name} expects 3 input channels, the data has {in_channels}")
        return torchvision.models.get_model(name, weights=None, num_classes=num_classes)

    return factory


for _name in _TORCHVISION:
    register(_name)(_torchvision_factory(_name))


# --- OT's CIFAR variants (Sec. IV-A): torchvision's networks with a 3x3 stride-1 first conv and
# no max-pool (as the authors' code, yeyun11/netslim networks.py, builds them) ------------------


def _cifar_stem(in_channels: int, out_channels: int) -> nn.Conv2d:
    conv = nn.Conv2d(in_channels, out_channels, 3, 1, 1, bias=False)
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")  # torchvision's init of the conv it replaces
    return conv


@register("resnet50_cifar")
def resnet50_cifar(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    import torchvision

    model = torchvision.models.resnet50(weights=None, num_classes=num_classes)
    model.conv1, model.maxpool = _cifar_stem(in_channels, 64), nn.Identity()
    return model


@register("densenet121_cifar")
def densenet121_cifar(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    import torchvision

    model = torchvision.models.densenet121(weights=None, num_classes=num_classes)
    model.features.conv0, model.features.pool0 = _cifar_stem(in_channels, 64), nn.Identity()
    return model


# --- timm ImageNet models ------------------------------------------------------------------
# preresnet50: OT Table IV's PreResNet-50 ([35], He et al. 2016, "Identity mappings"); timm's
#   resnetv2_50 is that network: BN-ReLU before each conv, the projection shortcut on the
#   pre-activated input, BN-ReLU before pooling. (The OT authors' code keeps torchvision's
#   conv-BN-ReLU stem and BN'd shortcuts instead; the convs, and so the MACs, are the same.)
# mixnet_s: LTP Table 7's MixNet-S (Tan & Le 2019, "MixConv"), timm's port of the reference.
_TIMM = {"preresnet50": "resnetv2_50", "mixnet_s": "mixnet_s"}


def _timm_factory(architecture: str) -> ModelFactory:
    def factory(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
        import timm

        return timm.create_model(architecture, pretrained=False, num_classes=num_classes, in_chans=in_channels)

    return factory


for _name, _architecture in _TIMM.items():
    register(_name)(_timm_factory(_architecture))


def load_pretrained(model: nn.Module, name: str, source: str) -> None:
    """Fill `model` from a local checkpoint path, or from torchvision's weights ('torchvision').

    Checkpoints load with weights_only=True: they are data, and a file that would run code
    on load is refused.
    """
    if source == "torchvision":
        if name not in _TORCHVISION:
            raise UserError(f"model.pretrained: torchvision has no weights for {name!r}")
        import torchvision

        cache = Path(torch.hub.get_dir()) / "checkpoints"
        cached_before = cache.exists()
        try:
            weights = torchvision.models.get_model_weights(name).DEFAULT
            with contextlib.redirect_stderr(io.StringIO()):  # torch hub says "Downloading..." even when it cannot
                state = weights.get_state_dict(progress=False)
        except Exception as exc:  # network or cache failures: the message names what to do
            if not cached_before and cache.is_dir() and not any(cache.iterdir()):
                cache.rmdir()  # a refusal leaves nothing behind
            raise UserError(f"model.pretrained: cannot fetch torchvision weights for {name} ({exc.__class__.__name__}); give a local checkpoint path") from None
    else:
        state = load_checkpoint_file(Path(source), "model.pretrained")
        state = state.get("model", state)
    load_state(model, name, state, f"model.pretrained: {source}")


def load_state(model: nn.Module, name: str, state: dict, source: str) -> None:
    """Load a state dict; one that does not fit the model is a one-line UserError naming `source`."""
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise UserError(f"{source} does not fit {name}: {first_line(exc, exc.__class__.__name__)}") from None


def load_checkpoint_file(path: Path, field: str) -> dict:
    """torch.load with weights_only=True, every failure as a one-line UserError naming the file."""
    if not path.is_file():
        raise UserError(f"{field}: checkpoint {path} not found")
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickle protocols; the error below says enough
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        reason = "it holds code or objects that are not plain weights" if "weights_only" in str(exc) else exc.__class__.__name__
        raise UserError(f"{field}: refusing to load {path}: {reason}") from None
    if not isinstance(state, dict):
        raise UserError(f"{field}: {path} is not a state_dict")
    return state
