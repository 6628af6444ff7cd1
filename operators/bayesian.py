"""``bayesian``: predictor-guided proposals, modelled on BANANAS (White, Neiswanger and Savani,
"BANANAS: Bayesian Optimization with Neural Architectures for Neural Architecture Search",
AAAI 2021).

An ensemble of small MLPs is fitted on every observation ``tell`` handed over (the genome's
features, its objective values); its spread is the uncertainty. Candidates are the
neighbourhood of the best observed architectures plus a few fresh samples of the space, and
the ``n`` proposals are picked by independent Thompson sampling (each proposal draws its own
value for every candidate from N(mean, spread)) or by UCB, so a batch is diverse.

Several objectives: only the expensive ones are modelled. The cheap exact ones (``params``,
FLOPs, a latency table: ``Request.previewed``) are measured for every candidate through
``Request.preview``, as screening will measure them. Candidates are ranked by the hypervolume
they add to the observed front (``multi="hvi"``; pymoo's ``HV``, objectives normalised by the
front's ideal and nadir, reference point 1.1; along an exact objective, 0.1 beyond the worst
candidate, so that a candidate past the front's end, such as a bigger network that is better
still, can add to it), each proposal treating the earlier proposals'
picks as observed so that a batch spreads along the front; those that add nothing follow, in
the order of a random ParEGO scalarisation (Knowles 2006), which ``multi="parego"`` uses alone.
Every point of the observed front is a centre whose neighbourhood is searched.

Features: ``space.encode(genome)``; for cell spaces (``nb201``, strict ``cell``) a choice of
the one-hot edge ops, the one-hot of the "live" cell (edges on no input -> output path set to
``none``), BANANAS' path encoding (for every input -> output path, its sequence of ops, counted
per sequence up to ``MAX_PATH_FEATURES`` entries) and a short summary of the live cell (op
counts, live paths, most and fewest convolutions on a path). The default, summary + live
one-hot, ranked held-out NB201 cells best (see ``Bayesian``).

Data: a result is an observation when it was evaluated and its record is complete or pruned,
at the values it reached (a pruned child's values are those of its last rung: a lower-fidelity,
usually pessimistic reading, which is what the search itself ranks it by). Failed results,
duplicates, unchosen and invalid children carry no value and are left out. The surrogate is
refitted from scratch in every ``propose`` from a generator drawn from ``request.rng`` (torch's
global generator is never touched), so the state is the observations alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from pymoo.indicators.hv import HV
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from genomes import Genome
from genomes.spaces import SearchSpace

from .base import Child, NotApplicable, Provenance
from .proposer import FRESH, Proposer, Request, Result

__all__ = ["Bayesian", "Ensemble", "path_features"]

ACQUISITIONS = ("ts", "ucb")
FEATURES = ("onehot", "live", "path", "summary")
MAX_PATH_FEATURES = 4096  # longest path sequences are dropped beyond this many features
OK_STATES = ("complete", "pruned")
MULTI = ("hvi", "parego")
REF = 1.1  # hypervolume reference point, the observed front's ideal at 0 and nadir at 1
RHO = 0.05  # ParEGO's augmentation: max_k w_k f_k + RHO * sum_k w_k f_k


def _check(ok: bool, key: str, what: str, value: Any) -> None:
    if not ok:
        raise ValueError(f"option {key!r} {what}, got {value!r}")


def _int(key: str, value: Any, low: int, high: int) -> int:
    _check(type(value) is int and low <= value <= high, key,
           f"must be an int in [{low}, {high:,}]", value)
    return value


def _float(key: str, value: Any, low: float, high: float) -> float:
    _check(isinstance(value, (int, float)) and not isinstance(value, bool)
           and math.isfinite(value) and low <= value <= high, key,
           f"must be a number in [{low}, {high}]", value)
    return float(value)


# ---------------------------------------------------------------------- the surrogate
class Ensemble:
    """``members`` MLPs (two hidden ReLU layers of ``hidden`` units) trained side by side as
    one batched network: full-batch Adam on the mean squared error of standardised targets.
    Members differ by their initial weights only (as in BANANAS)."""

    def __init__(self, members: int, hidden: int, epochs: int, lr: float, decay: float):
        self.members, self.hidden, self.epochs, self.lr, self.decay = members, hidden, epochs, lr, decay
        self.params_: list[torch.Tensor] = []

    def fit(self, X: np.ndarray, Y: np.ndarray, generator: torch.Generator) -> Ensemble:
        x = torch.as_tensor(X, dtype=torch.float32)
        y = torch.as_tensor(Y, dtype=torch.float32)
        E, D, H, K = self.members, x.shape[1], self.hidden, y.shape[1]

        def init(fan_in: int, *shape: int) -> torch.Tensor:
            bound = 1.0 / math.sqrt(fan_in)
            w = (torch.rand(*shape, generator=generator) * 2 - 1) * bound
            return w.requires_grad_()

        self.params_ = [init(D, E, D, H), init(D, E, 1, H), init(H, E, H, H), init(H, E, 1, H),
                        init(H, E, H, K), init(H, E, 1, K)]
        opt = torch.optim.Adam(self.params_, lr=self.lr, weight_decay=self.decay)
        xe = x.expand(E, *x.shape)
        for _ in range(self.epochs):
            opt.zero_grad(set_to_none=True)
            loss = ((self._forward(xe) - y) ** 2).mean() * E
            loss.backward()
            opt.step()
        for p in self.params_:
            p.requires_grad_(False)
        return self

    def _forward(self, xe: torch.Tensor) -> torch.Tensor:
        w1, b1, w2, b2, w3, b3 = self.params_
        h = torch.relu(torch.baddbmm(b1, xe, w1))
        h = torch.relu(torch.baddbmm(b2, h, w2))
        return torch.baddbmm(b3, h, w3)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """(members, rows, targets) predictions, in the standardised target units."""
        x = torch.as_tensor(X, dtype=torch.float32)
        with torch.no_grad():
            return self._forward(x.expand(self.members, *x.shape)).double().numpy()


# ---------------------------------------------------------------------- cell features
def _paths(nodes: int) -> list[tuple[int, ...]]:
    """Every input -> output node path of a cell DAG (node 0 to node ``nodes - 1``)."""
    out: list[tuple[int, ...]] = []

    def walk(path: tuple[int, ...]) -> None:
        if path[-1] == nodes - 1:
            out.append(path)
            return
        for j in range(path[-1] + 1, nodes):
            walk(path + (j,))

    walk((0,))
    return out


class _CellCoder:
    """Architectures of a cell space as integer arrays (one op index per edge), and their
    features, any of (``+``-joined in ``encoding``):

    - ``onehot``: ``space.encode``'s one-hot edge ops;
    - ``live``: the same with every edge that lies on no input -> output path of non-``none``
      edges set to ``none`` (such edges do not change the network's function), so that
      equivalent cells encode alike;
    - ``path``: BANANAS' path encoding (``path_features``);
    - ``summary``: per op other than ``none``, how many live edges carry it; the number of live
      paths; the most and the fewest parametric ops (convolutions) on a live path; whether the
      cell is cut off (no live path).
    """

    def __init__(self, space, encoding: str):
        from genomes.spaces.cell import CELL_OPS

        self.space, self.ops, self.edges = space, tuple(space.ops), space.edges()
        index = {e: k for k, e in enumerate(self.edges)}
        live = [o for o in self.ops if o != "none"]
        self.live = np.array([live.index(o) if o != "none" else -1 for o in self.ops])
        self.none = self.ops.index("none") if "none" in self.ops else -1
        self.conv = np.array([any(kind in ("conv", "sepconv") for kind, _ in CELL_OPS[o])
                              for o in self.ops], dtype=float)
        base = len(live)
        self.all_paths = [[index[p[t], p[t + 1]] for t in range(len(p) - 1)]
                          for p in _paths(space.nodes)]
        self.paths: list[tuple[list[int], int]] = []  # (edge indices, offset of its length)
        offsets, total = {}, 0
        for length in range(1, space.nodes):
            if total + base ** length > MAX_PATH_FEATURES:
                break
            offsets[length], total = total, total + base ** length
        for edges in self.all_paths:
            if len(edges) in offsets and base:
                self.paths.append((edges, offsets[len(edges)]))
        self.base, self.path_size = base, total
        self.parts = encoding.split("+")

    def arch(self, genome: Genome) -> np.ndarray:
        return np.array([self.ops.index(o) for o in self.space.decode(genome)], dtype=np.int64)

    def genome(self, arch: np.ndarray) -> Genome:
        return self.space.from_arch([self.ops[int(k)] for k in arch])

    def _onehot(self, A: np.ndarray) -> np.ndarray:
        oh = np.zeros((len(A), len(self.edges), len(self.ops)))
        oh[np.arange(len(A))[:, None], np.arange(len(self.edges)), A] = 1.0
        return oh.reshape(len(A), -1)

    def _alive(self, A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(which paths are live, which edges lie on a live path), per architecture."""
        open_ = A != self.none
        paths = np.stack([open_[:, p].all(1) for p in self.all_paths], 1)
        edges = np.zeros(A.shape, dtype=bool)
        for k, p in enumerate(self.all_paths):
            edges[:, p] |= paths[:, k:k + 1]
        return paths, edges

    def features(self, A: np.ndarray) -> np.ndarray:
        A = np.asarray(A, dtype=np.int64).reshape(-1, len(self.edges))
        parts = []
        paths, edges = self._alive(A)
        for part in self.parts:
            if part == "onehot":
                parts.append(self._onehot(A))
            elif part == "live":
                parts.append(self._onehot(np.where(edges, A, max(self.none, 0))))
            elif part == "path":
                parts.append(path_features(A, self.live, self.base, self.paths, self.path_size))
            elif part == "summary":
                counts = [((A == o) & edges).sum(1) for o in range(len(self.ops)) if o != self.none]
                convs = np.stack([self.conv[A[:, p]].sum(1) for p in self.all_paths], 1)
                any_ = paths.any(1)
                most = np.where(any_, np.where(paths, convs, -1).max(1), -1)
                fewest = np.where(any_, np.where(paths, convs, 1e9).min(1), -1)
                parts.append(np.column_stack(counts + [paths.sum(1), most, fewest, ~any_]))
        return np.concatenate(parts, axis=1).astype(float)


def path_features(A: np.ndarray, live: np.ndarray, base: int,
                  paths: Sequence[tuple[list[int], int]], size: int) -> np.ndarray:
    """BANANAS' path encoding of architectures ``A`` (rows of op indices per edge): how many
    input -> output paths carry each sequence of live ops (``live[op]`` its index among the ops
    other than ``none``, -1 for ``none``). Paths through ``none`` carry nothing."""
    out = np.zeros((len(A), size))
    rows = np.arange(len(A))
    for edges, offset in paths:
        code = np.zeros(len(A), dtype=np.int64)
        ok = np.ones(len(A), dtype=bool)
        for e in edges:
            op = live[A[:, e]]
            ok &= op >= 0
            code = code * base + np.maximum(op, 0)
        np.add.at(out, (rows[ok], offset + code[ok]), 1.0)
    return out


# ---------------------------------------------------------------------- the proposer
class Bayesian(Proposer):
    """BANANAS-style Bayesian optimisation over the space's own neighbourhoods.

    Options: ``ensemble`` MLPs of ``hidden`` units trained ``epochs`` full-batch steps at ``lr``;
    ``candidates`` scored per generation, of which a ``fresh`` share are new samples and the
    rest neighbours of the ``top`` best observations (and of every point of the observed front,
    with several objectives; in rotation when they do not all fit); ``warmup`` observations before the model
    is used (until then: neighbours of the best and fresh samples, at random); ``acquisition``
    ``ts`` (independent Thompson sampling) or ``ucb`` (mean minus ``beta`` spreads, in
    minimisation); ``encoding`` of cell spaces: ``+``-joined feature sets of ``_CellCoder``
    (``onehot`` = ``space.encode``, ``live``, ``path``, ``summary``). Other spaces use
    ``space.encode``; ``multi``: ``hvi`` (hypervolume improvement) or ``parego`` for several
    objectives. The defaults were chosen on the NB201 table (``summary+live`` ranks held-out
    cells better than BANANAS' ``path`` after 100 observations, tau 0.65 against 0.53;
    centres ``top=2`` gave the lowest regret at 150 queries). With two objectives
    ``candidates=500`` spread the front better (``benchmarks/pareto_efficiency.py``).
    """

    name: ClassVar[str] = "bayesian"

    def __init__(self, *, ensemble: int = 5, candidates: int = 300, warmup: int = 10,
                 acquisition: str = "ts", hidden: int = 64, epochs: int = 300,
                 lr: float = 0.01, decay: float = 0.01, top: int = 2, fresh: float = 0.1,
                 beta: float = 1.0, encoding: str = "summary+live", multi: str = "hvi"):
        self.ensemble = _int("ensemble", ensemble, 1, 100)
        self.candidates = _int("candidates", candidates, 1, 100_000)
        self.warmup = _int("warmup", warmup, 1, 100_000)
        _check(acquisition in ACQUISITIONS, "acquisition", f"must be one of {ACQUISITIONS}",
               acquisition)
        self.acquisition = acquisition
        self.hidden = _int("hidden", hidden, 1, 4096)
        self.epochs = _int("epochs", epochs, 1, 100_000)
        self.lr = _float("lr", lr, 1e-6, 1.0)
        self.decay = _float("decay", decay, 0.0, 1.0)
        self.top = _int("top", top, 1, 100_000)
        self.fresh = _float("fresh", fresh, 0.0, 1.0)
        self.beta = _float("beta", beta, 0.0, 100.0)
        _check(multi in MULTI, "multi", f"must be one of {MULTI}", multi)
        self.multi = multi
        _check(isinstance(encoding, str) and encoding.split("+")
               and all(p in FEATURES for p in encoding.split("+")), "encoding",
               f"must be one or more of {FEATURES} joined by '+'", encoding)
        self.encoding = encoding
        # Observations, in the order told: canonical hash -> (values, arch or genome).
        self.hashes_: list[str] = []
        self.values_: list[dict[str, float]] = []
        self.archs_: list[list[str] | None] = []  # cell architectures (strict cell spaces)
        self.genomes_: list[Genome | None] = []  # other spaces, or before the space is known
        self.directions_: dict[str, str] = {}
        # Previewed values of candidates (recomputable, so not state): (keys, id) -> values.
        self._preview_cache: dict[tuple[tuple[str, ...], bytes | str], dict[str, float] | None] = {}

    # ------------------------------------------------------------------ learning
    def tell(self, results: Sequence[Result]) -> None:
        """Keep every evaluated result with a complete or pruned record (at the values it
        reached); a genome told again replaces its earlier values."""
        for r in results:
            if r.status != "evaluated" or r.record is None or r.record.state.value not in OK_STATES:
                continue
            values = {k: float(v) for k, v in r.record.objectives.items() if math.isfinite(v)}
            if not values:
                continue
            h = r.genome.canonical_hash()
            if h in self.hashes_:
                k = self.hashes_.index(h)
                self.values_[k] = values
                continue
            self.hashes_.append(h)
            self.values_.append(values)
            self.archs_.append(None)
            self.genomes_.append(r.genome)

    def _settle(self) -> None:
        """Turn kept genomes into cell architectures, in ``propose`` (which gives the space)
        only: a proposer restored from a checkpoint does not know the space until then, so
        settling on ``tell`` too would save a resumed run's state in another form than an
        uninterrupted run's."""
        space = getattr(self, "space_", None)
        if space is None or not _strict_cell(space):
            return
        for k, g in enumerate(self.genomes_):
            if g is not None:
                self.archs_[k] = list(space.decode(g))
                self.genomes_[k] = None

    # ------------------------------------------------------------------ proposing
    def propose(self, request: Request) -> list[Child]:
        self.directions_ = dict(request.directions)
        self.space_ = request.space
        self._settle()
        rng = request.rng
        keys = [k for k in request.keys]
        rows = [k for k, v in enumerate(self.values_) if all(key in v for key in keys)]
        if _strict_cell(request.space):
            return self._propose_cell(request, rng, keys, rows)
        return self._propose_genomes(request, rng, keys, rows)

    def _previews(self, request: Request, ids: Sequence[bytes | str],
                  genome: Callable[[int], Genome]) -> np.ndarray:
        """The previewed objectives of candidates in minimisation (rows: candidates, columns:
        ``request.previewed``; NaN where measuring failed), cached by ``ids``; ``genome(k)``
        makes candidate k's genome, only when it is not cached."""
        keys = request.previewed
        todo = [k for k, i in enumerate(ids) if (keys, i) not in self._preview_cache]
        if todo:
            for k, values in zip(todo, request.preview([genome(k) for k in todo])):
                self._preview_cache[keys, ids[k]] = values
        sign = np.array([-1.0 if self.directions_[k] == "max" else 1.0 for k in keys])
        out = np.full((len(ids), len(keys)), np.nan)
        for r, i in enumerate(ids):
            values = self._preview_cache[keys, i]
            if values is not None and all(k in values for k in keys):
                out[r] = [values[k] for k in keys]
        return out * sign

    def _acquire(self, request: Request, X: np.ndarray, C: np.ndarray, F: np.ndarray,
                 exact: Callable[[], np.ndarray], rng: np.random.Generator) -> np.ndarray:
        """Acquisition values (lower is better, +inf: not a candidate), one row per proposal,
        from observed features ``X`` and targets ``F`` (minimisation, one column per key) and
        candidate features ``C``: the modelled keys are predicted by a freshly fitted ensemble,
        the previewed ones measured by ``exact()`` (called only when some key is previewed)."""
        keys = request.keys
        mi = [k for k, key in enumerate(keys) if key not in request.previewed]
        pi = [k for k, key in enumerate(keys) if key in request.previewed]
        mean = np.zeros((len(C), len(keys)))
        spread = np.zeros((len(C), len(keys)))
        if mi:
            Xs, Cs = _standardise(X, C)
            model, mu, sd = self._fit(Xs, F[:, mi], rng)
            P = model.predict(Cs)
            mean[:, mi], spread[:, mi] = P.mean(0) * sd + mu, P.std(0) * sd
        bad = np.zeros(len(C), dtype=bool)
        if pi:
            measured = exact()
            bad = np.isnan(measured).any(1)  # failed: scored as a placeholder, then ruled out
            mean[:, pi] = np.where(bad[:, None], 0.0, measured)
        scores = self._scores(mean, spread, F, request.n, rng, exact=pi)
        scores[:, bad] = np.inf
        return scores

    def _targets(self, keys: list[str], rows: list[int]) -> np.ndarray:
        """Observed values in minimisation, one column per key."""
        sign = np.array([-1.0 if self.directions_[k] == "max" else 1.0 for k in keys])
        return np.array([[self.values_[r][k] for k in keys] for r in rows]).reshape(
            len(rows), len(keys)) * sign

    def _order(self, F: np.ndarray) -> np.ndarray:
        """Observations best first: by non-dominated rank, then the mean normalised value."""
        if F.shape[1] == 1:
            return np.argsort(F[:, 0], kind="stable")
        lo, hi = F.min(0), F.max(0)
        norm = (F - lo) / np.where(hi > lo, hi - lo, 1.0)
        _, rank = NonDominatedSorting().do(F, return_rank=True)
        return np.lexsort((norm.mean(1), rank))

    def _centres(self, F: np.ndarray) -> np.ndarray:
        """The observations whose neighbourhoods are searched, best first: the ``top`` best, and
        with several objectives every one on the observed front as well (a front is spread
        out; the neighbours of two of its points cannot improve the rest of it)."""
        if not len(F):
            return np.array([], dtype=int)
        order = self._order(F)
        if F.shape[1] == 1:
            return order[: self.top]
        on_front = set(NonDominatedSorting().do(F, only_non_dominated_front=True).tolist())
        return np.array([r for k, r in enumerate(order) if k < self.top or r in on_front], dtype=int)

    def _fit(self, X: np.ndarray, F: np.ndarray, rng: np.random.Generator):
        """The fitted ensemble and the (mean, std) used to standardise targets."""
        mu, sd = F.mean(0), F.std(0)
        sd = np.where(sd > 0, sd, 1.0)
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        model = Ensemble(self.ensemble, self.hidden, self.epochs, self.lr, self.decay)
        return model.fit(X, (F - mu) / sd, gen), mu, sd

    def _scores(self, mean: np.ndarray, spread: np.ndarray, F: np.ndarray, n: int,
                rng: np.random.Generator, exact: Sequence[int] = ()) -> np.ndarray:
        """One row of acquisition values per proposal (lower is better) from the candidates'
        predicted ``mean`` and ``spread`` (zero for previewed keys) in minimisation units.

        Each proposal draws its own values (Thompson sampling) or takes the optimistic bound
        (UCB). One objective: that value. Several: the hypervolume the candidate adds to the
        observed front (reference point ``REF`` in objectives
        normalised by the front's own ideal and nadir points, as the benchmarks measure it), and
        for the candidates that add nothing, after all that do, a random ParEGO
        scalarisation (one Dirichlet weight draw per proposal) to order them.

        Along the ``exact`` columns (previewed: every candidate's value is known) the reference
        point lies ``REF - 1`` beyond the worst candidate when that is past ``REF``. With the
        front's own nadir alone, a candidate that extends the front (more parameters than its
        largest network, and more accurate) lies beyond the reference and adds nothing, so the
        search never walked past the largest network it had found: on the NB201 table the
        three largest levels of the true front got 2.7-6.9 of 300 queries per seed."""
        K = F.shape[1]
        if K > 1:
            front = F[NonDominatedSorting().do(F, only_non_dominated_front=True)]
            lo, hi = front.min(0), front.max(0)
            scale = np.where(hi > lo, hi - lo, 1.0)
            front = (front - lo) / scale
            ref = np.full(K, REF)
            if len(exact) and len(mean):
                cols = list(exact)
                ref[cols] = np.maximum(REF, ((mean[:, cols] - lo[cols]) / scale[cols]).max(0)
                                       + REF - 1)
            hv = HV(ref_point=ref)
            base = hv(front)
        out = np.empty((n, len(mean)))
        for j in range(n):
            if self.acquisition == "ts":
                value = mean + spread * rng.standard_normal(mean.shape)
            else:
                value = mean - self.beta * spread
            if K == 1:
                out[j] = value[:, 0]
                continue
            w = rng.dirichlet(np.ones(K))
            f = (value - lo) / scale
            parego = (f * w).max(1) + RHO * (f * w).sum(1)
            if self.multi == "parego":
                out[j] = parego
                continue
            dominated = ((front[None] <= f[:, None]).all(2)).any(1)
            gain = np.zeros(len(f))
            for c in np.flatnonzero(~dominated & (f < ref).all(1)):
                gain[c] = hv(np.vstack([front, f[c]])) - base
            out[j] = np.where(gain > 0, -gain, parego - parego.min())
            if gain.max() > 0:  # the next proposals improve on this one's pick (as if it came
                pick = int(np.argmax(gain))  # true: "kriging believer"), so a batch spreads out
                front = np.vstack([front, f[pick]])
                base = hv(front)
        return out

    @staticmethod
    def _pick(scores: np.ndarray, accept) -> list[int]:
        """Proposal j takes its best candidate that ``accept`` takes and no earlier one took."""
        taken: list[int] = []
        for j in range(len(scores)):
            for c in np.argsort(scores[j], kind="stable"):
                c = int(c)
                if not np.isfinite(scores[j, c]):
                    break
                if c not in taken and accept(c):
                    taken.append(c)
                    break
        return taken

    # ------------------------------------------------------------------ cell spaces
    def _propose_cell(self, request: Request, rng, keys, rows) -> list[Child]:
        space = request.space
        coder = _CellCoder(space, self.encoding)
        ops = coder.ops
        observed = np.array([[ops.index(o) for o in self.archs_[r]] for r in rows],
                            dtype=np.int64).reshape(len(rows), len(coder.edges))
        F = self._targets(keys, rows)
        centres = observed[self._centres(F)]
        known = {a.tobytes() for a in observed}
        known |= {np.array([ops.index(o) for o in a], dtype=np.int64).tobytes()
                  for a in self.archs_ if a is not None}
        cands, parent = self._cell_candidates(centres, len(coder.edges), len(ops), known, rng)
        hashes_of = {tuple(a.tolist()): self.hashes_[rows[i]] for i, a in enumerate(observed)}
        if len(rows) < self.warmup or not len(cands):
            scores = rng.random((request.n, len(cands)))
            how = "warm-up draw"
        else:
            scores = self._acquire(
                request, coder.features(observed), coder.features(cands), F,
                lambda: self._previews(request, [a.tobytes() for a in cands],
                                       lambda k: coder.genome(cands[k])), rng)
            how = f"{self.acquisition} over {len(cands)} candidates"
        made: dict[int, Child] = {}
        batch: set[str] = set()

        def accept(c: int) -> bool:
            genome = coder.genome(cands[c])
            h = genome.canonical_hash()
            if h in request.seen or h in batch:
                return False
            batch.add(h)
            p = parent[c]
            parents = (hashes_of[tuple(centres[p].tolist())],) if p >= 0 else ()
            detail = (f"{how}: " + ("fresh sample" if p < 0 else
                                    _edge_change(space, centres[p], cands[c], ops)))
            made[c] = Child(genome, None, Provenance(self.name, parents, (), detail, False), FRESH)
            return True

        return [made[c] for c in self._pick(scores, accept)]

    def _cell_candidates(self, centres: np.ndarray, E: int, O: int, known: set[bytes],
                         rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Every one-edge neighbour of the centres, then fresh uniform draws; unknown
        architectures only. Where the neighbours exceed the share of ``candidates`` that is not
        fresh, each centre takes its turn in rotation (a front's every point gets its share).
        Returns (architectures, index of the centre each came from
        or -1)."""
        want_fresh = max(1, round(self.fresh * self.candidates)) if self.fresh > 0 else 0
        room = self.candidates - want_fresh if len(centres) else 0
        keys = set(known)
        lists: list[list[np.ndarray]] = []
        for centre in centres:
            moves = [(e, o) for e in range(E) for o in range(O) if o != centre[e]]
            nb = np.repeat(centre[None], len(moves), 0)
            for i, (e, o) in enumerate(moves):
                nb[i, e] = o
            mine = []
            for a in nb[rng.permutation(len(nb))]:
                if (b := a.tobytes()) not in keys:
                    keys.add(b)
                    mine.append(a)
            lists.append(mine)
        if sum(map(len, lists)) > room:  # in rotation: the k-th neighbour of every centre first
            take = [0] * len(lists)
            left = room
            for k in range(max(map(len, lists), default=0)):
                for p, mine in enumerate(lists):
                    if left and k < len(mine):
                        take[p], left = take[p] + 1, left - 1
            for p, mine in enumerate(lists):
                for a in mine[take[p]:]:
                    keys.discard(a.tobytes())
            lists = [mine[: take[p]] for p, mine in enumerate(lists)]
        out = [a for mine in lists for a in mine]
        parent = [p for p, mine in enumerate(lists) for _ in mine]
        fresh = self.candidates - len(out)
        tries = 0
        while fresh > 0 and tries < 20 * self.candidates:
            tries += 1
            a = rng.integers(O, size=E).astype(np.int64)
            if (b := a.tobytes()) not in keys:
                keys.add(b)
                out.append(a)
                parent.append(-1)
                fresh -= 1
        return np.array(out, dtype=np.int64).reshape(len(out), E), np.array(parent, dtype=int)

    # ------------------------------------------------------------------ other spaces
    def _propose_genomes(self, request: Request, rng, keys, rows) -> list[Child]:
        import operators  # the registry imports this module's package

        space = request.space
        F = self._targets(keys, rows)
        centres = [rows[int(i)] for i in self._centres(F)]
        names = ["mutate"] + (list(operators.morphisms.names()) if space.editable else [])
        makers = {n: operators.get(n) for n in names}
        want_fresh = max(1, round(self.fresh * self.candidates)) if self.fresh > 0 else 0
        cands: list[tuple[Genome, int, str]] = []  # (genome, centre row or -1, detail)
        hashes: set[str] = set(request.seen)
        if centres and getattr(space, "editable", False):
            for t in range(self.candidates - want_fresh):
                row = centres[t % len(centres)]
                name = names[int(rng.integers(len(names)))]
                try:
                    child = makers[name].make([(self.genomes_[row], None)], rng, space=space,
                                              weights=False)
                except NotApplicable:
                    continue
                h = child.genome.canonical_hash()
                if h not in hashes:
                    hashes.add(h)
                    cands.append((child.genome, row, f"{name}: {child.provenance.detail}"))
        for _ in range(self.candidates - len(cands)):
            g = space.sample(rng)
            h = g.canonical_hash()
            if h not in hashes:
                hashes.add(h)
                cands.append((g, -1, "fresh sample"))
        if not cands:
            return []
        if len(rows) < self.warmup:
            scores = rng.random((request.n, len(cands)))
            how = "warm-up draw"
        else:
            genomes = [g for g, _, _ in cands]
            scores = self._acquire(
                request, np.array([space.encode(self.genomes_[r]) for r in rows]),
                np.array([space.encode(g) for g in genomes]), F,
                lambda: self._previews(request, [g.canonical_hash() for g in genomes],
                                       genomes.__getitem__),
                rng)
            how = f"{self.acquisition} over {len(cands)} candidates"
        out = []
        for c in self._pick(scores, lambda c: True):
            genome, row, detail = cands[c]
            parents = (self.hashes_[row],) if row >= 0 else ()
            out.append(Child(genome, None, Provenance(self.name, parents, (), f"{how}: {detail}",
                                                      False), FRESH))
        return out

    # ------------------------------------------------------------------ state
    def state(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """The observations (hash, values, and the cell architecture or the genome's JSON) and
        the last directions; the ensemble is refitted from them, so no tensors."""
        obs = []
        for h, v, a, g in zip(self.hashes_, self.values_, self.archs_, self.genomes_):
            item: dict[str, Any] = {"hash": h, "values": dict(v)}
            if a is not None:
                item["arch"] = list(a)
            else:
                item["genome"] = g.to_dict()
            obs.append(item)
        return {"observations": obs, "directions": dict(self.directions_)}, {}

    def load_state(self, data: dict[str, Any], tensors: Mapping[str, torch.Tensor]) -> None:
        self.hashes_, self.values_, self.archs_, self.genomes_ = [], [], [], []
        for item in data.get("observations", []):
            self.hashes_.append(item["hash"])
            self.values_.append({k: float(v) for k, v in item["values"].items()})
            self.archs_.append(list(item["arch"]) if "arch" in item else None)
            self.genomes_.append(Genome.from_dict(item["genome"]) if "genome" in item else None)
        self.directions_ = dict(data.get("directions", {}))

    def __repr__(self) -> str:
        return (f"Bayesian(ensemble={self.ensemble}, candidates={self.candidates}, "
                f"warmup={self.warmup}, acquisition={self.acquisition!r})")


def _standardise(X: np.ndarray, C: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Observed features ``X`` and candidates' ``C`` scaled by the observed mean and std."""
    mean, std = X.mean(0), X.std(0)
    std = np.where(std > 0, std, 1.0)
    return (X - mean) / std, (C - mean) / std


def _strict_cell(space: SearchSpace) -> bool:
    return bool(getattr(space, "edge_mutation", False)) and not space.editable \
        and hasattr(space, "from_arch") and hasattr(space, "edges")


def _edge_change(space, before: np.ndarray, after: np.ndarray, ops) -> str:
    changes = []
    for k in np.flatnonzero(before != after):
        i, j = space.edges()[int(k)]
        changes.append(f"edge {i}->{j}: {ops[int(before[k])]} -> {ops[int(after[k])]}")
    return ", ".join(changes)
