"""MACs, density and epochs-to-sparsity, exactly as DESIGN.md defines them."""

import pytest
import torch
import torchvision
from torch import nn

from prunebench.core.metrics import accuracy_counts, compression_rate, count_macs, count_prunable, epochs_to_sparsity
from prunebench.harness.models import create


def test_resnet50_macs_at_224():
    assert count_macs(torchvision.models.resnet50(), (3, 224, 224)) == pytest.approx(4.09e9, rel=0.02)


def test_cifar_resnet56_macs_at_32():
    assert count_macs(create("resnet56", 10), (3, 32, 32)) == pytest.approx(125e6, rel=0.02)


def test_conv_macs_match_closed_form_and_halve_with_half_the_weights():
    conv = nn.Sequential(nn.Conv2d(4, 8, 3, padding=1, bias=False))
    dense = 8 * 4 * 3 * 3 * 16 * 16  # out x in x k x k x H_out x W_out
    assert count_macs(conv, (4, 16, 16)) == dense
    with torch.no_grad():
        conv[0].weight.view(-1)[::2] = 0
    assert count_macs(conv, (4, 16, 16)) == dense // 2


def test_removed_input_channels_cost_nothing_and_linear_counts_nonzeros():
    model = nn.Sequential(nn.Flatten(), nn.Linear(10, 5))
    with torch.no_grad():
        model[1].weight[:, :4] = 0  # four dead inputs
    assert count_macs(model, (10,)) == 5 * 6


def test_density_counts_conv_and_linear_weights_only():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, bias=True), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(2, 3))
    with torch.no_grad():
        model[0].weight.zero_()
    total, nonzero = count_prunable(model)
    assert (total, nonzero) == (18 + 6, 6)
    assert compression_rate(nonzero / total) == pytest.approx(4.0)


def test_topk_counts():
    logits = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.05, 0.15], [0.2, 0.3, 0.5]])
    labels = torch.tensor([1, 2, 0])
    assert accuracy_counts(logits, labels, (1, 2)) == [1, 2]


def test_epochs_to_sparsity_is_first_epoch_reaching_target():
    trail = [{"epoch": e, "compression": c} for e, c in [(1, 1.0), (2, 2.5), (3, 3.99), (4, 4.2)]]
    assert epochs_to_sparsity(trail, 4.0) == 3  # within 1% of the target
    assert epochs_to_sparsity(trail, 8.0) is None
    assert epochs_to_sparsity(trail, None) is None
