#!/usr/bin/env bash
# The layer rules (CMakeLists.txt: unipelt_layer), tested three ways:
#   1. scripts/check-layers.sh passes on this source tree;
#   2. it fails, naming the file, the line and the rule, on copies of the tree with a wrong-way include
#      planted (a lower layer including a higher one, a sibling, cuda/ from autograd/, tests/ from a layer),
#      and still passes when the planted include goes down the layers;
#   3. the build's target graph (BUILD/layer-graph.txt, which CMakeLists.txt writes from the targets' link
#      properties) equals the documented docs/layers.dot.
# Usage: tests/test_layers.sh ROOT BUILD/layer-graph.txt LAYER:DEPS ...   (CMakeLists.txt passes them)
set -euo pipefail
root=$1
graph=$2
shift 2
specs=("$@")
check="$root/scripts/check-layers.sh"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# 1. The real tree.
bash "$check" "$root" "${specs[@]}" || fail "check-layers rejects the real tree"

# 2. Planted includes, each in a fresh copy of the layer folders.
copy_tree() {
  rm -rf "$scratch/tree"
  mkdir -p "$scratch/tree"
  for d in autograd nn datasets pelt train cuda examples bench; do
    [ -d "$root/$d" ] && cp -r "$root/$d" "$scratch/tree/$d"
  done
}
# plant FILE INCLUDE EXPECT: EXPECT is "reject" or "accept"
plant() {
  local file=$1 include=$2 expect=$3 out status
  copy_tree
  printf '#include "%s"\n' "$include" >>"$scratch/tree/$file"
  set +e
  out=$(bash "$check" "$scratch/tree" "${specs[@]}" 2>&1)
  status=$?
  set -e
  if [ "$expect" = reject ]; then
    if [ $status -ne 1 ]; then
      fail "$file including $include was not rejected (status $status): $out"
    elif ! grep -q "^$file:[0-9]*: includes \"$include\"" <<<"$out"; then
      fail "the rejection of $file including $include does not name the file and line: $out"
    else
      echo "ok: $file including $include is rejected: $(grep -m1 "^$file" <<<"$out")"
    fi
  else
    [ $status -eq 0 ] && echo "ok: $file including $include is accepted" ||
      fail "$file including $include (down the layers) was rejected: $out"
  fi
}
plant nn/module.h train/trainer.h reject            # up two layers
plant autograd/tensor.h nn/module.h reject          # up one layer
plant autograd/backend.cpp cuda/cuda_backend.h reject  # the backend seam must not name cuda/
plant pelt/lora.cpp datasets/glue.h reject          # siblings do not see each other
plant datasets/glue.cpp pelt/config.h reject
plant cuda/gemm.cu nn/module.h reject               # cuda/ plugs into autograd only
plant train/trainer.cpp examples/cli/cli.h reject   # the CLI is the top
plant nn/bert.cpp tests/test_util.h reject          # nothing includes the tests
plant train/sweep.cpp datasets/glue.h accept        # down the layers is fine
plant examples/cli/cmd_train.cpp autograd/tensor.h accept

# 3. The documented graph.
documented=$(sed -n 's|^  "\(.*\)" -> "\(.*\)";$|\1 -> \2|p' "$root/docs/layers.dot" | sort -u)
built=$(sort -u "$graph")
if ! grep -q '^cuda -> ' <<<"$built"; then
  echo "note: this build has no cuda target (configured without CUDA): comparing without the cuda edges"
  documented=$(grep -v 'cuda' <<<"$documented")
fi
if [ "$documented" = "$built" ]; then
  echo "ok: the build's target graph equals docs/layers.dot ($(wc -l <<<"$built") edges)"
else
  fail "the build's target graph differs from docs/layers.dot (< documented, > built):
$(diff <(printf '%s\n' "$documented") <(printf '%s\n' "$built"))"
fi

if [ $failures -gt 0 ]; then
  echo "$failures layer check(s) failed" >&2
  exit 1
fi
echo "all layer checks passed"
