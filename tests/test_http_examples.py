"""The HTTP API examples: the Go client uses only the standard library and the same endpoints.

Its curl requests and stdlib snippet run against a real server in
:mod:`tests.e2e.test_readme_examples`.
"""

from __future__ import annotations

import re
from pathlib import Path


def test_the_go_example_uses_only_the_standard_library_and_the_same_endpoints() -> None:
    source = (Path(__file__).parents[1] / "examples" / "go" / "main.go").read_text()
    imports = re.search(r"import \((.*?)\)", source, flags=re.S)
    assert imports is not None
    assert sorted(imports.group(1).split()) == sorted(
        ['"bytes"', '"encoding/json"', '"fmt"', '"net/http"', '"os"']
    )  # the standard library only
    for path in ('"/api/w/runs"', '"/params"', '"/metrics"', '"/end"'):
        assert path in source
