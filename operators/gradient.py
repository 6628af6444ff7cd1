"""``gradient``: a local DARTS step around a trained parent (issue 14).

Given a trained parent, one to three of its sites are relaxed into mixed ops (Liu et al.,
"DARTS: Differentiable Architecture Search", ICLR 2019): a site computes ``sum_o w_o op_o(x)``
over candidate ops, the parent's op among them with its trained weights. The sites' weights and
the architecture weights ``w`` are trained together for a short budget, then every site is
discretised to one op and the child is returned with the trained weights of the ops it kept and
its parent's weights everywhere else (Lamarckian inheritance).

**Sites.** On ``cell`` (and ``nb201``) a site is a cell edge (an index into ``space.edges()``),
relaxed in every cell alike with one set of architecture weights shared by the cells, so the
child is again a stack of identical cells (it decodes, and a strict space keeps it). Edges into
a cell node whose value never reaches the cell's output (it feeds only ``none`` edges) are no
sites. On ``multibranch`` (and ``chain``) a site is a block, named by its first node: a conv or
sepconv with the batch norm and activation after it, a stride-1 3x3 pooling, or an identity
merge; its candidates read the block's inputs with its merge rule, and a new identity node sums
them. Candidates: the space's ops (cell: ``space.ops``; blocks: ``space.ops`` x
``space.kernels``, pooling and identity only where the block keeps its channel count), narrowed
by ``ops``.

**Where it does not apply.** A parent without trained weights (a run that trains nothing, e.g. a
tabular ``nb201`` run: ``request.weights`` is False); a ``cell`` genome that morphisms have grown
until it no longer decodes (its cells differ, and one edge of every cell is what we relax);
blocks that change the resolution (strided convs, downsampling pools), flat layers (the dense
head), and sites with a single candidate. ``Gradient.propose`` also needs the engine's
``request.dispatch`` hook: the relaxation runs as a dispatched job, never in the driver.

**Initialisation, as the morphisms would.** The parent's op keeps its weights. A conv-like
candidate copies the parent's op where a morphism can: a larger kernel is the parent's kernel
zero-padded (``widen_kernel``), a smaller one its centre, a separable conv the best rank-one
factorisation per input channel (``replace_op``), a conv from a separable conv its composed
kernel; the batch norm is copied. From a parent without weights (skip, pooling, identity) it
starts as the identity (``deepen``: a delta kernel, or the pooling's uniform kernel, batch norm
set to the identity), from ``none`` at zero (batch norm scale and shift zero, as ``add_skip``
zeroes its last layer). A candidate that does not reproduce its parent's op exactly (cropped or
rank-one kernels, a conv standing in for a skip or a pooling) then has its batch norm fitted to
the parent on ``CALIBRATION_SAMPLES`` training inputs: its statistics those of its own
pre-normalisation output, its scale and shift the per-channel least-squares fit of the parent
op's output (a data-dependent refinement of the morphisms' transfer). Parameter-free candidates
need nothing. The architecture weights start at ``1 - init_mass`` on the parent's op and
``init_mass`` shared evenly by the candidates. So the relaxed network computes its parent's
function exactly (eval mode) where every candidate reproduces the parent's op (a 1x1 conv edge
among 3x3 and separable convs; a conv block among larger kernels), and otherwise up to
``init_mass`` times the candidates' deviation.

**Training.** Only the sites' ops train (``scope: sites``; ``scope: all`` trains every weight):
their batch norms on batch statistics, every other layer on its running statistics, so every
weight and statistic outside the sites is the parent's, bit for bit. Each search step takes one
first-order architecture step on a validation batch (DARTS' first-order variant), then a weight
step on a training batch (SGD with the training settings' momentum and weight decay, cosine
decay from ``lr``; 0.01 is the engine's rate for inherited weights, 0.05 x 0.2).
``update: darts`` keeps logits ``alpha`` with ``w = softmax(alpha)``, stepped by Adam (DARTS'
betas 0.5/0.999, weight decay 1e-3); ``update: gaea`` keeps ``w`` on the simplex itself and steps
it by exponentiated gradient, ``w <- w * exp(-arch_lr * dL/dw) / Z`` (Li et al.,
"Geometry-Aware Gradient Algorithms for Neural Architecture Search", ICLR 2021).

**Choosing ops, and the guard against collapse.** DARTS keeps the op of largest ``w``, and ``w``
drifts to skip connections and ``none``: parameter-free ops ease the optimisation without being
better ops (Zela et al. ICLR 2020; Wang et al. ICLR 2021). ``guard: pt`` (default) chooses by
perturbation instead, as DARTS-PT (Wang et al., "Rethinking Architecture Selection in
Differentiable NAS", ICLR 2021): a site is projected onto one op (that op alone at weight 1, the
other sites left mixed) and the fall of the relaxed network's validation loss is that op's
score. DARTS-PT removes one op at a time; we project, since the child will hold the op alone.
To fit the budget, only the parent's op and the ``PT_TOP`` candidates whose projection the
search's architecture gradients favour most (first order, accumulated over the search) are
projected, on ``PT_SAMPLES`` validation samples. ``guard: cap`` chooses by ``w`` (``none`` only
where it is the parent's op, as DARTS leaves it out), with at most ``max_free`` parameter-free
ops (none, skip, pooling) in a cell, or no more than the parent had; in block mode at most
``max_free`` new pooling or identity blocks. Under both, a cell is never all skip/none (when the
space has another op), and the child always differs from its parent (the same architecture
would be dropped as a duplicate) and from the hashes in ``avoid``. Architectures over the sites
are ranked by the sum of their ops' scores, and the best that passes is chosen. Perturbation is
the default because it addresses why ``w`` misleads instead of bounding its effect, and it also
keeps the child close to its parent: a projection measures the child's own op.

**Handing over.** After the choice, the sites' weights move linearly from the learnt mixture to
the chosen ops alone over half the remaining steps while the weights keep training; the other
half trains the chosen ops alone (the others are no longer computed). At the end the relaxed
network computes exactly the child's function.

**Budget.** ``epochs`` is the relaxation's work in epochs of its parent (one pass over the
training split and one over the validation split), estimated before it starts from the networks'
sizes (heavy layers count thrice): search steps cost two passes of the relaxed network, the
perturbations one forward pass per projection, the handover one pass of the relaxed network and
then of the child. Deterministic (never from a clock), so one seed gives one child bit for bit on
the CPU; the estimate is rough, and ``benchmarks/gradient_relax.py`` measures the wall time.
A loss that turns NaN or infinite raises ``Diverged``; ``relax_job`` turns it, like any
exception or a time-out (``training.timeout_s``), into a failed result.
"""

from __future__ import annotations

import itertools
import json
import math
import operator
import time
from dataclasses import dataclass, field, fields
from functools import reduce
from typing import Any, Callable, ClassVar, Iterable, Mapping, Sequence

import numpy as np
import torch
from safetensors.torch import load as load_bytes, save as save_bytes
from torch import nn

from genomes import OPS, Genome
from genomes.spaces import SearchSpace
from genomes.spaces import get as get_space
from genomes.spaces.cell import CELL_OPS, CellSpace
from objectives import TrainConfig, tasks
from objectives.tasks import Task

from .base import Child, NotApplicable, Provenance, StateDict
from .proposer import PARTIAL, Proposer, Request

__all__ = ["Diverged", "Gradient", "Relaxation", "make_job", "relax", "relax_job",
           "relaxable_sites", "site_nodes", "weights_from_bytes", "weights_to_bytes"]

UPDATES = ("darts", "gaea")
GUARDS = ("pt", "cap")
SCOPES = ("sites", "all")
MAX_SITES = 3
BLOCK_KINDS = ("conv", "sepconv", "maxpool", "avgpool", "identity")
FREE_CELL_OPS = ("none", "skip_connect", "avg_pool_3x3", "max_pool_3x3")
EMPTY_CELL_OPS = ("none", "skip_connect")  # a cell of only these computes nothing of its own
FREE_BLOCKS = ("maxpool", "avgpool", "identity")
ARCH_LR = {"darts": 0.05, "gaea": 0.5}  # defaults for a short budget (tens of steps)
BN_EPS = 1e-5
HEAVY_OPS = ("conv", "sepconv", "maxpool", "avgpool", "dense")
PT_TOP = 3  # candidates per site scored by perturbation (best first-order scores), and the parent
CALIBRATION_SAMPLES = 256  # training samples that fit the inexact candidates' batch norm
PT_SAMPLES = 256  # validation samples that score the perturbations (a random subset: carved)
MAX_AVOID = 20_000  # seen hashes sent along with a job; beyond that the engine drops duplicates


class Diverged(FloatingPointError):
    """The relaxation's loss or weights became NaN or infinite."""


# ---------------------------------------------------------------------- options
def _check(ok: bool, key: str, what: str, value: Any) -> None:
    if not ok:
        raise ValueError(f"option {key!r} {what}, got {value!r}")


def _number(key: str, value: Any, low: float, high: float, *, open_low: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
        and (low < value if open_low else low <= value) and value <= high
    _check(ok, key, f"must be a number in {'(' if open_low else '['}{low}, {high}]", value)
    return float(value)


def _check_options(*, sites: Any = 2, epochs: Any = 1.75, handover: Any = 0.5,
                   update: Any = "darts", lr: Any = 0.01, arch_lr: Any = None, guard: Any = "pt",
                   max_free: Any = 2, init_mass: Any = 0.2, scope: Any = "sites",
                   ops: Any = None) -> dict[str, Any]:
    """The relaxation's options, checked; ``ValueError`` names the option at fault."""
    _check(type(sites) is int and 1 <= sites <= MAX_SITES, "sites",
           f"must be an int in [1, {MAX_SITES}]", sites)
    _number("epochs", epochs, 0, 100, open_low=True)
    _number("handover", handover, 0, 1)
    _check(update in UPDATES, "update", f"must be one of {list(UPDATES)}", update)
    _number("lr", lr, 0, math.inf, open_low=True)
    if arch_lr is not None:
        _number("arch_lr", arch_lr, 0, math.inf, open_low=True)
    _check(guard in GUARDS, "guard", f"must be one of {list(GUARDS)}", guard)
    _check(type(max_free) is int and max_free >= 0, "max_free", "must be an int >= 0", max_free)
    _number("init_mass", init_mass, 0, 1, open_low=True)
    _check(init_mass < 1, "init_mass", "must be < 1 (the parent's op keeps 1 - init_mass)",
           init_mass)
    _check(scope in SCOPES, "scope", f"must be one of {list(SCOPES)}", scope)
    known = sorted(set(CELL_OPS) | set(BLOCK_KINDS))
    if ops is not None:
        _check(isinstance(ops, (list, tuple)) and len(ops) > 0
               and all(isinstance(o, str) for o in ops) and len(set(ops)) == len(ops), "ops",
               "must be a non-empty list of distinct op names (or null for the space's ops)", ops)
        unknown = [o for o in ops if o not in known]
        _check(not unknown, "ops", f"names unknown ops {unknown}; known: {known}", ops)
    return dict(sites=sites, epochs=float(epochs), handover=float(handover), update=update,
                lr=float(lr), arch_lr=None if arch_lr is None else float(arch_lr), guard=guard,
                max_free=max_free, init_mass=float(init_mass), scope=scope,
                ops=None if ops is None else list(ops))


# ---------------------------------------------------------------------- weights as bytes
def weights_to_bytes(weights: Mapping[str, torch.Tensor]) -> bytes:
    """A state dict as safetensors bytes (what crosses a process boundary; never pickle)."""
    return save_bytes({k: v.detach().to("cpu").contiguous().clone() for k, v in weights.items()})


def weights_from_bytes(data: bytes) -> StateDict:
    return dict(load_bytes(bytes(data)))


# ---------------------------------------------------------------------- sites
@dataclass
class _Site:
    """One relaxed site: its candidate ops (the parent's at ``parent``) and, per replica (a cell,
    or the one block), the node each option's output leaves from and the nodes it owns."""

    key: Any  # cell: edge index; block: the block's first node
    label: str
    options: list[str]
    parent: int
    ends: list[list[str]] = field(default_factory=list)  # [replica][option] -> node
    owned: list[list[tuple[str, ...]]] = field(default_factory=list)  # [replica][option] -> nodes
    mix: list[str] = field(default_factory=list)  # [replica] -> the node that sums the options
    sources: list[str] = field(default_factory=list)  # [replica] -> cell edge's source node
    # [replica][option] -> what calibrates an inexact candidate: (input nodes, merge, nodes
    # before its batch norm, the batch norm, the parent's node it should reproduce), or None
    calib: list[list[tuple | None]] = field(default_factory=list)
    exact: list[list[bool]] = field(default_factory=list)  # [replica][option]: reproduces parent

    @property
    def free(self) -> list[bool]:
        return [o in FREE_CELL_OPS or o in FREE_BLOCKS for o in self.options]


def _is_cell(space: SearchSpace) -> bool:
    return isinstance(space, CellSpace)


def relaxable_sites(genome: Genome, space: SearchSpace, ops: Sequence[str] | None = None) -> list:
    """The sites of ``genome`` this operator can relax in ``space``, in a fixed order: cell edge
    indices (into ``space.edges()``), or the first nodes of blocks. Empty where it does not
    apply (e.g. a grown ``cell`` genome that no longer decodes)."""
    if _is_cell(space):
        try:
            arch = space.decode(genome)
        except ValueError:
            return []
        allowed = _cell_ops(space, ops)
        live = _live_nodes(space, arch)
        return [k for k, op in enumerate(arch)
                if len(set(allowed) | {op}) >= 2 and space.edges()[k][1] in live]
    out = []
    io = genome.io_shapes()
    for node in genome.topological_order():
        block = _block(genome, node, io)
        if block is not None and len(_block_options(genome, block, space, ops, io)[0]) >= 2:
            out.append(node)
    return out


def _live_nodes(space: CellSpace, arch: Sequence[str]) -> set[int]:
    """The cell nodes whose value reaches the cell's output (an edge into any other node does
    not change the network, so it is no site)."""
    ops = dict(zip(space.edges(), arch))
    live = {space.nodes - 1}
    for j in range(space.nodes - 2, -1, -1):
        if any(ops[j, m] != "none" and m in live for m in range(j + 1, space.nodes)):
            live.add(j)
    return live


def _cell_ops(space: CellSpace, ops) -> list[str]:
    return [o for o in space.ops if ops is None or o in ops]


def _cell_layout(space: CellSpace,
                 genome: Genome) -> tuple[tuple[str, ...], list[tuple[list[str], dict]]]:
    """The cell architecture and, per cell, its nodes (node 0 = the cell's input) and each edge's
    chain of op nodes (empty for a skip). ``ValueError`` if the genome does not decode."""
    arch = space.decode(genome)  # the skeleton is checked node by node: the walk below is safe
    stages = 1 + sum(genome.op(n) == "conv" and genome.params(n)["stride"] == 2 for n in genome)

    def follow(s: str) -> tuple[list[str], str]:
        path = []
        while genome.op(s) != "identity":
            path.append(s)
            s = genome.successors(s)[0]
        return path, s

    x = genome.successors(genome.successors(genome.input_node)[0])[0]  # the stem's batch norm
    cells = []
    for stage in range(stages):
        if stage:  # a reduction block: act, conv /2, bn, act, conv, bn, then the merge
            y = next(s for s in genome.successors(x) if genome.op(s) == "act")
            for _ in range(6):
                y = genome.successors(y)[0]
            x = y
        for _ in range(space.cells_per_stage):
            ends = {follow(s)[1] for s in genome.successors(x)}
            nodes = [x] + sorted(ends, key=lambda n: len(genome.inputs(n)))
            index = {n: j for j, n in enumerate(nodes)}
            edges = {}
            for i, u in enumerate(nodes[:-1]):
                for s in genome.successors(u):
                    path, end = follow(s)
                    edges[i, index[end]] = path
            cells.append((nodes, edges))
            x = nodes[-1]
    return arch, cells


def _block(genome: Genome, head: str, io) -> list[str] | None:
    """The nodes of the block that starts at ``head`` (conv/sepconv [-> batchnorm] [-> act], or
    a pooling or identity alone), or None where ``head`` starts no relaxable block."""
    op = genome.op(head)
    if op not in BLOCK_KINDS:
        return None
    shape_in, shape_out = io[head]
    if len(shape_out) < 2 or shape_in[1:] != shape_out[1:]:
        return None  # flat, or it changes the resolution
    params = genome.params(head)
    if op in ("maxpool", "avgpool") and (params["kernel"] != 3 or params["padding"] != 1):
        return None
    nodes = [head]
    if op in ("conv", "sepconv"):
        for kind in ("batchnorm", "act"):
            succ = genome.successors(nodes[-1])
            if len(succ) == 1 and genome.op(succ[0]) == kind:
                nodes.append(succ[0])
    if not genome.successors(nodes[-1]):
        return None
    return nodes


def _block_name(genome: Genome, head: str) -> str:
    op = genome.op(head)
    return f"{op}{genome.params(head)['kernel']}" if op in ("conv", "sepconv") else op


def _block_options(genome: Genome, block: list[str], space: SearchSpace, ops, io):
    """(option names with the parent's first, the template of the conv-like candidates)."""
    head = block[0]
    c_in, c_out = io[head][0][0], io[block[-1]][1][0]
    size = min(io[head][0][1:])
    kinds = [k for k in getattr(space, "ops", BLOCK_KINDS) if k in BLOCK_KINDS
             and (ops is None or k in ops)]
    kernels = getattr(space, "kernels", (1, 3, 5))
    parent = _block_name(genome, head)
    names = [parent]
    for kind in kinds:
        if kind in ("conv", "sepconv"):
            names += [f"{kind}{k}" for k in kernels if k <= size]
        elif kind in ("maxpool", "avgpool"):
            if c_in == c_out and size >= 3:
                names.append(kind)
        elif c_in == c_out:
            names.append("identity")
    names = list(dict.fromkeys(names))  # the parent's name once, first
    op = genome.op(head)
    if op in ("conv", "sepconv"):
        bn = len(block) > 1 and genome.op(block[1]) == "batchnorm"
        act = genome.params(block[-1])["fn"] if genome.op(block[-1]) == "act" else None
        bias = genome.params(head)["bias"]
    else:
        bn = getattr(space, "batchnorm", True)
        act = getattr(space, "activations", ("relu",))[0]
        bias = not bn
    return names, {"channels": c_out, "bn": bn, "act": act, "bias": bias}


# ---------------------------------------------------------------------- weight transfer
def _resize(w: torch.Tensor, k: int) -> torch.Tensor:
    """A kernel's spatial dims zero-padded or cropped (centred) to ``k``."""
    for d in range(2, w.dim()):
        have = w.shape[d]
        if have < k:
            pad = [0, 0] * (w.dim() - d - 1) + [(k - have) // 2, (k - have) // 2]
            w = nn.functional.pad(w, pad)
        elif have > k:
            w = w.narrow(d, (have - k) // 2, k)
    return w.contiguous()


def _rank_one(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(depthwise, pointwise) whose composition is the best rank-one factorisation of each input
    channel's kernels (``replace_op``'s transfer); exact where those have rank one."""
    c_out, c_in = w.shape[:2]
    spatial = w.shape[2:]
    m = w.transpose(0, 1).reshape(c_in, c_out, -1)
    u, s, vh = torch.linalg.svd(m, full_matrices=False)
    root = s[:, 0].sqrt()
    pointwise = (u[:, :, 0] * root[:, None]).transpose(0, 1)
    depthwise = vh[:, 0, :] * root[:, None]
    return (depthwise.reshape(c_in, 1, *spatial).contiguous(),
            pointwise.reshape(c_out, c_in, *[1] * len(spatial)).contiguous())


def _delta(c: int, spatial: int, dtype, k: int = 1, uniform: bool = False) -> torch.Tensor:
    """A per-channel kernel: the identity (a centred delta), or a uniform average."""
    w = torch.zeros((c, c, *[k] * spatial), dtype=dtype)
    idx = torch.arange(c)
    if uniform:
        w[idx, idx] = 1.0 / k ** spatial
    else:
        w[(idx, idx, *[k // 2] * spatial)] = 1.0
    return w


def _identity_bn(c: int, dtype, scale: float | None = None) -> dict[str, torch.Tensor]:
    """Batch norm that passes its input through in eval mode (``scale`` 0: outputs zero)."""
    gamma = math.sqrt(1 + BN_EPS) if scale is None else scale
    return {"weight": torch.full((c,), gamma, dtype=dtype), "bias": torch.zeros(c, dtype=dtype),
            "running_mean": torch.zeros(c, dtype=dtype), "running_var": torch.ones(c, dtype=dtype),
            "num_batches_tracked": torch.zeros((), dtype=torch.long)}


def _sub(state: Mapping[str, torch.Tensor], node: str) -> dict[str, torch.Tensor]:
    prefix = node + "."
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def _put(state: dict, node: str, tensors: Mapping[str, torch.Tensor]) -> None:
    for k, v in tensors.items():
        state[f"{node}.{k}"] = v.detach().clone()


def _kernel(genome: Genome, node: str, state) -> torch.Tensor | None:
    """The dense kernel a conv or sepconv node computes (None for grouped or dilated ones)."""
    p = _sub(state, node)
    params = genome.params(node)
    if genome.op(node) == "conv":
        if params["groups"] != 1 or params["dilation"] != 1:
            return None
        return p["weight"]
    if params["dilation"] != 1:
        return None
    d, pw = p["depthwise.weight"], p["pointwise.weight"]  # (ci, 1, k..), (co, ci, 1..)
    spatial = d.dim() - 2
    return (pw.reshape(pw.shape[0], pw.shape[1], *[1] * spatial)
            * d.reshape(1, d.shape[0], *d.shape[2:]))


def _set_conv(state: dict, genome: Genome, node: str, w: torch.Tensor | None,
              bias: torch.Tensor | None, dtype: torch.dtype) -> None:
    """Write kernel ``w`` (resized to the node's kernel) into a conv or sepconv node, and
    ``bias`` (zero where None) where the node has one; nothing where ``w`` is None."""
    if w is None:
        return
    params = genome.params(node)
    w = _resize(w, params["kernel"]).to(dtype)
    if genome.op(node) == "conv":
        state[f"{node}.weight"] = w
        key = f"{node}.bias"
    else:
        state[f"{node}.depthwise.weight"], state[f"{node}.pointwise.weight"] = _rank_one(w)
        key = f"{node}.pointwise.bias"
    if params["bias"]:
        state[key] = bias.detach().clone().to(dtype) if bias is not None else \
            torch.zeros(params["channels"], dtype=dtype)


def _copies(genome: Genome, node: str, state: Mapping[str, torch.Tensor],
            w: torch.Tensor | None) -> bool:
    """Whether conv-like ``node`` computes exactly kernel ``w`` (none of it cropped away, and a
    separable conv only where each input channel's kernels have rank one)."""
    if w is None:
        return False
    k = genome.params(node)["kernel"]
    if k < w.shape[-1]:
        return False
    mine = _kernel(genome, node, state)
    target = _resize(w, k).to(mine.dtype)
    return bool(torch.allclose(mine, target, rtol=1e-5, atol=1e-7 * float(target.abs().max() + 1)))


def _split(name: str) -> tuple[str, int]:
    """``"sepconv3"`` -> ``("sepconv", 3)``."""
    kind = name.rstrip("0123456789")
    return kind, int(name[len(kind):])


# ---------------------------------------------------------------------- the relaxed network
class _Net(nn.Module):
    """Runs a relaxed genome node by node, scaling each mixed site's options by their weights.

    ``layers`` holds the compiled genome's modules (so its state dict is keyed like
    ``genome.build()``'s, under ``layers.``); ``weights_fn()`` gives each site's weights.
    Options in ``zero`` (site, option) have weight exactly zero: their nodes are not computed.
    Each value is released after its last use, as torch.fx's generated code does (keeping them
    all made every op several times slower, from fresh allocations)."""

    def __init__(self, genome: Genome, layers: nn.Module,
                 coef: Mapping[tuple[str, str], tuple[int, int]],
                 owner: Mapping[str, tuple[int, int]]):
        super().__init__()
        self.layers = layers
        modules = dict(layers.named_children())
        order = genome.topological_order()
        index = {n: i for i, n in enumerate(order)}
        last = {}
        for node in order:
            for u in genome.inputs(node):
                last[index[u]] = index[node]
        self.plan: list[tuple] = []
        for i, node in enumerate(order):
            op, ins = genome.op(node), genome.inputs(node)
            call = modules[node] if node in modules else OPS[op].function()
            coefs = [coef.get((u, node)) for u in ins]
            release = [index[u] for u in ins if last[index[u]] == i]
            self.plan.append((op == "input", call, [index[u] for u in ins],
                              genome.node(node).merge, coefs if any(coefs) else None,
                              owner.get(node), release))
        self.out = index[genome.output_node]
        self.index, self.names = index, order
        self.weights_fn: Callable[[], list[torch.Tensor]] = lambda: []
        self.zero: set[tuple[int, int]] = set()

    def forward(self, x: torch.Tensor, record: set[str] | None = None):
        """The network's output; with ``record``, a dict of those nodes' values instead."""
        w, zero = self.weights_fn(), self.zero
        keep = {self.index[n] for n in record} if record else set()
        kept: dict[str, torch.Tensor] = {}
        vals: list[Any] = [None] * len(self.plan)
        for i, (is_input, call, ins, merge, coefs, owner, release) in enumerate(self.plan):
            if is_input:
                vals[i] = x
            elif owner is None or owner not in zero:
                if coefs is None:
                    args = [vals[j] for j in ins]
                else:
                    args = [vals[j] if c is None else w[c[0]][c[1]] * vals[j]
                            for j, c in zip(ins, coefs) if c not in zero]
                if len(args) == 1:
                    y = args[0]
                elif merge == "add":
                    y = reduce(operator.add, args)
                else:
                    y = torch.cat(args, 1)
                vals[i] = call(y) if call is not None else y
            if i in keep:
                kept[self.names[i]] = vals[i]
            for j in release:
                vals[j] = None
        return kept if record else vals[self.out]


class Relaxation:
    """A parent with ``sites`` relaxed into mixed ops (see the module docstring).

    ``module(x)`` is the relaxed network (eval-mode batch norm); ``weights()`` the sites' mixture
    weights; ``discretise(choice)`` the child genome and weights for one option index per site.
    """

    def __init__(self, genome: Genome, weights: Mapping[str, torch.Tensor], sites: Sequence,
                 *, space: SearchSpace, ops: Sequence[str] | None = None, init_mass: float = 0.2,
                 update: str = "darts", seed: int = 0):
        genome.validate()
        self.parent, self.space, self.update = genome, space, update
        self.cell = _is_cell(space)
        self.dtype = next((v.dtype for v in weights.values() if v.is_floating_point()),
                          torch.float32)
        sites = list(sites)
        _check(1 <= len(sites) <= MAX_SITES and len(set(map(str, sites))) == len(sites), "sites",
               f"must be 1 to {MAX_SITES} distinct sites", sites)
        eligible = relaxable_sites(genome, space, ops)
        bad = [s for s in sites if s not in eligible]
        _check(not bad, "sites", f"has sites this genome cannot relax {bad}; relaxable: {eligible}",
               sites)
        g = genome.copy()
        state = {k: v.detach().clone() for k, v in weights.items()}
        self.sites: list[_Site] = []
        if self.cell:
            self._relax_cells(g, state, sites, ops)
        else:
            self._relax_blocks(g, state, sites, ops)
        g.validate()
        self.genome = g
        layers = g.build(seed=seed, dtype=self.dtype)
        fresh = layers.state_dict()
        missing = [k for k in state if k not in fresh]
        if missing:
            raise RuntimeError(f"weights for nodes the relaxed genome lacks: {missing[:5]}")
        fresh.update({k: v.to(fresh[k].dtype) for k, v in state.items()})
        layers.load_state_dict(fresh)
        coef, owner = {}, {}
        for s, site in enumerate(self.sites):
            for r, mix in enumerate(site.mix):
                for o, end in enumerate(site.ends[r]):
                    coef[end, mix] = (s, o)
                    owner.update((n, (s, o)) for n in site.owned[r][o])
        self.module = _Net(g, layers, coef, owner)
        self.module.eval()  # evaluation mode unless training (``train_mode``)
        self.alphas = []
        for site in self.sites:
            n = len(site.options)
            w = torch.full((n,), init_mass / (n - 1), dtype=torch.float64)
            w[site.parent] = 1 - init_mass
            a = w.log() if update == "darts" else w
            self.alphas.append(nn.Parameter(a.to(self.dtype)))
        self._override: dict[int, torch.Tensor] = {}
        self.module.weights_fn = self.weights

    @property
    def override(self) -> dict[int, torch.Tensor]:
        """Site weights that replace the learnt ones (projections, the handover)."""
        return self._override

    @override.setter
    def override(self, value: Mapping[int, torch.Tensor]) -> None:
        self._override = dict(value)
        self.module.zero = {(s, o) for s, w in self._override.items()
                            for o, v in enumerate(w.tolist()) if v == 0}

    # ------------------------------------------------------------------ building
    def _relax_cells(self, g: Genome, state: dict, sites, ops) -> None:
        arch, cells = _cell_layout(self.space, self.parent)
        io = self.parent.io_shapes()
        edges = self.space.edges()
        allowed = _cell_ops(self.space, ops)
        for k in sorted(sites):
            i, j = edges[k]
            old = arch[k]
            options = [old] + [o for o in allowed if o != old]
            site = _Site(k, f"edge {i}->{j}", options, 0)
            for nodes, chains in cells:
                src, dst = nodes[i], nodes[j]
                chain = chains[i, j]
                c = io[src][1][0]
                ends, owned = [chain[-1] if chain else src], [tuple(chain)]
                for op in options[1:]:
                    y, made = src, []
                    for kind, params in CELL_OPS[op]:
                        extra = {"channels": c} if kind in ("conv", "sepconv") else {}
                        y = g.add(kind, [y], **params, **extra)
                        made.append(y)
                    g.connect(y, dst)
                    ends.append(y)
                    owned.append(tuple(made))
                g.set_merge(dst, "add")
                site.ends.append(ends)
                site.owned.append(owned)
                site.mix.append(dst)
                site.sources.append(src)
            self.sites.append(site)
        self._init_cells(g, state, io)

    def _init_cells(self, g: Genome, state: dict, io) -> None:
        for site in self.sites:
            old = site.options[site.parent]
            for r in range(len(site.mix)):
                chain = site.owned[r][site.parent]
                src = site.sources[r]
                c = io[src][1][0]
                spatial = len(io[src][1]) - 1
                if old in ("nor_conv_1x1", "nor_conv_3x3", "sep_conv_3x3"):
                    w, bn = _kernel(g, chain[1], state), _sub(state, chain[2])
                elif old in ("skip_connect", "max_pool_3x3"):
                    w, bn = _delta(c, spatial, self.dtype), _identity_bn(c, self.dtype)
                elif old == "avg_pool_3x3":
                    w, bn = _delta(c, spatial, self.dtype, 3, True), _identity_bn(c, self.dtype)
                else:  # none: candidates start at zero
                    w, bn = None, _identity_bn(c, self.dtype, scale=0.0)
                exact, calib = [], []
                for o, op in enumerate(site.options):
                    if o == site.parent or not CELL_OPS[op] or CELL_OPS[op][0][0] != "act":
                        exact.append(o == site.parent)
                        calib.append(None)
                        continue
                    act, conv, norm = site.owned[r][o]
                    _set_conv(state, g, conv, w, None, self.dtype)
                    _put(state, norm, bn)
                    same = old == "none" or (old not in FREE_CELL_OPS
                                             and _copies(g, conv, state, w))
                    exact.append(same)
                    target = chain[-1] if chain else src
                    calib.append(None if same else ([src], None, (act, conv), norm, target))
                site.exact.append(exact)
                site.calib.append(calib)

    def _relax_blocks(self, g: Genome, state: dict, sites, ops) -> None:
        order = {n: i for i, n in enumerate(self.parent.topological_order())}
        io = self.parent.io_shapes()
        for head in sorted(sites, key=order.__getitem__):
            block = _block(self.parent, head, io)
            names, t = _block_options(self.parent, block, self.space, ops, io)
            site = _Site(head, f"block {head}", names, 0)
            inputs, merge = g.inputs(head), g.node(head).merge  # after earlier sites' rewiring
            ends, owned = [block[-1]], [tuple(block)]
            for name in names[1:]:
                if name in FREE_BLOCKS:
                    params = {"kernel": 3, "stride": 1, "padding": 1} if name != "identity" else {}
                    y = g.add(name, inputs, merge=merge, **params)
                    made = [y]
                else:
                    kind, k = _split(name)
                    y = g.add(kind, inputs, merge=merge, channels=t["channels"], kernel=k,
                              bias=t["bias"])
                    made = [y]
                    if t["bn"]:
                        made.append(g.add("batchnorm", [made[-1]]))
                    if t["act"] is not None:
                        made.append(g.add("act", [made[-1]], fn=t["act"]))
                ends.append(made[-1])
                owned.append(tuple(made))
            consumers = g.successors(block[-1])
            mix = g.add("identity", ends, merge="add")
            for v in consumers:
                g.replace_input(v, block[-1], mix)
            site.ends, site.owned, site.mix = [ends], [owned], [mix]
            self.sites.append(site)
        self._init_blocks(g, state, io)

    def _init_blocks(self, g: Genome, state: dict, io) -> None:
        for site in self.sites:
            block = site.owned[0][site.parent]
            head = block[0]
            op = self.parent.op(head)
            c_in = io[head][0][0]
            spatial = len(io[head][0]) - 1
            bias = None
            has_bn = len(block) > 1 and g.op(block[1]) == "batchnorm"
            if op in ("conv", "sepconv"):
                w = _kernel(self.parent, head, state)
                key = f"{head}.bias" if op == "conv" else f"{head}.pointwise.bias"
                bias = state.get(key)
                bn = _sub(state, block[1]) if has_bn else None
                target = block[1] if has_bn else block[-1]  # before the activation
            else:
                w = _delta(c_in, spatial, self.dtype, 3 if op == "avgpool" else 1, op == "avgpool")
                bn, target = None, head
            exact, calib = [], []
            for o, name in enumerate(site.options):
                if o == site.parent or name in FREE_BLOCKS:
                    exact.append(o == site.parent)
                    calib.append(None)
                    continue
                nodes = site.owned[0][o]
                _set_conv(state, g, nodes[0], w, bias, self.dtype)
                norm = nodes[1] if len(nodes) > 1 and g.op(nodes[1]) == "batchnorm" else None
                if norm is not None:
                    c = io[head][1][0] if op in ("conv", "sepconv") else c_in
                    _put(state, norm, bn if bn is not None else _identity_bn(c, self.dtype))
                same = op in ("conv", "sepconv") and _copies(g, nodes[0], state, w)
                exact.append(same)
                calib.append(None if same or norm is None else
                             (g.inputs(nodes[0]), g.node(nodes[0]).merge, (nodes[0],), norm,
                              target))
            site.exact.append(exact)
            site.calib.append(calib)

    # ------------------------------------------------------------------ calibration
    @torch.no_grad()
    def calibrate(self, x: torch.Tensor) -> int:
        """Fit the batch norm of every candidate that does not reproduce its parent's op (a
        conv copying a skip, a pooling, or a cropped or rank-one kernel) to the parent, on
        inputs ``x`` (the parent's function, eval mode): its statistics are those of the
        candidate's pre-normalisation output, and its scale and shift the per-channel least
        squares fit of the parent op's output. Returns the candidates fitted."""
        specs = [(s, r, o, spec) for s, site in enumerate(self.sites)
                 for r, row in enumerate(site.calib) for o, spec in enumerate(row) if spec]
        if not specs:
            return 0
        need = {n for *_, spec in specs for n in (*spec[0], spec[4])}
        modes = [m.training for m in self.module.modules()]
        saved = self.override
        self.module.eval()
        self.override = {s: _onehot(a.detach(), site.parent)
                         for s, (site, a) in enumerate(zip(self.sites, self.alphas))}
        try:
            values = self.module(x.to(self.dtype), record=need)
        finally:
            self.override = saved
            for m, mode in zip(self.module.modules(), modes):
                m.training = mode
        layers = dict(self.module.layers.named_children())
        for s, r, o, (inputs, merge, pre, norm, target) in specs:
            xs = [values[n] for n in inputs]
            y = xs[0] if len(xs) == 1 else (reduce(operator.add, xs) if merge == "add"
                                             else torch.cat(xs, 1))
            for n in pre:
                y = layers[n](y)
            t = values[target]
            dims = [0] + list(range(2, y.dim()))
            mu, var = y.mean(dims), y.var(dims, unbiased=False)
            shape = [1, -1] + [1] * (y.dim() - 2)
            z = (y - mu.reshape(shape)) / torch.sqrt(var.reshape(shape) + BN_EPS)
            t_mean = t.mean(dims)
            gamma = ((z * (t - t_mean.reshape(shape))).mean(dims)
                     / (z * z).mean(dims).clamp_min(1e-12))
            bn = layers[norm]
            bn.running_mean.copy_(mu)
            bn.running_var.copy_(var)
            bn.weight.copy_(gamma)
            bn.bias.copy_(t_mean - gamma * z.mean(dims))
        return len(specs)

    # ------------------------------------------------------------------ mixture weights
    def weights(self) -> list[torch.Tensor]:
        """Each site's mixture weights (an override, e.g. a projection, where one is set)."""
        out = []
        for s, a in enumerate(self.alphas):
            if s in self.override:
                out.append(self.override[s])
            elif self.update == "darts":
                out.append(torch.softmax(a, 0))
            else:
                out.append(a)
        return out

    def site_nodes(self) -> set[str]:
        """The nodes of the sites' ops, the parent's and the candidates'."""
        return {n for site in self.sites for owned in site.owned for opt in owned for n in opt}

    def site_params(self) -> list[nn.Parameter]:
        """The weights of the sites' ops, in a fixed order."""
        nodes = self.site_nodes()
        return [p for name, p in self.module.layers.named_parameters()
                if name.split(".", 1)[0] in nodes]

    def train_mode(self, scope: str = "sites") -> None:
        """Batch norm of the trained ops on batch statistics (it keeps their training stable),
        every other layer on its running statistics (so untouched layers stay the parent's)."""
        self.module.eval()
        nodes = self.site_nodes() if scope == "sites" else None
        for name, m in self.module.layers.named_children():
            if nodes is None or name in nodes:
                m.train()

    # ------------------------------------------------------------------ the child
    def child_genome(self, choice: Sequence[int]) -> Genome:
        g = self.genome.copy()
        for site, c in zip(self.sites, choice):
            for r, mix in enumerate(site.mix):
                for o, nodes in enumerate(site.owned[r]):
                    if o == c:
                        continue
                    if not nodes:  # an unchosen skip: the edge itself
                        g.disconnect(site.ends[r][o], mix)
                    for n in nodes:
                        g.remove(n)
                if self.cell:
                    if len(g.inputs(mix)) == 1:
                        g.set_merge(mix, None)
                else:
                    end = site.ends[r][c]
                    for v in g.successors(mix):
                        g.replace_input(v, mix, end)
                    g.remove(mix)
        return g.validate()

    def discretise(self, choice: Sequence[int]) -> tuple[Genome, StateDict]:
        child = self.child_genome(choice)
        own = self.module.layers.state_dict()
        keys = child.build(seed=0, dtype=self.dtype).state_dict().keys()
        return child, {k: own[k].detach().to("cpu").clone() for k in keys}

    def arch(self, choice: Sequence[int]) -> tuple[str, ...] | None:
        """The child's cell architecture (cell mode), without building it."""
        if not self.cell:
            return None
        arch = list(self.space.decode(self.parent))
        for site, c in zip(self.sites, choice):
            arch[site.key] = site.options[c]
        return tuple(arch)


# ---------------------------------------------------------------------- the relaxation
def relax(genome: Genome, weights: Mapping[str, torch.Tensor], task: Task, sites: Sequence, *,
          space: SearchSpace, ops: Sequence[str] | None = None, epochs: float = 1.75,
          handover: float = 0.5, update: str = "darts", lr: float = 0.01,
          arch_lr: float | None = None, guard: str = "pt", max_free: int = 2,
          init_mass: float = 0.2, scope: str = "sites", training: TrainConfig | None = None,
          seed: int = 0, device: str | torch.device = "cpu",
          avoid: Iterable[str] = ()) -> tuple[Genome, StateDict, dict[str, Any]]:
    """Relax ``sites`` of a trained parent, train, discretise (see the module docstring).

    Returns (child genome, its weights keyed like ``child.build().state_dict()``, info): info
    holds per site the options, the chosen op, the mixture weights when it was chosen and the
    scores (None: not projected), the parent's and the child's validation accuracy (the whole
    split), the relaxed network's just before the choice (on the ``PT_SAMPLES`` it is scored
    on), the steps, the estimated cost in parent epochs (``epochs``), and the seconds, also by
    phase.
    ``Diverged`` if the loss turns NaN or infinite; ``TimeoutError`` past
    ``training.timeout_s``; ``ValueError`` for a wrong call (options, sites).
    """
    started = time.perf_counter()
    _check_options(epochs=epochs, handover=handover, update=update,
                   lr=lr, arch_lr=arch_lr, guard=guard, max_free=max_free, init_mass=init_mass,
                   scope=scope, ops=ops)
    training = training or TrainConfig()
    arch_lr = ARCH_LR[update] if arch_lr is None else arch_lr
    device = torch.device(device)
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(training.threads)
    try:
        rel = Relaxation(genome, weights, sites, space=space, ops=ops, init_mass=init_mass,
                         update=update, seed=seed)
        rel.calibrate(task.train.x[:CALIBRATION_SAMPLES])
        return _run(rel, task, training, epochs=epochs, handover=handover, lr=lr,
                    arch_lr=arch_lr, guard=guard, max_free=max_free, scope=scope, seed=seed,
                    device=device, avoid=set(avoid), started=started)
    finally:
        torch.set_num_threads(threads)


def _batches(n: int, size: int, seed: int, tag: int):
    """Endless minibatch indices, reshuffled each pass from (seed, tag, pass)."""
    for epoch in itertools.count():
        order = torch.randperm(n, generator=torch.Generator().manual_seed(
            int(np.random.default_rng([seed, tag, epoch]).integers(2**62))))
        for start in range(0, n - (n % size if n > size else 0), size):
            yield order[start:start + size]


def _cost(genome: Genome) -> float:
    """A rough cost of one pass: nodes, the heavy ones (convolutions, pooling) thrice."""
    return float(sum(3 if genome.op(n) in HEAVY_OPS else 1 for n in genome))


def _plan(rel: Relaxation, n_train: int, n_val: int, size: int, epochs: float, handover: float,
          guard: str) -> dict[str, Any]:
    """How many steps of each phase fit ``epochs`` parent epochs of work.

    Costs are counted in parent training steps (a forward and backward pass of the parent on a
    batch, about three forward passes); the relaxed network costs ``rho`` times the parent
    (``_cost``), an architecture step as much as a weight step. Deterministic: from the
    networks' sizes, never from a clock."""
    per_epoch = math.ceil(n_train / size)
    parent_epoch = per_epoch + n_val / size / 3  # training, then one validation pass
    rho = _cost(rel.genome) / max(_cost(rel.parent), 1.0)
    scored = sum(min(len(site.options), PT_TOP + 1) for site in rel.sites) + 1
    pt = scored * min(PT_SAMPLES, n_val) / size * rho / 3 if guard == "pt" else 0.0
    evals = 2 * n_val / size / 3  # the parent's and the child's validation accuracy
    per_step = (1 - handover) * 2 * rho + handover * (rho + 1) / 2  # search; ramp and plateau
    steps = max(2, int((epochs * parent_epoch - pt - evals) / per_step))
    hand = min(steps - 1, round(handover * steps))
    return {"search": steps - hand, "ramp": math.ceil(hand / 2), "plateau": hand // 2,
            "rho": rho, "estimate": (steps * per_step + pt + evals) / parent_epoch}


def _run(rel: Relaxation, task: Task, training: TrainConfig, *, epochs, handover, lr, arch_lr,
         guard, max_free, scope, seed, device, avoid, started) -> tuple[Genome, StateDict, dict]:
    net = rel.module.to(device)
    for a in rel.alphas:
        a.data = a.data.to(device)
    loss_fn = nn.CrossEntropyLoss()
    trained = rel.site_params() if scope == "sites" else list(net.layers.parameters())
    for p in net.parameters():
        p.requires_grad_(False)
    rel.train_mode(scope)
    w_opt = torch.optim.SGD(trained, lr=lr, momentum=training.momentum,
                            nesterov=training.momentum > 0,
                            weight_decay=training.weight_decay) if trained else None
    a_opt = torch.optim.Adam(rel.alphas, lr=arch_lr, betas=(0.5, 0.999), weight_decay=1e-3) \
        if rel.update == "darts" else None
    train_x, train_y = task.train.x, task.train.y
    val_x, val_y = task.val.x, task.val.y
    size = min(training.batch_size, len(train_y))
    plan = _plan(rel, len(train_y), len(val_y), size, epochs, handover, guard)
    search, ramp = plan["search"], plan["ramp"]
    steps = search + ramp + plan["plateau"]
    tr = _batches(len(train_y), size, seed, 0)
    va = _batches(len(val_y), min(size, len(val_y)), seed, 1)
    linear = [torch.zeros(len(site.options), dtype=torch.float64) for site in rel.sites]

    def batch(x, y, idx):
        return x[idx].to(device=device, dtype=rel.dtype), y[idx].to(device)

    parent_choice = [site.parent for site in rel.sites]
    parent_acc = _evaluate(rel, val_x, val_y, device, project=parent_choice)[1]
    clock = {"start": time.perf_counter()}
    choice, scores, relaxed_acc, final_w = None, None, None, None
    for step in range(steps):
        if training.timeout_s is not None and time.perf_counter() - started > training.timeout_s:
            raise TimeoutError(f"time-out: the relaxation exceeded {training.timeout_s} s "
                               f"(step {step + 1} of {steps})")
        if step < search:  # one first-order architecture step on a validation batch
            _arch_step(rel, net, loss_fn, *batch(val_x, val_y, next(va)), a_opt, arch_lr,
                       linear, step)
        if step == search:
            clock["search"] = time.perf_counter()
            choice, scores, relaxed_acc, final_w = _choose(rel, val_x, val_y, device, guard,
                                                          max_free, avoid, linear)
            clock["select"] = time.perf_counter()
            start_w = [w.detach().clone() for w in rel.weights()]
        if step >= search:  # hand the sites over to the chosen ops, then train them alone
            tau = min(1.0, (step - search + 1) / ramp)
            rel.override = {s: (1 - tau) * start_w[s] + tau * _onehot(start_w[s], c)
                            for s, c in enumerate(choice)}
        if w_opt is not None:
            for group in w_opt.param_groups:
                group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
            for p in trained:
                p.requires_grad_(True)
            x, y = batch(train_x, train_y, next(tr))
            loss = loss_fn(net(x), y)
            _finite(loss, "weight", step)
            if loss.requires_grad:  # else the chosen ops have no weights to train
                w_opt.zero_grad(set_to_none=True)
                loss.backward()
                w_opt.step()
            for p in trained:
                p.requires_grad_(False)
    if choice is None:  # no handover steps: choose after the last step
        clock["search"] = time.perf_counter()
        choice, scores, relaxed_acc, final_w = _choose(rel, val_x, val_y, device, guard, max_free,
                                                      avoid, linear)
        clock["select"] = time.perf_counter()
    clock["handover"] = time.perf_counter()
    if not all(torch.isfinite(t).all() for t in net.state_dict().values() if t.is_floating_point()):
        raise Diverged("weights became NaN or infinite during the relaxation")
    child_loss, child_acc = _evaluate(rel, val_x, val_y, device, project=choice)
    rel.override = {}
    rel.module.eval()
    child, state = rel.discretise(choice)
    info = {
        "mode": "cell" if rel.cell else "block",
        "sites": [{"site": site.key, "label": site.label, "options": site.options,
                   "parent": site.options[site.parent], "chosen": site.options[c],
                   "weights": [round(float(v), 6) for v in w],
                   "scores": [round(float(v), 6) if math.isfinite(v) else None for v in sc]}
                  for site, c, w, sc in zip(rel.sites, choice, final_w, scores)],
        "update": rel.update, "guard": guard, "scope": scope, "steps": steps,
        "search_steps": search, "handover_steps": steps - search,
        "epochs": plan["estimate"], "cost_ratio": plan["rho"],
        "parent_val_acc": parent_acc, "relaxed_val_acc": relaxed_acc, "child_val_acc": child_acc,
        "child_val_loss": child_loss, "seconds": time.perf_counter() - started,
        "seconds_by_phase": {
            "setup": clock["start"] - started, "search": clock["search"] - clock["start"],
            "select": clock["select"] - clock["search"],
            "handover": clock["handover"] - clock["select"],
            "end": time.perf_counter() - clock["handover"]},
    }
    if rel.cell:
        info["arch"] = list(rel.arch(choice))
    return child, state, info


def _arch_step(rel: Relaxation, net: nn.Module, loss_fn, x, y, a_opt, arch_lr: float,
               linear: list[torch.Tensor], step: int) -> None:
    """One first-order architecture step; also accumulates each option's first-order projection
    score (how fast the loss falls as a site moves toward that option alone)."""
    if rel.update == "darts":
        ws = [torch.softmax(a.detach(), 0).requires_grad_(True) for a in rel.alphas]
    else:
        ws = [a.detach().clone().requires_grad_(True) for a in rel.alphas]
    rel.override = dict(enumerate(ws))
    try:
        loss = loss_fn(net(x), y)
        _finite(loss, "architecture", step)
        grads = torch.autograd.grad(loss, ws, allow_unused=True)
    finally:
        rel.override = {}
    with torch.no_grad():
        for s, (a, w, g) in enumerate(zip(rel.alphas, ws, grads)):
            g = torch.zeros_like(w) if g is None else g
            w = w.detach()
            centred = g - (w * g).sum()
            linear[s] += -centred.to("cpu", torch.float64)
            if a_opt is not None:  # DARTS: Adam on the logits (d softmax: w * (g - <w, g>))
                a.grad = w * centred
            else:  # GAEA: exponentiated gradient, renormalised onto the simplex
                new = (a * torch.exp(-arch_lr * (g - g.min()))).clamp_min(1e-30)
                a.copy_(new / new.sum())
        if a_opt is not None:
            a_opt.step()
            a_opt.zero_grad(set_to_none=True)


def _finite(loss: torch.Tensor, what: str, step: int) -> None:
    if not torch.isfinite(loss):
        raise Diverged(f"the loss became {loss.item()} at step {step + 1} ({what} update)")


def _onehot(like: torch.Tensor, c: int) -> torch.Tensor:
    w = torch.zeros_like(like)
    w[c] = 1
    return w


@torch.no_grad()
def _evaluate(rel: Relaxation, x_all, y_all, device, project=None,
              batch_size: int = 128) -> tuple[float, float]:
    """(validation loss, accuracy) of the relaxed network; ``project``: each site's option
    alone, where not None."""
    saved = rel.override
    if project is not None:
        rel.override = {**saved, **{s: _onehot(rel.alphas[s].detach(), c)
                                    for s, c in enumerate(project) if c is not None}}
    total, correct = 0.0, 0
    modes = [m.training for m in rel.module.modules()]
    rel.module.eval()
    try:
        for start in range(0, len(y_all), batch_size):
            x = x_all[start:start + batch_size].to(device=device, dtype=rel.dtype)
            y = y_all[start:start + batch_size].to(device)
            out = rel.module(x)
            total += float(nn.functional.cross_entropy(out, y, reduction="sum"))
            correct += int((out.argmax(1) == y).sum())
    finally:
        rel.override = saved
        for m, mode in zip(rel.module.modules(), modes):
            m.training = mode
    return total / len(y_all), correct / len(y_all)


def _choose(rel: Relaxation, val_x, val_y, device, guard: str, max_free: int, avoid: set[str],
            linear: list[torch.Tensor]):
    """(one option per site, scores per site, the mixture's val accuracy, final weights).

    ``pt``: each site's parent op and its ``PT_TOP`` candidates of best first-order score
    (``linear``) are projected onto, on the first ``PT_SAMPLES`` validation samples; the others
    are not chosen. ``cap``: the log mixture weights."""
    val_x, val_y = val_x[:PT_SAMPLES], val_y[:PT_SAMPLES]
    base_loss, base_acc = _evaluate(rel, val_x, val_y, device)
    weights = [w.detach().to("cpu", torch.float64) for w in rel.weights()]
    scores = []
    for s, site in enumerate(rel.sites):
        if guard == "pt":
            others = sorted((c for c in range(len(site.options)) if c != site.parent),
                            key=lambda c: (-float(linear[s][c]), c))
            row = [-math.inf] * len(site.options)
            for c in [site.parent] + others[:PT_TOP]:
                project = [None] * len(rel.sites)
                project[s] = c
                loss = _evaluate(rel, val_x, val_y, device, project=project)[0]
                row[c] = base_loss - loss if math.isfinite(loss) else -math.inf
        else:
            row = [math.log(max(float(w), 1e-300)) for w in weights[s]]
            row = [-math.inf if site.options[c] == "none" and c != site.parent else v
                   for c, v in enumerate(row)]
        scores.append(row)
    combos = sorted(itertools.product(*[range(len(site.options)) for site in rel.sites]),
                    key=lambda combo: (-sum(scores[s][c] for s, c in enumerate(combo)), combo))
    parent = tuple(site.parent for site in rel.sites)
    parent_arch = rel.arch(parent)
    for combo in combos:
        if combo == parent or not all(math.isfinite(scores[s][c]) for s, c in enumerate(combo)):
            continue
        if not _allowed(rel, combo, parent_arch, guard, max_free):
            continue
        if avoid and rel.child_genome(combo).canonical_hash() in avoid:
            continue
        return list(combo), scores, base_acc, weights
    raise NotApplicable("gradient: every architecture over these sites is the parent's, was seen "
                        "before, or is ruled out by the guard")


def _allowed(rel: Relaxation, combo, parent_arch, guard: str, max_free: int) -> bool:
    if rel.cell:
        arch = rel.arch(combo)
        if any(o not in EMPTY_CELL_OPS for o in rel.space.ops) and \
                all(o in EMPTY_CELL_OPS for o in arch):
            return False  # a cell of skips and nones: DARTS' collapse, never returned
        if guard == "cap":
            free = sum(o in FREE_CELL_OPS for o in arch)
            return free <= max(max_free, sum(o in FREE_CELL_OPS for o in parent_arch))
        return True
    if guard == "cap":
        new_free = sum(site.free[c] and c != site.parent for site, c in zip(rel.sites, combo))
        return new_free <= max_free
    return True


# ---------------------------------------------------------------------- the dispatched job
def _load_task(spec: Mapping[str, Any]) -> Task:
    """A task from a config's task section: ``{"dataset": name, "seed": s, "options": {...}}``
    or with the options inline (``{"dataset": "digits", "seed": 0}``)."""
    spec = dict(spec)
    name = spec.pop("dataset")
    options = dict(spec.pop("options", None) or {})
    options.update(spec)
    return tasks.get(name, **options)


_TASKS: dict[str, Task] = {}


def _task(spec: Mapping[str, Any]) -> Task:
    """Each worker loads a task once while it stays warm (the last four kept)."""
    key = json.dumps(spec, sort_keys=True)
    if key not in _TASKS:
        if len(_TASKS) >= 4:
            _TASKS.pop(next(iter(_TASKS)))
        _TASKS[key] = _load_task(spec)
    return _TASKS[key]


def _training(spec: Mapping[str, Any] | None) -> TrainConfig:
    known = {f.name for f in fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in dict(spec or {}).items() if k in known})


def make_job(*, genome: Genome, weights: Mapping[str, torch.Tensor], space: SearchSpace,
             task: Mapping[str, Any], training: Mapping[str, Any] | None, sites: Sequence,
             options: Mapping[str, Any], seed: int, avoid: Iterable[str] = ()) -> dict[str, Any]:
    """One relaxation as plain data (JSON values and safetensors bytes)."""
    return {
        "genome": genome.to_json(), "genome_hash": genome.canonical_hash(),
        "weights": weights_to_bytes(weights),
        "space": {"name": space.name, "options": _plain(space.options())},
        "task": _plain(dict(task)), "training": _plain(dict(training or {})),
        "sites": list(sites), "options": _plain(dict(options)), "seed": int(seed),
        "avoid": sorted(avoid),
    }


def _plain(value: Any) -> Any:
    """Tuples as lists, recursively (what JSON would make of them)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


RELAX_OPTIONS = ("epochs", "handover", "update", "lr", "arch_lr", "guard", "max_free",
                 "init_mass", "scope", "ops")


def relax_job(job: Mapping[str, Any], device: str = "cpu") -> dict[str, Any]:
    """Run one relaxation from plain data; never raises. A success is ``{"genome": JSON,
    "weights": safetensors bytes, "info": {...}, "seconds": s}``; a failure (divergence, a
    time-out, any exception) ``{"failed": reason, "seconds": s}``."""
    started = time.perf_counter()
    try:
        if device == "auto" or (str(device).startswith("cuda") and not torch.cuda.is_available()):
            device = "cuda" if torch.cuda.is_available() else "cpu"
        space_spec = job["space"]
        space = get_space(space_spec["name"], **space_spec["options"])
        genome = Genome.from_json(job["genome"])
        weights = weights_from_bytes(job["weights"])
        task = _task(job["task"])
        training = _training(job.get("training"))
        options = {k: v for k, v in dict(job.get("options") or {}).items() if k in RELAX_OPTIONS}
        sites = [s if isinstance(s, str) else int(s) for s in job["sites"]]
        child, state, info = relax(genome, weights, task, sites, space=space, training=training,
                                   seed=int(job.get("seed", 0)), device=device,
                                   avoid=job.get("avoid") or (), **options)
        if not space.contains(child):
            raise RuntimeError(f"the child left the {space.name} space: {space.why_not(child)[:2]}")
        return {"genome": child.to_json(), "weights": weights_to_bytes(state),
                "info": _plain(info), "seconds": time.perf_counter() - started}
    except Diverged as exc:
        return {"failed": f"diverged: {exc}", "seconds": time.perf_counter() - started}
    except Exception as exc:  # noqa: BLE001 - a failing relaxation fails its candidate only
        if isinstance(exc, torch.cuda.OutOfMemoryError):
            torch.cuda.empty_cache()
            return {"failed": "out of memory", "seconds": time.perf_counter() - started}
        return {"failed": f"{type(exc).__name__}: {str(exc)[:300]}",
                "seconds": time.perf_counter() - started}


def site_nodes(genome: Genome, space: SearchSpace, sites: Sequence) -> tuple[str, ...]:
    """The parent's node ids at ``sites``: each edge's op nodes in every cell (the cell node it
    feeds, for a skip), or each block's nodes."""
    out: list[str] = []
    if _is_cell(space):
        _, cells = _cell_layout(space, genome)
        edges = space.edges()
        for k in sites:
            i, j = edges[int(k)]
            for nodes, chains in cells:
                out += chains[i, j] or [nodes[j]]
        return tuple(out)
    io = genome.io_shapes()
    for head in sites:
        out += _block(genome, str(head), io) or [str(head)]
    return tuple(out)


# ---------------------------------------------------------------------- the proposer
class Gradient(Proposer):
    """A local DARTS step around each trained parent, run as a dispatched job (see the module
    docstring).

    Options: ``sites`` (how many sites to relax, 1 to 3, drawn at random among those that can
    be), ``epochs`` (the relaxation's budget in epochs of its parent, estimated), ``handover``
    (the share of the steps after the choice), ``update`` (``darts`` or ``gaea``), ``lr`` (the
    sites' SGD rate), ``arch_lr`` (the architecture step; default 0.05 for darts, 0.5 for gaea),
    ``guard`` (``pt``: choose by perturbation; ``cap``: by weight, at most ``max_free``
    parameter-free ops per cell), ``init_mass`` (the candidates' share of each mixture at the
    start), ``scope`` (``sites``: train only the sites' ops; ``all``: every weight), ``ops``
    (candidate ops: cell op names, or block kinds; default the space's).

    Children are ``partial``: every weight is trained, but a child never computes its parent's
    function (at least one site changes its op), so it is fine-tuned at the full rate.

    ``propose`` needs three things from the engine that ``Request`` gains with issue 14:
    ``request.dispatch(fn, jobs) -> list[dict]`` (runs plain-data jobs on the run's devices
    with a lease, ``timeout_s`` and failure isolation, journals their seconds, and returns one
    result per job in order, a failed one as ``{"failed": reason}``), ``request.task`` (the
    config's task section) and ``request.training`` (``TrainConfig`` fields).
    """

    name: ClassVar[str] = "gradient"
    trains: ClassVar[bool] = True

    def __init__(self, *, sites: int = 2, epochs: float = 1.75, handover: float = 0.5,
                 update: str = "darts", lr: float = 0.01, arch_lr: float | None = None,
                 guard: str = "pt", max_free: int = 2, init_mass: float = 0.2,
                 scope: str = "sites", ops: Sequence[str] | None = None):
        checked = _check_options(sites=sites, epochs=epochs, handover=handover, update=update,
                                 lr=lr, arch_lr=arch_lr, guard=guard, max_free=max_free,
                                 init_mass=init_mass, scope=scope, ops=ops)
        self.sites = checked.pop("sites")
        self.options = checked
        # relaxations run, those that failed, and those of them that diverged
        self.counts = {"jobs": 0, "failed": 0, "diverged": 0}
        self.last_failure = ""

    def state(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        return {"counts": dict(self.counts), "last_failure": self.last_failure}, {}

    def load_state(self, data: dict[str, Any], tensors: Mapping[str, torch.Tensor]) -> None:
        self.counts.update(data.get("counts", {}))
        self.last_failure = data.get("last_failure", "")

    def applies(self, space: SearchSpace) -> bool:
        """Cell spaces (edges) and spaces of blocks (multibranch, chain)."""
        return _is_cell(space) or space.editable

    def propose(self, request: Request) -> list[Child]:
        dispatch = getattr(request, "dispatch", None)
        if dispatch is None:
            raise NotApplicable("gradient: the relaxation runs as a dispatched job, and this "
                                "request has no dispatch hook (request.dispatch)")
        if not request.weights:
            raise NotApplicable("gradient: this run trains nothing (e.g. a tabular nb201 run), "
                                "and a relaxation needs trained parents")
        task = getattr(request, "task", None)
        if not task:
            raise NotApplicable("gradient: the request names no task (request.task)")
        training = dict(getattr(request, "training", None) or {})
        space = request.space
        if not self.applies(space):
            raise NotApplicable(f"gradient: the {space.name} space has neither cell edges nor "
                                f"blocks to relax")
        avoid = sorted(request.seen) if len(request.seen) <= MAX_AVOID else []
        jobs, parents = [], []
        for k in range(request.n):
            rng = np.random.default_rng(request.rng.integers(2**63))
            if not request.parents[k]:
                continue
            member = request.parents[k][0]
            weights = member.weights()
            if weights is None:
                continue
            eligible = relaxable_sites(member.genome, space, self.options["ops"])
            if not eligible:
                continue
            n = min(self.sites, len(eligible))
            sites = [eligible[int(i)] for i in sorted(rng.choice(len(eligible), n, replace=False))]
            jobs.append(make_job(genome=member.genome, weights=weights, space=space, task=task,
                                 training=training, sites=sites, options=self.options,
                                 seed=int(rng.integers(2**31)), avoid=avoid))
            parents.append(member)
        if not jobs:
            return []
        results = dispatch(relax_job, jobs)
        children = []
        self.counts["jobs"] += len(jobs)
        for member, job, result in zip(parents, jobs, results):
            if not isinstance(result, Mapping) or "failed" in result or "genome" not in result:
                self.counts["failed"] += 1  # a failed candidate: its slot goes to another
                self.last_failure = str(result.get("failed", "no result") if isinstance(
                    result, Mapping) else "no result")[:300]
                self.counts["diverged"] += self.last_failure.startswith("diverged")
                continue
            genome = Genome.from_json(result["genome"])
            if not space.contains(genome):
                continue
            info = result.get("info", {})
            changed = [s for s in info.get("sites", []) if s["chosen"] != s["parent"]]
            detail = "; ".join(f"{s['label']}: {s['parent']} -> {s['chosen']}" for s in changed)
            where = site_nodes(member.genome, space, job["sites"])
            children.append(Child(genome, weights_from_bytes(result["weights"]),
                                  Provenance(self.name, (member.genome.canonical_hash(),), where,
                                             f"relaxed {len(job['sites'])} site(s) "
                                             f"({info.get('update')}, {info.get('guard')}): "
                                             f"{detail}", False),
                                  PARTIAL, cost={"seconds": round(float(result.get("seconds", 0.0)), 3),
                                                 "device": result.get("device")}))
        return children

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in {"sites": self.sites, **self.options}.items())
        return f"Gradient({args})"
