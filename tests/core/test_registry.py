"""One registry rule for methods, models and data sets: an unknown name is one line naming the
field and the known names; a second entry under a taken name is refused."""

import pytest

from prunebench import methods
from prunebench.core.errors import UserError
from prunebench.core.registry import Registry
from prunebench.harness import datasets, models


def test_an_unknown_name_names_the_field_and_the_known_ones() -> None:
    registry: Registry[int] = Registry("model.name", "model")
    registry.decorator("b")(2)
    registry.add("a", 1)
    assert registry.names() == ["a", "b"] and registry.get("b") == 2
    with pytest.raises(UserError, match=r"^model.name: unknown model 'c'; expected one of a, b$"):
        registry.get("c")


def test_a_taken_name_is_refused_unless_it_is_the_same_entry() -> None:
    registry: Registry[object] = Registry("method.name", "method")
    entry = object()
    registry.add("x", entry)
    registry.add("x", entry)  # a module imported twice registers the same class again
    with pytest.raises(ValueError, match="registered twice"):
        registry.add("x", object())


@pytest.mark.parametrize("get, field", [(methods.get, "method.name"), (models.get, "model.name"), (datasets.get, "data.name")])
def test_methods_models_and_data_sets_share_the_rule(get, field) -> None:
    with pytest.raises(UserError, match=f"^{field}: unknown "):
        get("no-such-name")
