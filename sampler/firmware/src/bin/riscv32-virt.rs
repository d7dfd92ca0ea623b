//! The name generator firmware for QEMU's RISC-V `virt` board (`qemu-system-riscv32 -machine virt`, an RV32IMC core laid out like an ESP32-C3).
//! The memory map comes from `memory/riscv32-virt/memory.x` (see build.rs).
#![no_std]
#![no_main]

#[path = "../firmware.rs"]
mod firmware;
