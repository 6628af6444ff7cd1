"""The registries' option checks (issue 11, 3.6): every option of every registered space, task
and objective is annotated, and every registry refuses a value that does not fit its annotation,
naming the option, before the factory runs."""

import inspect
import math
import typing

import pytest

import objectives
from genomes import spaces
from genomes.registry import build_with_options, option_names
from objectives import DataError, tasks


def _factories():
    yield from ((f"space {n}", spaces.space_class(n)) for n in spaces.names())
    yield from ((f"task {n}", tasks._REGISTRY.load(n)) for n in tasks.names())
    yield from ((f"objective {n}", objectives.base._REGISTRY.load(n)) for n in objectives.names())


@pytest.mark.parametrize("label, factory", list(_factories()), ids=lambda v: v if isinstance(v, str) else "")
def test_every_option_is_annotated_so_that_it_is_type_checked(label, factory):
    target = factory.__init__ if isinstance(factory, type) else factory
    hints = typing.get_type_hints(target)
    missing = [o for o in option_names(factory) if o not in hints]
    assert not missing, f"{label}: options without a type annotation: {missing}"


@pytest.mark.parametrize("build, words", [
    (lambda: tasks.get("digits", fraction="1e-3"), ("option 'fraction' must be a number, got '1e-3' "
                                                     "(a string; YAML reads 1e-3 as text, write 0.001")),
    (lambda: tasks.get("digits", standardize="maybe"), "option 'standardize' must be true or false"),
    (lambda: tasks.get("digits", val_fraction=[0.2]), "option 'val_fraction' must be a number"),
    (lambda: tasks.get("npz", path=3), "option 'path' must be a string"),
    (lambda: tasks.get("synthetic", samples=240.0), "option 'samples' must be an int"),
    (lambda: tasks.get("synthetic", num_classes=True), "true and false are not numbers"),
    (lambda: tasks.get("synthetic", noise=float("nan")), "option 'noise' must be a number, got nan"),
    (lambda: objectives.get("val_error", time_penalty=float("nan")), "option 'time_penalty'"),
    (lambda: objectives.get("latency", batch_size=10**9), "option 'batch_size' must be an int in [1, 65,536]"),
    (lambda: spaces.get("chain", input_shape=(1, 8, 8), num_outputs=2, channels=[8, 10**6]),
     "option 'channels' must be a non-empty list of ints in [1, 4,096]"),
    (lambda: spaces.get("multibranch", input_shape=(1, 8, 8), num_outputs=2, max_blocks=10**6),
     "option 'max_blocks'"),
    (lambda: spaces.get("cell", input_shape=(1, 8, 8), num_outputs=2, nodes=500), "option 'nodes'"),
    (lambda: spaces.get("chain", input_shape=(1, 8, 8), num_outputs=2, max_params=10**13),
     "option 'max_params'"),
])
def test_every_registry_refuses_wrong_types_and_sizes_naming_the_option(build, words):
    with pytest.raises(ValueError) as info:  # DataError is a ValueError
        build()
    assert words in str(info.value)


def test_tasks_refuse_with_a_data_error():
    with pytest.raises(DataError, match="option 'fraction'"):
        tasks.get("synthetic", fraction="0.5")


def test_the_checker_understands_the_usual_annotations():
    from genomes.registry import option_problem

    def factory(*, a: int = 1, b: float = 1.0, c: bool = True, d: str = "", e: int | None = None,
                f: typing.Literal["x", "y"] = "x", g: typing.Sequence[int] = (), h: tuple[int, int] = (1, 2),
                i=None):
        return a, b, c, d, e, f, g, h, i

    fits = {"a": 3, "b": 3, "c": False, "d": "s", "e": None, "f": "y", "g": [1, 2], "h": (1, 2), "i": object()}
    assert all(option_problem(factory, k, v) is None for k, v in fits.items())
    wrong = {"a": True, "b": math.inf, "c": 0, "d": 1, "e": 1.5, "f": "z", "g": "12", "h": [1],
             "i": [1.0, float("nan")]}
    for key, value in wrong.items():
        assert option_problem(factory, key, value) is not None, key
    with pytest.raises(TypeError, match="option 'a' must be an int"):
        build_with_options("thing", "t", factory, {"a": "1"}, error=TypeError)
    assert inspect.signature(factory).parameters  # the factory itself never ran with a bad value


def test_shown_echoes_at_most_about_200_characters_without_walking_everything():
    from genomes.registry import shown

    big = [list(range(1000))] * 1000
    assert len(shown(big)) <= 200 and len(shown("x" * 10**6)) <= 200 and len(shown(10**5000)) <= 200
    assert shown([1, 2]) == "[1, 2]" and shown("a") == "'a'"
