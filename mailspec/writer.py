"""The emit and write passes: the deploy tree written into a stage beside the target
and committed atomically (deploydir.py), by two processes at once."""

from __future__ import annotations

from mailspec import model
from mailspec.background import Background
from mailspec.deploydir import Staging, resolve
from mailspec.emit import emit_share, manifest, mode, split
from mailspec.layout import Layout


class Writer:
    """emit and write into a stage beside the target: a forked child takes its share of
    the backends (mailspec.emit.split) at once; the parent writes the rest in `finish`,
    after the check. Speculative: for a spec the check refuses, the child is killed and
    its work thrown away, as an invalid spec may make the backends fail or loop."""

    def __init__(self, spec: model.Spec, target: str, spec_files: list[str], layout: Layout):
        """TargetError if mailspec must not replace `target`; OSError if no stage can be made."""
        self.spec, self.layout = spec, layout
        self.staging = Staging(resolve(target, spec_files))
        self.child_share, self.parent_share = split()
        self.background = Background(lambda: self._write(emit_share(spec, self.child_share, True, layout)))

    def _write(self, files: dict[str, str]) -> dict[str, str]:
        return self.staging.write(files, {path: mode(path) for path in files})

    def finish(self, valid: bool, remove_unlisted: bool) -> list[str]:
        """Commit the tree if the spec is `valid`; the unlisted files removed."""
        if not valid:
            self.abandon()
            return []
        digests = self._write(emit_share(self.spec, self.parent_share, False, self.layout))
        digests.update(self.background.result())
        self._write({"MANIFEST": manifest(self.spec, digests)})
        return self.staging.commit(remove_unlisted)

    def abandon(self) -> None:
        self.background.cancel()
        self.staging.discard()
