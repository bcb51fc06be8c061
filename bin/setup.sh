# Shared set-up for bin/chorus and bin/test (sourced, not run).
# Creates .venv on first use and reinstalls only when pyproject.toml or the extras change.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"

pick_python() {
  # 3.11 first: piper-phonemize (English G2P) ships wheels up to CPython 3.11
  for py in "${CHORUS_PYTHON:-}" python3.11 python3.10 python3.12 python3; do
    [ -n "$py" ] || continue
    if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
      echo "$py"; return 0
    fi
  done
  echo "chorus: needs Python 3.10 or newer (python3 -m venv); set CHORUS_PYTHON" >&2
  return 1
}

ensure_venv() {  # $1: extras, e.g. "test"
  local extras="$1" stamp want
  want="$( (cat "$root/pyproject.toml" "$root/clients/python/pyproject.toml"; echo "extras=$extras") | sha256sum | cut -c1-16)"
  stamp="$venv/.chorus-stamp-$want"
  if [ -f "$stamp" ]; then return 0; fi
  if [ ! -x "$venv/bin/python" ]; then
    echo "chorus: creating $venv" >&2
    "$(pick_python)" -m venv "$venv"
  fi
  echo "chorus: installing packages into $venv (first run only)" >&2
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >&2
  local spec="$root"
  [ -n "$extras" ] && spec="$root[$extras]"
  # the light client first, from this checkout (the server depends on it; it is not on PyPI)
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -e "$root/clients/python" -e "$spec" >&2
  touch "$stamp"
}

ensure_espeak() {  # English G2P: piper-phonemize bundles espeak-ng up to CPython 3.11; newer ones need Debian's
  if "$venv/bin/python" -c 'import piper_phonemize' 2>/dev/null || command -v espeak-ng >/dev/null 2>&1; then
    return 0
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "chorus: piper-phonemize has no wheel for this Python; installing Debian's espeak-ng" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng) >/dev/null 2>&1 \
      || echo "chorus: apt-get install espeak-ng failed; English voices will not load" >&2
  else
    echo "chorus: no espeak-ng for English (install Debian's espeak-ng, or use Python 3.11)" >&2
  fi
}

ensure_model() {  # models installed and verified, the TN grammar compiled, espeak-ng there (idempotent, fast)
  ensure_espeak
  "$venv/bin/chorus" models install kokoro piper-joe >/dev/null
  "$venv/bin/chorus" grammars build >/dev/null
}
