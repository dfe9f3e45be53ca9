#!/usr/bin/env bash
# Counts parpipe's public items as `cargo doc` shows them, for the default
# build and for `--no-default-features` (extra cargo arguments, such as
# `--features internals`, are added to both builds).
#
# Method: a fresh `cargo doc --no-deps --lib` per build, then
#   - items:   the entries of `parpipe/all.html` (structs, enums, traits,
#              functions, type aliases, constants, macros: every named item
#              at its documented path, re-exports counted once);
#   - modules: the public modules (pages with `<body class="rustdoc mod">`);
#   - trait methods: the required and provided methods listed on the
#              crate's own trait pages (what a user implements or may
#              override);
# and the items per top-level module (the first path segment of each
# all.html entry; `(root)` for items at the crate root).
#
# Usage: docs/public-items.sh [extra cargo doc arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir=${CARGO_TARGET_DIR:-target}
doc="$target_dir/doc/parpipe"

count() {
    local label=$1
    shift
    # rustdoc leaves pages of removed items behind: start from nothing.
    rm -rf "$doc"
    cargo doc --no-deps --lib -q "$@" "${extra[@]}"
    local items modules methods
    items=$(grep -o '<li><a href="[^"]*">' "$doc/all.html" | sed 's/<li><a href="//; s/">$//')
    modules=$(grep -rl --include=index.html '<body class="rustdoc mod"' "$doc" | wc -l)
    methods=0
    while IFS= read -r page; do
        # The trait's own methods come before its implementors.
        n=$(tr -d '\n' <"$page" | sed 's/<h2 id="implementors".*//' \
            | grep -o '<section id="\(ty\)\?method\.[^"]*"' | wc -l || true)
        methods=$((methods + n))
    done < <(find "$doc" -name 'trait.*.html')
    printf '%s: %d items, %d modules, %d trait methods\n' "$label" \
        "$(grep -c . <<<"$items")" "$modules" "$methods"
    sed 's|/[^/]*$||; s|^[a-z]*\.[^/]*$|(root)|; s|/.*||' <<<"$items" | sort | uniq -c \
        | sort -rn | awk '{ printf "    %5d  %s\n", $1, $2 }'
}

extra=("$@")
count "default features"
count "--no-default-features" --no-default-features
