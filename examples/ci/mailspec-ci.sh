#!/bin/sh
# CI for a repository that holds a mail server's spec, for any CI system: check the spec,
# compile it, boot it in QEMU VMs that deliver real mail (JUnit report), and write the
# change in meaning against the base branch as Markdown, ready to post on the pull request.
#
#   SPEC    the root spec file                 (default: site.mailspec)
#   BASE    the revision to compare against    (default: origin/main)
#   OUT     where the results go               (default: mailspec-ci)
#   VMTEST  "no" skips the VM step, on runners without QEMU (default: yes)
#
# Results: $OUT/deploy (the compiled server), $OUT/vmtest.xml, $OUT/diff.md.
set -eu
SPEC="${SPEC:-site.mailspec}"
BASE="${BASE:-origin/main}"
OUT="${OUT:-mailspec-ci}"
mkdir -p "$OUT"

echo "== check"
mailspec check "$SPEC"
echo "== compile"
mailspec compile "$SPEC" -o "$OUT/deploy"
if [ "${VMTEST:-yes}" != no ]; then
  echo "== vmtest"
  mailspec vmtest "$SPEC" --junit "$OUT/vmtest.xml"
fi
echo "== diff against $BASE"
mailspec diff --git "$BASE..HEAD" "$SPEC" --format markdown > "$OUT/diff.md"
cat "$OUT/diff.md"
