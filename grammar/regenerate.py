"""Regenerate ``symmem/_lark_parser.py`` (the pre-built LALR parser) from ``symmem.lark``,
and ``symmem/layers/_index.py`` (which module holds each layer kind) from the kind modules.

Run it from a checkout after editing the grammar or ``symmem.syntax.LARK_OPTIONS``, or after
adding or renaming a layer kind:

    python grammar/regenerate.py

Until then the parser is rebuilt from the grammar on every run (correct, about 0.1 s
slower) and ``tests/test_syntax.py`` fails, naming this script.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    sys.path.insert(0, str(ROOT))  # this checkout's symmem, whatever else is installed
    from symmem.resources import checkout_root, grammar_text
    from symmem.syntax import GENERATED_MODULE, standalone_source

    if checkout_root() != ROOT:
        sys.exit(f"symmem imported from outside {ROOT}: run this script from a source checkout")
    target = ROOT.joinpath(*GENERATED_MODULE.split(".")).with_suffix(".py")
    target.write_text(standalone_source(grammar_text()), encoding="utf-8")
    print(f"wrote {target.relative_to(ROOT)}")
    from symmem.layers import index_source

    index = ROOT / "symmem" / "layers" / "_index.py"
    index.write_text(index_source(), encoding="utf-8")
    print(f"wrote {index.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
