# image.sh - the guest's kernel and initramfs, sourced by run.sh.
#
# The kernel is Debian's 6.12 cloud kernel (nbd, iscsi_tcp and ublk_drv as
# modules; virtio_fs and ext4 built in), fetched with apt-get download into
# a cache outside the source tree and unpacked there once. The initramfs
# holds busybox, the modules the tests need and init.sh; it is rebuilt only
# when one of those changes.

# Modules for the guest, loaded in this order after their dependencies;
# SPD_VM_EXTRA_MODULES adds more for one run (bench/vm.sh: LIO's), in an
# initramfs of their own beside the tests' one.
VM_MODULES="scsi_mod sd_mod sg scsi_transport_iscsi libiscsi libiscsi_tcp
    iscsi_tcp nbd loop crc32c-intel ublk_drv target_core_user tcm_loop
    iscsi_target_mod ${SPD_VM_EXTRA_MODULES:-}"

vm_cache_dir() {
    if [ -n "${SPD_VM_CACHE:-}" ]; then
        echo "$SPD_VM_CACHE"
    elif mkdir -p /var/cache/spd-vm 2>/dev/null && [ -w /var/cache/spd-vm ]; then
        echo /var/cache/spd-vm
    else
        echo "${XDG_CACHE_HOME:-$HOME/.cache}/spd-vm"
    fi
}

# The newest 6.12 cloud kernel package in the cache, fetched first when
# apt knows a newer one. Prints the .deb's path; fails if there is none.
vm_kernel_deb() {
    cache=$1
    want=$(apt-cache search --names-only '^linux-image-6\.12\.' 2>/dev/null |
        grep -oE '^linux-image-6\.12\.[0-9]+\+deb12-cloud-amd64-unsigned' |
        sort -V | tail -1)
    if [ -n "$want" ] && ! ls "$cache/${want}"_*.deb >/dev/null 2>&1; then
        # apt's _apt user cannot write a root-owned cache: that only warns.
        (cd "$cache" && apt-get download -q "$want" >&2) ||
            echo "vm: apt-get download $want failed" >&2
    fi
    ls "$cache"/linux-image-6.12.*-cloud-amd64-unsigned_*.deb 2>/dev/null |
        sort -V | tail -1 | grep .
}

# Unpack the package once into $cache/VERSION; prints that folder.
vm_kernel_tree() {
    cache=$1 deb=$2
    tree=$cache/$(basename "$deb" .deb)
    if [ ! -d "$tree/boot" ]; then
        tmp=$(mktemp -d "$cache/unpack.XXXXXX")
        dpkg-deb -x "$deb" "$tmp" || { rm -rf "$tmp"; return 1; }
        rm -rf "$tree"
        mv "$tmp" "$tree"
    fi
    echo "$tree"
}

# A module's path under lib/modules/VERSION, from modules.order.
vm_module_path() {
    grep -E "/$1\.ko$" "$2/modules.order" | head -1
}

# The module names $@ preceded by their dependencies, each once, in load
# order. $MODDIR is lib/modules/VERSION.
vm_module_order() {
    local m path deps
    for m in "$@"; do
        case " $VM_SEEN " in *" $m "*) continue ;; esac
        VM_SEEN="$VM_SEEN $m"
        path=$(vm_module_path "$m" "$MODDIR")
        [ -n "$path" ] || { echo "vm: no module $m in the kernel package" >&2; return 1; }
        deps=$(xz -dc "$MODDIR/$path.xz" | tr '\0' '\n' |
            sed -n 's/^depends=//p' | tr ',' ' ')
        [ -z "$deps" ] || vm_module_order $deps || return 1
        echo "$m"
    done
}

# Build (or reuse) the initramfs for a kernel tree; prints its path.
vm_initramfs() {
    tree=$1 here=$2
    MODDIR=$(echo "$tree"/lib/modules/*)
    VM_SEEN=""
    order=$(vm_module_order $VM_MODULES) || return 1
    busybox=$(command -v busybox) || return 1
    key=$(cat "$here/init.sh" "$busybox" | sha256sum | cut -c1-16)
    mods=$(echo $order | sha256sum | cut -c1-8)
    out=$tree/initrd-$key-$mods.gz
    [ -s "$out" ] && { echo "$out"; return; }

    root=$(mktemp -d /tmp/spd-vm-initrd.XXXXXX)
    mkdir -p "$root/bin" "$root/lib/modules" "$root/proc" "$root/sys" \
        "$root/dev" "$root/host"
    cp "$busybox" "$root/bin/busybox"
    cp "$here/init.sh" "$root/init"
    chmod 755 "$root/init"
    for m in $order; do
        xz -dc "$MODDIR/$(vm_module_path "$m" "$MODDIR").xz" >"$root/lib/modules/$m.ko"
    done
    echo $order >"$root/modules"
    (cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$out.tmp.$$"
    rm -rf "$root"
    rm -f "$tree"/initrd-*-"$mods".gz   # stale ones of the same module set
    mv "$out.tmp.$$" "$out"
    echo "$out"
}
