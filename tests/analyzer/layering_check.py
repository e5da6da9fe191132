#!/usr/bin/env python3
# tests/analyzer/layering_check.py: the analyzer's layering, checked on the
# sources (the layering_check_* link targets in analyzer/meson.build catch
# calls that point back up; this catches includes, inline code included).
#  - analyzer/<layer>/ includes only its own layer, the layers below it
#    (symbols < model < output < report) and format/; analyzer/cache/
#    (the persistent analysis cache) stands on model/ only, beside output/
#    and report/, and neither of those includes it;
#  - nothing under analyzer/ includes preload/, cli/ or CLI11;
#  - no code under analyzer/ names stdout or std::cout (the command decides
#    where text goes).
# Usage: layering_check.py SOURCE_ROOT. Prints every violation; exit 1 if any.
import pathlib
import re
import sys

LAYERS = ["symbols", "model", "output", "report"]
# Layers beside the chain: what each may include (its own folder included).
SIDE_LAYERS = {"cache": ["symbols", "model", "cache"]}
INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]')


def violations(root):
    analyzer = root / "analyzer"
    for path in sorted(analyzer.rglob("*")):
        if path.suffix not in (".h", ".cc") or not path.is_file():
            continue
        rel = path.relative_to(root)
        layer = rel.parts[1] if len(rel.parts) > 2 else None
        if layer in SIDE_LAYERS:
            allowed = SIDE_LAYERS[layer]
        else:
            allowed = LAYERS[: LAYERS.index(layer) + 1] if layer in LAYERS else []
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            where = f"{rel}:{number}"
            code = line.split("//", 1)[0]
            m = INCLUDE.match(code)
            if m:
                target = m.group(1)
                if target.startswith(("preload/", "cli/", "CLI/")):
                    yield f"{where}: includes {target}"
                elif target.startswith("analyzer/"):
                    parts = target.split("/")
                    if len(parts) < 3 or parts[1] not in allowed:
                        yield f"{where}: {layer or 'analyzer'} includes {target}"
            if re.search(r"\bstdout\b|std::cout", code):
                yield f"{where}: writes to stdout"


def main():
    found = list(violations(pathlib.Path(sys.argv[1])))
    for v in found:
        print(v)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
