"""Compile-time benchmark: generate a spec with N mailboxes over N/10 domains (with
aliases, lists and some Sieve), compile it, print timings and peak RSS.

    python bench/compile.py --mailboxes 100000
    python bench/compile.py --shape dense      # 2,000 domains x 50 mailboxes, see dense()
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import tempfile
import time

HASH = ("{SHA512-CRYPT}$6$szTMm/Vojpts5DCP$KnU.wuDlHRdy5W6VrO4WRWcNIPV/fuJ3oA9.lTf77SZgRtlc6Z"
        "DvuFWpUZ8hJTQ.ivwSwz4/Ebzn.eKM.Tddy1")


def write_spec(directory: str, domains: dict[str, str]) -> str:
    """One file per domain (name -> its text), imported from the root: the usual layout."""
    root = ["server {\n  hostname mail.bench.example\n}\n"]
    os.makedirs(os.path.join(directory, "domains"), exist_ok=True)
    for name, text in domains.items():
        with open(os.path.join(directory, "domains", f"{name}.mailspec"), "w") as handle:
            handle.write(text)
        root.append(f'import "domains/{name}.mailspec"\n')
    spec = os.path.join(directory, "site.mailspec")
    with open(spec, "w") as handle:
        handle.write("".join(root))
    return spec


def generate(mailboxes: int, directory: str) -> str:
    """N mailboxes over N/10 domains."""
    texts = {}
    for d in range(max(1, mailboxes // 10)):
        name = f"d{d}.bench.example"
        lines = [f"domain {name} {{\n"]
        for m in range(10):
            if m == 0:
                lines.append(f'  mailbox u{m} {{ password "{HASH}"; quota 1 GiB; aliases postmaster\n'
                             '    sieve { if header "subject" contains "[SPAM]" { fileinto "Junk"; stop } } }\n')
            else:
                lines.append(f'  mailbox u{m} {{ password "{HASH}" }}\n')
        lines.append("  alias sales -> u1, u2\n  list team { members u0, u1, u2 }\n}\n")
        texts[name] = "".join(lines)
    return write_spec(directory, texts)


def dense(directory: str, domains: int = 2000) -> str:
    """The hosting-provider shape: 50 mailboxes per domain with quotas, Sieve on a fifth
    of them, an auto-reply and a forward, a 20-member list, an alias and a domain alias."""
    texts = {}
    for d in range(domains):
        name = f"d{d}.dense.example"
        lines = [f"domain {name} {{\n  also a{d}.dense.example\n"]
        for m in range(50):
            body = [f'password "{HASH}"', "quota 2 GiB"]
            if m % 5 == 0:
                body.append('sieve { if header "subject" contains "[SPAM]" { fileinto "Junk"; stop } }')
            if m == 1:
                body.append('auto_reply { subject "Away"; body "Back soon." }')
            if m == 2:
                body.append("forward u3; keep_copy")
            lines.append(f"  mailbox u{m} {{ {'; '.join(body)} }}\n")
        members = ", ".join(f"u{m}" for m in range(20))
        lines.append(f"  alias sales -> u1, u2\n  list team {{ members {members} }}\n}}\n")
        texts[name] = "".join(lines)
    return write_spec(directory, texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mailboxes", type=int, default=1000)
    parser.add_argument("--shape", choices=["simple", "dense"], default="simple",
                        help="simple: N mailboxes over N/10 domains; dense: see dense() (ignores N)")
    parser.add_argument("--backends", action="store_true",
                        help="also time the check and each backend's emit + write, one process: "
                             "the weights of mailspec.backends.REGISTRY")
    args = parser.parse_args()
    shape = (lambda work: generate(args.mailboxes, work)) if args.shape == "simple" else dense
    if args.backends:
        backend_weights(shape)
    from mailspec.pipeline import check_and_write, load_and_lower

    with tempfile.TemporaryDirectory() as work:
        os.environ["XDG_CACHE_HOME"] = os.path.join(work, "cache")  # start cold: an empty cache
        spec = shape(work)
        os.sync()  # start from a quiet disk: no writeback or discards left from earlier work
        start = time.perf_counter()
        lowered = load_and_lower([spec])
        middle = time.perf_counter()
        result = check_and_write(lowered, os.path.join(work, "deploy"))
        done = time.perf_counter()
        assert result.ok, result.diagnostics[:3]
        peak = peak_rss()  # the cold compile's own peak, before the second run below adds its own
        files = sum(len(names) for _, _, names in os.walk(os.path.join(work, "deploy")))
        os.sync()
        again = time.perf_counter()  # the same spec into the same target: every file linked
        assert check_and_write(lowered, os.path.join(work, "deploy")).ok
        unchanged = time.perf_counter() - again
        print(f"load+parse+lower {middle - start:.2f} s, check+emit+write {done - middle:.2f} s, "
              f"{files} files")
        what = f"{args.mailboxes} mailboxes" if args.shape == "simple" else "the dense shape (100,000 mailboxes)"
        print(f"compile {what} (cold: empty cache): {done - start:.2f} s, peak RSS {peak:.0f} MB")
        print(f"check+emit+write again into the same deploy (nothing changed, files linked): {unchanged:.2f} s")
        recompile(spec, os.path.join(work, "deploy"))
    check_command()
    lex_bad_input()


def peak_rss() -> float:
    """Peak RSS so far in MB. The background writer is a forked child: the larger of the two."""
    return max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) / 1024


def recompile(spec: str, deploy: str) -> None:
    """`mailspec compile` as a user runs it after changing one line of one file (a new
    quota), with the cache the cold compile filled, and without the cache."""
    import subprocess
    import sys

    domain = sorted(os.listdir(os.path.join(os.path.dirname(spec), "domains")))[0]
    path = os.path.join(os.path.dirname(spec), "domains", domain)
    for label, environment in (("with the cache", {}), ("without the cache", {"MAILSPEC_CACHE": "off"})):
        with open(path) as handle:
            text = handle.read()
        with open(path, "w") as handle:  # the first quota, one GiB larger
            handle.write(re.sub(r"quota (\d+) GiB", lambda m: f"quota {int(m.group(1)) + 1} GiB", text, count=1))
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "mailspec", "compile", spec, "-o", deploy], check=True,
                       env=dict(os.environ, **environment))
        print(f"recompile after a one-line change, start-up included, {label}: {time.perf_counter() - start:.2f} s")


def backend_weights(shape) -> None:
    from mailspec.backends import REGISTRY
    from mailspec.deploydir import Staging
    from mailspec.emit import CHECK_WEIGHT, emit_backends, mode
    from mailspec.layout import DEFAULT
    from mailspec.pipeline import check_and_write, load_and_lower

    with tempfile.TemporaryDirectory() as work:
        lowered = load_and_lower([shape(work)])
        start = time.perf_counter()
        assert check_and_write(lowered).ok
        seconds = {"check": time.perf_counter() - start}
        for backend in REGISTRY:
            staging = Staging(os.path.join(work, backend.name))
            start = time.perf_counter()
            files = emit_backends(lowered.spec, (backend.module,), DEFAULT)
            staging.write(files, {path: mode(path) for path in files})
            seconds[backend.name] = time.perf_counter() - start
            staging.discard()
    unit = sum(v for k, v in seconds.items() if k != "check") / 100
    print("weights (percent of emit + write): " + ", ".join(
        f"{name} {value / unit:.0f} ({value:.2f} s)" for name, value in seconds.items())
        + f"; in use: check {CHECK_WEIGHT}, " + ", ".join(f"{b.name} {b.weight}" for b in REGISTRY))


def check_command(mailboxes: int = 1000, runs: int = 5) -> None:
    """`mailspec check` as a user runs it: a new process, start-up included (best of runs)."""
    import subprocess
    import sys

    with tempfile.TemporaryDirectory() as work:
        spec = generate(mailboxes, work)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "mailspec", "check", spec], check=True)
            times.append(time.perf_counter() - start)
    print(f"mailspec check {mailboxes} mailboxes, start-up included: {min(times):.2f} s (best of {runs})")


def lex_bad_input() -> None:
    """The lexer before a bad character: linear, not quadratic (issue 11, item 15)."""
    from mailspec.diagnostics import SpecError
    from mailspec.syntax import parse

    for name, filler in (("200,000 spaces", " " * 200_000), ("80 KB of comments", "# comment\n" * 8_000)):
        start = time.perf_counter()
        try:
            parse("bench.mailspec", "server { hostname a.example }\n" + filler + "$")
        except SpecError:
            pass
        print(f"lex {name} before a bad character: {time.perf_counter() - start:.3f} s")


if __name__ == "__main__":
    main()
