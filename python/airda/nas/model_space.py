"""User-defined architecture spaces: mark the choices inside any ``nn.Module``, get an airda space
and a builder of concrete models.

Three markers, placed anywhere in a module tree:

- :class:`LayerChoice` - one of several candidate modules (an op choice);
- :class:`ValueChoice` - a value (a width, a kernel size) and the module it builds; markers that
  share a label share one parameter, so a width can flow through several layers;
- :class:`Repeat` - a block repeated a chosen number of times (depth).

:class:`ModelSpace` finds the markers, turns them into an :class:`airda.space.Space` (choices
nested inside a candidate or a repeated block become conditional parameters, active only when
their parent is chosen), and :meth:`ModelSpace.build` returns the concrete model for a
candidate: an ordinary ``nn.Module`` with the markers replaced by the chosen modules. This is
NNI's "model space" idea on airda's core: every strategy and study works on it unchanged.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from torch import nn

from airda.space import Categorical, Space

__all__ = ["LayerChoice", "ModelSpace", "Repeat", "ValueChoice"]


def _check_label(label: Any) -> str:
    if not isinstance(label, str) or not label:
        raise ValueError(f"a choice needs a non-empty string label, got {label!r}")
    return label


class _Mutable(nn.Module):
    label: str

    def _unfrozen(self) -> RuntimeError:
        return RuntimeError(
            f"{type(self).__name__} {self.label!r} has no chosen value: run the concrete model "
            "from ModelSpace(...).build(params), not the space itself"
        )

    def choices(self) -> list[Any]:
        raise NotImplementedError


class LayerChoice(_Mutable):
    """One of several candidate modules.

    Args:
        candidates: a dict name -> module, or a list (named "0", "1", ...).
        label: the parameter's name in the space.
    """

    def __init__(self, candidates: Mapping[str, nn.Module] | Sequence[nn.Module], *, label: str):
        super().__init__()
        self.label = _check_label(label)
        if isinstance(candidates, Mapping):
            items = [(str(k), v) for k, v in candidates.items()]
        else:
            items = [(str(i), v) for i, v in enumerate(candidates)]
        if not items:
            raise ValueError(f"LayerChoice {label!r} has no candidates")
        for name, module in items:
            if not isinstance(module, nn.Module):
                raise TypeError(
                    f"LayerChoice {label!r}: candidate {name!r} is {type(module).__name__}, "
                    "not an nn.Module"
                )
        self.candidates = nn.ModuleDict(OrderedDict(items))

    def choices(self) -> list[str]:
        return list(self.candidates.keys())

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise self._unfrozen()


class ValueChoice(_Mutable):
    """A value from a list, and the module ``factory(value)`` builds with it.

    Example: ``ValueChoice("width", [16, 32, 64], lambda w: nn.Conv2d(3, w, 3, padding=1))``
    followed by ``ValueChoice("width", [16, 32, 64], nn.BatchNorm2d)`` - one "width" parameter.
    """

    def __init__(self, label: str, values: Sequence[Any], factory: Callable[[Any], nn.Module]):
        super().__init__()
        self.label = _check_label(label)
        self.values = list(values)
        if not self.values:
            raise ValueError(f"ValueChoice {label!r} has no values")
        if len(set(map(repr, self.values))) != len(self.values):
            raise ValueError(f"ValueChoice {label!r} has repeated values {self.values}")
        built = []
        for v in self.values:
            module = factory(v)
            if not isinstance(module, nn.Module):
                raise TypeError(
                    f"ValueChoice {label!r}: factory({v!r}) gave {type(module).__name__}, "
                    "not an nn.Module"
                )
            built.append(module)
        self.built = nn.ModuleList(built)

    def choices(self) -> list[Any]:
        return list(self.values)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise self._unfrozen()


class Repeat(_Mutable):
    """A block repeated ``depth`` times in sequence, the depth chosen from ``depths``.

    Args:
        block: a factory ``block(i) -> nn.Module`` for the i-th repetition (fresh weights each),
            or a module to deep-copy.
        depths: the allowed depths (e.g. ``[1, 2, 3]`` or ``range(2, 6)``).
        label: the depth parameter's name.
    """

    def __init__(
        self, block: Callable[[int], nn.Module] | nn.Module, depths: Sequence[int], *, label: str
    ):
        super().__init__()
        self.label = _check_label(label)
        self.depths = sorted({int(d) for d in depths})
        if not self.depths or self.depths[0] < 0:
            raise ValueError(f"Repeat {label!r} needs non-negative depths, got {list(depths)}")
        blocks = []
        for i in range(self.depths[-1]):
            module = copy.deepcopy(block) if isinstance(block, nn.Module) else block(i)
            if not isinstance(module, nn.Module):
                raise TypeError(f"Repeat {label!r}: block({i}) is not an nn.Module")
            blocks.append(module)
        self.blocks = nn.ModuleList(blocks)

    def choices(self) -> list[int]:
        return list(self.depths)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise self._unfrozen()


def _children(m: _Mutable) -> list[tuple[Any, nn.Module]]:
    """(value that activates it, child module) for each child a marker may select."""
    if isinstance(m, LayerChoice):
        return list(m.candidates.items())
    if isinstance(m, ValueChoice):
        return list(zip(m.values, m.built, strict=True))
    assert isinstance(m, Repeat)
    return [(i, b) for i, b in enumerate(m.blocks)]


class ModelSpace:
    """The space of the choices marked in a model, and a builder of concrete models.

    Args:
        model: a module containing :class:`LayerChoice` / :class:`ValueChoice` /
            :class:`Repeat` markers, or a zero-argument factory returning one (then every
            :meth:`build` starts from freshly initialised weights).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from airda.nas import LayerChoice, ModelSpace, Repeat, ValueChoice
        >>> def net():
        ...     return nn.Sequential(
        ...         ValueChoice("width", [8, 16], lambda w: nn.Conv2d(3, w, 3, padding=1)),
        ...         Repeat(lambda i: ValueChoice("width", [8, 16], lambda w: LayerChoice(
        ...             {"conv": nn.Conv2d(w, w, 3, padding=1), "pool": nn.MaxPool2d(3, 1, 1)},
        ...             label=f"op{i}")), [1, 2], label="depth"),
        ...         nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        ...         ValueChoice("width", [8, 16], lambda w: nn.Linear(w, 10)))
        >>> ms = ModelSpace(net)
        >>> ms.space.names
        ['width', 'depth', 'op0', 'op1']
        >>> model = ms.build({"width": 8, "depth": 1, "op0": "pool"})
        >>> model(torch.randn(2, 3, 8, 8)).shape
        torch.Size([2, 10])
    """

    def __init__(self, model: nn.Module | Callable[[], nn.Module]):
        if isinstance(model, nn.Module):
            self._template: nn.Module | None = model
            self._factory: Callable[[], nn.Module] | None = None
            root = model
        elif callable(model):
            self._template, self._factory = None, model
            root = model()
            if not isinstance(root, nn.Module):
                raise TypeError(f"the model factory returned {type(root).__name__}, not a module")
        else:
            raise TypeError("ModelSpace needs an nn.Module or a factory returning one")
        self._params: dict[str, Any] = {}
        self._values: dict[str, list[Any]] = {}
        self._when: dict[str, dict[str, list[Any]]] = {}
        self._walk(root, {})
        if not self._params:
            raise ValueError("the model has no LayerChoice, ValueChoice or Repeat markers")
        self.space = Space(self._params)

    def _walk(self, module: nn.Module, when: dict[str, list[Any]]) -> None:
        if isinstance(module, _Mutable):
            self._declare(module, when)
            for value, child in _children(module):
                if isinstance(module, Repeat):
                    active = [d for d in module.depths if d > value]
                    if not active:
                        continue
                    inner = {**when, module.label: active}
                else:
                    inner = {**when, module.label: [value]}
                self._walk(child, inner)
            return
        for child in module.children():
            self._walk(child, when)

    def _declare(self, m: _Mutable, when: dict[str, list[Any]]) -> None:
        values = m.choices()
        if m.label in self._values:
            if self._values[m.label] != values:
                raise ValueError(
                    f"label {m.label!r} is used twice with different choices: "
                    f"{self._values[m.label]} and {values}"
                )
            # A shared label under other conditions: active when either holds. Parents both
            # conditions name take the union of their values; a parent only one names drops
            # out (the parameter may then be active where it has no effect, never the reverse).
            before = self._when[m.label]
            when = {
                k: before[k] + [v for v in when[k] if v not in before[k]]
                for k in before
                if k in when
            }
        self._values[m.label] = values
        self._when[m.label] = when
        self._params[m.label] = Categorical(values, when=dict(when) if when else None)

    def build(self, params: Mapping[str, Any]) -> nn.Module:
        """The concrete model of a candidate: markers replaced by the chosen modules.

        From a module, the result is a deep copy (its weights start equal to the space's and
        are independent of them); from a factory, a fresh model.
        """
        chosen = self.space.validate(params)
        root = self._factory() if self._factory is not None else copy.deepcopy(self._template)
        assert root is not None
        return _freeze(root, chosen)

    def __repr__(self) -> str:
        return f"ModelSpace({self.space!r})"


def _freeze(module: nn.Module, chosen: Mapping[str, Any]) -> nn.Module:
    if isinstance(module, LayerChoice):
        return _freeze(module.candidates[str(chosen[module.label])], chosen)
    if isinstance(module, ValueChoice):
        return _freeze(module.built[module.values.index(chosen[module.label])], chosen)
    if isinstance(module, Repeat):
        depth = int(chosen[module.label])
        return nn.Sequential(*(_freeze(b, chosen) for b in list(module.blocks)[:depth]))
    for name, child in list(module.named_children()):
        frozen = _freeze(child, chosen)
        if frozen is not child:
            module._modules[name] = frozen
    return module
