"""The deployment archive as Terraform builds it: `data.archive_file.source` in terraform/*.tf.

The source directory and the exclude list are read from the Terraform files with
python-hcl2 (not copied here), and the patterns are applied the way the archive
provider applies them (bmatcuk/doublestar globs against paths relative to the
source directory; a matching directory is skipped whole).
"""

from __future__ import annotations

import functools
import os
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hcl2

REPO_ROOT = Path(__file__).resolve().parent.parent
TERRAFORM_DIR = REPO_ROOT / "terraform"
ARCHIVE_NAME = "source"  # data "archive_file" "source"

_HCL_OPTIONS = hcl2.SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)


@functools.cache
def archive_block() -> dict[str, Any]:
    """The body of `data "archive_file" "source"`, from whichever .tf file declares it."""
    found = []
    for path in sorted(TERRAFORM_DIR.glob("*.tf")):
        with path.open() as handle:
            document = hcl2.load(handle, serialization_options=_HCL_OPTIONS)
        for block in document.get("data", []):
            if ARCHIVE_NAME in block.get("archive_file", {}):
                found.append(block["archive_file"][ARCHIVE_NAME])
    assert len(found) == 1, f"terraform/ declares data.archive_file.{ARCHIVE_NAME} {len(found)} times"
    return found[0]


def source_dir() -> Path:
    """The archive's `source_dir`, resolved (`${path.module}` is terraform/)."""
    declared = archive_block()["source_dir"]
    assert declared.startswith("${path.module}"), declared
    return (TERRAFORM_DIR / declared.removeprefix("${path.module}").lstrip("/")).resolve()


def doublestar(pattern: str) -> re.Pattern[str]:
    """A glob of the archive provider's excludes (bmatcuk/doublestar) as a regular expression."""
    parts = []
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            parts.append("(?:.*/)?")
            index += 3
        elif pattern.startswith("**", index):
            parts.append(".*")
            index += 2
        elif pattern[index] == "*":
            parts.append("[^/]*")
            index += 1
        elif pattern[index] == "?":
            parts.append("[^/]")
            index += 1
        else:
            parts.append(re.escape(pattern[index]))
            index += 1
    return re.compile("".join(parts) + r"\Z")


def excludes() -> list[re.Pattern[str]]:
    return [doublestar(pattern) for pattern in archive_block()["excludes"]]


def excluder() -> tuple[Callable[[str], bool], Callable[[str], bool]]:
    """(matches, excluded): one pattern matches a path; a path or one of its directories does."""
    patterns = excludes()

    def matches(relative: str) -> bool:
        return any(pattern.match(relative) for pattern in patterns)

    def excluded(relative: str) -> bool:
        # The provider skips a matching directory whole, so an ancestor's match counts.
        parts = relative.split("/")
        return any(matches("/".join(parts[:depth])) for depth in range(1, len(parts) + 1))

    return matches, excluded


def shipped_files() -> list[str]:
    """The files archive_file would zip, walking the source directory the way the provider does."""
    root = source_dir()
    matches, _ = excluder()
    shipped = []
    for directory, subdirectories, files in os.walk(root):
        relative_dir = Path(directory).relative_to(root).as_posix()
        prefix = "" if relative_dir == "." else relative_dir + "/"
        subdirectories[:] = [name for name in subdirectories if not matches(prefix + name)]
        shipped.extend(prefix + name for name in files if not matches(prefix + name))
    return sorted(shipped)


def build_archive(output: Path) -> list[str]:
    """Zip the shipped files to `output` (paths relative to the source directory); returns them."""
    root = source_dir()
    files = shipped_files()
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for relative in files:
            archive.write(root / relative, relative)
    return files
