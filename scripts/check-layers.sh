#!/usr/bin/env bash
# The layer rule: a file in layer L may include headers of L itself and of the layers L depends on
# (directly or through others), nothing else. CMakeLists.txt passes the graph it builds the libraries
# from, so the rule and the link graph cannot drift apart; a violation fails the build.
#
# Usage: scripts/check-layers.sh ROOT LAYER:DEP,DEP ...
#   e.g. scripts/check-layers.sh . autograd: nn:autograd datasets:nn pelt:nn train:pelt,datasets
# Only includes of the form #include "FOLDER/..." where FOLDER is a layer (or tests/) are checked;
# system and library headers (<...>) are not. tests/ may include anything and is not checked.
# Exit status: 0 clean, 1 violations (each printed as FILE:LINE: what and why), 2 usage error.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 ROOT LAYER:DEP,DEP ..." >&2
  exit 2
fi
root=$1
shift

declare -A direct=()
layers=()
for spec in "$@"; do
  name=${spec%%:*}
  deps=${spec#*:}
  layers+=("$name")
  direct[$name]=${deps//,/ }
done

# allowed[L] = L and everything L reaches through `direct` (the transitive closure).
declare -A allowed=()
reach() {
  local from=$1 d
  for d in ${direct[$from]:-}; do
    case " ${seen} " in *" $d "*) continue ;; esac
    seen="$seen $d"
    reach "$d"
  done
}
for name in "${layers[@]}"; do
  seen="$name"
  reach "$name"
  allowed[$name]=$seen
done

known=" ${layers[*]} tests "
violations=0
for name in "${layers[@]}"; do
  dir="$root/$name"
  [ -d "$dir" ] || continue
  # FILE:LINE:#include "top/rest"
  while IFS= read -r hit; do
    file=${hit%%:*}
    rest=${hit#*:}
    line=${rest%%:*}
    target=${rest#*\"}                             # between the include's quotes (no process per line:
    target=${target%%\"*}                          # this loop runs for every include of the tree)
    top=${target%%/*}
    [ "$top" != "$target" ] || continue            # "file.h" without a folder: same directory
    case "$known" in *" $top "*) ;; *) continue ;; esac
    case " ${allowed[$name]} " in *" $top "*) continue ;; esac
    echo "${file#"$root"/}:$line: includes \"$target\", but $name/ may include only: ${allowed[$name]// /, } (CMakeLists.txt, unipelt_layer)" >&2
    violations=$((violations + 1))
  done < <(grep -rnE --include='*.h' --include='*.hpp' --include='*.cpp' --include='*.cu' --include='*.cuh' \
             '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$dir" || true)
done
if [ "$violations" -gt 0 ]; then
  echo "check-layers: $violations include(s) go up the layers; move the code down, or the header up" >&2
  exit 1
fi
echo "check-layers: ${#layers[@]} layers, no include goes up"
