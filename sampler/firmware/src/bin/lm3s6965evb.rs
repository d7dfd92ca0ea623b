//! The name generator firmware for the TI Stellaris LM3S6965 (QEMU `lm3s6965evb`, Cortex-M3, 256 KB flash, 64 KB RAM).
//! The memory map comes from `memory/lm3s6965evb/memory.x` (see build.rs).
#![no_std]
#![no_main]

#[path = "../firmware.rs"]
mod firmware;
