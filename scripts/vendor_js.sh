#!/usr/bin/env bash
# Refresh the chart and math JavaScript the web UI serves from /static/vendor (no CDN at run time):
# Vega, Vega-Lite, vega-embed, vega-interpreter (CSP-safe expressions) and KaTeX, from the npm registry.
set -euo pipefail
cd "$(dirname "$0")/.."
out=chachaml/server/static/vendor
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
versions=(vega@6.4.0 vega-lite@6.4.3 vega-embed@7.3.0 vega-interpreter@2.3.2 katex@0.16.47)
(cd "$work" && npm pack --silent "${versions[@]}" >/dev/null)
for tgz in "$work"/*.tgz; do
  dir="$work/$(basename "$tgz" .tgz)"
  mkdir -p "$dir" && tar xzf "$tgz" -C "$dir"
done
rm -rf "$out" && mkdir -p "$out/fonts"
cp "$work"/vega-6*/package/build/vega.min.js "$out/"
cp "$work"/vega-lite-*/package/build/vega-lite.min.js "$out/"
cp "$work"/vega-embed-*/package/build/vega-embed.min.js "$out/"
# vega-interpreter ships as an ES module importing three vega-util names that the vega bundle exports.
sed -e "s/^import { ascending, isString, DisallowedObjectProperties } from 'vega-util';/const { ascending, isString, DisallowedObjectProperties } = vega;/" \
    -e "s/^export { expression as expressionInterpreter };/window.vegaInterpreter = { expressionInterpreter: expression };/" \
    -e "/sourceMappingURL/d" \
    "$work"/vega-interpreter-*/package/build/vega-interpreter.js > "$out/vega-interpreter.js"
printf '(function () {\n%s\n})();\n' "$(cat "$out/vega-interpreter.js")" > "$out/vega-interpreter.js"
cp "$work"/katex-*/package/dist/katex.min.js "$work"/katex-*/package/dist/katex.min.css "$out/"
cp "$work"/katex-*/package/dist/fonts/*.woff2 "$out/fonts/"
printf '%s\n' "${versions[@]}" > "$out/VERSIONS"
for pkg in vega vega-lite vega-embed vega-interpreter katex; do
  cp "$work/$pkg"-[0-9]*/package/LICENSE "$out/LICENSE.$pkg" 2>/dev/null || true
done
