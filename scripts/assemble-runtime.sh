#!/usr/bin/env bash
# Assembles kubefold's container runtime file set into a directory: the two
# binaries, every shared library they load, the dynamic loader, /etc/passwd
# and /etc/group with the numeric non-root user, the CA bundle, and /tmp.
#
# This directory IS the image: the Dockerfile's runtime stage is `FROM
# scratch` + `COPY --from=build /runtime /`, and /runtime is made by this
# script. tests/image/runtime_test.sh runs the operator from such a directory
# under chroot as user 65532 with only a Pod's environment, so what it
# checks holds for the image by construction.
#
# usage: scripts/assemble-runtime.sh OUT_DIR [BUILD_DIR]
#   OUT_DIR    created; must not exist or be empty
#   BUILD_DIR  where the binaries were built (default: build/ beside this
#              script): BUILD_DIR/operator/kubefold and
#              BUILD_DIR/operator/kubectl-kubefold
#   KUBEFOLD_BINARY, KUBECTL_KUBEFOLD_BINARY (environment) name the binaries
#   directly instead (the test passes CMake's target files).
#
# Needs ldd, strip (binutils), realpath; runs as any user, but only a tree
# built as root is owned by root (Docker's COPY keeps the build stage's
# owner, root).
set -euo pipefail

die() { printf 'assemble-runtime: error: %s\n' "$*" >&2; exit 1; }
log() { printf 'assemble-runtime: %s\n' "$*"; }

(($# >= 1 && $# <= 2)) || die "usage: $0 OUT_DIR [BUILD_DIR]"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$1
BUILD=${2:-$ROOT/build}
KUBEFOLD=${KUBEFOLD_BINARY:-$BUILD/operator/kubefold}
PLUGIN=${KUBECTL_KUBEFOLD_BINARY:-$BUILD/operator/kubectl-kubefold}

# Debian's libssl is built with OPENSSLDIR=/usr/lib/ssl: that is where it
# looks for the system trust store (cert.pem, certs/) when a kubeconfig
# names no CA (controllers/kube/transport_cpprest.cpp,
# set_default_verify_paths). Checked against the library below.
OPENSSLDIR=/usr/lib/ssl
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
NONROOT_ID=65532

for tool in ldd strip realpath readlink; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found (ldd: libc-bin; strip: binutils; realpath, readlink: coreutils)"
done
for bin in "$KUBEFOLD" "$PLUGIN"; do
  [[ -f "$bin" && -x "$bin" ]] || die "binary not found or not executable: $bin (build it: cmake --build BUILD_DIR --target kubefold kubectl-kubefold)"
done
[[ -f "$CA_BUNDLE" ]] || die "$CA_BUNDLE not found: install the Debian package ca-certificates (apt-get install ca-certificates)"
if [[ -e "$OUT" ]]; then
  [[ -d "$OUT" ]] || die "OUT_DIR exists and is not a directory: $OUT"
  [[ -z "$(ls -A "$OUT")" ]] || die "OUT_DIR is not empty: $OUT (the file set must be exactly what this script puts there)"
fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# ensure_dir HOST_DIR: creates HOST_DIR under OUT with the host's layout: a
# directory that is a symlink on the host (Debian 12's merged /usr: /lib ->
# usr/lib, /lib64 -> usr/lib64) becomes the same symlink in OUT, and the
# directory it resolves to is created there too.
ensure_dir() {
  local dir=$1 prefix="" part rest
  rest=${dir#/}
  while [[ -n "$rest" ]]; do
    part=${rest%%/*}
    if [[ "$rest" == */* ]]; then rest=${rest#*/}; else rest=""; fi
    prefix="$prefix/$part"
    if [[ -L "$prefix" ]]; then
      [[ -L "$OUT$prefix" ]] || ln -s "$(readlink "$prefix")" "$OUT$prefix"
      ensure_dir "$(realpath "$prefix")${rest:+/$rest}"
      return
    fi
    [[ -d "$OUT$prefix" ]] || mkdir -m 0755 "$OUT$prefix"
  done
}

# dest_of HOST_PATH: where HOST_PATH goes under OUT, its directory resolved
# on the host. Every write goes through this, so that a symlink in OUT
# (even an absolute one, which points out of OUT until the tree is the root)
# is never written through.
dest_of() {
  local path=$1
  ensure_dir "$(dirname "$path")"
  printf '%s%s/%s' "$OUT" "$(realpath "$(dirname "$path")")" "$(basename "$path")"
}

# copy_path HOST_PATH: copies a file to the same path under OUT; a symlink
# (libstdc++.so.6 -> libstdc++.so.6.0.30, the loader's absolute link
# /usr/lib64/ld-linux-x86-64.so.2) becomes the same symlink, and its target
# is copied as well.
copy_path() {
  local path=$1 dest
  dest=$(dest_of "$path")
  if [[ -L "$path" ]]; then
    local target
    target=$(readlink "$path")
    [[ -L "$dest" ]] || ln -s "$target" "$dest"
    if [[ "$target" == /* ]]; then copy_path "$target"; else copy_path "$(dirname "$path")/$target"; fi
  else
    [[ -f "$dest" ]] || cp -p "$path" "$dest"
  fi
}

# --- the binaries (stripped: symbols stay in the build tree) ---------------
ensure_dir /usr/local/bin
for bin in "$KUBEFOLD" "$PLUGIN"; do
  dest="$OUT/usr/local/bin/$(basename "$bin")"
  cp "$bin" "$dest"
  strip --strip-unneeded "$dest"
  chmod 0755 "$dest"
done

# --- shared libraries and the loader, as ldd resolves them -----------------
# ldd lists the whole closure (libraries of libraries), the loader included.
# Nothing is dlopen()ed beyond it: glibc 2.36 has NSS files/dns built in,
# OpenSSL 3's default provider is built into libcrypto and its openssl.cnf
# is optional (Debian's sets nothing; without it the built-in defaults
# apply), libgcc_s (which pthread_cancel loads) is already in the list.
declare -A libs=()
for bin in "$KUBEFOLD" "$PLUGIN"; do
  out=$(ldd "$bin" 2>&1) || die "ldd $bin failed: $out"
  if grep -q 'not found' <<<"$out"; then
    die "ldd $bin: a shared library is not found on this machine:"$'\n'"$(grep 'not found' <<<"$out")"
  fi
  while read -r line; do
    case "$line" in
      *'=>'*) path=$(awk '{print $3}' <<<"$line") ;;  # libfoo.so.1 => /lib/.../libfoo.so.1 (0x...)
      /*) path=$(awk '{print $1}' <<<"$line") ;;      # /lib64/ld-linux-x86-64.so.2 (0x...)
      *) continue ;;                                   # linux-vdso.so.1: in the kernel
    esac
    [[ "$path" == /* ]] || die "ldd $bin: cannot read this line: $line"
    libs[$path]=1
  done <<<"$out"
done
((${#libs[@]} > 0)) || die "ldd found no shared libraries: are the binaries static? (then the loader list is wrong too)"
for path in "${!libs[@]}"; do
  [[ -e "$path" ]] || die "ldd named $path but it does not exist"
  copy_path "$path"
done

# --- OpenSSL's trust store -------------------------------------------------
libcrypto=$(printf '%s\n' "${!libs[@]}" | grep '/libcrypto\.so' | head -n 1 || true)
[[ -n "$libcrypto" ]] || die "libcrypto is not among the binaries' libraries; update this script's OpenSSL section"
grep -aq "OPENSSLDIR: \"$OPENSSLDIR\"" "$(realpath "$libcrypto")" \
  || die "$libcrypto was not built with OPENSSLDIR=$OPENSSLDIR; update OPENSSLDIR in this script"
dest=$(dest_of "$CA_BUNDLE")
cp "$(realpath "$CA_BUNDLE")" "$dest"
chmod 0644 "$dest"
# As Debian's ca-certificates and openssl packages lay it out: the default
# verify file and directory point at /etc/ssl. The bundle alone would not be
# found.
ln -s "$CA_BUNDLE" "$(dest_of "$OPENSSLDIR/cert.pem")"
ln -s /etc/ssl/certs "$(dest_of "$OPENSSLDIR/certs")"

# --- users, name service ---------------------------------------------------
# The image runs as 65532:65532 (USER in the Dockerfile, runAsUser in the
# chart); these entries only give the numbers names for tools that print
# them. No home directory exists: nothing should be written outside /tmp.
ensure_dir /etc
[[ ! -L /etc ]] || die "/etc is a symlink on this machine; not supported"
cat >"$OUT/etc/passwd" <<EOF
root:x:0:0:root:/root:/sbin/nologin
nonroot:x:$NONROOT_ID:$NONROOT_ID:nonroot:/nonexistent:/sbin/nologin
EOF
cat >"$OUT/etc/group" <<EOF
root:x:0:
nonroot:x:$NONROOT_ID:
EOF
# Kubelet mounts /etc/hosts and /etc/resolv.conf; look in /etc/hosts first,
# as every Debian-based image does (glibc's default without this file asks
# DNS first).
cat >"$OUT/etc/nsswitch.conf" <<EOF
passwd: files
group: files
hosts: files dns
EOF
chmod 0644 "$OUT/etc/passwd" "$OUT/etc/group" "$OUT/etc/nsswitch.conf"

# --- /tmp: the mount point of the Deployment's emptyDir ---------------------
mkdir -p "$OUT/tmp"
chmod 1777 "$OUT/tmp"

# --- summary --------------------------------------------------------------
files=$(find "$OUT" -type f | wc -l)
links=$(find "$OUT" -type l | wc -l)
bytes=$(find "$OUT" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')
log "assembled $OUT: $files files, $links symlinks, $bytes bytes ($((bytes / 1024 / 1024)) MiB)"
( cd "$OUT" && find . -type f -printf '%s\t%p\n' | sort -k2 | awk -F'\t' '{printf "  %10d  %s\n", $1, substr($2, 2)}' )
