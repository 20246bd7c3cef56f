#!/usr/bin/env bash
# Installs binaries, systemd units, sysusers/tmpfiles entries, the journal catalog and the default
# configuration where Debian's systemd looks for them. Usage: install.sh BIN_DIR PREFIX DESTDIR
# With DESTDIR empty it also applies them to the running system (users, directories, catalog,
# daemon-reload); with DESTDIR set, whoever boots that root does (systemd does it at boot).
set -euo pipefail
bin=$1 prefix=$2 dest=${3:-}
here=$(cd "$(dirname "$0")/.." && pwd)
pkg=$here/packaging
lib=$dest$prefix/lib

install -d "$dest$prefix/bin"
install -m 0755 -s "$bin/kvsupervisor" "$bin/kvctl" "$bin/kvnode" "$dest$prefix/bin/"

# Units name /usr/bin; point them at PREFIX.
install -d "$lib/systemd/system"
for unit in kvsupervisor.service kvsupervisor.socket kvnode@.service; do
    sed "s|/usr/bin/|$prefix/bin/|g" "$pkg/systemd/$unit" > "$lib/systemd/system/$unit"
    chmod 0644 "$lib/systemd/system/$unit"
done
install -D -m 0644 "$pkg/systemd/kvsupervisor.sysusers" "$lib/sysusers.d/kvsupervisor.conf"
install -D -m 0644 "$pkg/systemd/kvsupervisor.tmpfiles" "$lib/tmpfiles.d/kvsupervisor.conf"
install -D -m 0644 "$pkg/systemd/kvsupervisor.catalog" "$lib/systemd/catalog/kvsupervisor.catalog"

# Configuration belongs to the admin: never overwrite an existing file.
install -d "$dest/etc/kvsupervisor/nodes"
if [[ ! -e $dest/etc/kvsupervisor/kvsupervisor.toml ]]; then
    install -m 0644 "$pkg/kvsupervisor.toml" "$dest/etc/kvsupervisor/kvsupervisor.toml"
else
    echo "install: keeping existing $dest/etc/kvsupervisor/kvsupervisor.toml"
fi

if [[ -z $dest ]]; then
    command -v systemd-sysusers >/dev/null && systemd-sysusers "$lib/sysusers.d/kvsupervisor.conf"
    command -v systemd-tmpfiles >/dev/null && systemd-tmpfiles --create "$lib/tmpfiles.d/kvsupervisor.conf"
    command -v journalctl >/dev/null && journalctl --update-catalog || true
    [[ -d /run/systemd/system ]] && systemctl daemon-reload || true
fi
echo "installed under ${dest:-/}$prefix (units in $prefix/lib/systemd/system)"
