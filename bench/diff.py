"""`mailspec diff` on a one-mailbox change: the bench shape of bench/compile.py at 10k
and 100k mailboxes, one mailbox given a forward to the outside. Prints the whole command
(start-up, both sides loaded with the compile cache warm, the comparison, and the
generated files of both sides), and the comparison alone, in one process.

    python bench/diff.py                    # 10,000 and 100,000 mailboxes
    python bench/diff.py --mailboxes 10000
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from compile import generate  # noqa: E402  (the bench shape, beside this file)


def one(mailboxes: int) -> None:
    from mailspec.diff import diff
    from mailspec.pipeline import check

    directory = tempfile.mkdtemp(prefix="mailspec-bench-diff-")
    try:
        old_root = generate(mailboxes, os.path.join(directory, "old"))
        new_dir = os.path.join(directory, "new")
        shutil.copytree(os.path.dirname(old_root), new_dir)
        domain = os.path.join(new_dir, "domains", "d0.bench.example.mailspec")
        with open(domain) as handle:
            text = handle.read()
        with open(domain, "w") as handle:
            handle.write(text.replace("mailbox u3 {", "mailbox u3 { forward u3@elsewhere.example; keep_copy;", 1))
        new_root = os.path.join(new_dir, "site.mailspec")
        command = [sys.executable, "-m", "mailspec", "diff", old_root, new_root, "--format", "json"]
        subprocess.run(command, check=True, capture_output=True)  # fills the compile cache for both
        start = time.perf_counter()
        shown = subprocess.run(command, check=True, capture_output=True, text=True)
        whole = time.perf_counter() - start
        old, new = check([old_root]).spec, check([new_root]).spec
        start = time.perf_counter()
        found = diff(old, new)
        alone = time.perf_counter() - start
        print(f"{mailboxes} mailboxes, one mailbox changed: `mailspec diff` {whole:.2f} s (warm cache), "
              f"the comparison alone {alone:.3f} s; addresses that change: {len(found.addresses)}, "
              f"{len(shown.stdout)} bytes of JSON")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mailboxes", type=int, action="append")
    for mailboxes in parser.parse_args().mailboxes or [10_000, 100_000]:
        one(mailboxes)


if __name__ == "__main__":
    main()
