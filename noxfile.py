"""Sessions that build, install and test each distribution alone and together.

Run ``nox`` for the whole test suite (the default sessions below), ``nox -s example`` for the
end-to-end example, ``nox -s bench`` for the benchmark report. Virtual environments are reused
between runs (one per session).
"""

from __future__ import annotations

import pathlib
import shutil
import tomllib

import nox

ROOT = pathlib.Path(__file__).parent
nox.options.default_venv_backend = "venv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["lint", "core", "sklearn", "torch", "tf", "integration", "tracking", "ray", "wheels", "docs"]

# Frameworks, pinned: torch 2.13.0 is the CPU build this project's machines carry; any other
# version downloads gigabytes.
TORCH = "torch==2.13.0"
TENSORFLOW = "tensorflow-cpu==2.21.0"
SCIKIT_LEARN = "scikit-learn>=1.3"
PANDAS = "pandas>=2.0"
MATPLOTLIB = "matplotlib>=3.7"  # the plot extra
MLFLOW = "mlflow>=2.12"  # the full distribution: the tests start `mlflow server` and use a sqlite store
TENSORBOARDX = "tensorboardX>=2.6"  # what the TensorBoard logger writes with
TENSORBOARD = "tensorboard>=2.15"  # only the tests read the event files back with its reader
RAY = "ray[default]>=2.60,<3"  # [default]: the `ray start` head the ray session's tests start
TEST_TOOLS = ["pytest>=8"]
NOTEBOOK_TOOLS = [
    "nbclient>=0.10",
    "nbformat>=5.9",
    "ipykernel>=6.29",
    "ipywidgets>=8.1",
]  # tests/integration/test_notebook.py
# The peers bench/bench_peers.py runs the training workload through (the bench-peers session's);
# each installs against the pinned torch above.
BENCH_PEERS = ["lightning>=2.2", "keras>=3.3", "skorch>=1.0"]
BENCH_PEERS_SCRIPT = "bench_peers.py"
DOCS_TOOLS = ["mkdocs>=1.6", "mkdocs-material>=9.5", "mkdocstrings[python]>=0.26"]

CORE = "core"
BACKENDS = {"torch": "modularml_torch", "tf": "modularml_tf", "sklearn": "modularml_sklearn"}
EXAMPLE_PLUGIN = "plugins/modularml_example"
NUMPY_PLUGIN = "plugins/modularml_numpy"  # a trainable backend without any ML framework, for the core's tests
DISTRIBUTIONS = [CORE, *BACKENDS.values(), EXAMPLE_PLUGIN, NUMPY_PLUGIN]
TRACKING_PLUGINS = ["plugins/modularml_mlflow", "plugins/modularml_tensorboard"]  # the tracking session's
RAY_PLUGIN = "plugins/modularml_ray"  # the ray session's (and the benchmarks')


# Disk each session's virtual environment takes, in GB (measured on a clean clone, Linux x86_64,
# CPU builds): the default sessions together need about 12 GB.
DISK_GB = {
    "core": 0.4,
    "sklearn": 0.5,
    "torch": 1.2,
    "tf": 1.7,
    "integration": 2.9,
    "tracking": 2.2,
    "ray": 1.5,
    "wheels": 1.4,
    "docs": 0.1,
}
DISK_GB_EVERYTHING = DISK_GB["integration"]  # any session with every distribution and framework


def _warn_if_disk_short(session: nox.Session) -> None:
    """Say so up front when the disk cannot hold this session's environment (pip fails late, with Errno 28)."""
    need = DISK_GB.get(session.name, DISK_GB_EVERYTHING)
    free = shutil.disk_usage(ROOT).free / 1e9
    if free < need + 0.5:
        session.warn(
            f"only {free:.1f} GB free on the disk holding {ROOT}; session {session.name!r} needs about {need} GB "
            f"(all default sessions together about {sum(DISK_GB.values()):.0f} GB). Free some space, or remove "
            "old environments under .nox/, if pip stops with 'No space left on device'."
        )


def _editable(*folders: str) -> list[str]:
    return [arg for folder in folders for arg in ("-e", folder)]


def _install_everything(session: nox.Session) -> None:
    _warn_if_disk_short(session)
    session.install(
        *_editable(*DISTRIBUTIONS), TORCH, TENSORFLOW, SCIKIT_LEARN, PANDAS, MATPLOTLIB, *TEST_TOOLS, *NOTEBOOK_TOOLS
    )


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the whole repository."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def core(session: nox.Session) -> None:
    """The core, the example and numpy plugins, with NO ML framework installed (only the pandas and plot extras)."""
    _warn_if_disk_short(session)
    session.install(*_editable(CORE, EXAMPLE_PLUGIN, NUMPY_PLUGIN), PANDAS, MATPLOTLIB, *TEST_TOOLS)
    session.run(
        "pytest",
        "tests/core",
        "tests/example_plugin",
        "tests/numpy_plugin",
        *session.posargs,
        env={"MODULARML_CORE_ONLY": "1"},
    )


@nox.session
def sklearn(session: nox.Session) -> None:
    """The scikit-learn backend alone (with the numpy test backend, for mixed graphs)."""
    _warn_if_disk_short(session)
    session.install(*_editable(CORE, BACKENDS["sklearn"], NUMPY_PLUGIN), SCIKIT_LEARN, *TEST_TOOLS)
    session.run("pytest", "tests/sklearn", *session.posargs)


@nox.session
def torch(session: nox.Session) -> None:
    """The PyTorch backend alone (with the numpy test backend, for mixed graphs)."""
    _warn_if_disk_short(session)
    session.install(*_editable(CORE, BACKENDS["torch"], NUMPY_PLUGIN), TORCH, *TEST_TOOLS)
    session.run("pytest", "tests/torch", *session.posargs)


@nox.session
def tf(session: nox.Session) -> None:
    """The TensorFlow backend alone (with the numpy test backend)."""
    _warn_if_disk_short(session)
    session.install(*_editable(CORE, BACKENDS["tf"], NUMPY_PLUGIN), TENSORFLOW, *TEST_TOOLS)
    session.run("pytest", "tests/tf", *session.posargs)


@nox.session
def integration(session: nox.Session) -> None:
    """Every distribution in one environment: cross-package tests, the examples, the docs' code, a notebook."""
    _install_everything(session)
    session.run("pytest", "tests/integration", *session.posargs)


@nox.session
def tracking(session: nox.Session) -> None:
    """The MLflow and TensorBoard loggers against real stores (sqlite, an `mlflow server`), and the tracking example."""
    _warn_if_disk_short(session)
    session.install(
        *_editable(CORE, NUMPY_PLUGIN, BACKENDS["torch"], BACKENDS["sklearn"], *TRACKING_PLUGINS),
        TORCH,
        SCIKIT_LEARN,
        MLFLOW,
        TENSORBOARDX,
        TENSORBOARD,
        PANDAS,
        MATPLOTLIB,
        *TEST_TOOLS,
    )
    session.run("pytest", "tests/tracking", "tests/integration/test_examples.py", "-k", "tracking", *session.posargs)


@nox.session
def ray(session: nox.Session) -> None:
    """The Ray executor on a local Ray and on a `ray start` head, and cross-validation folds on Ray (with PyTorch)."""
    _warn_if_disk_short(session)
    session.install(*_editable(CORE, NUMPY_PLUGIN, BACKENDS["torch"], RAY_PLUGIN), RAY, TORCH, *TEST_TOOLS)
    session.run("pytest", "tests/ray", *session.posargs)


@nox.session(default=False)
def example(session: nox.Session) -> None:
    """Set up everything and run the end-to-end example (the README's first command)."""
    _install_everything(session)
    session.run("python", "examples/quickstart.py")


@nox.session(reuse_venv=False)
def wheels(session: nox.Session) -> None:
    """Build every wheel into dist/, install modularml[torch,sklearn] by name (index reachable) into a fresh venv."""
    _warn_if_disk_short(session)
    dist = ROOT / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    session.run(
        "python",
        "-m",
        "pip",
        "wheel",
        "--quiet",
        "--no-deps",
        "--wheel-dir",
        str(dist),
        *(f"./{d}" for d in DISTRIBUTIONS),
    )
    built = sorted(p.name for p in dist.glob("*.whl"))
    session.log(f"built: {built}")
    if len(built) != len(DISTRIBUTIONS):
        session.error(f"expected {len(DISTRIBUTIONS)} wheels in dist/, found {built}")
    # Third-party requirements first, then ours by name as a user would, with the index reachable:
    # an unrelated project called "modularml" (up to 1.0.0) is on PyPI, and our 2.0.0 in dist/ must win.
    requirements = []
    for folder in (CORE, BACKENDS["torch"], BACKENDS["sklearn"]):
        project = tomllib.loads((ROOT / folder / "pyproject.toml").read_text())["project"]
        requirements += [r for r in project["dependencies"] if not r.startswith("modularml")]
    requirements = [TORCH if r.startswith("torch") else r for r in requirements]
    session.install(*requirements)
    session.install("--find-links", str(dist), "modularml[torch,sklearn]")
    version = tomllib.loads((ROOT / CORE / "pyproject.toml").read_text())["project"]["version"]
    installed = session.run(
        "python",
        "-c",
        "import importlib.metadata as m; "
        "print(' '.join(m.version(d) for d in ('modularml', 'modularml-torch', 'modularml-sklearn')))",
        silent=True,
    ).split()
    if installed != [version] * 3:
        session.error(f"installed modularml, -torch, -sklearn {installed}; expected {version} from dist/")
    output = session.run("modularml", "plugins", "--strict", silent=True)
    session.log(output)
    for expected in ("modularml-torch", "modularml-sklearn", "backends: torch", "backends: scikit"):
        if expected not in output:
            session.error(f"'modularml plugins' does not list {expected!r}")
    session.run("python", "-m", "modularml", "plugins")


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Benchmarks; writes bench/report.md."""
    _install_everything(session)
    session.install(*_editable(RAY_PLUGIN), RAY)
    report = ROOT / "bench" / "report.md"
    report.unlink(missing_ok=True)
    for script in sorted((ROOT / "bench").glob("bench_*.py")):
        if script.name != BENCH_PEERS_SCRIPT:  # the bench-peers session's, with the peers it installs
            session.run("python", str(script), str(report))
    session.log(report.read_text())


@nox.session(name="bench-peers", default=False)
def bench_peers(session: nox.Session) -> None:
    """The training workload through ModularML, PyTorch Lightning, Keras 3 (torch backend) and skorch.

    Appends its section to bench/report.md (run after ``nox -s bench``, which starts the report afresh).
    """
    _warn_if_disk_short(session)
    session.install(*_editable(CORE, BACKENDS["torch"]), TORCH, *BENCH_PEERS)
    report = ROOT / "bench" / "report.md"
    session.run("python", str(ROOT / "bench" / BENCH_PEERS_SCRIPT), str(report))
    session.log(report.read_text())


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site (docs/, mkdocs-material, API reference by mkdocstrings) with --strict.

    The pages' Python blocks are run by tests/integration/test_docs_snippets.py (the integration session).
    """
    session.install(*DOCS_TOOLS)
    session.run("mkdocs", "build", "--strict", "--site-dir", str(ROOT / "site"), env={"NO_MKDOCS_2_WARNING": "1"})
