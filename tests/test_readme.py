"""The README and the user guide in docs/guide are what users type: the README's Quickstart is
what CI runs (command 1 verbatim, command 2's test command), their Python examples run, their
commands and options exist, the messages, files and variables they name are the code's, and their
links lead somewhere."""

from __future__ import annotations

import functools
import os
import sys

import pytest

ROOT = os.path.join(os.path.dirname(__file__), "..")
sys.path.insert(0, os.path.join(ROOT, "tools"))

from readme_command import quickstart_commands  # noqa: E402

GUIDE = os.path.join(ROOT, "docs", "guide")
#: What users read: the README, the entry point, then the user guide it lists, one topic a file.
DOCUMENTS = ["README.md", *sorted(f"docs/guide/{name}" for name in os.listdir(GUIDE) if name.endswith(".md"))]
MODEL_CARD = "xvertfast/weights/MODEL_CARD.md"


def test_quickstart_is_what_ci_runs():
    commands = quickstart_commands(_readme())
    with open(os.path.join(ROOT, ".ci", "run")) as f:
        ci = f.read()
    assert len(commands) == 2
    assert "xvertfast demo" in commands[0] and "tools/readme_command.py README.md 1" in ci
    test_command = commands[1].split("&&")[-1].strip()
    assert test_command == "python -m pytest tests -q"
    assert test_command in ci.splitlines()


def test_reading_and_writing_example_runs_as_written(tmp_path, monkeypatch):
    """docs/guide/reading-writing.md's read_image/write_image example, run verbatim with the
    bundled sample as chest.dcm in an empty folder: write_image makes no folders, so the example
    must."""
    import shutil

    pytest.importorskip("pydicom")
    from xvertfast.samples import SAMPLE_DICOM

    document, example = _python_example('write_image("out/chest.dcm"')
    shutil.copy(SAMPLE_DICOM, tmp_path / "chest.dcm")
    monkeypatch.chdir(tmp_path)
    _run_example(document, example)
    assert (tmp_path / "out" / "chest.dcm").is_file()


# ---- the documents' other commands and examples: what they tell users to type must work ----

#: Options the README or the guide names that belong to other tools, each with its owner.
FOREIGN_OPTIONS = {
    "--no-build-isolation": "pip install",
    "--sdist": "python -m build",
    "--no-isolation": "python -m build",
    "--build": "cmake --build",
    "--benchmark-only": "pytest-benchmark",
    "--benchmark-group-by": "pytest-benchmark",
    "--files-from": "rsync (a comparison)",
    "--fmad": "nvcc",
}


def _read(document: str) -> str:
    with open(os.path.join(ROOT, document)) as f:
        return f.read()


def _readme() -> str:
    return _read("README.md")


def _prose(text: str) -> str:
    """A document without its code blocks."""
    import re

    return re.sub(r"```.*?```", "", text, flags=re.S)


def _code_blocks(text: str, language: str) -> list[str]:
    import re

    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def _command_lines(block: str) -> list[str]:
    """A bash block's commands: continuation lines joined, comments dropped, split at
    ``&&``, ``&``, ``;`` and ``|`` into one command each."""
    import re

    joined = re.sub(r"\\\n\s*", " ", block)
    commands = []
    for line in joined.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        commands += [part.strip() for part in re.split(r"&&|;|\|\||(?<!&)&(?!&)|\|", line) if part.strip()]
    return commands


def _shell_words(command: str) -> list[str]:
    """The words a shell would pass, with the documents' notation undone: ``[--opt]`` is an
    optional part (kept, brackets dropped), ``...`` stands for options shown above (dropped),
    and shell arithmetic and variables become a number."""
    import re
    import shlex

    command = re.sub(r"\$\(\([^)]*\)\)", "1", command)
    command = re.sub(r"\$\{?\w+\}?", "0", command)
    return [w for w in shlex.split(command.replace("[", " ").replace("]", " ")) if w != "..."]


def _bench_options() -> dict[str, set[str]]:
    """Each bench script's options, read from its ``add_argument`` calls (not imported: some
    import torch and the data at the top)."""
    import ast

    options = {}
    bench = os.path.join(ROOT, "bench")
    for name in os.listdir(bench):
        if not name.endswith(".py"):
            continue
        with open(os.path.join(bench, name)) as f:
            tree = ast.parse(f.read())
        options[name] = {arg.value for node in ast.walk(tree)
                         if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_argument"
                         for arg in node.args
                         if isinstance(arg, ast.Constant) and str(arg.value).startswith("-")}  # fmt: skip
    return options


def _cli_options() -> dict[str, set[str]]:
    import argparse

    from xvertfast.cli import build_parser

    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    options = {name: {o for a in p._actions for o in a.option_strings} for name, p in sub.choices.items()}
    options[""] = {o for a in parser._actions for o in a.option_strings}
    return options


def _xvertfast_commands(text: str) -> list[str]:
    return [c for block in _code_blocks(text, "bash") for c in _command_lines(block) if c.startswith("xvertfast ")]


@pytest.mark.parametrize("document", DOCUMENTS)
def test_xvertfast_commands_parse(document):
    """Every ``xvertfast ...`` command in a document's bash blocks is accepted by the CLI's
    parser as written: its options exist, its values are valid choices and formats."""
    from xvertfast.cli import build_parser

    for command in _xvertfast_commands(_read(document)):
        try:
            build_parser().parse_args(_shell_words(command)[1:])
        except SystemExit:
            raise AssertionError(f"{document}: command does not parse: {command}") from None
        assert not _abbreviated(command), f"{document}: {_abbreviated(command)} abbreviated: {command}"


def _abbreviated(command: str) -> list[str]:
    """The options of an ``xvertfast COMMAND ...`` line that are not that command's own names
    but prefixes argparse takes for them (``--stage`` for ``--stages``): a parse passes them, and
    one more option of that prefix would make the line ambiguous."""
    words, cli = _shell_words(command), _cli_options()
    options = cli[words[1]] if len(words) > 1 and words[1] in cli else cli[""]  # (xvertfast --version)
    return [w.split("=")[0] for w in words[1:] if w.startswith("--") and w.split("=")[0] not in options | {"--"}]


def test_the_model_cards_commands_parse(capsys):
    """The model card's commands, how the default model was trained and scored and the larger
    models it was compared with (in its code blocks, and whole commands, with ``-o``, in its
    running text, over a line break too), are accepted by the CLI's parser as written: a reader
    re-running them meets no renamed option (``--patience``, ``--stages``, ``--amp`` and
    ``--compare-to`` are named nowhere else)."""
    import re

    from xvertfast.cli import build_parser

    text = _read(MODEL_CARD)
    blocks = [c for block in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S) for c in _command_lines(block)]
    spans = [" ".join(span.split()) for span in re.findall(r"`(xvertfast [^`]+)`", _prose(text)) if " -o " in span]
    commands = [c for c in blocks + spans if c.startswith("xvertfast ")]
    assert len(commands) >= 5 and sum("--patience" in c for c in commands) >= 3, commands
    for command in commands:
        try:
            build_parser().parse_args(_shell_words(command)[1:])
        except SystemExit:
            raise AssertionError(f"{MODEL_CARD}: command does not parse: {command}\n"
                                 f"{capsys.readouterr().err}") from None  # fmt: skip
        assert not _abbreviated(command), f"{MODEL_CARD}: {_abbreviated(command)} abbreviated: {command}"


def _inline_options(text: str) -> list[tuple[str, str | None, str, str]]:
    """Each option in a backticked span of running text: (span, the command named with it or None,
    option, the value shown after it or '')."""
    import re

    commands = "|".join(n for n in _cli_options() if n)
    found = []
    for span in re.findall(r"`([^`\n]+)`", _prose(text)):
        command = re.match(rf"(?:xvertfast\s+)?({commands})\s", span)
        for option, value in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)(?:[ =]([\w.-]+))?", span):
            found.append((span, command.group(1) if command else None, option, value))
    return found


def _option_choices() -> dict[str, set[str]]:
    import argparse

    from xvertfast.cli import build_parser

    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    choices: dict[str, set[str]] = {}
    for parser in sub.choices.values():
        for action in parser._actions:
            for option in action.option_strings:
                if action.choices:
                    choices.setdefault(option, set()).update(action.choices)
    return choices


@pytest.mark.parametrize("document", DOCUMENTS)
def test_inline_options_are_valid(document):
    """An option in running text is an option of the command named with it (``xvertfast
    enhance --mode full``), and a value shown after an option with fixed choices
    (``--brightness original``, ``--precision bf16``) is one of its choices."""
    cli, choices = _cli_options(), _option_choices()
    for span, command, option, value in _inline_options(_read(document)):
        if command:
            assert option in cli[command], f"{document}: {option} is not an option of {command}: `{span}`"
        if option in choices and value:
            assert value in choices[option], f"{document}: {value!r} is not a choice of {option}: `{span}`"


def _bench_commands(text: str) -> tuple[list[str], list[str]]:
    """The ``python bench/NAME.py ...`` commands of a document: those in bash blocks, and those
    in backticks in its running text."""
    import re

    prose = re.findall(r"`(python bench/[^`\n]+)`", _prose(text))
    blocks = [c for block in _code_blocks(text, "bash") for c in _command_lines(block) if c.startswith("python bench/")]
    return blocks, prose


@pytest.mark.parametrize("document", [*DOCUMENTS, "bench/RESULTS.md"])
def test_bench_commands_exist(document):
    """Every ``python bench/NAME.py ...`` a document or the results page gives, in a block or in
    running text, names a script that exists and options that script has."""
    import re

    scripts = _bench_options()
    blocks, prose = _bench_commands(_read(document))
    for command in blocks + prose:
        words = _shell_words(command)
        name = os.path.basename(words[1])
        assert name in scripts, f"{document}: no bench/{name}: {command}"
        for option in [w.split("=")[0] for w in words[2:] if re.match(r"--?[a-z]", w)]:
            assert option in scripts[name], f"{document}: bench/{name} has no option {option}: {command}"


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_option_a_document_names_is_known(document):
    """An option anywhere in a document (running text included) is one of the CLI's, a bench
    script's, or another tool's listed in FOREIGN_OPTIONS: a renamed option leaves none behind."""
    import re

    known = set(FOREIGN_OPTIONS)
    for options in (*_cli_options().values(), *_bench_options().values()):
        known |= options
    named = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", _read(document)))
    assert named - known == set(), f"{document} names options nothing has: {sorted(named - known)}"


def _python_example(marker: str) -> tuple[str, str]:
    """The one python block of the README and the guide that holds ``marker``, with the document
    it is in, dedented (a block in a list item is indented)."""
    import textwrap

    found = [(document, block) for document in DOCUMENTS for block in _code_blocks(_read(document), "python")
             if marker in block]  # fmt: skip
    assert len(found) == 1, f"{len(found)} python examples hold {marker!r}: {[d for d, _ in found]}"
    document, example = found[0]
    return document, textwrap.dedent(example)


def _run_example(document: str, example: str) -> dict:
    """Runs an example as a user would paste it; returns its variables."""
    namespace: dict = {}
    exec(compile(example, document, "exec"), namespace)
    return namespace


def test_enhancer_example_runs(tmp_path, monkeypatch):
    """docs/guide/enhancing.md's Enhancer example, with the bundled sample as chest.dcm and a
    folder holding it as /data/cxr: one image enhanced, then the folder as a batch job."""
    import shutil

    pytest.importorskip("pydicom")
    from xvertfast.samples import SAMPLE_DICOM

    document, example = _python_example("Enhancer(")
    assert example.count('"/data/cxr"') == 1
    (tmp_path / "archive").mkdir()
    shutil.copy(SAMPLE_DICOM, tmp_path / "chest.dcm")
    shutil.copy(SAMPLE_DICOM, tmp_path / "archive" / "chest.dcm")
    monkeypatch.chdir(tmp_path)
    done = _run_example(document, example.replace('"/data/cxr"', repr(str(tmp_path / "archive"))))
    result, summary = done["result"], done["summary"]
    assert result.pixels.shape == done["read_image"]("chest.dcm").pixels.shape
    assert 0.0 <= float(result.pixels.min()) and float(result.pixels.max()) <= 1.0
    assert (tmp_path / "out" / "chest.dcm").is_file(), summary


def test_ops_example_runs():
    """The ops example in docs/guide/ops.md, as written except for its sizes (8 x 128 maps of
    512^2 are 1 GB; 64^2 keeps the test light): the losses are finite and reach the network
    output."""
    document, example = _python_example("select_max_entropy(features)")
    assert example.count("512, 512") >= 3
    done = _run_example(document, example.replace("512, 512", "64, 64"))
    assert done["out"].grad is not None and done["out"].grad.abs().sum() > 0
    assert done["target"].shape == (8, 1, 64, 64) and not done["target"].requires_grad


def test_wls_example_runs(capsys):
    done = _run_example(*_python_example("xvertfast.wls("))
    assert done["smooth"].shape == (512, 512)
    import re

    printed = re.fullmatch(r"\[(\d+)\] \[([^\]]+)\]\n", capsys.readouterr().out)  # per image: "[8] [9e-05]"
    assert printed and int(printed.group(1)) >= 1 and float(printed.group(2)) <= 1e-4


def test_preprocess_example_runs(tmp_path, monkeypatch):
    """docs/guide/preprocessing.md's example on the bundled sample written as chest.png."""
    pytest.importorskip("pydicom")
    from xvertfast.io import read_image, write_image
    from xvertfast.samples import SAMPLE_DICOM

    write_image(str(tmp_path / "chest.png"), read_image(SAMPLE_DICOM).pixels)
    monkeypatch.chdir(tmp_path)
    done = _run_example(*_python_example("xvertfast.find_spine("))
    assert done["pp"].xp.shape == done["rad"].pixels.shape
    assert len(done["spine"].train_rois(512)) == 2


# ---- the messages troubleshooting.md quotes, the paths and variables the documents name: the code's ----

def test_outputs_dir_example_runs_and_scores_as_the_built_in_clahe(tmp_path, monkeypatch):
    """docs/guide/evaluation.md's example writing CLAHE outputs for ``outputs=DIR`` runs as written
    (its /data/cxr a folder of two PNGs), and, as the guide says, with CLAHE's default settings the
    outputs it writes, as float TIFFs or as PNGs at the input's depth, score exactly as the built-in
    ``clahe`` does; ``tiles=16`` scores otherwise."""
    import csv

    pytest.importorskip("pydicom")
    pytest.importorskip("skimage")
    from xvertfast.cli import main
    from xvertfast.io import read_image, write_image
    from xvertfast.samples import SAMPLE_DICOM

    document, example = _python_example("clahe(rad.pixels, tiles=16)")
    assert example.count('"/data/cxr/*.png"') == 1 and example.count(", tiles=16") == 1
    (tmp_path / "cxr").mkdir()
    pixels = read_image(SAMPLE_DICOM).pixels
    write_image(str(tmp_path / "cxr" / "a.png"), pixels)
    write_image(str(tmp_path / "cxr" / "b.png"), pixels[:, ::-1].copy())
    monkeypatch.chdir(tmp_path)
    example = example.replace('"/data/cxr/*.png"', repr(str(tmp_path / "cxr" / "*.png")))
    _run_example(document, example)
    assert sorted(os.listdir("clahe16")) == ["a.tif", "b.tif"]
    for folder, extension in (("tif_float", ".tif"), ("png16", ".png")):
        _run_example(document, example.replace("clahe16", folder).replace(", tiles=16", "").replace(".tif", extension))
    methods = "clahe,tif_float:outputs=tif_float,png16:outputs=png16,clahe16:outputs=clahe16"
    assert main(["evaluate", "cxr", "-o", "report", "--methods", methods, "--metrics", "entropy,tenengrad,lpc_si",
                 "--pictures", "0", "-q"]) == 0  # fmt: skip
    with open("report/scores.csv") as f:
        scores = {(r["file"], r["roi"], r["method"]): (r["entropy"], r["tenengrad"], r["lpc_si"])
                  for r in csv.DictReader(f)}  # fmt: skip
    built_in = {(file, roi): values for (file, roi, method), values in scores.items() if method == "clahe"}
    assert len(built_in) == 4, scores
    for method in ("tif_float", "png16"):
        assert {(file, roi): v for (file, roi, m), v in scores.items() if m == method} == built_in, method
    assert all(scores[(file, roi, "clahe16")] != values for (file, roi), values in built_in.items())


#: How docs/guide/troubleshooting.md writes a part of a message that varies: an ellipsis, a size
#: or count, a folder the user chose, a quoted value.
_PLACEHOLDER = r"\.\.\.|\b(?:W|H|N|OUT|RUN_DIR)\b|'[^']*'"
_WILD, _HOLE = "\1", "\0"


def _tokens(text: str) -> tuple[str, ...]:
    """Words and marks; a troubleshooting.md placeholder as _WILD, an f-string hole as _HOLE."""
    import re

    return tuple(re.findall(rf"{_PLACEHOLDER}|[\w-]+|[^\w\s]", text.replace("\0", " \0 ")))


def _code_messages() -> list[tuple[str, ...]]:
    """Every string literal of the package as tokens, an f-string's holes as _HOLE."""
    import ast

    texts = []
    for folder, _, files in os.walk(os.path.join(ROOT, "xvertfast")):
        for name in files:
            if not name.endswith(".py"):
                continue
            with open(os.path.join(folder, name)) as f:
                tree = ast.parse(f.read())
            for node in ast.walk(tree):
                if isinstance(node, ast.JoinedStr):
                    texts.append("".join(v.value if isinstance(v, ast.Constant) else "\0" for v in node.values))
                elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                    texts.append(node.value)
    return [tuple(_HOLE if t == "\0" else t for t in _tokens(text)) for text in texts]


@functools.cache
def _said(message: str) -> tuple[str, ...]:
    """A message docs/guide/troubleshooting.md quotes, as tokens, its placeholders as _WILD."""
    import re

    return tuple(_WILD if re.fullmatch(_PLACEHOLDER, t) else t for t in _tokens(message))


def _gives(code: tuple[str, ...], message: str) -> bool:
    """Whether a code string gives troubleshooting.md's message somewhere in it: its words and
    marks in order, a placeholder of the guide's standing for any run of the code's, and an
    f-string hole for up to three of its words (``xvertfast {job}`` is ``xvertfast enhance``,
    ``{process}`` is ``12-bit extended JPEG``), with at least as many words, and two, matched as
    written."""
    import functools

    said = _said(message)

    @functools.cache
    def written(i: int, j: int, budget: int) -> int:
        """The most words matched as written from said[i:] at code[j:], holes taking at most
        ``budget`` words; -1 where none matches."""
        if i == len(said):
            return 0
        if said[i] == _WILD:
            return max(written(i + 1, k, budget) for k in range(j, len(code) + 1))
        if j == len(code):
            return -1
        if code[j] == _HOLE:
            best, k, taken = -1, i, 0
            while k < len(said) and taken + (said[k][0].isalnum()) <= budget:
                taken += said[k][0].isalnum()
                k += 1
                best = max(best, written(k, j + 1, budget - taken))
            return best
        if said[i] != code[j]:
            return -1
        rest = written(i + 1, j + 1, budget)
        return -1 if rest < 0 else rest + said[i][0].isalnum()

    return any(written(0, j, cap) >= max(2, cap) for cap in range(4) for j in range(len(code)))


def _section(document: str, heading: str) -> str:
    """A document's text from ``heading`` (a whole heading line) to the next heading of its level
    or above, or to the end."""
    return _section_of(_read(document), heading)


def _section_of(text: str, heading: str) -> str:
    """_section on a text: a ``#`` line inside a fenced code block (a bash comment) is no heading,
    so it does not end the section."""
    import re

    start = text.index(f"\n{heading}\n") + 1 if not text.startswith(f"{heading}\n") else 0
    level = len(heading) - len(heading.lstrip("#"))
    lines = text[start:].splitlines(keepends=True)
    fenced, end = False, start + len(lines[0])
    for line in lines[1:]:
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(rf"#{{1,{level}}} ", line):
            break
        end += len(line)
    return text[start:end]


def test_a_comment_in_a_code_block_does_not_end_a_section():
    """A bash comment in a fenced block of a section is part of it, not the next heading."""
    text = "# Top\n\n## Stages\n\n```bash\n# resume a run\nxvertfast train\n```\nafter\n\n## Next\nnot in\n"
    section = _section_of(text, "## Stages")
    assert section.startswith("## Stages\n") and "xvertfast train" in section and "after" in section
    assert "## Next" not in section and "not in" not in section


def _troubleshooting_messages() -> list[str]:
    """The messages (in backticks) in the first column of the guide's "When something goes wrong"
    table (not the command names beside them: `preprocess` likewise)."""
    import re

    section = _section("docs/guide/troubleshooting.md", "# When something goes wrong")
    messages = []
    for first_cell in re.findall(r"^\| (.+?) \| .+\|$", section, flags=re.M):
        messages += [m for m in re.findall(r"`([^`]+)`", first_cell) if " " in m]
    return messages


def test_troubleshooting_messages_are_the_codes():
    """Every message the guide's "When something goes wrong" table quotes is one the code gives
    (its varying parts aside): a reworded message leaves the table pointing at nothing."""
    messages = _troubleshooting_messages()
    assert len(messages) >= 20, messages
    code = _code_messages()
    index = _token_index(code)
    missing = [m for m in messages if not any(_gives(code[k], m) for k in _could_give(code, index, m))]
    assert not missing, f"docs/guide/troubleshooting.md quotes messages the code does not give: {missing}"


def _could_give(code: list[tuple[str, ...]], index: dict[str, list[int]], message: str) -> list[int]:
    """The indices of the code strings that could give ``message`` (_gives), found through an index
    of their tokens rather than by trying each of the thousands: a token of the message that a string
    lacks must be taken by one of its f-string holes, which take three words at most, so a string
    that can give it holds one of any four of its words (the four rarest are looked up), holds two
    of its tokens, and lacks no more than three of its words and, without a hole, no token at all."""
    said = [t for t in _said(message) if t != _WILD]
    words = sorted({t for t in said if t[0].isalnum()}, key=lambda t: len(index.get(t, ())))
    near = sorted(set().union(*(index.get(t, ()) for t in words[:4])))
    wanted = set(said)
    could = []
    for k in near:
        held = set(code[k])
        lacking = [t for t in said if t not in held]
        if len(wanted & held) >= 2 and (not lacking or (_HOLE in held and sum(t[0].isalnum() for t in lacking) <= 3)):
            could.append(k)
    return could


def _token_index(code: list[tuple[str, ...]]) -> dict[str, list[int]]:
    """Each token of the code strings with the indices of the strings that hold it."""
    index: dict[str, list[int]] = {}
    for k, tokens in enumerate(code):
        for t in set(tokens):
            index.setdefault(t, []).append(k)
    return index


def _repository_files() -> list[str]:
    """The files git tracks; in a copy without git (an unpacked sdist), the files there."""
    import subprocess

    try:
        listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
        if listed.returncode == 0 and listed.stdout.strip():
            return listed.stdout.split()
    except OSError:  # no git
        pass
    return [os.path.relpath(os.path.join(folder, name), ROOT).replace(os.sep, "/")
            for folder, _, names in os.walk(ROOT) for name in names]  # fmt: skip


def _files_named(document: str, tracked: list[str]) -> tuple[list[str], list[str]]:
    """The repository paths a document names: its relative links (resolved from its folder) and
    the paths in backticks in its running text (from the repository root)."""
    import re

    tops = {path.split("/")[0] for path in tracked}
    text = _read(document)
    links = [os.path.normpath(os.path.join(os.path.dirname(document), link))
             for link in re.findall(r"\]\(([^)#\s]+)\)", text) if "://" not in link]  # fmt: skip
    named = [span.rstrip("/") for span in re.findall(r"`([\w./-]+)`", _prose(text))
             if span.split("/")[0] in tops and "/" in span.strip("/")]  # fmt: skip
    return links, named


@pytest.mark.parametrize("document", [*DOCUMENTS, MODEL_CARD])
def test_the_files_named_exist(document):
    """Every file or folder of the repository a document names, in a link or in backticks in its
    text (``tests/io/test_shards.py``), is in git: a file moved or renamed leaves none behind."""
    tracked = _repository_files()
    links, named = _files_named(document, tracked)
    known = {"/".join(path.split("/")[:n]) for path in tracked for n in range(1, path.count("/") + 2)}
    missing = sorted({p for p in links + named if p not in known})
    assert not missing, f"{document} names files the repository does not hold: {missing}"


def _links(text: str) -> list[str]:
    """A Markdown text's link targets, images' included, outside its code blocks."""
    import re

    return re.findall(r"\]\(([^)\s]+)\)", _prose(text))


def _anchors(text: str) -> set[str]:
    """The anchors GitHub gives a Markdown text's headings: lower case, punctuation dropped,
    spaces as hyphens, a repeated one numbered (``-1``, ``-2``)."""
    import re

    anchors: set[str] = set()
    for heading in re.findall(r"^#+ (.+?)\s*$", _prose(text), flags=re.M):
        anchor = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        numbered, n = anchor, 0
        while numbered in anchors:
            n += 1
            numbered = f"{anchor}-{n}"
        anchors.add(numbered)
    return anchors


@pytest.mark.parametrize("document", [*DOCUMENTS, MODEL_CARD])
def test_relative_links_lead_somewhere(document):
    """Every relative link of the README, the guide and the model card leads to a file or folder
    that exists, from the document's own folder (text moved between them keeps its links right),
    and a link to a heading (``#name``, in the same or another Markdown file) to one it has."""
    broken = []
    for link in _links(_read(document)):
        if "://" in link or link.startswith("mailto:"):
            continue
        path, _, anchor = link.partition("#")
        target = os.path.normpath(os.path.join(ROOT, os.path.dirname(document), path)) if path else os.path.join(ROOT, document)
        if not os.path.exists(target):
            broken.append(f"{link} (no {os.path.relpath(target, ROOT)})")
        elif anchor and target.endswith(".md"):
            with open(target) as f:
                if anchor not in _anchors(f.read()):
                    broken.append(f"{link} (no heading #{anchor} in {os.path.relpath(target, ROOT)})")
    assert not broken, f"{document} has links that lead nowhere: {broken}"


def test_the_readme_lists_the_guide():
    """The README's Documentation section links every file of docs/guide, and only files that are
    there: a guide file added or removed is listed or unlisted with it."""
    listed = {link for link in _links(_section("README.md", "## Documentation")) if link.startswith("docs/guide/")}
    assert listed == set(DOCUMENTS[1:]), (sorted(listed), DOCUMENTS[1:])


def test_departures_from_design_name_modules_that_exist():
    """Each row of "Where xvertfast departs from DESIGN.md" names the module that departs, and
    that module exists: a file moved or renamed makes the row fail here, not go stale."""
    import re

    section = _section("docs/guide/development.md", "## Where xvertfast departs from DESIGN.md")
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| DESIGN.md says")]
    assert len(rows) >= 8, rows
    for row in rows:
        what, does, why = (cell.strip() for cell in row.strip("|").split(" | "))
        assert "§" in what or what.startswith("Intro"), f"departure names no DESIGN.md section: {row}"
        assert why, f"departure says no reason, not even 'reason not recorded': {row}"
        paths = re.findall(r"`((?:xvertfast|csrc|tests|bench)/[\w./-]*)`", does + why)
        assert paths, f"departure names no module: {row}"
        missing = [p for p in paths if not os.path.exists(os.path.join(ROOT, p))]
        assert not missing, f"departure names modules that do not exist: {missing}"


def _layout_entries() -> list[str]:
    """The paths in the first column of development.md's Layout block, a bare name after a comma
    (``xvertfast/info.py, cli.py``) in the folder of the path before it."""
    import re

    (block,) = _code_blocks(_section("docs/guide/development.md", "## Layout"), "")
    entries = []
    for line in block.splitlines():
        first, *others = re.match(r"([\w./-]*(?:, [\w./-]+)*)", line).group(1).split(", ")
        if first:
            entries += [first, *(os.path.dirname(first.rstrip("/")) + "/" + name for name in others)]
    return entries


def test_the_layout_names_every_module_and_command():
    """development.md's Layout names every module and subpackage of xvertfast/ (``_pickled_errors.py``
    and ``_extension.py`` were left out of it), every path it names exists, and its ``cli.py`` line
    lists the CLI's commands: a module or command added or renamed without its line fails here."""
    import re

    entries = _layout_entries()
    assert len(entries) >= 20, entries
    missing = [e for e in entries if not os.path.exists(os.path.join(ROOT, e))]
    assert not missing, f"docs/guide/development.md's Layout names paths that do not exist: {missing}"
    package = os.path.join(ROOT, "xvertfast")
    modules = {f"xvertfast/{name}" for name in os.listdir(package) if name.endswith(".py") and name != "__init__.py"}
    modules |= {f"xvertfast/{name}/" for name in os.listdir(package)
                if os.path.isfile(os.path.join(package, name, "__init__.py"))}  # fmt: skip
    unnamed = sorted(modules - set(entries))
    assert not unnamed, f"docs/guide/development.md's Layout does not name these modules of xvertfast/: {unnamed}"
    (commands,) = re.findall(r"`xvertfast ([a-z]+(?: \| [a-z]+)+)`", _section("docs/guide/development.md", "## Layout"))
    assert set(commands.split(" | ")) == set(_cli_options()) - {""}, commands


def test_the_python_names_the_documents_give_exist():
    """Every ``xvertfast.NAME`` the README, the guide and the model card give in their running text
    (``xvertfast.infer.export.load_aoti``, ``xvertfast.preprocess.polarity_score``) is a module or
    an attribute of one: a function moved or renamed leaves no name behind (the examples' names are
    held by running them)."""
    import importlib
    import re

    importlib.import_module("torch")  # (before xvertfast._C)

    def resolve(name: str) -> None:
        if name.split(".")[:2] == ["xvertfast", "_C"] and not _extension_loads():
            return  # (a build without it: the extension the README and development.md name is not there to import)
        parts = name.split(".")
        for i in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:i]))
            except ImportError:
                continue
            for part in parts[i:]:
                obj = getattr(obj, part)
            return

    named = {(document, name) for document in [*DOCUMENTS, MODEL_CARD]
             for name in re.findall(r"(?<![\w./-])(xvertfast(?:\.[A-Za-z_]\w*)+)",
                                    _prose(_read(document)))}  # fmt: skip
    assert len({name for _, name in named}) >= 10, named
    missing = []
    for document, name in sorted(named):
        try:
            resolve(name)
        except AttributeError:
            missing.append(f"{document}: {name}")
    assert not missing, f"the documents name what xvertfast does not have: {missing}"


def _extension_loads() -> bool:
    """Whether xvertfast._C is in use here (its warning, where it is not, is not this test's)."""
    import warnings

    from xvertfast._extension import has_extension

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return has_extension()


def test_the_python_names_are_checked_without_the_compiled_extension(monkeypatch):
    """Where xvertfast._C was not built or fails to import (a source checkout, a torch it was not
    built against), the check of the documents' names failed, naming xvertfast._C as a name
    xvertfast does not have: it is the extension, not a name to find. Blocked here by an import hook."""
    import importlib.abc
    import sys

    import xvertfast
    from xvertfast import _extension

    class NoExtension(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "xvertfast._C":
                raise ImportError("xvertfast._C blocked by the test (as a build without it)")
            return None

    monkeypatch.delitem(sys.modules, "xvertfast._C", raising=False)
    monkeypatch.delattr(xvertfast, "_C", raising=False)
    monkeypatch.setattr(sys, "meta_path", [NoExtension(), *sys.meta_path])
    for name, value in (("_loaded", False), ("_module", None), ("_error", None)):
        monkeypatch.setattr(_extension, name, value)
    test_the_python_names_the_documents_give_exist()


def _exit_codes(text: str) -> dict[int, str]:
    """The codes of an "Exit code: 0 ..., 1 ..." list (to its sentence's end), each with its words."""
    import re

    (listed,) = re.findall(r"Exit code: (0 .+?)(?:\.\s|\.$)", " ".join(text.split()))
    return {int(code): words for code, words in re.findall(r"(?:^|, )(\d+) ((?:(?!, \d+ ).)+)", listed)}


def test_the_guide_gives_enhances_exit_codes_as_its_help_does():
    """docs/guide/enhancing.md lists enhance's exit codes, and ``enhance --help`` does: the same
    codes (it had left out 129, SIGHUP), and 1 for each cause the help gives it (it had left out a
    full disk and a --report that could not be written, then the job's log lost)."""
    import argparse

    from xvertfast.cli import build_parser

    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    helped, guided = _exit_codes(sub.choices["enhance"].description), _exit_codes(_read("docs/guide/enhancing.md"))
    assert set(guided) == set(helped) and len(helped) >= 6, (guided, helped)
    for cause in ("failed", "found", "disk", "log", "--report"):
        assert (cause in helped[1]) == (cause in guided[1]), (cause, guided[1], helped[1])


def test_the_readme_names_every_optional_package_info_reports():
    """The README's Quickstart says which optional packages `xvertfast info` reports as importable:
    each of info's OPTIONAL is named there (as ``info --help`` names them, test_cli), so a package
    added to info is added to what a new user is told it shows."""
    import re

    from xvertfast.info import OPTIONAL

    quickstart = " ".join(_section("README.md", "## Quickstart").split())
    (said,) = re.findall(r"`xvertfast info` tells you what you got: (.+?)\)\.", quickstart)
    names = {"skimage": "scikit-image"}
    assert [p for p in OPTIONAL if names.get(p, p) not in re.findall(r"[\w-]+", said)] == [], said


def test_the_guide_sections_the_package_names_exist():
    """Where the package's help, messages or docstrings send a reader to a file of the user guide
    (``docs/guide/enhancing.md in the source, 'Reproducible'``), that file exists and holds the
    section named: a heading of that name, or a term in bold (``**Baselines**``)."""
    import re

    named = []
    for folder, _, files in os.walk(os.path.join(ROOT, "xvertfast")):
        for name in (n for n in files if n.endswith(".py")):
            with open(os.path.join(folder, name)) as f:
                code = re.sub(r"\"\s*\n\s*\"", "", f.read())  # (a help text's strings joined)
            for document, single, double in re.findall(
                    r"docs/guide/([\w-]+\.md)(?: in the source)?(?:, (?:'(.+?)'(?=[)\"\]]|$)|\"([^\"]+)\"))?", code):
                named.append((document, single or double))
    # (the regex still finds them; the CLI's help names none since it says what it means itself: a pip
    # install has no docs/, test_cli's test_no_help_sends_the_reader_to_a_file_a_pip_install_lacks)
    # (nor does the report's note of identity's stretched originals, which a pip user also reads)
    assert len(named) >= 2 and sum(bool(section) for _, section in named) >= 1, named
    wrong = []
    for document, section in named:
        path = os.path.join(GUIDE, document)
        if not os.path.isfile(path):
            wrong.append(f"no docs/guide/{document}")
            continue
        text = _read(f"docs/guide/{document}")
        headings = {h.strip().lower() for h in re.findall(r"^#+ (.+)$", _prose(text), flags=re.M)}
        if section and section.lower() not in headings and f"**{section}**" not in text:
            wrong.append(f"docs/guide/{document} has no section {section!r}")
    assert not wrong, f"the package names guide sections that are not there: {wrong}"


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_environment_variable_named_is_in_the_sources(document):
    """Every ``XVF_*`` variable a document names appears in the sources of the build, the
    package, its kernels, the tests or the benchmarks: a renamed variable leaves none behind."""
    import re

    named = set(re.findall(r"\bXVF_[A-Z0-9_]+\b", _read(document)))
    sources = [os.path.join(ROOT, "setup.py")]
    for top in ("xvertfast", "csrc", "tests", "bench", "tools"):
        for folder, _, files in os.walk(os.path.join(ROOT, top)):
            sources += [os.path.join(folder, n) for n in files if n.endswith((".py", ".cpp", ".cu", ".h", ".sh"))
                        and n != "test_readme.py"]  # fmt: skip
    read = set()
    for path in sources:
        with open(path, errors="replace") as f:
            read |= named & set(re.findall(r"\bXVF_[A-Z0-9_]+\b", f.read()))
    assert named - read == set(), f"{document} names variables no source has: {sorted(named - read)}"


def test_the_checks_find_what_the_documents_hold():
    """The checks above run document by document, and pass on one where their patterns find
    nothing; over the README and the guide together they must find at least what these are known
    to hold, so that a pattern broken by an edit, or a guide file left unread, shows here."""
    import re

    texts = [_read(document) for document in DOCUMENTS]
    assert len(DOCUMENTS) >= 8, DOCUMENTS
    # enhance, evaluate, export, train, preprocess, status, demo
    assert sum(len(_xvertfast_commands(text)) for text in texts) >= 25
    options, choices = [found for text in texts for found in _inline_options(text)], _option_choices()
    named = [option for _, command, option, _ in options if command]
    valued = [option for _, _, option, value in options if value and option in choices]
    assert len(named) >= 8 and len(valued) >= 20, (named, valued)
    for bench_texts in (texts, [_read("bench/RESULTS.md")]):
        blocks, prose = zip(*map(_bench_commands, bench_texts))
        assert sum(map(len, blocks)) + sum(map(len, prose)) >= 8 and any(prose), (blocks, prose)
    assert len(set(re.findall(r"\bXVF_[A-Z0-9_]+\b", "\n".join(texts)))) >= 6
    tracked = _repository_files()
    for documents, least in ((DOCUMENTS, 40), ([MODEL_CARD], 5)):
        assert sum(len(links) + len(named) for links, named in (_files_named(d, tracked) for d in documents)) >= least
        assert sum(len(_links(_read(d))) for d in documents) >= least


def test_the_guide_names_each_field_status_json_gives_of_a_ledgers_run():
    """docs/guide/enhancing.md lists the fields ``status --json`` gives of each ledger's latest run,
    from ``running`` on: every one LedgerStatus has (it had left out ``failures`` and ``report``),
    with as many failures as a ledger keeps."""
    import re
    from dataclasses import fields

    from xvertfast.io.job_folder import FAILURES_RECORDED, LedgerStatus

    guide = " ".join(_read("docs/guide/enhancing.md").split())
    (listed,) = re.findall(r"`--json` has it for each ledger as (.+?)\. Earlier versions", guide)
    names = [f.name for f in fields(LedgerStatus)]
    assert [n for n in names[names.index("running"):] if f"`{n}`" not in listed] == [], listed
    assert f"`failures` (the first {FAILURES_RECORDED} inputs" in listed, listed
