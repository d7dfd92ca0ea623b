//! The name generator firmware for the ARM MPS2 with the AN386 image (QEMU `mps2-an386`, Cortex-M4 with FPU).
//! The memory map comes from `memory/mps2-an386/memory.x` (see build.rs).
#![no_std]
#![no_main]

#[path = "../firmware.rs"]
mod firmware;
