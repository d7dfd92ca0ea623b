//! The name generator firmware for the ARM MPS2 with the AN505 image (QEMU `mps2-an505`, Cortex-M33, run in the Secure state).
//! The memory map comes from `memory/mps2-an505/memory.x` (see build.rs).
#![no_std]
#![no_main]

#[path = "../firmware.rs"]
mod firmware;
