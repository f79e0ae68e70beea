"""The installed wheel is the product: build it, install it outside the checkout, run the commands.

The wheel is built from a copy of the checkout's files, installed with ``--no-deps`` into a folder
of its own, and every command runs from an empty working directory with that folder first on the
path, so nothing can come from the source tree. The optional extras (tensorboard, the serving API,
the PyTorch references) are made unimportable there, as on a base install.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = ("tensorboard", "tensorflow_serving", "torch", "torchvision", "pytorchvideo", "fvcore")

BLOCK_EXTRAS = f'''
import importlib.abc
import sys

BLOCKED = {EXTRAS!r}


class _BlockExtras(importlib.abc.MetaPathFinder):
    """A base install: the packages of the optional extras are not there."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked: base install)", name=name)
        return None


sys.meta_path.insert(0, _BlockExtras())
'''


def _source_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    return [f for f in out.splitlines() if (ROOT / f).is_file()]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    """Builds the wheel from a copy of the checkout and installs it (no deps) into its own folder."""
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    for name in _source_files():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, src / name)
    dist = base / "dist"
    build = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(src)],
                           capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    wheels = list(dist.glob("autox3d_tf-*.whl"))
    assert len(wheels) == 1, wheels
    site = base / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", str(site),
                              str(wheels[0])], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    (base / "block").mkdir()
    (base / "block" / "sitecustomize.py").write_text(BLOCK_EXTRAS, encoding="utf-8")
    work = base / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "AUTOX3D_TRAINING_DIR")}
    env.update(PYTHONPATH=os.pathsep.join([str(site), str(base / "block")]), TF_CPP_MIN_LOG_LEVEL="2",
               PATH=os.pathsep.join([str(site / "bin"), env.get("PATH", "")]))
    return {"wheel": wheels[0], "site": site, "work": work, "env": env}


def _run(installed: dict, *argv: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), cwd=installed["work"], env=installed["env"], capture_output=True, text=True,
                          timeout=timeout)


def test_wheel_holds_the_package_data_and_declares_its_dependencies(installed):
    import zipfile

    with zipfile.ZipFile(installed["wheel"]) as whl:
        names = set(whl.namelist())
        metadata = next(whl.read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
    for resource in ("autox3d_tf/resources/kinetics400_classes.txt", "autox3d_tf/resources/autox3d/autox3d_xs.json",
                     "autox3d_tf/weights/manifest.json", "autox3d_tf/workflows/train.py"):
        assert resource in names
    assert not any(n.startswith(("tests/", "training/", "benchmarks/")) for n in names)
    requires = {line.split(":", 1)[1].strip().split()[0].split(";")[0] for line in metadata.splitlines()
                if line.startswith("Requires-Dist:") and "extra ==" not in line}
    assert {"tensorflow>=2.18", "keras>=3.5", "matplotlib", "av"} <= requires


def test_installed_package_is_the_one_imported(installed):
    proc = _run(installed, sys.executable, "-c", "import autox3d_tf, tensorboard")
    assert proc.returncode != 0 and "blocked: base install" in proc.stderr
    proc = _run(installed, sys.executable, "-c", "import autox3d_tf.zoo, autox3d_tf; print(autox3d_tf.__file__)")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert Path(proc.stdout.strip()).resolve().is_relative_to(installed["site"].resolve())


@pytest.mark.parametrize("command, flag", [
    ("train", "--train_data"), ("search", "--macs_target"), ("search-entropy", "--population"),
    ("evaluate", "--num_clips"), ("export", "--top_k"),
])
def test_installed_workflow_help(installed, command, flag):
    proc = _run(installed, "autox3d", command, "--help", timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith(f"autox3d {command}: ") and flag in proc.stdout


def test_every_installed_command_has_help(installed):
    from autox3d_tf.cli.main import COMMANDS

    for command in COMMANDS:
        proc = _run(installed, "autox3d", command, "--help", timeout=300)
        assert proc.returncode == 0 and proc.stdout.strip(), f"autox3d {command} --help: {proc.stderr[-2000:]}"
        assert "not available" not in proc.stdout + proc.stderr


def test_installed_info_and_entropy_search(installed):
    proc = _run(installed, "autox3d", "info", "X3D_XS", "--json", timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout)["params"] == 3_794_274
    out = installed["work"] / "entropy.json"
    proc = _run(installed, "autox3d", "search-entropy", "--variant=XS", "--population=8", "--generations=2", "--quiet",
                f"--output={out}", timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(out.read_text())["name"] == "autox3d_xs"


@pytest.mark.slow
def test_installed_quick_demo(installed):
    """The whole flow (make-synthetic, search, train x 2, evaluate x 2, export, serve) from the wheel."""
    out = installed["work"] / "demo"
    proc = _run(installed, "autox3d", "demo", "--quick", "--out", str(out), timeout=1500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((out / "report" / "summary.json").read_text())
    assert summary["served_prediction"]["top_k"]
    for run in ("train", "train_shuffled"):
        metrics = json.loads((out / run / "eval" / "metrics.json").read_text())
        assert metrics["videos"] > 0 and (out / run / "eval" / "confusion_matrix.png").stat().st_size > 1000
    assert (out / "export" / "saved_model" / "1" / "saved_model.pb").exists()
