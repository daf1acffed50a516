"""Prints the N-th command of the README's Quickstart block, so CI runs exactly what users read.

    python tools/readme_command.py README.md 1
"""

import sys


def quickstart_commands(text: str) -> list[str]:
    section = text[text.index("## Quickstart") :]
    start = section.index("```bash") + len("```bash")
    block = section[start : section.index("```", start)]
    return [line.strip() for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]


if __name__ == "__main__":
    path, n = sys.argv[1], int(sys.argv[2])
    with open(path) as f:
        print(quickstart_commands(f.read())[n - 1])
