"""Small checks shared by the genome, its JSON reader, its validation and the spaces: the JSON
format number, the rules for node ids, input shapes and input lists, and memoised parameter
normalisation. It imports no other genome module, so every one of them may import it.
"""

from __future__ import annotations

import functools
import keyword
import re
from typing import Any

from .ops import normalize_params

__all__ = ["FORMAT", "id_problem", "input_shape_problem", "inputs_problem", "normalize",
           "normalized", "param_problems"]

FORMAT = 1
_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
# Ids become attribute names on the compiled module, so they must not shadow its members.
_RESERVED = frozenset({"self", "training", "meta", "shape_env"})  # + instance attributes
# The members of ``torch.fx.GraphModule`` that are valid ids, listed here so that reading a genome
# needs no torch (a read-only command starts in a second, not four). A test checks the list
# against the installed torch, and ``build`` refuses an id that a newer torch has added.
_MEMBERS = frozenset("""
    T_destination add_module add_submodule apply bfloat16 buffers call_super_init children code
    compile cpu cuda delete_all_unused_submodules delete_submodule double dump_patches eval
    extra_repr float forward get_buffer get_extra_state get_parameter get_submodule graph half
    ipu load_state_dict modules mtia named_buffers named_children named_modules named_parameters
    parameters print_readable recompile register_backward_hook register_buffer
    register_forward_hook register_forward_pre_hook register_full_backward_hook
    register_full_backward_pre_hook register_load_state_dict_post_hook
    register_load_state_dict_pre_hook register_module register_parameter
    register_state_dict_post_hook register_state_dict_pre_hook requires_grad_ set_extra_state
    set_submodule share_memory state_dict to to_empty to_folder train type xpu zero_grad
""".split())


@functools.lru_cache(maxsize=65536)
def id_problem(node: Any) -> str | None:
    """Why ``node`` cannot be a node id, or None (ids become attributes of the built module)."""
    if not isinstance(node, str) or not _ID.match(node):
        return "node ids must start with a letter and hold only letters, digits and '_'"
    if keyword.iskeyword(node) or node in _RESERVED or node in _MEMBERS:
        return f"node id {node!r} is reserved"
    return None


def input_shape_problem(shape: Any) -> str | None:
    """Why ``shape`` is no input shape (``(C, L)`` or ``(C, H, W)`` of positive ints), or None."""
    ok = isinstance(shape, (tuple, list)) and len(shape) in (2, 3) and all(
        type(s) is int and s > 0 for s in shape)
    return None if ok else f"must be (C, L) or (C, H, W) of positive ints, got {shape!r}"


def inputs_problem(inputs: Any, known) -> str | None:
    """Why ``inputs`` cannot feed a node, given the ids in ``known``; None if they can."""
    if isinstance(inputs, str) or not isinstance(inputs, (list, tuple)):
        hint = f"; did you mean [{inputs!r}]?" if isinstance(inputs, str) else ""
        return f"inputs must be a list of node ids, got {inputs!r}{hint}"
    if not all(isinstance(u, str) for u in inputs):
        return f"inputs must be a list of node ids, got {inputs!r}"
    if missing := [u for u in inputs if u not in known]:
        return f"inputs {missing} are not nodes of this genome"
    if len(set(inputs)) != len(inputs):
        return f"lists an input twice: {list(inputs)}"
    return None


def normalize(op: str, params: dict) -> tuple[dict, list[str]]:
    """``ops.normalize_params`` (params with defaults filled in, problems) memoised for hashable
    params; always a fresh dict and list."""
    key = _key(op, params)
    if key is None:
        return normalize_params(op, params)
    normal, problems = _normalized_cached(key)
    return dict(normal), list(problems)


def normalized(op: str, params: dict) -> dict:
    """The parameters of ``normalize``, without the problems."""
    return normalize(op, params)[0]


def param_problems(op: str, params: dict) -> list[str]:
    """The problems of ``normalize``, without the parameters."""
    key = _key(op, params)
    if key is None:
        return normalize_params(op, params)[1]
    return list(_normalized_cached(key)[1])


def _key(op: Any, params: dict) -> tuple | None:
    # The key holds each value's type, because ``3 == 3.0 == True`` would otherwise share an
    # entry and hand one genome another's (checked or unchecked) values.
    try:
        key = (op, tuple(sorted((k, type(v).__name__, v) for k, v in params.items())))
        hash(key)
    except TypeError:
        return None
    return key


@functools.lru_cache(maxsize=4096)
def _normalized_cached(key: tuple) -> tuple[dict, tuple[str, ...]]:
    normal, problems = normalize_params(key[0], {k: v for k, _, v in key[1]})
    return normal, tuple(problems)
