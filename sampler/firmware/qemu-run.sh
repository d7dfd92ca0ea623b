#!/bin/sh
# cargo's runner for the firmware (see .cargo/config.toml): boots ELF in the QEMU machine its
# file name says, hands the remaining arguments (key=value settings) to the firmware as its
# semihosting command line, and exits with the firmware's exit status.
# QEMU_EXTRA adds QEMU options, e.g. QEMU_EXTRA="-icount shift=0" to count instructions.
set -eu
elf=$1
shift
name=$(basename "$elf")
case $name in
    lm3s6965evb*) machine=lm3s6965evb ;;
    lm3s811evb*) machine=lm3s811evb ;;
    mps2-an386*) machine=mps2-an386 ;;
    *) echo "qemu-run.sh: no QEMU machine known for $name" >&2; exit 2 ;;
esac
# QEMU splits -semihosting-config on commas; a comma inside a value is written twice.
config="enable=on,target=native,arg=$name"
for arg in "$@"; do
    config="$config,arg=$(printf '%s' "$arg" | sed 's/,/,,/g')"
done
# shellcheck disable=SC2086 # QEMU_EXTRA is a list of options
exec qemu-system-arm -machine "$machine" -display none -monitor none -serial null \
    -semihosting-config "$config" ${QEMU_EXTRA:-} -kernel "$elf"
