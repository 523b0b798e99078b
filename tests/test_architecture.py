"""The house's shape: arrows point down only, and a pure command loads only what it uses."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Layers, top to bottom; a package may import only the packages listed for it (and itself).
# fcsio (the FCS reader) stands at the science base's level: a library of its own.
ALLOWED = {
    "app": {"flows", "pipeline", "calibration", "gating", "science", "fcsio"},
    "flows": {"pipeline", "science", "fcsio"},
    "pipeline": {"calibration", "gating", "science", "fcsio"},
    "calibration": {"science"},
    "gating": {"science"},
    "science": set(),
    "fcsio": set(),
    "data_samples": set(),
}


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, top-level package) of every import in a file, wherever it stands (lazy ones too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def test_every_import_points_down() -> None:
    wrong = []
    for package, allowed in ALLOWED.items():
        for path in sorted((REPO / package).rglob("*.py")):
            for line, target in _imports(path):
                if target in ALLOWED and target != package and target not in allowed:
                    wrong.append(f"{path.relative_to(REPO)}:{line} imports {target}")
    assert wrong == []


def test_the_arrow_check_sees_a_wrong_arrow(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from flows.batch import batch_flow\n")
    assert _imports(bad) == [(2, "flows")]


WINGS = ("gating", "calibration")


def test_the_wings_have_no_face_and_are_entered_by_their_modules() -> None:
    """gating/ and calibration/ are entered through the module that does the job (README,
    Layout): their ``__init__`` holds only a docstring, and no one imports a name from it."""
    wrong = []
    for wing in WINGS:
        body = ast.parse((REPO / wing / "__init__.py").read_text()).body
        if not (len(body) == 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)):
            wrong.append(f"{wing}/__init__.py holds more than a docstring")
    for path in sorted(REPO.rglob("*.py")):
        if ".venv" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module in WINGS:
                wrong += [f"{path.relative_to(REPO)}:{node.lineno} imports {alias.name} from {node.module}'s face"
                          for alias in node.names if not (REPO / node.module / f"{alias.name}.py").is_file()]
    assert wrong == []


HEAVY = ("alembic", "sqlalchemy", "prefect", "matplotlib", "flowkit")
PROBE = """
import json, sys
from app.cli import main
code = main(sys.argv[2:])
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(sys.argv[1])))
sys.stderr.write("LOADED " + json.dumps(heavy) + "\\n")
sys.exit(code)
"""


def _loaded(*args: str) -> list[str]:
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(HEAVY), *args], cwd=REPO,
                          capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "MHLADR_HOME": "/nonexistent"})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stderr.rsplit("LOADED ", 1)[1])


def test_analyze_loads_no_database_orchestrator_or_plotting(data_samples: Path) -> None:
    assert _loaded("analyze", str(data_samples / "PT-0042_D07_HLADR.fcs"), "--beads",
                   str(data_samples / "BEADS_2026-03-12_lotA_CANTO.fcs"), "--lots",
                   str(data_samples / "lots.csv"), "--json") == []


@pytest.mark.parametrize("command", [["inspect"], ["calibrate", "--lot", "lotA"]])
def test_inspect_and_calibrate_load_none_either(command: list[str], data_samples: Path) -> None:
    args = [command[0], str(data_samples / "BEADS_2026-03-12_lotA_CANTO.fcs"), *command[1:]]
    if command[0] == "calibrate":
        args += ["--lots", str(data_samples / "lots.csv")]
    assert _loaded(*args, "--json") == []


def test_a_figure_loads_matplotlib_only_when_asked(data_samples: Path, tmp_path: Path) -> None:
    assert _loaded("calibrate", str(data_samples / "BEADS_2026-03-12_lotA_CANTO.fcs"), "--lots",
                   str(data_samples / "lots.csv"), "--figure", str(tmp_path / "f.png"), "--json") == ["matplotlib"]
