#!/usr/bin/env bash
# make dist: dist/autoupdate_<version>_<arch>.deb from the self-contained binary.
#
#   make-deb.sh BINARY MAN_PAGES_FOLDER OUT_FOLDER
#
# Depends: only Debian's shared libraries the binary links (libcurl4, zlib1g, libbz2-1.0,
# libsodium23, libssl3, and the C and C++ runtimes that every Debian system has), each at least
# the version it was built against. Installs /usr/bin/autoupdate, the man pages, bash, zsh and
# fish completions, and an example systemd unit under /usr/share/doc/autoupdate/examples.
set -euo pipefail
binary=$1 man=$2 out=$3
here=$(cd "$(dirname "$0")" && pwd)

version=$("$binary" --version | awk '{print $2}')
arch=$(dpkg --print-architecture)
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

install -D -m 0755 "$binary" "$root/usr/bin/autoupdate"
strip --strip-unneeded "$root/usr/bin/autoupdate"
# Nothing of the Swift toolchain may be needed at run time.
if ldd "$root/usr/bin/autoupdate" | grep -E "swift|not found"; then
  echo "make-deb: the binary still needs the libraries above" >&2
  exit 1
fi

mkdir -p "$root/usr/share/man/man1"
for page in "$man"/*.1; do
  gzip -9n < "$page" > "$root/usr/share/man/man1/$(basename "$page").gz"
done
install -d "$root/usr/share/bash-completion/completions" "$root/usr/share/zsh/vendor-completions" \
  "$root/usr/share/fish/vendor_completions.d"
"$binary" --generate-completion-script bash > "$root/usr/share/bash-completion/completions/autoupdate"
"$binary" --generate-completion-script zsh > "$root/usr/share/zsh/vendor-completions/_autoupdate"
"$binary" --generate-completion-script fish > "$root/usr/share/fish/vendor_completions.d/autoupdate.fish"
install -D -m 0644 "$here/myapp.service" "$root/usr/share/doc/autoupdate/examples/myapp.service"
cat > "$root/usr/share/doc/autoupdate/copyright" <<COPYRIGHT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: autoupdate
Comment: A Swift auto-update runtime for Linux: keeps an application up to date and running.
 The Swift runtime and FoundationEssentials (Apache-2.0 with Runtime Library Exception,
 https://swift.org/LICENSE.txt) are linked in statically.

Files: *
Copyright: the autoupdate authors
License: see the source repository
COPYRIGHT

# The packages that provide what the binary links, at least at the versions built against.
depends=""
for library in $(ldd "$root/usr/bin/autoupdate" | awk '$3 ~ /^\// {print $3}' | sort -u); do
  direct=$(objdump -p "$root/usr/bin/autoupdate" | awk '/NEEDED/ {print $2}')
  name=$(basename "$library")
  # Only what the binary names itself; the libraries' own dependencies are theirs to declare.
  echo "$direct" | grep -qx "$name" || continue
  package=$(dpkg -S "$(readlink -f "$library")" 2>/dev/null | head -n 1 | cut -d: -f1) \
    || package=$(dpkg -S "$library" | head -n 1 | cut -d: -f1)
  [ -n "$package" ] || { echo "make-deb: no package provides $library" >&2; exit 1; }
  minimum=$(dpkg-query -W -f='${Version}' "$package" | sed 's/-[^-]*$//')
  depends="$depends${depends:+, }$package (>= $minimum)"
done
depends=$(echo "$depends" | tr ',' '\n' | sed 's/^ //' | sort -u | paste -sd, - | sed 's/,/, /g')

size=$(du -sk "$root/usr" | cut -f1)
mkdir -p "$root/DEBIAN"
cat > "$root/DEBIAN/control" <<CONTROL
Package: autoupdate
Version: $version
Architecture: $arch
Maintainer: autoupdate developers <autoupdate@localhost>
Installed-Size: $size
Depends: $depends
Section: admin
Priority: optional
Homepage: https://github.com/autoupdate/autoupdate
Description: keep an application up to date and running
 autoupdate checks an HTTPS folder for a new version of an application, downloads it
 (extracting while downloading, or only the changed files' bytes), verifies its minisign
 signature, installs it atomically with a journal, and runs the app; "autoupdate watch" keeps
 a service running, updates it unattended and rolls back a version that fails its health
 check. The Swift runtime is linked in: no Swift toolchain is needed.
CONTROL

mkdir -p "$out"
deb="$out/autoupdate_${version}_${arch}.deb"
dpkg-deb --root-owner-group --build "$root" "$deb" >/dev/null
echo "$deb: $(stat -c %s "$deb") bytes; /usr/bin/autoupdate $(stat -c %s "$root/usr/bin/autoupdate") bytes"
echo "Depends: $depends"
