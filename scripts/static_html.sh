#!/usr/bin/env bash
# Export committed notebooks to HTML that shows their widgets (the sliders of notebook 01) without a
# kernel and without a network: the two scripts nbconvert would load from a CDN are fetched once from
# the npm registry (@jupyter-widgets/html-manager, requirejs; versions pinned below) into
# runs/static_html/, beside the pages.
#
#   scripts/static_html.sh                       # every notebook -> runs/static_html/*.html
#   scripts/static_html.sh notebooks/01_*.ipynb  # some of them
#
# Needs npm (Debian: apt-get install npm) the first time; MathJax still comes from its CDN (formulas
# show as TeX source offline).
set -euo pipefail
cd "$(dirname "$0")/.."
out=runs/static_html
manager="@jupyter-widgets/html-manager@1.0.15"
requirejs="requirejs@2.3.8"
mkdir -p "$out"
if [ ! -f "$out/embed-amd.js" ] || [ ! -f "$out/require.js" ]; then
    command -v npm >/dev/null || { echo "error: npm not found; it fetches $manager and $requirejs once (apt-get install npm)" >&2; exit 2; }
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "$manager" "$requirejs" >/dev/null)
    tar -xzf "$tmp"/jupyter-widgets-html-manager-*.tgz -C "$tmp"
    cp "$tmp"/package/dist/* "$out"/
    mkdir -p "$tmp/rjs" && tar -xzf "$tmp"/requirejs-*.tgz -C "$tmp/rjs"
    cp "$tmp/rjs/package/require.js" "$out"/
    rm -rf "$tmp"
fi
if [ "$#" -eq 0 ]; then set -- notebooks/*.ipynb; fi
for nb in "$@"; do
    [ -f "$nb" ] || { echo "error: $nb: no such notebook" >&2; exit 2; }
    python3 -m jupyter nbconvert --to html "$nb" --output-dir "$out" \
        --HTMLExporter.widget_renderer_url=embed-amd.js --HTMLExporter.require_js_url=require.js
done
echo "open $out/<notebook>.html in a browser (the widget scripts sit beside the pages)"
