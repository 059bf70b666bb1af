"""SNIP (Lee et al. 2019): the connection sensitivity |g ⊙ w| at initialisation, the masks it
gives, and training that holds them, driven through the hooks the training loop calls."""

import torch
import torch.nn.functional as F
from torch import nn

from prunebench import methods
from prunebench.core.metrics import count_prunable


def one_layer() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3))


def train_step(model: nn.Module, optimizer, inputs, labels) -> None:
    """What harness.step.Stepper does around the method's after_step."""
    optimizer.zero_grad(set_to_none=True)
    F.cross_entropy(model(inputs), labels).backward()
    optimizer.step()


def test_scores_equal_g_times_w_computed_by_hand_on_one_layer():
    model = one_layer()
    inputs, labels = torch.randn(5, 4, generator=torch.Generator().manual_seed(1)), torch.tensor([0, 2, 1, 2, 0])
    weight, bias = model[0].weight.detach().clone(), model[0].bias.detach().clone()
    # by hand: dL/dW of the mean cross-entropy of softmax(x W^T + b) is (softmax - onehot)^T x / B
    probabilities = torch.softmax(inputs @ weight.T + bias, dim=1)
    grad = (probabilities - F.one_hot(labels, 3).float()).T @ inputs / len(labels)
    expected = (grad * weight).abs()

    method = methods.create("snip", batches=1)
    method.setup(2.0, 1, 10, (4,))
    method.attach(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    train_step(model, optimizer, inputs, labels)
    method.after_step(model, 0)

    assert torch.allclose(method.scores[0], expected, atol=1e-6)
    keep = method.masks[0]
    assert int(keep.sum()) == 6  # 2x: half of the 12 connections
    assert expected[keep].min() >= expected[~keep].max()  # the largest |g w| stay
    assert torch.equal(model[0].weight.detach(), weight * keep)  # initial weights, masked: the step was undone
    assert torch.equal(model[0].bias.detach(), bias)


def test_several_batches_sum_gradients_taken_at_the_initial_weights():
    model = one_layer()
    weight = model[0].weight.detach().clone()
    batches = [(torch.randn(5, 4, generator=torch.Generator().manual_seed(s)), torch.tensor([0, 1, 2, 1, 0])) for s in (1, 2)]
    reference = nn.Sequential(nn.Linear(4, 3))
    reference.load_state_dict(model.state_dict())
    grads = []
    for inputs, labels in batches:
        reference.zero_grad()
        F.cross_entropy(reference(inputs), labels).backward()
        grads.append(reference[0].weight.grad.clone())
    method = methods.create("snip", batches=2)
    method.setup(4.0, 1, 10, (4,))
    method.attach(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    for step, (inputs, labels) in enumerate(batches):
        assert method.masks is None
        train_step(model, optimizer, inputs, labels)
        method.after_step(model, step)
    assert torch.allclose(method.scores[0], ((grads[0] + grads[1]) * weight).abs(), atol=1e-6)
    assert int(method.masks[0].sum()) == 3


def test_the_sparse_network_trains_with_its_zeros_held_at_the_target():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 10))
    method = methods.create("snip")
    method.setup(5.0, 1, 10, (16,))
    method.attach(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for step in range(6):
        train_step(model, optimizer, torch.randn(8, 16), torch.randint(0, 10, (8,)))
        method.after_step(model, step)
        total, nonzero = count_prunable(model)
        assert nonzero == round(total / 5.0)
    assert method.finalize(model) is model
