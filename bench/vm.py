"""VM benchmark: image build (cold and cached), golden snapshot, cold boot and snapshot
restore to an SMTP banner, then every scenario on the site fixture, one after another.
The last line is `suite: N scenarios, X.X s`.

    python bench/vm.py                  # the cold build uses a scratch cache (needs the mirror)
    python bench/vm.py --skip-cold-build
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from mailspec.vmtests import image, qemu, runner, snapshot
from mailspec.vmtests.machine import Machine

ROOT = Path(__file__).resolve().parent.parent
SPECS = [ROOT / "fixtures" / "vm" / "site" / "spec.mailspec", ROOT / "fixtures" / "valid" / "classic" / "spec.mailspec"]


def timed(label: str, action):
    started = time.monotonic()
    result = action()
    print(f"{label}: {time.monotonic() - started:.1f} s", flush=True)
    return result


def boot_to_banner(built: image.Image, accelerator: str, golden: Path | None, workdir: Path) -> float:
    machine = Machine("bench", built, workdir, accelerator, golden)
    started = time.monotonic()
    try:
        machine.start()
        machine.wait_for_open_port(25, b"220 ")
        return time.monotonic() - started
    finally:
        machine.crash()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-cold-build", action="store_true", help="do not time a build from scratch")
    parser.add_argument("--boots", type=int, default=3, help="cold boots and restores to time")
    options = parser.parse_args()
    if not options.skip_cold_build:
        scratch = tempfile.mkdtemp(prefix="mailspec-vm-bench-")
        previous = os.environ.get("MAILSPEC_VM_CACHE")
        os.environ["MAILSPEC_VM_CACHE"] = scratch
        try:
            timed("image build, cold", image.ensure_image)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
            if previous is None:
                del os.environ["MAILSPEC_VM_CACHE"]
            else:
                os.environ["MAILSPEC_VM_CACHE"] = previous
    built = timed("image build, cached (built first if missing)", image.ensure_image)
    built = timed("image build, cached", image.ensure_image)
    accelerator = qemu.choose_accelerator(built)
    print(f"accelerator: {accelerator}")
    golden = timed("golden snapshot (made first if missing)", lambda: snapshot.ensure_golden(built, accelerator))
    with tempfile.TemporaryDirectory() as scratch:
        for n in range(options.boots):
            print(f"cold boot to SMTP banner: {boot_to_banner(built, accelerator, None, Path(scratch, f'c{n}')):.1f} s")
        for n in range(options.boots):
            print(f"restore to SMTP ready: {boot_to_banner(built, accelerator, golden, Path(scratch, f'r{n}')):.2f} s")
    started = time.monotonic()
    outcomes = []
    for spec in SPECS:
        names = [] if spec == SPECS[0] else ["delivery"]
        outcomes += runner.run_spec([str(spec)], names, accelerator)
    total = time.monotonic() - started
    for outcome in outcomes:
        print(f"scenario {outcome.name} ({outcome.status}): {outcome.seconds:.1f} s")
        if outcome.status == "fail":
            print(outcome.detail)
    print(f"suite: {len(outcomes)} scenarios, {total:.1f} s")


if __name__ == "__main__":
    main()
