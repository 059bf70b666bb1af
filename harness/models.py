"""Model registry: the CIFAR-geometry networks of the papers plus torchvision ImageNet models.

`create(name, num_classes, in_channels, image_size)` builds a model; `load_pretrained` fills
it from a local checkpoint (weights only, never pickled code) or torchvision's weights.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from core.errors import UserError
from core.metrics import PRUNABLE_TYPES

ModelFactory = Callable[[int, int, int], nn.Module]
_REGISTRY: dict[str, ModelFactory] = {}
_TORCHVISION = ("resnet18", "resnet50", "mobilenet_v2", "efficientnet_b0", "alexnet", "vgg16_bn", "densenet121")


def register(name: str) -> Callable[[ModelFactory], ModelFactory]:
    def wrap(factory: ModelFactory) -> ModelFactory:
        _REGISTRY[name] = factory
        return factory

    return wrap


def available() -> list[str]:
    return sorted(_REGISTRY)


def create(name: str, num_classes: int, in_channels: int = 3, image_size: int = 32, init: str = "default") -> nn.Module:
    if name not in _REGISTRY:
        raise UserError(f"model.name: unknown model {name!r}; expected one of {', '.join(available())}")
    return initialize(_REGISTRY[name](num_classes, in_channels, image_size), init)


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


def load_pretrained(model: nn.Module, name: str, source: str) -> None:
    """Fill `model` from a local checkpoint path, or from torchvision's weights ('torchvision').

    Checkpoints load with weights_only=True: they are data, and a file that would run code
    on load is refused.
    """
    if source == "torchvision":
        if name not in _TORCHVISION:
            raise UserError(f"model.pretrained: torchvision has no weights for {name!r}")
        import torchvision

        try:
            weights = torchvision.models.get_model_weights(name).DEFAULT
            state = weights.get_state_dict(progress=False)
        except Exception as exc:  # network or cache failures: the message names what to do
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
        first = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]
        raise UserError(f"{source} does not fit {name}: {first}") from None


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
