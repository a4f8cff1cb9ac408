#!/usr/bin/env bash
# Prepares a machine for runner/sandbox.ts: bubblewrap (isolation) and Debian's python3 (an
# interpreter whose stdlib lives under /usr, so read-only binds of /usr reach it inside the
# sandbox). Idempotent: installs only what is missing, then reports whether bwrap actually works
# here — containers often forbid the user namespaces it needs, and the sandbox then falls back
# to a plain (non-isolated) subprocess. Exit status is 0 in both cases; only a failed install of
# a missing package is an error.
set -euo pipefail

missing=()
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
[ -x /usr/bin/python3 ] || missing+=(python3)
command -v prlimit >/dev/null 2>&1 || missing+=(util-linux)

if [ "${#missing[@]}" -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup-sandbox: missing ${missing[*]} and no apt-get here; install them with your package manager" >&2
    exit 1
  fi
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
      echo "setup-sandbox: missing ${missing[*]}; run as root (or with sudo) to install them" >&2
      exit 1
    fi
  fi
  echo "setup-sandbox: installing ${missing[*]}"
  # Install straight away when the package lists are fresh enough; refresh them only on failure.
  if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${missing[@]}"; then
    $sudo apt-get update
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${missing[@]}"
  fi
else
  echo "setup-sandbox: bubblewrap, python3 and prlimit already installed"
fi

# The same shape of command the sandbox runs, reduced to the parts that need kernel support.
probe=(bwrap --unshare-all --die-with-parent --new-session --cap-drop ALL
  --ro-bind /usr /usr --symlink usr/lib /lib --symlink usr/lib64 /lib64 --symlink usr/bin /bin
  --proc /proc --dev /dev --tmpfs /tmp)
as_nobody=()
# Root is exempt from RLIMIT_NPROC, so the sandbox drops to nobody first; probe that path too.
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null 2>&1; then
  as_nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups --)
fi
err=$(mktemp)
if "${as_nobody[@]}" "${probe[@]}" /usr/bin/true 2>"$err"; then
  echo "setup-sandbox: bwrap works here (network, pid, ipc, uts and user namespaces): code runs isolated"
elif [ "${#as_nobody[@]}" -gt 0 ] && "${probe[@]}" /usr/bin/true 2>/dev/null; then
  echo "setup-sandbox: bwrap works as root but not as nobody: code runs isolated, but without a process-count limit" >&2
else
  echo "setup-sandbox: bwrap is installed but cannot create its namespaces here:" >&2
  sed 's/^/  /' "$err" >&2
  echo "setup-sandbox: the sandbox will fall back to a plain subprocess (NOT isolated from network/filesystem)" >&2
fi
rm -f "$err"
