#!/bin/sh
# cargo's runner for the firmware (see .cargo/config.toml): boots ELF in the QEMU machine its
# file name says, hands the remaining arguments (key=value settings) to the firmware as its
# semihosting command line, and exits with the firmware's exit status.
# QEMU_EXTRA adds QEMU options, e.g. QEMU_EXTRA="-icount shift=0" to count instructions.
set -eu
elf=$1
shift
name=$(basename "$elf")
# QEMU splits option values on commas; a comma inside a value is written twice.
escape() { printf '%s' "$1" | sed 's/,/,,/g'; }
# A machine is one line: the binary's name (copies may add a suffix), then QEMU and its machine.
# `-kernel` loads a Cortex-M ELF and starts at its vector table's reset vector.
loader=
case $name in
    lm3s6965evb*) qemu="qemu-system-arm -machine lm3s6965evb" ;;
    lm3s811evb*) qemu="qemu-system-arm -machine lm3s811evb" ;;
    mps2-an386*) qemu="qemu-system-arm -machine mps2-an386" ;;
    mps2-an500*) qemu="qemu-system-arm -machine mps2-an500" ;;
    mps2-an505*) qemu="qemu-system-arm -machine mps2-an505" ;;
    microbit*) qemu="qemu-system-arm -machine microbit" ;;
    # No OpenSBI (-bios none): the firmware runs in machine mode. The loader device, unlike
    # -kernel, starts the hart at the ELF's entry, which is in flash (memory/riscv32-virt).
    riscv32-virt*) qemu="qemu-system-riscv32 -machine virt -bios none"
        loader="loader,file=$(escape "$elf"),cpu-num=0" ;;
    *) echo "qemu-run.sh: no QEMU machine known for $name" >&2; exit 2 ;;
esac
config="enable=on,target=native,arg=$name"
for arg in "$@"; do
    config="$config,arg=$(escape "$arg")"
done
if [ -n "$loader" ]; then
    set -- -device "$loader"
else
    set -- -kernel "$elf"
fi
# shellcheck disable=SC2086 # $qemu is a command and its options, QEMU_EXTRA a list of options
exec $qemu -display none -monitor none -serial null \
    -semihosting-config "$config" ${QEMU_EXTRA:-} "$@"
