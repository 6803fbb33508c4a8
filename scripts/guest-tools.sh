#!/usr/bin/env sh
# Print `export` lines naming the tools that build Python and JavaScript guests
# (`weft build`), installing them into target/guest-tools when they are missing:
#   WEFT_COMPONENTIZE_PY  componentize-py 0.25.1, in a virtual environment (PyPI)
#   WEFT_COMPONENTIZE_JS  an npm prefix holding componentize-js 0.23.0 (npm)
# A variable already set is kept. Fails, saying what to do, when python3 (with venv)
# or npm is missing: the tests that build those guests cannot run without them.
# Use: eval "$(sh scripts/guest-tools.sh)"
set -eu
cd "$(dirname "$0")/.."
say() { echo "guest-tools.sh: $*" >&2; }
root="$(pwd)/target/guest-tools"
mkdir -p "$root"

py_version=0.25.1
js_version=0.23.0

if [ -z "${WEFT_COMPONENTIZE_PY:-}" ]; then
    py="$root/py/bin/componentize-py"
    if ! "$py" --version 2>/dev/null | grep -qx "componentize-py $py_version"; then
        command -v python3 >/dev/null 2>&1 || { say "python3 is needed to install componentize-py (apt-get install python3 python3-venv)"; exit 1; }
        say "installing componentize-py $py_version into target/guest-tools/py"
        rm -rf "$root/py"
        python3 -m venv "$root/py" >&2 || { say "python3 -m venv failed: install python3-venv"; exit 1; }
        "$root/py/bin/pip" install --quiet "componentize-py==$py_version" >&2
        "$py" --version >&2
    fi
    WEFT_COMPONENTIZE_PY="$py"
fi

if [ -z "${WEFT_COMPONENTIZE_JS:-}" ]; then
    js="$root/js"
    package="$js/node_modules/@bytecodealliance/componentize-js/package.json"
    if ! grep -q "\"version\": \"$js_version\"" "$package" 2>/dev/null; then
        command -v npm >/dev/null 2>&1 || { say "npm (and node) are needed to install componentize-js (apt-get install nodejs npm)"; exit 1; }
        say "installing componentize-js $js_version into target/guest-tools/js"
        mkdir -p "$js"
        npm install --prefix "$js" --no-audit --no-fund --loglevel=error "@bytecodealliance/componentize-js@$js_version" >&2
        grep -q "\"version\": \"$js_version\"" "$package" || { say "npm did not install componentize-js $js_version"; exit 1; }
    fi
    WEFT_COMPONENTIZE_JS="$js"
fi

echo "export WEFT_COMPONENTIZE_PY='$WEFT_COMPONENTIZE_PY'"
echo "export WEFT_COMPONENTIZE_JS='$WEFT_COMPONENTIZE_JS'"
