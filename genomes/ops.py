"""The op vocabulary of graph genomes: parameters, shape rules, parameter counts, torch modules.

Each op is one small class; ``OPS`` maps its name to an instance. Shapes exclude the batch
dimension: ``(C, L)`` for 1-D signals, ``(C, H, W)`` for images, ``(F,)`` for flat features.
The same op works in 1-D and 2-D; the dimensionality comes from the shape it receives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from .errors import ShapeError

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "ACTIVATIONS",
    "MERGES",
    "OPS",
    "Op",
    "Param",
    "merge_problem",
    "merged_shape",
    "normalize_params",
]

Shape = tuple[int, ...]
REQUIRED = object()
MERGES = ("add", "concat")
ACTIVATIONS = ("relu", "gelu", "silu", "tanh", "sigmoid", "elu", "leaky_relu")


@dataclass(frozen=True)
class Param:
    """One op parameter: its type, default (``REQUIRED`` if none), lower bound or choices."""

    name: str
    type: type
    default: Any = REQUIRED
    minimum: int | None = None
    choices: tuple | None = None
    also: tuple = ()  # extra values allowed besides the type, e.g. "same" for padding

    def check(self, value: Any) -> str | None:
        """The problem with ``value``, or None when it is acceptable."""
        if value in self.also and type(value) is type(self.also[0]):
            return None
        # bool is an int subclass; a flag is never a size and a size is never a flag.
        if type(value) is not self.type:
            want = self.type.__name__ + "".join(f" or {a!r}" for a in self.also)
            return f"parameter {self.name!r} must be {want}, got {value!r}"
        if self.minimum is not None and value < self.minimum:
            return f"parameter {self.name!r} must be >= {self.minimum}, got {value!r}"
        if self.choices is not None and value not in self.choices:
            return f"parameter {self.name!r} must be one of {list(self.choices)}, got {value!r}"
        return None


def _spatial(shape: Shape, op: str) -> Shape:
    if len(shape) < 2:
        raise ShapeError(f"{op} needs a (C, L) or (C, H, W) input, got flat shape {shape}")
    return shape[1:]


def _window(shape: Shape, op: str, kernel: int, stride: int, dilation: int, padding: int) -> Shape:
    """Spatial output size of a sliding window; refuses kernels larger than their input."""
    spatial = _spatial(shape, op)
    span = dilation * (kernel - 1) + 1
    if any(span > s for s in spatial):
        what = f"kernel {kernel}" + (f" (dilation {dilation}, spans {span})" if dilation > 1 else "")
        raise ShapeError(f"{op} {what} is larger than its input {spatial}")
    out = tuple((s + 2 * padding - span) // stride + 1 for s in spatial)
    if any(o <= 0 for o in out):
        raise ShapeError(f"{op} output size {out} is not positive")
    return out


def _same(p: dict) -> int:
    """'same' padding: keeps the size of odd kernels at stride 1."""
    pad = p.get("padding", 0)
    return p.get("dilation", 1) * (p["kernel"] - 1) // 2 if pad == "same" else pad


def _nn():
    """``torch.nn``, imported when a module is first made: reading, checking and hashing genomes
    (all a read-only command does) needs no torch."""
    from torch import nn

    return nn


def _cls(name: str, shape: Shape):
    """The torch class for a shape's dimensionality, e.g. ``Conv`` + (C, H, W) -> ``Conv2d``."""
    return getattr(_nn(), f"{name}{max(len(shape) - 1, 1)}d")


class Op:
    """An op kind. Subclasses set ``name`` and ``params`` and override the hooks they need."""

    name: ClassVar[str]
    params: ClassVar[tuple[Param, ...]] = ()

    def output_shape(self, shape: Shape, p: dict) -> Shape:
        return shape

    def num_params(self, shape: Shape, p: dict) -> int:
        return 0

    def module(self, shape: Shape, p: dict) -> nn.Module | None:
        """A fresh torch module for an input of ``shape``; None for ops compiled as functions."""
        return None

    def function(self):
        """For module-less ops: a plain function of the merged input; None means pass-through."""


class Input(Op):
    name = "input"


class Output(Op):
    name = "output"


class Conv(Op):
    name = "conv"
    params = (
        Param("channels", int, minimum=1),
        Param("kernel", int, minimum=1),
        Param("stride", int, 1, minimum=1),
        Param("dilation", int, 1, minimum=1),
        Param("groups", int, 1, minimum=1),
        Param("padding", int, "same", minimum=0, also=("same",)),
        Param("bias", bool, True),
    )

    def output_shape(self, shape, p):
        spatial = _window(shape, self.name, p["kernel"], p["stride"], p["dilation"], _same(p))
        if shape[0] % p["groups"] or p["channels"] % p["groups"]:
            raise ShapeError(
                f"groups {p['groups']} must divide input channels {shape[0]} "
                f"and output channels {p['channels']}"
            )
        return (p["channels"], *spatial)

    def num_params(self, shape, p):
        taps = p["kernel"] ** (len(shape) - 1)
        return shape[0] // p["groups"] * p["channels"] * taps + (p["channels"] if p["bias"] else 0)

    def module(self, shape, p):
        return _cls("Conv", shape)(
            shape[0], p["channels"], p["kernel"], stride=p["stride"], padding=_same(p),
            dilation=p["dilation"], groups=p["groups"], bias=p["bias"],
        )


class SepConv(Op):
    name = "sepconv"
    params = (
        Param("channels", int, minimum=1),
        Param("kernel", int, minimum=1),
        Param("stride", int, 1, minimum=1),
        Param("dilation", int, 1, minimum=1),
        Param("padding", int, "same", minimum=0, also=("same",)),
        Param("bias", bool, True),
    )

    def output_shape(self, shape, p):
        spatial = _window(shape, self.name, p["kernel"], p["stride"], p["dilation"], _same(p))
        return (p["channels"], *spatial)

    def num_params(self, shape, p):
        taps = p["kernel"] ** (len(shape) - 1)
        cin, cout = shape[0], p["channels"]
        return cin * taps + cin * cout + (cout if p["bias"] else 0)

    def module(self, shape, p):
        from .modules import SeparableConv

        conv, cin = _cls("Conv", shape), shape[0]
        depthwise = conv(cin, cin, p["kernel"], stride=p["stride"], padding=_same(p),
                         dilation=p["dilation"], groups=cin, bias=False)
        return SeparableConv(depthwise, conv(cin, p["channels"], 1, bias=p["bias"]))


class Dense(Op):
    name = "dense"
    params = (Param("units", int, minimum=1), Param("bias", bool, True))

    def output_shape(self, shape, p):
        if len(shape) != 1:
            raise ShapeError(f"dense needs a flat input (add flatten or globalpool), got {shape}")
        return (p["units"],)

    def num_params(self, shape, p):
        return shape[0] * p["units"] + (p["units"] if p["bias"] else 0)

    def module(self, shape, p):
        return _nn().Linear(shape[0], p["units"], bias=p["bias"])


class BatchNorm(Op):
    name = "batchnorm"

    def num_params(self, shape, p):
        return 2 * shape[0]

    def module(self, shape, p):
        return _cls("BatchNorm", shape)(shape[0])


class Act(Op):
    name = "act"
    params = (Param("fn", str, "relu", choices=ACTIVATIONS),)
    _modules: ClassVar[dict] = {
        "relu": "ReLU", "gelu": "GELU", "silu": "SiLU", "tanh": "Tanh",
        "sigmoid": "Sigmoid", "elu": "ELU", "leaky_relu": "LeakyReLU",
    }  # torch.nn class names

    def module(self, shape, p):
        return getattr(_nn(), self._modules[p["fn"]])()


class _Pool(Op):
    params = (
        Param("kernel", int, minimum=1),
        Param("stride", int, None, minimum=1, also=(None,)),  # None: the kernel size
        Param("padding", int, 0, minimum=0),
    )

    def _stride(self, p):
        return p["kernel"] if p["stride"] is None else p["stride"]

    def output_shape(self, shape, p):
        if 2 * p["padding"] > p["kernel"]:
            raise ShapeError(f"{self.name} padding {p['padding']} exceeds half its kernel {p['kernel']}")
        return (shape[0], *_window(shape, self.name, p["kernel"], self._stride(p), 1, p["padding"]))


class MaxPool(_Pool):
    name = "maxpool"

    def module(self, shape, p):
        return _cls("MaxPool", shape)(p["kernel"], stride=self._stride(p), padding=p["padding"])


class AvgPool(_Pool):
    name = "avgpool"

    def module(self, shape, p):
        return _cls("AvgPool", shape)(
            p["kernel"], stride=self._stride(p), padding=p["padding"], count_include_pad=False
        )


class GlobalPool(Op):
    name = "globalpool"
    params = (Param("mode", str, "avg", choices=("avg", "max")),)

    def output_shape(self, shape, p):
        _spatial(shape, self.name)
        return (shape[0],)

    def module(self, shape, p):
        from .modules import GlobalPooling

        return GlobalPooling(p["mode"])


class Identity(Op):
    name = "identity"


def _zeros(x: torch.Tensor) -> torch.Tensor:
    return x.new_zeros(x.shape)  # methods, not ``torch.``: ops imports no torch, and TorchScript
    # compiles these functions with this module's globals


def _flatten(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1)


class Zero(Op):
    name = "zero"

    def function(self):
        return _zeros


class Flatten(Op):
    name = "flatten"

    def output_shape(self, shape, p):
        return (math.prod(shape),)

    def function(self):
        return _flatten


OPS: dict[str, Op] = {
    op.name: op
    for op in (
        Input(), Output(), Conv(), SepConv(), Dense(), BatchNorm(), Act(), MaxPool(), AvgPool(),
        GlobalPool(), Identity(), Zero(), Flatten(),
    )
}


def normalize_params(op: str, params: dict) -> tuple[dict, list[str]]:
    """Fill defaults and check every parameter; returns (params, problems)."""
    spec = OPS.get(op)
    if spec is None:
        return dict(params), [f"unknown op {op!r}; known ops: {sorted(OPS)}"]
    problems, out = [], {}
    known = {p.name for p in spec.params}
    for name in params:
        if name not in known:
            allowed = sorted(known) if known else "none"
            problems.append(f"unknown parameter {name!r} for op {op!r}; allowed: {allowed}")
    for p in spec.params:
        if p.name in params:
            value = params[p.name]
            if (msg := p.check(value)) is not None:
                problems.append(msg)
            out[p.name] = value
        elif p.default is REQUIRED:
            problems.append(f"op {op!r} needs parameter {p.name!r}")
        else:
            out[p.name] = p.default
    out.update((k, v) for k, v in params.items() if k not in known)
    return out, problems


def merge_problem(merge: Any) -> str | None:
    """Why ``merge`` is no merge rule (None, 'add' or 'concat'), or None."""
    if merge is None or merge in MERGES:
        return None
    return f"merge must be one of {list(MERGES)}, got {merge!r}"


def merged_shape(merge: str | None, shapes: list[Shape], inputs: list[str]) -> Shape:
    """Shape after merging a node's inputs; refuses mismatches, naming the inputs."""
    if len(shapes) == 1:
        return shapes[0]
    listed = ", ".join(f"{i} {s}" for i, s in zip(inputs, shapes))
    if merge == "add":
        if len(set(shapes)) > 1:
            kind = "channel" if len({s[1:] for s in shapes}) == 1 else "shape"
            raise ShapeError(f"add merges inputs with a {kind} mismatch: {listed}")
        return shapes[0]
    if merge == "concat":
        if len({s[1:] for s in shapes}) > 1 or len({len(s) for s in shapes}) > 1:
            raise ShapeError(f"concat needs inputs of equal spatial size: {listed}")
        return (sum(s[0] for s in shapes), *shapes[0][1:])
    raise ShapeError(f"cannot merge {len(shapes)} inputs with merge={merge!r}")
