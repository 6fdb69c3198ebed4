# Sourced by bin/serve and bin/test: make ./.venv (once) and install
# txregistry into it, so its twistd plugins land in site-packages.
set -e
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
venv="${TXREGISTRY_VENV:-$top/.venv}"
python="${PYTHON:-python3}"
if ! command -v "$python" >/dev/null 2>&1 || ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "bin: installing python3 and python3-venv with apt-get" >&2
        apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3 python3-venv >/dev/null
    else
        echo "bin: needs python3 with venv (Debian: apt-get install python3-venv)" >&2
        exit 1
    fi
fi
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip setuptools wheel
fi
stamp="$venv/.txregistry-installed"
extras="${TXREGISTRY_EXTRAS:-}"
if [ ! -f "$stamp" ] || [ -n "$(find setup.py txregistry twisted -newer "$stamp" -print -quit)" ] \
        || [ "$(cat "$stamp")" != "$extras" ]; then
    "$venv/bin/pip" install -q --no-build-isolation ".${extras:+[$extras]}"
    rm -rf build
    printf '%s' "$extras" > "$stamp"
fi
PATH="$venv/bin:$PATH"
export PATH
