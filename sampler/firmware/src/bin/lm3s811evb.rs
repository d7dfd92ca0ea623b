//! The name generator firmware for the TI Stellaris LM3S811 (QEMU `lm3s811evb`, Cortex-M3, 64 KB flash, 8 KB RAM).
//! The memory map comes from `memory/lm3s811evb/memory.x` (see build.rs).
#![no_std]
#![no_main]

#[path = "../firmware.rs"]
mod firmware;
