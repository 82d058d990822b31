"""The package's layout: the README's table names every module in the tree, and the library imports no book
machinery (issue 23)."""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def modules_in_tree() -> set[str]:
    out = set()
    for p in (ROOT / "mdsgap").rglob("*.py"):
        parts = p.relative_to(ROOT).with_suffix("").parts
        if parts[-1] in ("__init__", "__main__"):
            continue
        out.add(".".join(parts))
    return out


def test_the_readme_layout_table_names_every_module_and_nothing_else():
    text = (ROOT / "README.md").read_text()
    table = text[text.index("### The package"):text.index("## Using a real model")]
    named = set()
    for row in re.findall(r"^\| `(mdsgap[\w.]*)` \| (.*) \|$", table, re.M):
        package, what = row
        subs = re.findall(r"module `(\w+)`|`(\w+)`", what)
        names = {a or b for a, b in subs}
        if (ROOT / package.replace(".", "/")).is_dir():
            named |= {f"{package}.{n}" for n in names if (ROOT / package.replace(".", "/") / f"{n}.py").exists()}
        else:
            named.add(package)
    assert named == modules_in_tree(), (f"in the tree, not in the README: {modules_in_tree() - named}; "
                                        f"in the README, not in the tree: {named - modules_in_tree()}")


def test_the_library_imports_no_book_machinery():
    library = sorted(m for m in modules_in_tree() if not m.startswith("mdsgap.book"))
    code = ("import importlib, sys\n"
            f"for m in {library!r}: importlib.import_module(m)\n"
            "loaded = sorted(m for m in sys.modules if m.startswith('mdsgap.book') or m in "
            "('papermill', 'jupytext', 'jupyter_book', 'myst_nb'))\n"
            "print(loaded)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]", f"the library imported book machinery: {out.stdout}"
