"""evonas: evolutionary multi-objective neural architecture search — the engine package."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("evonas")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
