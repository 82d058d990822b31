"""The book machinery (needs the `book` extra): executing chapters with a profile, publishing, the
profiles and parameter checks, and a Sphinx extension. The library (`import mdsgap`) never imports it.

    build             execute the chapters with papermill and build the HTML (`python -m mdsgap.book`)
    params            profiles and notebook parameter checks
    publish           the notebooks' parameter tables and launch copies
    sphinx_dedupe_js  a Sphinx extension (inline scripts written once)
"""
from mdsgap.book.build import (NOTEBOOKS, ROOT, BuildError, accepted_parameters, check_profile_types,
                               declared_parameters, execute, glue, main, notebook_stems, repository_url,
                               write_status_page)
from mdsgap.book.params import check_declared
