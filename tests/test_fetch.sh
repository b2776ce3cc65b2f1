#!/usr/bin/env bash
# Shell test of scripts/fetch-data.sh. Builds a tiny fake mirror (a few TSV files and a fake model
# directory) and its own checksum manifests in a temporary folder, points UNIPELT_CHECKSUMS_DIR at
# them, and checks: the mirror path, idempotence, checksum mismatches, missing mirror files, that a
# mirror run never touches the network, trust-on-first-use, and the download path (GLUE zip, MRPC
# build, Hugging Face layout) through file:// URLs. When the project's data mirror exists
# (UNIPELT_MIRROR_CHECK, else UNIPELT_MIRROR, else <repo>/../shared/data) it also fetches SST-2 and the model from it
# and checks they verify against the real manifests in scripts/checksums/.
# Usage: tests/test_fetch.sh        Exit status 0 when every check passes.
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd -P)"
FETCH="$REPO/scripts/fetch-data.sh"
REAL_MIRROR="${UNIPELT_MIRROR_CHECK:-${UNIPELT_MIRROR:-$REPO/../shared/data}}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/test_fetch.XXXXXX")"
WORK="$(cd "$WORK" && pwd -P)"
trap 'rm -rf -- "$WORK"' EXIT
unset UNIPELT_CACHE UNIPELT_MIRROR UNIPELT_GLUE_URL UNIPELT_SENTEVAL_URL UNIPELT_HF_URL

PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); printf 'ok    %s\n' "$1"; }
fail() { FAILED=$((FAILED + 1)); printf 'FAIL  %s\n' "$1"; [ -z "${2:-}" ] || printf '%s\n' "$2" | sed 's/^/      | /'; }

sha() { sha256sum <"$1" | cut -d' ' -f1; }

# run NAME ARGS...: runs fetch-data.sh, output in $WORK/NAME.out, status in RC.
run() {
  local name="$1"
  shift
  RC=0
  "$FETCH" "$@" >"$WORK/$name.out" 2>&1 || RC=$?
  OUT="$(cat "$WORK/$name.out")"
}

# ----------------------------------------------------------------------------------------------
# A fake mirror: two GLUE tasks (one with a subfolder) and one model, plus manifests for them.
# ----------------------------------------------------------------------------------------------
M="$WORK/mirror"
mkdir -p "$M/glue/SST-2" "$M/glue/RTE/original" "$M/models/tiny-bert"
printf 'sentence\tlabel\ngood film \t1\nbad film \t0\n' >"$M/glue/SST-2/train.tsv"
printf 'sentence\tlabel\nfine film \t1\n' >"$M/glue/SST-2/dev.tsv"
printf 'index\tsentence\n0\tsome film \n' >"$M/glue/SST-2/test.tsv"
printf 'index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n' >"$M/glue/RTE/train.tsv"
printf 'index\tsentence1\tsentence2\tlabel\n0\tc\td\tnot_entailment\n' >"$M/glue/RTE/dev.tsv"
printf 'raw\n' >"$M/glue/RTE/original/raw.txt"
printf '{"model_type": "bert", "hidden_size": 8}\n' >"$M/models/tiny-bert/config.json"
printf '[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nfilm\n' >"$M/models/tiny-bert/vocab.txt"
head -c 4096 /dev/urandom >"$M/models/tiny-bert/model.safetensors"

SUMS="$WORK/checksums"
mkdir -p "$SUMS"
{
  echo "# test manifest"
  for f in SST-2/dev.tsv SST-2/test.tsv RTE/train.tsv RTE/dev.tsv; do
    printf '%s  glue/%s\n' "$(sha "$M/glue/$f")" "$f"
  done
} >"$SUMS/glue.sha256"
# Mirror-only hashes: checked for mirror copies, trust-on-first-use for downloads.
printf '%s  glue/SST-2/train.tsv\n' "$(sha "$M/glue/SST-2/train.tsv")" >"$SUMS/glue-mirror.sha256"
for f in config.json vocab.txt model.safetensors; do
  printf '%s  models/tiny-bert/%s\n' "$(sha "$M/models/tiny-bert/$f")" "$f"
done >"$SUMS/models.sha256"
export UNIPELT_CHECKSUMS_DIR="$SUMS"

# Network sentinels: curl and wget that only log that they were called (and fail).
SENTINEL="$WORK/sentinel-bin"
NETLOG="$WORK/network.log"
mkdir -p "$SENTINEL"
for tool in curl wget; do
  printf '#!/bin/sh\necho "%s $*" >>"%s"\nexit 7\n' "$tool" "$NETLOG" >"$SENTINEL/$tool"
  chmod +x "$SENTINEL/$tool"
done

C="$WORK/cache1"

# 1. Success: everything lands in the cache and verifies; the weights are a symlink into the mirror.
run first --mirror "$M" --cache "$C" --tasks SST-2,rte --model tiny-bert
ok=1
for f in glue/SST-2/train.tsv glue/SST-2/dev.tsv glue/SST-2/test.tsv glue/RTE/train.tsv glue/RTE/dev.tsv \
         glue/RTE/original/raw.txt models/tiny-bert/config.json models/tiny-bert/vocab.txt \
         models/tiny-bert/model.safetensors; do
  if [ ! -f "$C/$f" ] || ! cmp -s "$C/$f" "$M/$f"; then ok=0; fi
done
if [ "$RC" -eq 0 ] && [ "$ok" -eq 1 ] && [ -L "$C/models/tiny-bert/model.safetensors" ] &&
   [ ! -L "$C/glue/SST-2/train.tsv" ] && [ -z "$(find "$C" -name '*.partial' -o -name '.fetch-tmp*')" ]; then
  pass "mirror fetch places every file (weights symlinked, no leftovers)"
else
  fail "mirror fetch places every file (rc=$RC)" "$OUT"
fi
# RTE/original/raw.txt has no checksum anywhere: recorded on first use.
if grep -q "  glue/RTE/original/raw.txt\$" "$C/checksums.local" 2>/dev/null &&
   [ "$(grep -c . "$C/checksums.local")" -eq 1 ] && grep -q 'trust on first use' <<<"$OUT"; then
  pass "a file without a known checksum is recorded in checksums.local"
else
  fail "a file without a known checksum is recorded in checksums.local" "$OUT"
fi
if grep -q 'done: 9 fetched, 0 already present, 1 new checksums' <<<"$OUT"; then
  pass "summary line counts the fetched files"
else
  fail "summary line counts the fetched files" "$OUT"
fi

# 2. Idempotence: a second run fetches nothing and changes nothing.
before="$(cd "$C" && find . -exec stat -c '%n %i %Y %s' {} + | sort)"
run second --mirror "$M" --cache "$C" --tasks SST-2,RTE --model tiny-bert
after="$(cd "$C" && find . -exec stat -c '%n %i %Y %s' {} + | sort)"
if [ "$RC" -eq 0 ] && grep -q 'done: 0 fetched, 9 already present, 0 new checksums' <<<"$OUT" &&
   [ "$before" = "$after" ]; then
  pass "second run fetches nothing"
else
  fail "second run fetches nothing (rc=$RC)" "$OUT"
fi

# 3. No network when a mirror is given: curl/wget sentinels first on PATH must never be called.
rm -f "$NETLOG"
RC=0
PATH="$SENTINEL:$PATH" "$FETCH" --mirror "$M" --cache "$WORK/cache-net" --tasks all --model tiny-bert \
  >"$WORK/net.out" 2>&1 || RC=$?
if [ "$RC" -eq 0 ] && [ ! -e "$NETLOG" ] && [ -f "$WORK/cache-net/glue/RTE/dev.tsv" ]; then
  pass "mirror run does not call curl or wget"
else
  fail "mirror run does not call curl or wget (rc=$RC)" "$(cat "$WORK/net.out" "$NETLOG" 2>/dev/null)"
fi

# 4. A corrupted cached file is detected and fetched again from the (good) mirror.
chmod u+w "$C/glue/SST-2/dev.tsv"
printf 'tampered\n' >>"$C/glue/SST-2/dev.tsv"
run repair --mirror "$M" --cache "$C" --tasks SST-2 --model none
if [ "$RC" -eq 0 ] && grep -q 'stale    glue/SST-2/dev.tsv' <<<"$OUT" && cmp -s "$C/glue/SST-2/dev.tsv" "$M/glue/SST-2/dev.tsv" &&
   grep -q 'done: 1 fetched, 2 already present' <<<"$OUT"; then
  pass "corrupted cache file is refetched"
else
  fail "corrupted cache file is refetched (rc=$RC)" "$OUT"
fi

# 5. Checksum mismatch at the source: non-zero exit, message names file and both hashes, and the
#    file is not left in the cache under its final name.
M2="$WORK/mirror-bad"
cp -R "$M" "$M2"
good="$(sha "$M/glue/SST-2/dev.tsv")"
printf 'corrupt\n' >>"$M2/glue/SST-2/dev.tsv"
bad="$(sha "$M2/glue/SST-2/dev.tsv")"
run mismatch --mirror "$M2" --cache "$WORK/cache2" --tasks SST-2 --model none
if [ "$RC" -ne 0 ] && grep -q "checksum mismatch for glue/SST-2/dev.tsv" <<<"$OUT" && grep -q "$good" <<<"$OUT" &&
   grep -q "$bad" <<<"$OUT" && [ ! -e "$WORK/cache2/glue/SST-2/dev.tsv" ] &&
   [ -z "$(find "$WORK/cache2" -name '*.partial')" ]; then
  pass "source checksum mismatch fails, names file and hashes, keeps nothing"
else
  fail "source checksum mismatch fails, names file and hashes, keeps nothing (rc=$RC)" "$OUT"
fi
# Same with --force over a good cache: the good cached copy stays, the run fails.
run mismatch-force --mirror "$M2" --cache "$C" --tasks SST-2 --model none --force
if [ "$RC" -ne 0 ] && grep -q "checksum mismatch for glue/SST-2/dev.tsv" <<<"$OUT" &&
   cmp -s "$C/glue/SST-2/dev.tsv" "$M/glue/SST-2/dev.tsv"; then
  pass "--force with a bad source fails and keeps the verified cached copy"
else
  fail "--force with a bad source fails and keeps the verified cached copy (rc=$RC)" "$OUT"
fi
# A corrupted model file in the mirror (the weights are symlinked: the link must not be created).
M3="$WORK/mirror-badmodel"
cp -R "$M" "$M3"
printf 'x' >>"$M3/models/tiny-bert/model.safetensors"
run mismatch-model --mirror "$M3" --cache "$WORK/cache3" --tasks none --model tiny-bert
if [ "$RC" -ne 0 ] && grep -q "checksum mismatch for models/tiny-bert/model.safetensors" <<<"$OUT" &&
   [ ! -e "$WORK/cache3/models/tiny-bert/model.safetensors" ] && [ ! -L "$WORK/cache3/models/tiny-bert/model.safetensors" ]; then
  pass "model checksum mismatch fails and creates no link"
else
  fail "model checksum mismatch fails and creates no link (rc=$RC)" "$OUT"
fi

# 6. Trust on first use: a changed file with no manifest entry is caught on a later --force run.
printf 'raw changed\n' >"$M2/glue/RTE/original/raw.txt"
run tofu --mirror "$M2" --cache "$C" --tasks RTE --model none --force
if [ "$RC" -ne 0 ] && grep -q "checksum mismatch for glue/RTE/original/raw.txt" <<<"$OUT" &&
   grep -q "checksums.local (trust on first use)" <<<"$OUT"; then
  pass "trust-on-first-use record catches a later change"
else
  fail "trust-on-first-use record catches a later change (rc=$RC)" "$OUT"
fi

# 7. A file the manifests list but the mirror lacks: clear error naming it, nothing copied.
M4="$WORK/mirror-missing"
cp -R "$M" "$M4"
rm "$M4/glue/RTE/dev.tsv"
run missing --mirror "$M4" --cache "$WORK/cache4" --tasks RTE --model none
if [ "$RC" -ne 0 ] && grep -q "mirror file missing: $M4/glue/RTE/dev.tsv" <<<"$OUT" && [ ! -e "$WORK/cache4/glue/RTE" ]; then
  pass "missing mirror file is a clear error"
else
  fail "missing mirror file is a clear error (rc=$RC)" "$OUT"
fi
rm "$M4/models/tiny-bert/vocab.txt"
run missing-model --mirror "$M4" --cache "$WORK/cache4" --tasks none --model tiny-bert
if [ "$RC" -ne 0 ] && grep -q "mirror file missing: $M4/models/tiny-bert/vocab.txt" <<<"$OUT"; then
  pass "missing mirror model file is a clear error"
else
  fail "missing mirror model file is a clear error (rc=$RC)" "$OUT"
fi
run missing-task --mirror "$M" --cache "$WORK/cache4" --tasks MNLI --model none
if [ "$RC" -ne 0 ] && grep -q "the mirror has no glue/MNLI/" <<<"$OUT"; then
  pass "task absent from the mirror is a clear error"
else
  fail "task absent from the mirror is a clear error (rc=$RC)" "$OUT"
fi

# 8. No internet (curl/wget that fail): clear error. Neither a mirror nor a downloader: clear error.
RC=0
PATH="$SENTINEL:$PATH" "$FETCH" --cache "$WORK/cache5" --tasks SST-2 --model none >"$WORK/offline.out" 2>&1 || RC=$?
if [ "$RC" -ne 0 ] && grep -q "could not download" "$WORK/offline.out" && grep -q -- "--mirror DIR" "$WORK/offline.out" &&
   [ -z "$(find "$WORK/cache5" -type f)" ]; then
  pass "failed download gives a clear error and leaves no files"
else
  fail "failed download gives a clear error and leaves no files (rc=$RC)" "$(cat "$WORK/offline.out")"
fi
NOTOOLS="$WORK/notools-bin"
mkdir -p "$NOTOOLS"
for tool in bash sh awk sed sort cut tr cat mkdir rm mv cp ln chmod find dirname sha256sum head paste; do
  p="$(command -v "$tool")" && ln -sf "$p" "$NOTOOLS/$tool"
done
RC=0
PATH="$NOTOOLS" "$NOTOOLS/bash" "$FETCH" --cache "$WORK/cache5" --tasks SST-2 --model none >"$WORK/notools.out" 2>&1 || RC=$?
if [ "$RC" -ne 0 ] && grep -q "neither curl nor wget" "$WORK/notools.out"; then
  pass "no mirror and no downloader: clear error"
else
  fail "no mirror and no downloader: clear error (rc=$RC)" "$(cat "$WORK/notools.out")"
fi

# 9. The download path through file:// URLs (needs curl, which reads file:// URLs; unzip or python3 to
# unpack, zip or python3 to build the test archive; scripts/install-deps.sh installs curl, unzip and zip).
# make_zip ZIP DIR: DIR (relative to the current directory) into ZIP.
make_zip() {
  if command -v zip >/dev/null 2>&1; then
    zip -qr "$1" "$2"
  else
    python3 -c 'import sys, zipfile, os
z = zipfile.ZipFile(sys.argv[1], "w")
for d, _, fs in os.walk(sys.argv[2]):
    for f in fs: z.write(os.path.join(d, f))' "$1" "$2"
  fi
}
if command -v curl >/dev/null 2>&1 && { command -v unzip || command -v python3; } >/dev/null 2>&1 &&
   { command -v zip || command -v python3; } >/dev/null 2>&1; then
  NET="$WORK/net"
  mkdir -p "$NET/glue" "$NET/senteval" "$NET/hf/owner/tiny-bert/resolve/main"
  (cd "$M/glue" && make_zip "$NET/glue/SST-2.zip" SST-2)
  # MRPC as SentEval ships it (CRLF line ends, a BOM in the header) plus GLUE's dev ids.
  printf '\xef\xbb\xbfQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\r\n1\t10\t11\tA cat .\tThe cat .\r\n0\t20\t21\tDog .\tA dog .\r\n1\t30\t31\tSun .\tThe sun . \r\n' \
    >"$NET/senteval/msr_paraphrase_train.txt"
  printf '\xef\xbb\xbfQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\r\n1\t40\t41\tX .\tY .\r\n' >"$NET/senteval/msr_paraphrase_test.txt"
  printf '20\t21\r\n' >"$NET/glue/mrpc_dev_ids.tsv"
  cp "$M/models/tiny-bert/"* "$NET/hf/owner/tiny-bert/resolve/main/"
  export UNIPELT_GLUE_URL="file://$NET/glue" UNIPELT_SENTEVAL_URL="file://$NET/senteval" UNIPELT_HF_URL="file://$NET/hf"
  run download --cache "$WORK/cache6" --tasks SST-2,MRPC --model owner/tiny-bert
  C6="$WORK/cache6"
  expected_train="$(printf '\xef\xbb\xbfQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t10\t11\tA cat .\tThe cat .\n1\t30\t31\tSun .\tThe sun .\n')"
  expected_dev="$(printf '\xef\xbb\xbfQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n0\t20\t21\tDog .\tA dog .\n')"
  expected_test="$(printf 'index\t#1 ID\t#2 ID\t#1 String\t#2 String\n0\t40\t41\tX .\tY .\n')"
  if [ "$RC" -eq 0 ] && cmp -s "$C6/glue/SST-2/dev.tsv" "$M/glue/SST-2/dev.tsv" &&
     cmp -s "$C6/models/owner/tiny-bert/model.safetensors" "$M/models/tiny-bert/model.safetensors" &&
     [ ! -L "$C6/models/owner/tiny-bert/model.safetensors" ] &&
     [ "$(cat "$C6/glue/MRPC/train.tsv")" = "$expected_train" ] && [ "$(cat "$C6/glue/MRPC/dev.tsv")" = "$expected_dev" ] &&
     [ "$(cat "$C6/glue/MRPC/test.tsv")" = "$expected_test" ] &&
     grep -q "  glue/SST-2/train.tsv\$" "$C6/checksums.local" && grep -q "  models/owner/tiny-bert/model.safetensors\$" "$C6/checksums.local" &&
     [ -z "$(find "$C6" -name '*.partial' -o -name '.fetch-tmp*' -o -name '*.zip')" ]; then
    pass "download path: GLUE zip, MRPC built like download_glue_data.py, hub model (file:// URLs)"
  else
    fail "download path: GLUE zip, MRPC built like download_glue_data.py, hub model (rc=$RC)" "$OUT"
  fi
  run download-again --cache "$C6" --tasks SST-2,MRPC --model owner/tiny-bert
  if [ "$RC" -eq 0 ] && grep -q 'done: 0 fetched' <<<"$OUT" && ! grep -q '  download ' <<<"$OUT"; then
    pass "download path: second run downloads nothing"
  else
    fail "download path: second run downloads nothing (rc=$RC)" "$OUT"
  fi
  # The download is checked against the manifest: a zip whose dev.tsv differs is refused.
  (cd "$M2/glue" && rm -f "$NET/glue/SST-2.zip" && make_zip "$NET/glue/SST-2.zip" SST-2)
  run download-bad --cache "$WORK/cache7" --tasks SST-2 --model none
  if [ "$RC" -ne 0 ] && grep -q "checksum mismatch for glue/SST-2/dev.tsv" <<<"$OUT" && [ ! -e "$WORK/cache7/glue/SST-2/dev.tsv" ] &&
     [ ! -e "$WORK/cache7/checksums.local" ]; then
    pass "download path: a mismatching download is refused before anything is trusted"
  else
    fail "download path: a mismatching download is refused before anything is trusted (rc=$RC)" "$OUT"
  fi
  unset UNIPELT_GLUE_URL UNIPELT_SENTEVAL_URL UNIPELT_HF_URL
else
  echo "skip  download path (needs curl, and unzip or python3)"
fi

# ==== BEGIN model weights (issue 13): pytorch_model.bin when a model has no model.safetensors ========
# A file:// hub copy with one repository holding only pytorch_model.bin and one holding both files,
# and a mirror model with only a .bin. Self-contained: its own files, manifests and caches.
if command -v curl >/dev/null 2>&1; then
  HUB="$WORK/hub-weights"
  mkdir -p "$HUB/owner/bin-only/resolve/main" "$HUB/owner/both/resolve/main" "$HUB/owner/neither/resolve/main"
  for repo in bin-only both neither; do
    cp "$M/models/tiny-bert/config.json" "$M/models/tiny-bert/vocab.txt" "$HUB/owner/$repo/resolve/main/"
  done
  head -c 2048 /dev/urandom >"$HUB/owner/bin-only/resolve/main/pytorch_model.bin"
  cp "$M/models/tiny-bert/model.safetensors" "$HUB/owner/both/resolve/main/"
  head -c 1024 /dev/urandom >"$HUB/owner/both/resolve/main/pytorch_model.bin"
  export UNIPELT_HF_URL="file://$HUB"
  CW="$WORK/cache-weights"
  D="$CW/models/owner/bin-only"
  run weights-bin --no-mirror --cache "$CW" --tasks none --model owner/bin-only
  if [ "$RC" -eq 0 ] && cmp -s "$D/pytorch_model.bin" "$HUB/owner/bin-only/resolve/main/pytorch_model.bin" &&
     [ ! -e "$D/model.safetensors" ] && grep -q "has no model.safetensors at revision main: fetching pytorch_model.bin" <<<"$OUT" &&
     grep -q "unipelt convert --model $D" <<<"$OUT" &&
     grep -q "  models/owner/bin-only/pytorch_model.bin\$" "$CW/checksums.local" && [ -z "$(find "$CW" -name '*.partial')" ]; then
    pass "model weights: a hub repository without model.safetensors gives pytorch_model.bin (checksum recorded)"
  else
    fail "model weights: a hub repository without model.safetensors gives pytorch_model.bin (rc=$RC)" "$OUT"
  fi
  run weights-bin-again --no-mirror --cache "$CW" --tasks none --model owner/bin-only
  if [ "$RC" -eq 0 ] && grep -q 'done: 0 fetched, 3 already present' <<<"$OUT" && ! grep -q '  download ' <<<"$OUT"; then
    pass "model weights: the cached pytorch_model.bin is verified, not fetched again"
  else
    fail "model weights: the cached pytorch_model.bin is verified, not fetched again (rc=$RC)" "$OUT"
  fi
  printf 'x' >>"$D/pytorch_model.bin"
  run weights-bin-stale --no-mirror --cache "$CW" --tasks none --model owner/bin-only
  if [ "$RC" -eq 0 ] && grep -q "stale    models/owner/bin-only/pytorch_model.bin" <<<"$OUT" &&
     cmp -s "$D/pytorch_model.bin" "$HUB/owner/bin-only/resolve/main/pytorch_model.bin"; then
    pass "model weights: a cached pytorch_model.bin that no longer verifies is fetched again"
  else
    fail "model weights: a cached pytorch_model.bin that no longer verifies is fetched again (rc=$RC)" "$OUT"
  fi
  run weights-both --no-mirror --cache "$CW" --tasks none --model owner/both
  if [ "$RC" -eq 0 ] && [ -f "$CW/models/owner/both/model.safetensors" ] && [ ! -e "$CW/models/owner/both/pytorch_model.bin" ] &&
     ! grep -q "pytorch_model.bin" <<<"$OUT"; then
    pass "model weights: with both files in the repository, only model.safetensors is fetched"
  else
    fail "model weights: with both files in the repository, only model.safetensors is fetched (rc=$RC)" "$OUT"
  fi
  run weights-neither --no-mirror --cache "$CW" --tasks none --model owner/neither
  if [ "$RC" -ne 0 ] && grep -q "owner/neither has neither model.safetensors nor pytorch_model.bin" <<<"$OUT" &&
     [ -z "$(find "$CW/models/owner/neither" -name '*.bin*' -o -name '*.safetensors*')" ]; then
    pass "model weights: a repository with neither file is a clear error"
  else
    fail "model weights: a repository with neither file is a clear error (rc=$RC)" "$OUT"
  fi
  unset UNIPELT_HF_URL
  MB="$WORK/mirror-bin"
  mkdir -p "$MB/models/bin-model"
  cp "$M/models/tiny-bert/config.json" "$M/models/tiny-bert/vocab.txt" "$MB/models/bin-model/"
  head -c 512 /dev/urandom >"$MB/models/bin-model/pytorch_model.bin"
  run weights-mirror --mirror "$MB" --cache "$WORK/cache-weights-mirror" --tasks none --model bin-model
  if [ "$RC" -eq 0 ] && [ -L "$WORK/cache-weights-mirror/models/bin-model/pytorch_model.bin" ] &&
     grep -q "bin-model has no model.safetensors" <<<"$OUT"; then
    pass "model weights: a mirror model with only pytorch_model.bin is linked like model.safetensors"
  else
    fail "model weights: a mirror model with only pytorch_model.bin is linked like model.safetensors (rc=$RC)" "$OUT"
  fi
else
  echo "skip  model weights (needs curl for file:// URLs)"
fi
# ==== END model weights (issue 13) =================================================================

# 10. --help documents every flag.
run help --help
missing_flags=""
for flag in --cache --mirror --no-mirror --tasks --model --revision --copy --force --help UNIPELT_CHECKSUMS_DIR; do
  grep -q -- "$flag" <<<"$OUT" || missing_flags="$missing_flags $flag"
done
if [ "$RC" -eq 0 ] && [ -z "$missing_flags" ]; then
  pass "--help documents every flag"
else
  fail "--help documents every flag (missing:$missing_flags)" "$OUT"
fi
run badflag --bogus
if [ "$RC" -ne 0 ] && grep -q "unknown argument '--bogus'" <<<"$OUT"; then
  pass "unknown flag is an error"
else
  fail "unknown flag is an error (rc=$RC)" "$OUT"
fi

# 11. The project's data mirror, with the real manifests: SST-2 and the default model verify.
unset UNIPELT_CHECKSUMS_DIR
if [ -d "$REAL_MIRROR/glue/SST-2" ]; then
  run real --mirror "$REAL_MIRROR" --cache "$WORK/cache-real" --tasks SST-2
  R="$WORK/cache-real"
  if [ "$RC" -eq 0 ] && grep -q 'done: 6 fetched, 0 already present, 0 new checksums' <<<"$OUT" &&
     [ -f "$R/glue/SST-2/train.tsv" ] && [ -L "$R/models/bert-mini-mlm/model.safetensors" ] &&
     [ "$(grep -c 'sha256 verified' <<<"$OUT")" -eq 6 ]; then
    pass "real mirror ($REAL_MIRROR): SST-2 and bert-mini-mlm verify against scripts/checksums"
  else
    fail "real mirror ($REAL_MIRROR): SST-2 and bert-mini-mlm verify against scripts/checksums (rc=$RC)" "$OUT"
  fi
else
  echo "skip  real mirror check ($REAL_MIRROR/glue/SST-2 not found)"
fi

# ==============================================================================================
# BEGIN published download checksums and the two MRPC variants (issue 11, item 4)
# Downloads are checked against the sha256 and size published for their URL (glue-downloads.urls,
# keyed by the published URL even when fetched through UNIPELT_*_URL). MRPC exists in two variants:
# the internet's, built from SentEval's tokenized msr_paraphrase_*.txt, and the mirror's, built from
# Microsoft's untokenized text; the mirror-built hashes (glue-mirror.sha256) apply to mirror copies
# only. file:// copies reproduce both.
# ==============================================================================================
if command -v curl >/dev/null 2>&1 && { command -v unzip || command -v python3; } >/dev/null 2>&1 &&
   { command -v zip || command -v python3; } >/dev/null 2>&1; then
  PUB="$WORK/published"
  mkdir -p "$PUB/glue" "$PUB/senteval"
  (cd "$M/glue" && make_zip "$PUB/glue/SST-2.zip" SST-2)
  # The internet variant: tokenized, as SentEval ships it (CRLF, a BOM in the header).
  printf '\xef\xbb\xbfQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\r\n1\t10\t11\this brother , whom he called " the witness " , left .\tHe left .\r\n0\t20\t21\tIt rained .\tIt was dry .\r\n' \
    >"$PUB/senteval/msr_paraphrase_train.txt"
  printf '\xef\xbb\xbfQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\r\n1\t40\t41\tYes , it is .\tIt is .\r\n' >"$PUB/senteval/msr_paraphrase_test.txt"
  printf '20\t21\r\n' >"$PUB/glue/mrpc_dev_ids.tsv"
  # The mirror variant: the same pairs in Microsoft's untokenized text, already split into TSVs.
  MM="$WORK/mirror-mrpc"
  mkdir -p "$MM/glue/MRPC"
  printf '\xef\xbb\xbfQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t10\t11\this brother, whom he called "the witness", left.\tHe left.\n' >"$MM/glue/MRPC/train.tsv"
  printf '\xef\xbb\xbfQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n0\t20\t21\tIt rained.\tIt was dry.\n' >"$MM/glue/MRPC/dev.tsv"
  printf 'index\t#1 ID\t#2 ID\t#1 String\t#2 String\n0\t40\t41\tYes, it is.\tIt is.\n' >"$MM/glue/MRPC/test.tsv"
  PSUMS="$WORK/checksums-published"
  mkdir -p "$PSUMS"
  cp "$SUMS/glue.sha256" "$PSUMS/"
  for f in train dev test; do printf '%s  glue/MRPC/%s.tsv\n' "$(sha "$MM/glue/MRPC/$f.tsv")" "$f"; done >"$PSUMS/glue-mirror.sha256"
  published_line() { printf '%s  %s  %s\n' "$(sha "$1")" "$(wc -c <"$1" | tr -d ' ')" "$2"; }
  {
    echo "# test: the served files, keyed by the published URLs"
    published_line "$PUB/glue/SST-2.zip" https://dl.fbaipublicfiles.com/glue/data/SST-2.zip
    published_line "$PUB/glue/mrpc_dev_ids.tsv" https://dl.fbaipublicfiles.com/glue/data/mrpc_dev_ids.tsv
    for f in train test; do
      published_line "$PUB/senteval/msr_paraphrase_$f.txt" "https://dl.fbaipublicfiles.com/senteval/senteval_data/msr_paraphrase_$f.txt"
    done
  } >"$PSUMS/glue-downloads.urls"
  export UNIPELT_CHECKSUMS_DIR="$PSUMS" UNIPELT_GLUE_URL="file://$PUB/glue" UNIPELT_SENTEVAL_URL="file://$PUB/senteval"

  # The internet variant passes: every download verified, the tokenized TSVs built and recorded.
  CP="$WORK/cache-published"
  run published --cache "$CP" --tasks SST-2,MRPC --model none
  if [ "$RC" -eq 0 ] && [ "$(grep -c 'sha256 as published' <<<"$OUT")" -eq 4 ] &&
     grep -q 'verified msr_paraphrase_train.txt' <<<"$OUT" && grep -q 'verified SST-2.zip' <<<"$OUT" &&
     grep -q 'whom he called " the witness " , left .' "$CP/glue/MRPC/train.tsv" &&
     grep -q '  glue/MRPC/train.tsv$' "$CP/checksums.local" && ! grep -q 'checksum mismatch' <<<"$OUT"; then
    pass "internet MRPC (SentEval, tokenized) verifies against the published hashes; mirror hashes not applied"
  else
    fail "internet MRPC (SentEval, tokenized) verifies against the published hashes; mirror hashes not applied (rc=$RC)" "$OUT"
  fi

  # The mirror variant passes against the mirror-built hashes, and a mirror holding the tokenized
  # TSVs fails them: glue-mirror.sha256 is applied to mirror copies.
  run mirror-mrpc --mirror "$MM" --cache "$WORK/cache-mm" --tasks MRPC --model none
  if [ "$RC" -eq 0 ] && [ "$(grep -c 'sha256 verified' <<<"$OUT")" -eq 3 ] && [ ! -e "$WORK/cache-mm/checksums.local" ]; then
    pass "mirror MRPC (untokenized) verifies against the mirror-built hashes"
  else
    fail "mirror MRPC (untokenized) verifies against the mirror-built hashes (rc=$RC)" "$OUT"
  fi
  MT="$WORK/mirror-tokenized"
  mkdir -p "$MT/glue/MRPC"
  cp "$CP/glue/MRPC/"*.tsv "$MT/glue/MRPC/"
  run mirror-tokenized --mirror "$MT" --cache "$WORK/cache-mt" --tasks MRPC --model none
  if [ "$RC" -ne 0 ] && grep -q 'checksum mismatch for glue/MRPC/' <<<"$OUT" && grep -q 'glue-mirror.sha256' <<<"$OUT"; then
    pass "a mirror with the tokenized MRPC fails the mirror-built hashes"
  else
    fail "a mirror with the tokenized MRPC fails the mirror-built hashes (rc=$RC)" "$OUT"
  fi

  # A download of another size, or of the same size with other bytes, is refused before anything
  # from it is placed or trusted; the message names the URL, both sizes and both hashes.
  cp "$PUB/senteval/msr_paraphrase_test.txt" "$WORK/test.txt.good"
  printf 'extra\r\n' >>"$PUB/senteval/msr_paraphrase_test.txt"
  run published-size --cache "$WORK/cache-ps" --tasks MRPC --model none
  good_size="$(wc -c <"$WORK/test.txt.good" | tr -d ' ')"
  if [ "$RC" -ne 0 ] && grep -q "download of file://$PUB/senteval/msr_paraphrase_test.txt does not match" <<<"$OUT" &&
     grep -q "expected $good_size bytes" <<<"$OUT" && grep -q "$(sha "$PUB/senteval/msr_paraphrase_test.txt")" <<<"$OUT" &&
     [ ! -e "$WORK/cache-ps/glue/MRPC" ] && [ ! -e "$WORK/cache-ps/checksums.local" ]; then
    pass "a download whose size differs from the published one is refused, nothing kept"
  else
    fail "a download whose size differs from the published one is refused, nothing kept (rc=$RC)" "$OUT"
  fi
  cp "$WORK/test.txt.good" "$PUB/senteval/msr_paraphrase_test.txt"
  cp "$PUB/glue/SST-2.zip" "$WORK/sst2.zip.good"
  printf 'X' | dd of="$PUB/glue/SST-2.zip" bs=1 seek=40 conv=notrunc status=none
  run published-sha --cache "$WORK/cache-pz" --tasks SST-2 --model none
  if [ "$RC" -ne 0 ] && grep -q "download of file://$PUB/glue/SST-2.zip does not match what is published for https://dl.fbaipublicfiles.com/glue/data/SST-2.zip" <<<"$OUT" &&
     grep -q "$(sha "$WORK/sst2.zip.good")" <<<"$OUT" && [ ! -e "$WORK/cache-pz/glue/SST-2" ] &&
     [ -z "$(find "$WORK/cache-pz" -name '*.zip*')" ]; then
    pass "a download with the published size but other bytes is refused before unpacking"
  else
    fail "a download with the published size but other bytes is refused before unpacking (rc=$RC)" "$OUT"
  fi
  cp "$WORK/sst2.zip.good" "$PUB/glue/SST-2.zip"
  unset UNIPELT_GLUE_URL UNIPELT_SENTEVAL_URL
  export UNIPELT_CHECKSUMS_DIR="$SUMS"
else
  echo "skip  published download checksums (needs curl, and unzip or python3)"
fi

# The real manifests: every GLUE download is listed with its published hash and size (MRPC's
# SentEval files are the 1,047,044- and 441,275-byte tokenized ones), the published dev-ids hash
# equals the mirror's, and the mirror-built MRPC TSVs are mirror-only.
REAL_SUMS="$REPO/scripts/checksums"
missing_urls=""
for f in glue/data/CoLA.zip glue/data/SST-2.zip glue/data/QQP-clean.zip glue/data/STS-B.zip glue/data/MNLI.zip \
         glue/data/QNLIv2.zip glue/data/RTE.zip glue/data/WNLI.zip glue/data/mrpc_dev_ids.tsv \
         senteval/senteval_data/msr_paraphrase_train.txt senteval/senteval_data/msr_paraphrase_test.txt; do
  grep -Eq "^[0-9a-f]{64}  [0-9]+  https://dl.fbaipublicfiles.com/$f\$" "$REAL_SUMS/glue-downloads.urls" || missing_urls="$missing_urls $f"
done
dev_ids_published="$(awk '$3 ~ /mrpc_dev_ids.tsv$/ { print $1 }' "$REAL_SUMS/glue-downloads.urls")"
if [ -z "$missing_urls" ] && grep -q '  1047044  https://dl.fbaipublicfiles.com/senteval/senteval_data/msr_paraphrase_train.txt$' "$REAL_SUMS/glue-downloads.urls" &&
   grep -q '  441275  https://dl.fbaipublicfiles.com/senteval/senteval_data/msr_paraphrase_test.txt$' "$REAL_SUMS/glue-downloads.urls" &&
   grep -q "^$dev_ids_published  glue/MRPC/dev_ids.tsv\$" "$REAL_SUMS/glue-mirror.sha256" &&
   ! grep -q '  glue/MRPC/' "$REAL_SUMS/glue.sha256" &&
   [ "$(grep -c '  glue/MRPC/\(train\|dev\|test\).tsv$' "$REAL_SUMS/glue-mirror.sha256")" -eq 3 ]; then
  pass "scripts/checksums: every GLUE download has a published hash; MRPC's mirror-built hashes are mirror-only"
else
  fail "scripts/checksums: every GLUE download has a published hash; MRPC's mirror-built hashes are mirror-only (missing:$missing_urls)"
fi
# END published download checksums and the two MRPC variants
# ==============================================================================================

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
