//! The name generator firmware for the ARM MPS2 with the AN500 image (QEMU `mps2-an500`, Cortex-M7).
//! The memory map comes from `memory/mps2-an500/memory.x` (see build.rs).
#![no_std]
#![no_main]

#[path = "../firmware.rs"]
mod firmware;
