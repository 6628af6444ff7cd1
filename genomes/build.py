"""Compile a genome into a ``torch.fx.GraphModule`` whose submodules are named by node id.

Like torch.fx, the description (the genome) stays apart from the module generated from it. Every
node's parameters are drawn from a generator seeded by (seed, node id), so a node's initial
weights do not depend on the rest of the graph and the global torch RNG is never touched.
"""

from __future__ import annotations

import hashlib
import math
import operator
from functools import reduce
from typing import TYPE_CHECKING, Any

import torch
from torch import fx, nn

from .errors import GenomeError
from .ops import OPS

if TYPE_CHECKING:
    from .genome import Genome

__all__ = ["build", "node_seed", "reset_node"]


def node_seed(seed: int, node: str) -> int:
    """A 63-bit seed for one node, stable across processes and Python versions."""
    digest = hashlib.sha256(f"{seed}/{node}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def build(genome: Genome, *, seed: int = 0, device: Any = None, dtype: Any = None) -> fx.GraphModule:
    """Compile ``genome`` (validated first) into a fresh module with deterministic weights."""
    io = genome.io_shapes()
    clash = [node for node in genome.topological_order() if hasattr(fx.GraphModule, node)]
    if clash:  # a member this torch added since ``checks._MEMBERS`` was listed
        raise GenomeError(f"node id {clash[0]!r} is reserved (a member of torch.fx.GraphModule "
                          f"in torch {torch.__version__})", node=clash[0])
    root, graph, env = nn.Module(), fx.Graph(), {}
    with torch.random.fork_rng(devices=[]):  # module constructors draw from the global RNG
        for node in genome.topological_order():
            op, params = genome.op(node), genome.params(node)
            if op == "input":
                env[node] = graph.placeholder("x")
                continue
            args = [env[u] for u in genome.inputs(node)]
            if len(args) == 1:
                x = args[0]
            elif genome.node(node).merge == "add":
                x = reduce(lambda a, b: graph.call_function(operator.add, (a, b)), args)
            else:
                x = graph.call_function(torch.cat, (args, 1))
            spec = OPS[op]
            module = spec.module(io[node][0], params)
            if module is not None:
                root.add_module(node, module)
                x = graph.call_module(node, (x,))
            elif (fn := spec.function()) is not None:
                x = graph.call_function(fn, (x,))
            env[node] = x
    graph.output(env[genome.output_node])
    net = fx.GraphModule(root, graph, class_name="GenomeNet")
    for node, module in net.named_children():
        reset_node(module, torch.Generator().manual_seed(node_seed(seed, node)))
    return net.to(device=device, dtype=dtype)


@torch.no_grad()
def reset_node(module: nn.Module, generator: torch.Generator) -> None:
    """Initialise one node's module as PyTorch's defaults do, but from ``generator``."""
    for m in module.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=generator)
            if m.bias is not None:
                fan_in = m.weight[0].numel()
                bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
                nn.init.uniform_(m.bias, -bound, bound, generator=generator)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_parameters()
