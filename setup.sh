#!/usr/bin/env bash
# Sets up attest on Debian 12 (as root, or with sudo): the few system packages it needs when they
# are missing (Chromium among them), a virtualenv in .venv, and attest itself with its Airflow
# and development extras; pywb, for replay, in a virtualenv of its own (.venv-replay); checkov,
# the Terraform policy scan of infra/terraform, in another (.venv-checkov); and the
# ReplayWeb.page viewer's files (npm package, pinned) in .replayweb, for the bundle tests.
# Safe to run again: it only installs what changed.
set -euo pipefail
cd "$(dirname "$0")"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
python3 -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
  || missing+=(python3-dev)
command -v gcc >/dev/null || missing+=(gcc)
command -v mount >/dev/null || missing+=(mount)
command -v make >/dev/null || missing+=(make)   # `make airflow`
command -v ss >/dev/null || missing+=(iproute2)   # the embedded Airflow test checks sockets
# Browser capture drives Debian's Chromium (Playwright cannot download its own browser here).
[ -x /usr/lib/chromium/chromium ] || command -v chromium >/dev/null || missing+=(chromium)
# ReplayWeb.page (npm `replaywebpage`), the viewer an exported bundle is opened in by the tests,
# comes through npm: needed only while .replayweb/ lacks the pinned version.
RWP_VERSION=2.5.3
RWP_INTEGRITY=sha512-nCj2PSON3BxeSJKE8AsYPyULv0XPZKJWfy4l9PyQre9SqwLZ+WKZVs/sfLqPOQ4GrH+0YkjbwOhr8cSTH08gsQ==
rwp_installed() {
  [ -f .replayweb/replaywebpage/ui.js ] && [ -f .replayweb/replaywebpage/sw.js ] \
    && grep -qs "\"version\": \"$RWP_VERSION\"" .replayweb/replaywebpage/package.json
}
rwp_installed || command -v npm >/dev/null || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

python3 -c 'import sys; sys.exit(not ((3, 11) <= sys.version_info[:2] < (3, 13)))' \
  || { echo "setup: attest needs Python 3.11 or 3.12 (python3 is $(python3 --version))" >&2; exit 1; }

[ -x .venv/bin/python ] || python3 -m venv .venv
stamp=.venv/.attest-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  # (pip's "Location ... is ignored" warnings about absent local indexes are noise)
  .venv/bin/python -m pip install -q --upgrade pip 2> >(grep -v "is ignored" >&2)
  .venv/bin/python -m pip install -q -e '.[airflow,dev]' 2> >(grep -v "is ignored" >&2)
  .venv/bin/python -m pip check
  .venv/bin/attest --help >/dev/null
  touch "$stamp"
fi
# Replay (pywb) lives in its own venv: it cannot share one with Scrapy (a brotli module clash).
# boto3 there lets pywb read WARCs straight from an s3:// store.
if [ ! -x .venv-replay/bin/wayback ] || ! .venv-replay/bin/python -c 'import boto3' 2>/dev/null; then
  [ -x .venv-replay/bin/python ] || python3 -m venv .venv-replay
  .venv-replay/bin/python -m pip install -q --upgrade pip 2> >(grep -v "is ignored" >&2)
  .venv-replay/bin/python -m pip install -q pywb==2.10.0 "boto3>=1.44,<2" 2> >(grep -v "is ignored" >&2)
  .venv-replay/bin/python -m pip check
  .venv-replay/bin/wayback -V >/dev/null
fi
# checkov (tests/infra scans infra/terraform with it) in a venv of its own: its exact pins clash
# with the main venv's Airflow. Run offline: CKV_SKIP_PACKAGE_UPDATE_CHECK and --skip-download.
CHECKOV_VERSION=3.3.30
if [ "$(CKV_SKIP_PACKAGE_UPDATE_CHECK=true .venv-checkov/bin/checkov --version 2>/dev/null)" != "$CHECKOV_VERSION" ]; then
  [ -x .venv-checkov/bin/python ] || python3 -m venv .venv-checkov
  .venv-checkov/bin/python -m pip install -q --upgrade pip 2> >(grep -v "is ignored" >&2)
  .venv-checkov/bin/python -m pip install -q "checkov==$CHECKOV_VERSION" 2> >(grep -v "is ignored" >&2)
  .venv-checkov/bin/python -m pip check
  [ "$(CKV_SKIP_PACKAGE_UPDATE_CHECK=true .venv-checkov/bin/checkov --version)" = "$CHECKOV_VERSION" ]
fi
# Terraform itself (`terraform fmt` in tests/infra) is not installed here: no registry this
# machine reaches ships it; tests/infra fails, naming it, when it is missing.
# ReplayWeb.page's prebuilt files (ui.js, sw.js) into .replayweb/replaywebpage (git-ignored).
# `npm pack` fetches the package alone, checked against the pinned integrity: its dependencies
# only build it, and not all of the versions they name are on the registry.
if ! rwp_installed; then
  rm -rf .replayweb/unpack && mkdir -p .replayweb/unpack
  (cd .replayweb/unpack && npm pack --silent --no-audit --no-fund "replaywebpage@$RWP_VERSION" >/dev/null)
  tarball=.replayweb/unpack/replaywebpage-$RWP_VERSION.tgz
  got=$(python3 -c 'import base64, hashlib, sys; print("sha512-" + base64.b64encode(hashlib.sha512(open(sys.argv[1], "rb").read()).digest()).decode())' "$tarball")
  [ "$got" = "$RWP_INTEGRITY" ] \
    || { echo "setup: replaywebpage-$RWP_VERSION.tgz has integrity $got, not $RWP_INTEGRITY" >&2; exit 1; }
  tar -xzf "$tarball" -C .replayweb/unpack --no-same-owner
  rm -rf .replayweb/replaywebpage && mv .replayweb/unpack/package .replayweb/replaywebpage
  rm -rf .replayweb/unpack
  rwp_installed
fi
echo "setup: ready (.venv/bin/attest, replay in .venv-replay, checkov in .venv-checkov, ReplayWeb.page in .replayweb)" >&2
