"""Every method's hyper-parameters follow the config's number rules (core.strict): found by
introspection over every field of every registered method, so a new method or field is covered
without a hand list."""

from __future__ import annotations

import pytest

from prunebench import methods
from prunebench.core.errors import UserError
from prunebench.core.strict import number_kind

NOT_FINITE = (float("inf"), float("-inf"), float("nan"), "1e999", ".inf")


def number_fields() -> list[tuple[str, str, str]]:
    return [
        (name, field, number_kind(info.annotation))
        for name in methods.available()
        for field, info in methods.get(name).Hparams.model_fields.items()
        if number_kind(info.annotation)
    ]


def test_every_method_has_number_fields_to_check():
    """The introspection finds the fields the issue names (it is not checking nothing)."""
    found = {(name, field) for name, field, _ in number_fields()}
    assert {("ns", "lam"), ("ns", "gamma_init"), ("dt", "s0"), ("ltp", "t0"), ("ltp", "n_lambda"),
            ("psp", "epsilon"), ("ot", "lam"), ("global", "update_every")} <= found  # fmt: skip


@pytest.mark.parametrize(("name", "field", "kind"), number_fields(), ids=[f"{n}.{f}" for n, f, _ in number_fields()])
def test_number_hyper_parameters_refuse_booleans_and_non_finite_values(name, field, kind):
    for value in (True, False, *(NOT_FINITE if kind == "a number" else (float("inf"), 2.5))):
        with pytest.raises(UserError, match=f"method '{name}': hparams.{field}: ") as raised:
            methods.create(name, **{field: value})
        assert "\n" not in str(raised.value)
