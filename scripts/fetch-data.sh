#!/usr/bin/env bash
# Puts GLUE tasks and a Hugging Face BERT model directory into the unipelt data cache, from a local
# mirror or from the internet, and checks every file's sha256. Run with --help for the flags;
# docs/data-fetching.md describes the sources, the cache layout and the checksums.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "$0")" && pwd -P)"

ALL_TASKS="CoLA SST-2 MRPC QQP STS-B MNLI QNLI RTE WNLI"
MIRROR_DEFAULT_MODEL="bert-mini-mlm"
INTERNET_DEFAULT_MODEL="gaunernst/bert-mini-uncased"
MODEL_FILES="config.json vocab.txt"
MODEL_WEIGHTS="model.safetensors pytorch_model.bin"  # the first one a model has is fetched

# GLUE's published download URLs; downloads are checked against the sha256 and size published for
# them (scripts/checksums/glue-downloads.urls), also when fetched through UNIPELT_GLUE_URL or
# UNIPELT_SENTEVAL_URL (a proxy or a local copy of the same files).
GLUE_URL_PUBLISHED="https://dl.fbaipublicfiles.com/glue/data"
SENTEVAL_URL_PUBLISHED="https://dl.fbaipublicfiles.com/senteval/senteval_data"
GLUE_URL="${UNIPELT_GLUE_URL:-$GLUE_URL_PUBLISHED}"
SENTEVAL_URL="${UNIPELT_SENTEVAL_URL:-$SENTEVAL_URL_PUBLISHED}"
HF_URL="${UNIPELT_HF_URL:-https://huggingface.co}"
CHECKSUMS_DIR="${UNIPELT_CHECKSUMS_DIR:-$SCRIPT_DIR/checksums}"

CACHE="${UNIPELT_CACHE:-${HOME:-}/.cache/unipelt}"
MIRROR="${UNIPELT_MIRROR:-}"
TASKS_ARG="all"
MODEL=""
REVISION="main"
FORCE=0
COPY_WEIGHTS=0

usage() {
  cat <<EOF
Usage: scripts/fetch-data.sh [--cache DIR] [--mirror DIR | --no-mirror] [--tasks LIST|all|none]
                             [--model NAME|none] [--revision REV] [--copy] [--force]

Puts GLUE tasks and a Hugging Face BERT model directory into a cache directory:
  <cache>/glue/<TASK>/*.tsv                           (what 'unipelt train --data <cache>' reads)
  <cache>/models/<NAME>/{config.json,vocab.txt,model.safetensors}   ('--model <cache>/models/<NAME>')
    (pytorch_model.bin instead of model.safetensors for a model that has no safetensors file)
and verifies the sha256 of every file (see docs/data-fetching.md).

Options:
  --cache DIR      Cache directory (default: \$UNIPELT_CACHE, else ~/.cache/unipelt; here that is
                   $CACHE).
  --mirror DIR     Copy from a local directory laid out like the cache (glue/<TASK>/...,
                   models/<NAME>/...) instead of downloading (default: \$UNIPELT_MIRROR). With a
                   mirror nothing is downloaded: a file the mirror lacks is an error. Small files
                   are copied; the weights are symlinked into the mirror (see --copy).
  --no-mirror      Ignore \$UNIPELT_MIRROR and download from the internet: GLUE's zips from
                   dl.fbaipublicfiles.com (MRPC: SentEval's tokenized files + GLUE's dev ids, split
                   as download_glue_data.py does), each checked against its published sha256 and
                   size; the model from huggingface.co/<NAME>/resolve/<REV>/.
  --tasks LIST     Comma-separated GLUE tasks: CoLA, SST-2, MRPC, QQP, STS-B, MNLI, QNLI, RTE, WNLI
                   (case-insensitive; sst2, stsb also work), 'all' (default: every task; with a
                   mirror, every task the mirror has) or 'none'.
  --model NAME     Model directory to fetch; 'none' skips the model. Default: $MIRROR_DEFAULT_MODEL
                   with a mirror; $INTERNET_DEFAULT_MODEL (a Hugging Face hub repository id)
                   from the internet. Any model with config.json, vocab.txt and model.safetensors
                   works; a hub repository without model.safetensors (e.g. the prajjwal1 BERT
                   miniatures) gets its pytorch_model.bin, which unipelt reads without running
                   any code from it ('unipelt convert --model DIR' writes model.safetensors once).
  --revision REV   Hub revision (branch, tag, commit or e.g. refs/pr/2) for an internet model
                   (default: main).
  --copy           Copy the model weights from the mirror instead of symlinking them.
  --force          Fetch again even files that are already present and verified.
  -h, --help       Show this help.

Checksums: a file listed in scripts/checksums/*.sha256 (*-mirror.sha256: only when copying from a
mirror) must match; a mismatch is an error naming the file and both hashes, and the file is not
kept. Files with no listed checksum (e.g. a model never seen before) are recorded in
<cache>/checksums.local when first fetched and checked against that record later (trust on first
use). Files already present with the right checksum are not fetched again.

Environment: UNIPELT_CACHE, UNIPELT_MIRROR (as above); UNIPELT_CHECKSUMS_DIR (manifest folder,
default scripts/checksums); UNIPELT_GLUE_URL, UNIPELT_SENTEVAL_URL, UNIPELT_HF_URL (download base
URLs, for a proxy or a local copy; file:// works with curl). Defaults:
  $GLUE_URL
  $SENTEVAL_URL
  $HF_URL
EOF
}

say() { printf 'fetch-data: %s\n' "$*"; }
warn() { printf 'fetch-data: warning: %s\n' "$*" >&2; }
die() { printf 'fetch-data: error: %s\n' "$*" >&2; exit 1; }

need_value() { if [ $# -lt 2 ] || [ -z "$2" ]; then die "$1 needs a value (see --help)"; fi; }
while [ $# -gt 0 ]; do
  case "$1" in
    --cache) need_value "$@"; CACHE="$2"; shift 2 ;;
    --cache=*) CACHE="${1#*=}"; shift ;;
    --mirror) need_value "$@"; MIRROR="$2"; shift 2 ;;
    --mirror=*) MIRROR="${1#*=}"; shift ;;
    --no-mirror) MIRROR=""; shift ;;
    --tasks) need_value "$@"; TASKS_ARG="$2"; shift 2 ;;
    --tasks=*) TASKS_ARG="${1#*=}"; shift ;;
    --model) need_value "$@"; MODEL="$2"; shift 2 ;;
    --model=*) MODEL="${1#*=}"; shift ;;
    --revision) need_value "$@"; REVISION="$2"; shift 2 ;;
    --revision=*) REVISION="${1#*=}"; shift ;;
    --copy) COPY_WEIGHTS=1; shift ;;
    --force) FORCE=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

[ -n "$CACHE" ] || die "no cache directory: pass --cache DIR or set UNIPELT_CACHE (HOME is unset)"
[ -d "$CHECKSUMS_DIR" ] || die "checksum manifest folder $CHECKSUMS_DIR does not exist (UNIPELT_CHECKSUMS_DIR)"

# ------------------------------------------------------------------------------------------------
# Hashes and manifests
# ------------------------------------------------------------------------------------------------
if command -v sha256sum >/dev/null 2>&1; then
  sha256_of() { sha256sum <"$1" | cut -d' ' -f1; }
elif command -v shasum >/dev/null 2>&1; then
  sha256_of() { shasum -a 256 <"$1" | cut -d' ' -f1; }
else
  die "neither sha256sum nor shasum found (install coreutils)"
fi

LOCAL_SUMS="$CACHE/checksums.local"

# manifest_lookup FILE REL: prints the last sha256 that FILE lists for REL (nothing if none).
# Manifest lines: '<sha256>  <path relative to the cache root>'; '#' starts a comment line.
manifest_lookup() {
  [ -f "$1" ] || return 0
  awk -v p="$2" '
    /^[ \t]*(#|$)/ { next }
    { path = $0; sub(/^[ \t]*[0-9A-Fa-f]+[ \t]+\*?/, "", path); if (path == p) h = tolower($1) }
    END { if (h != "") print h }' "$1"
}

# manifest_paths FILE PREFIX: the paths FILE lists that start with PREFIX.
manifest_paths() {
  [ -f "$1" ] || return 0
  awk -v p="$2" '
    /^[ \t]*(#|$)/ { next }
    { path = $0; sub(/^[ \t]*[0-9A-Fa-f]+[ \t]+\*?/, "", path); if (index(path, p) == 1) print path }' "$1"
}

# The manifests that apply to this run: every *.sha256; *-mirror.sha256 only when copying from a mirror.
manifests() {
  local f
  for f in "$CHECKSUMS_DIR"/*.sha256; do
    [ -f "$f" ] || continue
    case "$f" in *-mirror.sha256) [ -n "$MIRROR" ] || continue ;; esac
    printf '%s\n' "$f"
  done
}

# known_hash REL: sets KNOWN_HASH and KNOWN_FROM from the manifests, else from checksums.local.
known_hash() {
  local f h
  KNOWN_HASH=""
  KNOWN_FROM=""
  while IFS= read -r f; do
    h="$(manifest_lookup "$f" "$1")"
    if [ -n "$h" ]; then KNOWN_HASH="$h"; KNOWN_FROM="$f"; return 0; fi
  done < <(manifests)
  h="$(manifest_lookup "$LOCAL_SUMS" "$1")"
  if [ -n "$h" ]; then KNOWN_HASH="$h"; KNOWN_FROM="$LOCAL_SUMS (trust on first use)"; fi
}

# known_paths PREFIX [local]: paths under PREFIX with a manifest checksum (and, with 'local', those
# recorded in checksums.local), one per line, sorted and unique.
known_paths() {
  local f
  {
    while IFS= read -r f; do manifest_paths "$f" "$1"; done < <(manifests)
    if [ "${2:-}" = local ]; then manifest_paths "$LOCAL_SUMS" "$1"; fi
  } | LC_ALL=C sort -u
}

# ------------------------------------------------------------------------------------------------
# Placing files: fetch to '<dest>.partial', verify, rename
# ------------------------------------------------------------------------------------------------
N_FETCHED=0
N_PRESENT=0
N_RECORDED=0
CURRENT_PARTIAL=""
TMP_ROOT=""
cleanup() {
  [ -z "$CURRENT_PARTIAL" ] || rm -f -- "$CURRENT_PARTIAL"
  [ -z "$TMP_ROOT" ] || rm -rf -- "$TMP_ROOT"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

DOWNLOADER=""
download() {  # download URL OUT
  local url="$1" out="$2" rc=0
  say "  download $url"
  if [ "$DOWNLOADER" = curl ]; then
    local progress=(-sS)
    [ -t 2 ] && progress=(--progress-bar)
    curl -fL --retry 3 --retry-delay 2 --retry-connrefused --connect-timeout 30 "${progress[@]}" \
         -o "$out" "$url" || rc=$?
  else
    local progress=(-q)
    [ -t 2 ] && progress=(-q --show-progress)
    wget --tries=3 --waitretry=2 --timeout=60 "${progress[@]}" -O "$out" "$url" || rc=$?
  fi
  if [ "$rc" -ne 0 ]; then
    rm -f -- "$out"
    return "$rc"
  fi
}

download_or_die() {  # download_or_die URL OUT [HINT]
  local rc=0
  download "$1" "$2" || rc=$?
  [ "$rc" -eq 0 ] && return 0
  die "could not download $1 ($DOWNLOADER exit status $rc).${3:+ $3} No internet here? Fetch from a local copy instead: --mirror DIR (or UNIPELT_MIRROR), a folder laid out as glue/<TASK>/ and models/<NAME>/."
}

# place_file REL HOW SRC: puts SRC at <cache>/REL. HOW: copy (SRC a file), link (symlink to SRC),
# move (SRC a staged file) or download (SRC a URL). Skips a present file that verifies (unless
# --force); a file with a known checksum must match it, else it is removed and the run fails; a file
# with none gets its checksum recorded in checksums.local.
place_file() {
  local rel="$1" how="$2" src="$3"
  local dest="$CACHE/$rel" actual
  known_hash "$rel"
  if [ "$FORCE" -eq 0 ] && [ -e "$dest" ] && [ -n "$KNOWN_HASH" ]; then
    actual="$(sha256_of "$dest")"
    if [ "$actual" = "$KNOWN_HASH" ] && ! { [ "$how" = copy ] && [ -L "$dest" ]; }; then
      say "  present  $rel (sha256 verified)"
      N_PRESENT=$((N_PRESENT + 1))
      return 0
    fi
    [ "$actual" = "$KNOWN_HASH" ] ||
      say "  stale    $rel: cached sha256 $actual, expected $KNOWN_HASH; fetching again"
  fi
  mkdir -p -- "$(dirname -- "$dest")"
  CURRENT_PARTIAL="$dest.partial"
  rm -f -- "$CURRENT_PARTIAL"
  case "$how" in
    copy) cp -- "$src" "$CURRENT_PARTIAL"; chmod u+rw,go+r -- "$CURRENT_PARTIAL" ;;
    link) ln -s -- "$src" "$CURRENT_PARTIAL" ;;
    move) mv -f -- "$src" "$CURRENT_PARTIAL" ;;
    download) download_or_die "$src" "$CURRENT_PARTIAL" "${DOWNLOAD_HINT:-}" ;;
    *) die "internal: place_file how=$how" ;;
  esac
  actual="$(sha256_of "$CURRENT_PARTIAL")"
  if [ -n "$KNOWN_HASH" ] && [ "$actual" != "$KNOWN_HASH" ]; then
    rm -f -- "$CURRENT_PARTIAL"
    CURRENT_PARTIAL=""
    # A cached copy that does not verify either is removed too: nothing unverified keeps the name.
    if [ -e "$dest" ] || [ -L "$dest" ]; then
      if [ ! -e "$dest" ] || [ "$(sha256_of "$dest")" != "$KNOWN_HASH" ]; then rm -f -- "$dest"; fi
    fi
    die "checksum mismatch for $rel (fetched from $src): expected sha256 $KNOWN_HASH (listed in $KNOWN_FROM), got $actual. The file was not kept."
  fi
  mv -f -- "$CURRENT_PARTIAL" "$dest"
  CURRENT_PARTIAL=""
  N_FETCHED=$((N_FETCHED + 1))
  if [ -n "$KNOWN_HASH" ]; then
    say "  fetched  $rel (sha256 verified)"
  else
    printf '%s  %s\n' "$actual" "$rel" >>"$LOCAL_SUMS"
    N_RECORDED=$((N_RECORDED + 1))
    say "  fetched  $rel (no known checksum: recorded sha256 $actual in checksums.local, trust on first use)"
  fi
}

# ------------------------------------------------------------------------------------------------
# GLUE
# ------------------------------------------------------------------------------------------------
canonical_task() {
  case "$(printf '%s' "$1" | tr '[:upper:]' '[:lower:]')" in
    cola) echo CoLA ;;
    sst-2 | sst2 | sst) echo SST-2 ;;
    mrpc) echo MRPC ;;
    qqp) echo QQP ;;
    sts-b | stsb | sts) echo STS-B ;;
    mnli) echo MNLI ;;
    qnli) echo QNLI ;;
    rte) echo RTE ;;
    wnli) echo WNLI ;;
    *) return 1 ;;
  esac
}

zip_name() {
  case "$1" in
    QQP) echo QQP-clean.zip ;;
    QNLI) echo QNLIv2.zip ;;
    *) echo "$1.zip" ;;
  esac
}

# The files 'unipelt train' needs: a warning, not an error, when the source does not have them.
check_required_splits() {
  local task="$1" dev="dev.tsv" f
  [ "$task" = MNLI ] && dev="dev_matched.tsv"
  for f in train.tsv "$dev"; do
    [ -f "$CACHE/glue/$task/$f" ] ||
      warn "glue/$task/$f is missing (the source does not have it); 'unipelt train --task $task' needs it"
  done
}

# Places every file under directory ROOT as glue/TASK/<path below ROOT>: files with a known checksum
# first, so that a mismatch stops the run before unknown files are recorded as trusted.
place_tree() {  # place_tree TASK ROOT HOW
  local task="$1" root="$2" how="$3" f rel known=() unknown=()
  while IFS= read -r -d '' f; do
    rel="glue/$task/${f#"$root"/}"
    known_hash "$rel"
    if [ -n "$KNOWN_HASH" ]; then known+=("$f"); else unknown+=("$f"); fi
  done < <(find -L "$root" -type f ! -name '.*' -print0 | LC_ALL=C sort -z)
  for f in ${known[@]+"${known[@]}"} ${unknown[@]+"${unknown[@]}"}; do
    place_file "glue/$task/${f#"$root"/}" "$how" "$f"
  done
}

fetch_task_mirror() {
  local task="$1" src="$MIRROR/glue/$1" rel missing=()
  say "[$task] from mirror $src"
  [ -d "$src" ] || die "the mirror has no glue/$task/ ($src does not exist)"
  while IFS= read -r rel; do
    [ -f "$MIRROR/$rel" ] || missing+=("$MIRROR/$rel")
  done < <(known_paths "glue/$task/")
  if [ ${#missing[@]} -gt 0 ]; then
    die "mirror file missing: ${missing[*]} (listed in the checksum manifests in $CHECKSUMS_DIR)"
  fi
  place_tree "$task" "$src" copy
  check_required_splits "$task"
}

# True when every file under glue/TASK with a known checksum (manifests and checksums.local) is
# present and verifies, and the splits unipelt needs are there: then the task is not downloaded.
task_complete() {
  local task="$1" rel n=0 dev="dev.tsv"
  [ "$task" = MNLI ] && dev="dev_matched.tsv"
  [ -f "$CACHE/glue/$task/train.tsv" ] && [ -f "$CACHE/glue/$task/$dev" ] || return 1
  while IFS= read -r rel; do
    known_hash "$rel"
    [ -f "$CACHE/$rel" ] && [ "$(sha256_of "$CACHE/$rel")" = "$KNOWN_HASH" ] || return 1
    n=$((n + 1))
  done < <(known_paths "glue/$task/" local)
  [ "$n" -gt 0 ] || return 1
  TASK_FILES=$n
}

# MRPC the way GLUE's download_glue_data.py builds it: SentEval's msr_paraphrase_{train,test}.txt
# plus GLUE's dev ids; the train pairs listed in dev_ids.tsv form dev.tsv, the rest train.tsv.
# shellcheck disable=SC2016  # an awk program: its $ are awk's
MRPC_AWK='
function strip(s) { sub(/^[ \t\r\n\v\f]+/, "", s); sub(/[ \t\r\n\v\f]+$/, "", s); return s }
BEGIN { FS = "\t"; OFS = "\t" }
FILENAME == ids { n = split(strip($0), f, "\t"); if (n == 2) dev[f[1] "\t" f[2]] = 1; next }
FNR == 1 && FILENAME == testin { print "index", "#1 ID", "#2 ID", "#1 String", "#2 String" > testout; next }
FNR == 1 && FILENAME == trainin { h = $0; sub(/\r$/, "", h); print h > trainout; print h > devout; next }
{
  n = split(strip($0), f, "\t")
  if (n != 5) { printf "%s:%d: expected 5 tab-separated fields, got %d\n", FILENAME, FNR, n > "/dev/stderr"; bad = 1; exit 1 }
  if (FILENAME == testin) print FNR - 2, f[2], f[3], f[4], f[5] > testout
  else if ((f[2] "\t" f[3]) in dev) print f[1], f[2], f[3], f[4], f[5] > devout
  else print f[1], f[2], f[3], f[4], f[5] > trainout
}
END { if (bad) exit 1 }'

# The sha256 and size published for each GLUE download (Hugging Face datasets' glue loader lists
# them), one '<sha256>  <bytes>  <published URL>' per line.
PUBLISHED_SUMS="$CHECKSUMS_DIR/glue-downloads.urls"

# published_lookup URL: sets PUB_SHA256 and PUB_BYTES for URL from PUBLISHED_SUMS (empty if unlisted).
published_lookup() {
  PUB_SHA256=""
  PUB_BYTES=""
  [ -f "$PUBLISHED_SUMS" ] || return 0
  read -r PUB_SHA256 PUB_BYTES < <(awk -v u="$1" '
    /^[ \t]*(#|$)/ { next }
    $3 == u { h = tolower($1); n = $2 }
    END { if (h != "") print h, n }' "$PUBLISHED_SUMS") || true
}

# glue_download BASE PUBLISHED_BASE NAME OUT: downloads BASE/NAME to OUT and checks it against the
# size and sha256 published for PUBLISHED_BASE/NAME; a mismatch removes OUT and stops the run.
glue_download() {
  local url="$1/$3" published="$2/$3" out="$4" bytes actual
  download_or_die "$url" "$out"
  published_lookup "$published"
  if [ -z "$PUB_SHA256" ]; then
    warn "no published sha256 for $published in $PUBLISHED_SUMS: the files from it are trust-on-first-use"
    return 0
  fi
  bytes="$(wc -c <"$out" | tr -d ' ')"
  actual="$(sha256_of "$out")"
  if [ "$bytes" != "$PUB_BYTES" ] || [ "$actual" != "$PUB_SHA256" ]; then
    rm -f -- "$out"
    die "download of $url does not match what is published for $published (listed in $PUBLISHED_SUMS): expected $PUB_BYTES bytes with sha256 $PUB_SHA256, got $bytes bytes with sha256 $actual. The file was not kept."
  fi
  say "  verified $3: $bytes bytes, sha256 as published"
}

build_mrpc() {  # build_mrpc DIR: DIR holds the three raw files; writes train/dev/test.tsv there
  local d="$1"
  awk -v ids="$d/dev_ids.tsv" -v testin="$d/msr_paraphrase_test.txt" -v trainin="$d/msr_paraphrase_train.txt" \
      -v testout="$d/test.tsv" -v trainout="$d/train.tsv" -v devout="$d/dev.tsv" "$MRPC_AWK" \
      "$d/dev_ids.tsv" "$d/msr_paraphrase_test.txt" "$d/msr_paraphrase_train.txt" ||
    die "could not build MRPC train/dev/test.tsv from the downloaded files in $d"
}

unzip_to() {  # unzip_to ZIP DIR
  if command -v unzip >/dev/null 2>&1; then
    unzip -q -o "$1" -d "$2" || die "could not unpack $1 (unzip failed; is the download a zip file?)"
  else
    python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$1" "$2" ||
      die "could not unpack $1 (python3 zipfile failed; is the download a zip file?)"
  fi
}

fetch_task_internet() {
  local task="$1" stage="$TMP_ROOT/$1" root rel dirs=() d
  TASK_FILES=0
  if [ "$FORCE" -eq 0 ] && task_complete "$task"; then
    say "[$task] present: $TASK_FILES files in $CACHE/glue/$task (sha256 verified)"
    N_PRESENT=$((N_PRESENT + TASK_FILES))
    return 0
  fi
  rm -rf -- "$stage"
  mkdir -p -- "$stage"
  if [ "$task" = MRPC ]; then
    # SentEval's copies are tokenized ("his brother , whom ..."), unlike Microsoft's original text
    # that the data mirror holds: the built TSVs differ from the mirror's (docs/data-fetching.md).
    say "[$task] from SentEval's (tokenized) MRPC files + GLUE's dev ids (as download_glue_data.py)"
    root="$stage/MRPC"
    mkdir -p -- "$root"
    glue_download "$SENTEVAL_URL" "$SENTEVAL_URL_PUBLISHED" msr_paraphrase_train.txt "$root/msr_paraphrase_train.txt"
    glue_download "$SENTEVAL_URL" "$SENTEVAL_URL_PUBLISHED" msr_paraphrase_test.txt "$root/msr_paraphrase_test.txt"
    glue_download "$GLUE_URL" "$GLUE_URL_PUBLISHED" mrpc_dev_ids.tsv "$root/dev_ids.tsv"
    build_mrpc "$root"
  else
    local zip
    zip="$(zip_name "$task")"
    say "[$task] from $GLUE_URL/$zip"
    CURRENT_PARTIAL="$TMP_ROOT/$zip.partial"
    glue_download "$GLUE_URL" "$GLUE_URL_PUBLISHED" "$zip" "$CURRENT_PARTIAL"
    mv -f -- "$CURRENT_PARTIAL" "$TMP_ROOT/$zip"
    CURRENT_PARTIAL=""
    unzip_to "$TMP_ROOT/$zip" "$stage"
    rm -f -- "$TMP_ROOT/$zip"
    rm -rf -- "$stage/__MACOSX"
    if [ -d "$stage/$task" ]; then
      root="$stage/$task"
    else
      for d in "$stage"/*/; do [ -d "$d" ] && dirs+=("${d%/}"); done
      if [ ${#dirs[@]} -eq 1 ]; then root="${dirs[0]}"; else root="$stage"; fi
    fi
  fi
  while IFS= read -r rel; do
    [ -f "$root/${rel#"glue/$task/"}" ] ||
      die "the download of $task lacks ${rel#"glue/$task/"}, whose checksum is listed in $CHECKSUMS_DIR"
  done < <(known_paths "glue/$task/")
  place_tree "$task" "$root" move
  rm -rf -- "$stage"
  check_required_splits "$task"
}

# ------------------------------------------------------------------------------------------------
# Models
# ------------------------------------------------------------------------------------------------
# The weights: model.safetensors when the model has it, else pytorch_model.bin (MODEL_WEIGHTS order).
weights_note() {  # weights_note NAME FILE
  [ "$2" = model.safetensors ] ||
    say "  note     $1 has no model.safetensors: unipelt reads $2 directly (no code in it is run); 'unipelt convert --model $CACHE/models/$1' writes model.safetensors once"
}

fetch_model_mirror() {
  local name="$1" src="$MIRROR/models/$1" f have weights=""
  say "[model $name] from mirror $src"
  if [ ! -d "$src" ]; then
    have=""
    if [ -d "$MIRROR/models" ]; then
      have="$(cd "$MIRROR/models" && find . -name config.json -exec dirname {} \; | sed 's|^\./||' | sort | paste -sd' ' -)"
    fi
    die "the mirror has no models/$name/ ($src does not exist; it has: ${have:-no models}). Pass --model NAME or --model none."
  fi
  for f in $MODEL_FILES; do
    [ -f "$src/$f" ] || die "mirror file missing: $src/$f (a model directory needs $MODEL_FILES and model.safetensors or pytorch_model.bin)"
  done
  for f in $MODEL_WEIGHTS; do
    if [ -f "$src/$f" ]; then weights="$f"; break; fi
  done
  [ -n "$weights" ] || die "mirror file missing: $src/model.safetensors (nor is there a pytorch_model.bin)"
  place_file "models/$name/config.json" copy "$src/config.json"
  place_file "models/$name/vocab.txt" copy "$src/vocab.txt"
  if [ "$COPY_WEIGHTS" -eq 1 ]; then
    place_file "models/$name/$weights" copy "$src/$weights"
  else
    place_file "models/$name/$weights" link "$src/$weights"
  fi
  weights_note "$name" "$weights"
}

# remote_exists URL: status 0 when the file is there, 1 when the server says it is not (HTTP 4xx, or
# a missing file:// path); any other failure (no network) ends the run.
remote_exists() {
  local rc=0
  if [ "$DOWNLOADER" = curl ]; then
    curl -fsIL --retry 3 --retry-delay 2 --retry-connrefused --connect-timeout 30 -o /dev/null "$1" || rc=$?
    case "$rc" in 0) return 0 ;; 22 | 37) return 1 ;; esac
  else
    wget -q --spider --tries=3 --waitretry=2 --timeout=60 "$1" || rc=$?
    case "$rc" in 0) return 0 ;; 8) return 1 ;; esac
  fi
  die "could not reach $1 ($DOWNLOADER exit status $rc). No internet here? Fetch from a local copy instead: --mirror DIR (or UNIPELT_MIRROR)."
}

fetch_model_internet() {
  local name="$1" f rev_enc base weights=""
  rev_enc="$(printf '%s' "$REVISION" | sed 's|/|%2F|g')"
  base="$HF_URL/$name/resolve/$rev_enc"
  say "[model $name] from $HF_URL/$name (revision $REVISION)"
  for f in $MODEL_FILES; do
    place_file "models/$name/$f" download "$base/$f"
  done
  # Weights already in the cache are verified, not looked for again; otherwise ask the hub which it has.
  for f in $MODEL_WEIGHTS; do
    if [ -e "$CACHE/models/$name/$f" ]; then weights="$f"; break; fi
  done
  if [ -z "$weights" ]; then
    if remote_exists "$base/model.safetensors"; then
      weights=model.safetensors
    else
      say "  $name has no model.safetensors at revision $REVISION: fetching pytorch_model.bin"
      weights=pytorch_model.bin
    fi
  fi
  DOWNLOAD_HINT=""
  [ "$weights" = model.safetensors ] ||
    DOWNLOAD_HINT="$name has neither model.safetensors nor pytorch_model.bin at revision $REVISION (is it a BERT model repository? --revision picks another branch or refs/pr/N)."
  place_file "models/$name/$weights" download "$base/$weights"
  DOWNLOAD_HINT=""
  weights_note "$name" "$weights"
}

# ------------------------------------------------------------------------------------------------
# Main
# ------------------------------------------------------------------------------------------------
if [ -n "$MIRROR" ]; then
  [ -d "$MIRROR" ] || die "mirror directory $MIRROR does not exist (--mirror / UNIPELT_MIRROR); pass --no-mirror to download instead"
  MIRROR="$(cd "$MIRROR" && pwd -P)"
fi
mkdir -p -- "$CACHE" || die "cannot create the cache directory $CACHE"
CACHE="$(cd "$CACHE" && pwd -P)"
LOCAL_SUMS="$CACHE/checksums.local"
if [ -n "$MIRROR" ] && [ "$MIRROR" = "$CACHE" ]; then
  die "the mirror and the cache are the same directory ($CACHE); nothing to fetch"
fi

TASKS=()
SKIPPED=""
case "$TASKS_ARG" in
  none) ;;
  all)
    for t in $ALL_TASKS; do
      if [ -z "$MIRROR" ] || [ -d "$MIRROR/glue/$t" ]; then TASKS+=("$t"); fi
    done
    if [ -n "$MIRROR" ]; then
      for t in $ALL_TASKS; do [ -d "$MIRROR/glue/$t" ] || SKIPPED="$SKIPPED $t"; done
    fi
    ;;
  *)
    IFS=',' read -r -a requested <<<"$TASKS_ARG"
    for t in "${requested[@]}"; do
      t="$(printf '%s' "$t" | tr -d '[:space:]')"
      [ -n "$t" ] || continue
      c="$(canonical_task "$t")" || die "unknown GLUE task '$t' (known: $ALL_TASKS, all, none)"
      case " ${TASKS[*]-} " in *" $c "*) ;; *) TASKS+=("$c") ;; esac
    done
    ;;
esac

if [ -z "$MODEL" ]; then
  if [ -n "$MIRROR" ]; then MODEL="$MIRROR_DEFAULT_MODEL"; else MODEL="$INTERNET_DEFAULT_MODEL"; fi
fi
if [ "$MODEL" != none ]; then
  case "$MODEL" in
    /* | *..* | *//* | */ | *[!A-Za-z0-9._/-]*) die "bad model name '$MODEL' (a hub id such as owner/name, or a mirror folder name)" ;;
  esac
fi

if [ -n "$MIRROR" ]; then
  say "cache $CACHE; source: mirror $MIRROR (no downloads)"
  [ -z "$SKIPPED" ] || say "tasks the mirror does not have (skipped):$SKIPPED"
else
  if command -v curl >/dev/null 2>&1; then DOWNLOADER=curl
  elif command -v wget >/dev/null 2>&1; then DOWNLOADER=wget
  else
    die "no mirror (--mirror DIR or UNIPELT_MIRROR) and neither curl nor wget is installed: install curl (scripts/install-deps.sh installs it) or pass --mirror DIR"
  fi
  if [ ${#TASKS[@]} -gt 0 ] && ! command -v unzip >/dev/null 2>&1 && ! command -v python3 >/dev/null 2>&1; then
    die "GLUE comes as zip files and neither unzip nor python3 is installed: install unzip (scripts/install-deps.sh installs it) or pass --mirror DIR"
  fi
  say "cache $CACHE; source: internet ($DOWNLOADER)"
fi
if [ -z "$MIRROR" ]; then  # downloads are staged here (same file system: renames are atomic)
  TMP_ROOT="$CACHE/.fetch-tmp.$$"
  mkdir -p -- "$TMP_ROOT"
fi

for t in ${TASKS[@]+"${TASKS[@]}"}; do
  if [ -n "$MIRROR" ]; then fetch_task_mirror "$t"; else fetch_task_internet "$t"; fi
done
if [ "$MODEL" != none ]; then
  if [ -n "$MIRROR" ]; then fetch_model_mirror "$MODEL"; else fetch_model_internet "$MODEL"; fi
fi

say "done: $N_FETCHED fetched, $N_PRESENT already present, $N_RECORDED new checksums recorded (checksums.local)"
[ ${#TASKS[@]} -eq 0 ] || say "GLUE: $CACHE/glue/ (${TASKS[*]}); unipelt train --data $CACHE"
[ "$MODEL" = none ] || say "model: $CACHE/models/$MODEL; unipelt train --model $CACHE/models/$MODEL"
