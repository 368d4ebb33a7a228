"""A LightGBM booster compiled to machine code, bit-identical to LightGBM's own predictor.

LightGBM's text model is parsed here and each tree becomes one small C function that
mirrors ``tree.h``'s decisions (thresholds as exact hex floats, NaN and zero-missing
directions, categorical bitsets); one loop adds the trees to each row's sum in tree order,
as ``GBDT::PredictRaw`` does, with glibc's ``exp`` for the sigmoid and ``gcc -O2`` without
fast-math, so every operation happens in LightGBM's order. Why this and not lleaves or
tl2cgen, and why it is built ahead: docs/adr/0002-compiled-trees.md.

Nothing here is trusted blindly: ``verify`` compares the compiled predictor with the
booster bit for bit on the model's input example and on rows that probe every split's
threshold from both sides (and NaN, zero, negative and unseen categories), and a
mismatch refuses it. A booster this module cannot express (multiclass, linear trees,
another objective) raises ``Unsupported`` and keeps LightGBM's predictor.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from innflow.serving.settings import CompileSettings

T = TypeVar("T")
GENERATOR = "2"  # bump when the generated code changes: part of the cache key
ZERO = float(np.float32(1e-35))  # LightGBM's kZeroThreshold (a float literal: 1e-35f)
# A block of BLOCK trees runs over CHUNK rows, row by row, before the next block: the
# block's code and its branch history stay warm across many rows.
CHUNK = 1024
BLOCK = 25
PARALLEL_ROWS = 512  # below this a second thread costs more than it saves


class Unsupported(ValueError):
    """The booster is not something this compiler expresses exactly."""


@dataclass
class Tree:
    """One tree's arrays, as LightGBM's text model stores them."""

    leaf_value: list[float]
    split_feature: list[int] = field(default_factory=list)
    threshold: list[float] = field(default_factory=list)
    decision_type: list[int] = field(default_factory=list)
    left_child: list[int] = field(default_factory=list)
    right_child: list[int] = field(default_factory=list)
    cat_boundaries: list[int] = field(default_factory=list)
    cat_threshold: list[int] = field(default_factory=list)


@dataclass
class Forest:
    """A parsed binary-objective LightGBM model."""

    features: int
    sigmoid: float
    trees: list[Tree]


def parse(model_text: str) -> Forest:
    """LightGBM's text model (``booster.model_to_string()``) into trees; ``Unsupported``
    for anything the generated code would not compute exactly as LightGBM does.
    """
    header, _, body = model_text.partition("\nTree=")
    fields = dict(line.split("=", 1) for line in header.splitlines() if "=" in line)
    objective = fields.get("objective", "").split()
    if not objective or objective[0] != "binary":
        raise Unsupported(f"objective {fields.get('objective')!r} (only binary is compiled)")
    if fields.get("num_class") != "1" or fields.get("num_tree_per_iteration") != "1":
        raise Unsupported("more than one tree per iteration")
    if "average_output" in header.split():
        raise Unsupported("random-forest mode (averaged trees)")
    sigmoid = next((float(o.split(":")[1]) for o in objective if o.startswith("sigmoid:")), 1.0)
    trees = []
    for chunk in ("Tree=" + body.split("\nend of trees")[0]).split("\nTree="):
        values = dict(line.split("=", 1) for line in chunk.splitlines()[1:] if "=" in line)
        if values.get("is_linear", "0") != "0":
            raise Unsupported("linear trees")

        def numbers(key: str, kind: Any, values: dict[str, str] = values) -> list:
            return [kind(x) for x in values[key].split()] if values.get(key) else []

        tree = Tree(numbers("leaf_value", float))
        if int(values["num_leaves"]) > 1:
            tree.split_feature = numbers("split_feature", int)
            tree.threshold = numbers("threshold", float)
            tree.decision_type = numbers("decision_type", int)
            tree.left_child = numbers("left_child", int)
            tree.right_child = numbers("right_child", int)
            tree.cat_boundaries = numbers("cat_boundaries", int)
            tree.cat_threshold = numbers("cat_threshold", int)
        trees.append(tree)
    if not trees:
        raise Unsupported("no trees")
    return Forest(int(fields["max_feature_idx"]) + 1, sigmoid, trees)


def _node(tree: Tree, node: int, depth: int, sets: list[str]) -> str:
    """C for one node: a leaf's value or a split (``tree.h``'s decision functions)."""
    pad = "  " * depth
    if node < 0:
        return f"{pad}return {tree.leaf_value[~node].hex()};\n"
    x = f"x[{tree.split_feature[node]}]"
    kind = tree.decision_type[node]
    if kind & 1:  # categorical: NaN, a code below 0 or beyond the set go right
        index = int(tree.threshold[node])
        words = tree.cat_threshold[tree.cat_boundaries[index] : tree.cat_boundaries[index + 1]]
        inside = f"{x} > -1.0 && {x} < {32.0 * len(words)!r}"  # false for NaN
        if len(words) == 1:
            test = f"({inside} && (({words[0]}u >> (int){x}) & 1u))"
        else:
            sets.append(", ".join(f"{w}u" for w in words))
            bits = f"SET_{len(sets) - 1}"
            test = f"({inside} && (({bits}[(int){x} >> 5] >> ((int){x} & 31)) & 1u))"
    else:
        missing, default_left = (kind >> 2) & 3, bool(kind & 2)
        threshold = tree.threshold[node]
        if missing == 1:  # zero is missing (NaN is read as zero)
            side = "1" if default_left else "0"
            test = f"(is_zero({x}) ? {side} : {x} <= {threshold.hex()})"
        elif (missing == 2 and default_left) or (missing == 0 and threshold >= 0):
            # NaN left: as the default side, or read as 0.0 <= threshold
            test = f"!({x} > {threshold.hex()})"
        else:  # NaN right: the default side, or 0.0 > threshold
            test = f"({x} <= {threshold.hex()})"
    return (
        f"{pad}if ({test}) {{\n{_node(tree, tree.left_child[node], depth + 1, sets)}"
        f"{pad}}} else {{\n{_node(tree, tree.right_child[node], depth + 1, sets)}{pad}}}\n"
    )


PRELUDE = """#include <math.h>
#include <stdint.h>

static inline int is_zero(double v) { return isnan(v) || (v >= -ZERO && v <= ZERO); }
"""

DRIVER = """
/* Rows X (n x FEATURES, C order) -> out: raw scores or probabilities. Each row's sum adds
   the trees in order, as GBDT::PredictRaw. X must already hold zero for values within
   +-kZeroThreshold, as LightGBM's dense-row reader makes them (CompiledTrees.predict
   does it). */
void innflow_predict(const double *X, long n, double *out, int raw) {
  for (long start = 0; start < n; start += CHUNK) {
    long m = n - start < CHUNK ? n - start : CHUNK;
    const double *rows = X + start * FEATURES;
    double *sum = out + start;
    for (long r = 0; r < m; ++r) sum[r] = 0.0;
TREE_CALLS    if (!raw)
      for (long r = 0; r < m; ++r) sum[r] = 1.0 / (1.0 + exp(-SIGMOID * sum[r]));
  }
}
"""


def c_source(forest: Forest) -> str:
    """The whole translation unit for a forest."""
    sets: list[str] = []
    trees = []
    for i, tree in enumerate(forest.trees):
        body = (
            _node(tree, 0, 1, sets)
            if tree.split_feature
            else f"  return {tree.leaf_value[0].hex()};\n"
        )
        trees.append(f"static inline double tree_{i}(const double *x) {{\n{body}}}\n")
    calls = ""
    for first in range(0, len(forest.trees), BLOCK):
        calls += (
            "    for (long r = 0; r < m; ++r) {\n      const double *x = rows + r * FEATURES;\n"
        )
        last = min(len(forest.trees), first + BLOCK)
        calls += "".join(f"      sum[r] += tree_{i}(x);\n" for i in range(first, last))
        calls += "    }\n"
    return "".join(
        [
            f"#define FEATURES {forest.features}\n#define CHUNK {CHUNK}\n"
            f"#define ZERO {ZERO.hex()}\n#define SIGMOID {forest.sigmoid.hex()}\n",
            PRELUDE,
            *(f"static const uint32_t SET_{i}[] = {{{words}}};\n" for i, words in enumerate(sets)),
            *trees,
            DRIVER.replace("TREE_CALLS", calls),
        ]
    )


def cache_dir() -> Path:
    """Where compiled models live: ``INNFLOW_CACHE_DIR``, else ``$XDG_CACHE_HOME/innflow``
    (``~/.cache/innflow``).
    """
    return CompileSettings().cache()


def cache_path(model_text: str, directory: Path | None = None) -> Path:
    """The shared library's path, keyed by the sha256 of the booster's model string."""
    digest = hashlib.sha256(model_text.encode()).hexdigest()
    return (directory or cache_dir()) / "compiled" / f"lightgbm-{digest}-g{GENERATOR}.so"


def compiler() -> str | None:
    """The C compiler to use (``CC``, else cc or gcc on PATH), or None."""
    return os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")


def build(model_text: str, target: Path) -> Path:
    """Compile the booster's trees into a shared library at ``target``."""
    return compile_library(c_source(parse(model_text)), target)


def compile_library(source: str, target: Path) -> Path:
    """Compile C ``source`` into a shared library at ``target`` (written to a temporary
    file first, then renamed: a reader never sees half a library), installed read-only.
    """
    cc = compiler()
    if cc is None:
        raise RuntimeError("no C compiler (set CC, or install gcc)")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        c_file, so_file = Path(tmp) / "source.c", Path(tmp) / "library.so"
        c_file.write_text(source)
        command = [cc, "-O2", "-ffp-contract=off", "-fno-fast-math", "-fPIC", "-shared",
                   "-o", str(so_file), str(c_file), "-lm"]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{cc} failed: {done.stderr.strip()[-500:]}")
        os.replace(so_file, target)
    return install(target)


def cached_library(
    target: Path, build: Callable[[], object] | None, load: Callable[[Path], T]
) -> T | None:
    """The library at ``target``, loaded; ``build`` (`innflow compile`) makes it first when
    it is missing or does not load (an OSError: truncated, foreign). Without ``build`` (a
    service, `innflow score`) a library is loaded only when ``load_refusal`` finds nothing
    against it: loading runs its code, so it must be what `innflow compile` installed.
    """
    if build is None:
        if not target.exists():
            return None
        problem = load_refusal(target)
        if problem is not None:
            raise UnsafeLibrary(problem)
        return load(target)
    if not target.exists():
        build()
    try:
        return load(target)
    except OSError:
        build()
        return load(target)


class UnsafeLibrary(RuntimeError):
    """A cached library that is not loaded: not read-only, or not as it was built."""


def load_refusal(library: Path) -> str | None:
    """Why ``library`` must not be loaded into a process that did not build it, or None.

    As sshd's StrictModes: the file has no write permission for anyone, neither it nor its
    directory can be written by other users (group/other write bits), it belongs to this
    user or root, and its bytes are those `innflow compile` recorded beside it.
    """
    info, folder = library.stat(), library.parent.stat()
    if info.st_mode & 0o222:
        return f"{library} is writable (innflow compile installs libraries read-only)"
    if folder.st_mode & 0o022 and not folder.st_mode & 0o1000:
        return f"{library.parent} can be written by other users"
    if info.st_uid not in (0, os.getuid()):
        return f"{library} belongs to another user (uid {info.st_uid})"
    digest = library.with_name(library.name + ".sha256")
    if not digest.exists():
        return f"{library} has no {digest.name} (it was not installed by innflow compile)"
    if hashlib.sha256(library.read_bytes()).hexdigest() != digest.read_text().strip():
        return f"{library} differs from the library innflow compile installed"
    return None


def install(library: Path) -> Path:
    """Make a freshly built library loadable by services: read-only, its sha256 beside it."""
    digest = library.with_name(library.name + ".sha256")
    staged = digest.with_suffix(".tmp")
    staged.write_text(hashlib.sha256(library.read_bytes()).hexdigest() + "\n")
    os.chmod(staged, 0o444)
    os.replace(staged, digest)
    os.chmod(library, 0o444)
    return library


class CompiledTrees:
    """A compiled forest loaded from its shared library."""

    def __init__(self, library: Path, features: int) -> None:
        self.library, self.features = library, features
        self._lib = ctypes.CDLL(str(library))
        self._predict = self._lib.innflow_predict
        self._predict.argtypes = [ctypes.c_void_p, ctypes.c_long, ctypes.c_void_p, ctypes.c_int]
        self._predict.restype = None
        self._pool: ThreadPoolExecutor | None = None

    def _run(self, matrix: np.ndarray, out: np.ndarray, raw: bool) -> None:
        # ctypes releases the GIL for the call: threads score their slices in parallel.
        self._predict(matrix.ctypes.data, len(matrix), out.ctypes.data, int(raw))

    def predict(self, matrix: np.ndarray, threads: int = 1, raw: bool = False) -> np.ndarray:
        """Probability of the positive class (or the raw score) per row."""
        matrix = np.asarray(matrix, dtype="float64")
        if matrix.ndim != 2 or matrix.shape[1] != self.features:
            raise ValueError(f"expected {self.features} columns, got shape {matrix.shape}")
        # A new C-ordered array (the caller's is not touched) with LightGBM's zeros.
        matrix = np.ascontiguousarray(np.where(np.abs(matrix) <= ZERO, 0.0, matrix))
        out = np.empty(len(matrix), dtype="float64")
        if threads <= 1 or len(matrix) < PARALLEL_ROWS:
            self._run(matrix, out, raw)
            return out
        if self._pool is None:
            self._pool = ThreadPoolExecutor(threads - 1, thread_name_prefix="innflow-trees")
        bounds = np.linspace(0, len(matrix), threads + 1).astype(int)
        slices = list(pairwise(bounds))
        jobs = [self._pool.submit(self._run, matrix[a:b], out[a:b], raw) for a, b in slices[1:]]
        a, b = slices[0]
        self._run(matrix[a:b], out[a:b], raw)  # the calling thread takes the first slice
        for job in jobs:
            job.result()
        return out


def probe_rows(forest: Forest, rows: int = 4096, seed: int = 0) -> np.ndarray:
    """Rows that test every split from both sides: per feature, values drawn from its
    thresholds and their neighbouring doubles, its category codes and one past them,
    NaN, zeros, tiny and negative values.
    """
    specials = [np.nan, 0.0, -0.0, 1e-40, -1e-40, ZERO, -1.0, -0.5, 0.5, 1e300, -1e300]
    candidates: list[set[float]] = [set(specials) for _ in range(forest.features)]
    for tree in forest.trees:
        for node, feature in enumerate(tree.split_feature):
            if tree.decision_type[node] & 1:
                index = int(tree.threshold[node])
                words = tree.cat_boundaries[index + 1] - tree.cat_boundaries[index]
                candidates[feature].update(float(c) for c in range(32 * words + 1))
            else:
                t = tree.threshold[node]
                candidates[feature].update((t, np.nextafter(t, -np.inf), np.nextafter(t, np.inf)))
    generator = np.random.default_rng(seed)
    columns = [generator.choice(np.array(sorted(c, key=str)), rows) for c in candidates]
    return np.column_stack(columns)


def verify(compiled: CompiledTrees, booster: Any, matrices: list[np.ndarray]) -> str | None:
    """None when the compiled predictor gives LightGBM's probabilities bit for bit on every
    matrix (at 1 and 2 threads), else what differs.
    """
    for matrix in matrices:
        expected = booster.predict(matrix, num_threads=1)
        for threads in (1, 2):
            got = compiled.predict(matrix, threads=threads)
            if not np.array_equal(got, expected, equal_nan=True):
                differ = int((got != expected).sum())
                worst = float(np.nanmax(np.abs(got - expected)))
                return f"{differ} of {len(matrix)} rows differ from LightGBM (max {worst:.3g})"
    return None
