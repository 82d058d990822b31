"""Sphinx 7.4 writes a script that has a body but no file twice (sphinx-doc/sphinx#13402, fixed in Sphinx 8.2,
which jupyter-book 1.x cannot use): sphinx-thebe's `const THEBE_JS_URL = ...` then throws "Identifier
'THEBE_JS_URL' has already been declared" on every page. Drop the repeats."""


def _dedupe_scripts(app, pagename, templatename, context, doctree):
    seen, kept = set(), []
    for js in context.get("script_files", []):
        key = (str(js.filename or ""), tuple(sorted((js.attributes or {}).items())))
        if key not in seen:
            seen.add(key)
            kept.append(js)
    context["script_files"][:] = kept


def setup(app):
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
