#!/usr/bin/env python3
"""Print the Debian mirror this machine's apt uses for a suite (default: bookworm).

Reads deb822 files (/etc/apt/sources.list.d/*.sources) and one-line files (/etc/apt/sources.list,
/etc/apt/sources.list.d/*.list); disabled entries are ignored. The first `deb` source whose suites include
the wanted suite wins. Exit status 1, with a message on stderr, when none does: the lab never guesses a host.

    python3 lab/apt_mirror.py [--suite bookworm] [--root /]
"""

import argparse
import glob
import os
import sys
from collections.abc import Iterator

Source = tuple[list[str], list[str], list[str]]  # (types, uris, suites)


def parse_deb822(text: str) -> Iterator[Source]:
    """Yield (types, uris, suites) for each enabled stanza of a deb822 .sources file."""
    for stanza in text.split("\n\n"):
        fields = {}
        key = None
        for line in stanza.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line[0] in " \t" and key:
                fields[key] += " " + line.strip()
                continue
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if fields.get("enabled", "yes").lower() == "no":
            continue
        yield (
            fields.get("types", "").split(),
            fields.get("uris", "").split(),
            fields.get("suites", "").split(),
        )


def parse_one_line(text: str) -> Iterator[Source]:
    """Yield (types, uris, suites) for each `deb [options] URI SUITE COMPONENTS...` line."""
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) < 3:
            continue
        kind, rest = words[0], words[1:]
        if rest[0].startswith("["):
            while rest and not rest[0].endswith("]"):
                rest = rest[1:]
            rest = rest[1:]
        if len(rest) >= 2:
            yield [kind], [rest[0]], [rest[1]]


def sources(root: str) -> Iterator[Source]:
    one_line = [os.path.join(root, "etc/apt/sources.list")]
    one_line += sorted(glob.glob(os.path.join(root, "etc/apt/sources.list.d/*.list")))
    for path in sorted(glob.glob(os.path.join(root, "etc/apt/sources.list.d/*.sources"))):
        with open(path, encoding="utf-8") as handle:
            yield from parse_deb822(handle.read())
    for path in one_line:
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as handle:
                yield from parse_one_line(handle.read())


def find_mirror(entries: Iterator[Source], suite: str) -> str:
    for types, uris, suites in entries:
        if "deb" in types and suite in suites and uris:
            return uris[0].rstrip("/")
    return ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="bookworm")
    parser.add_argument("--root", default="/", help="filesystem root holding etc/apt (for tests)")
    args = parser.parse_args()
    mirror = find_mirror(sources(args.root), args.suite)
    if not mirror:
        print(
            f"apt_mirror: no enabled 'deb' source for suite {args.suite!r} under "
            f"{os.path.join(args.root, 'etc/apt')}",
            file=sys.stderr,
        )
        return 1
    print(mirror)
    return 0


if __name__ == "__main__":
    sys.exit(main())
