//! The name generator firmware for the BBC micro:bit (QEMU `microbit`: Nordic nRF51822, Cortex-M0, 256 KB flash, 16 KB RAM).
//! The memory map comes from `memory/microbit/memory.x` (see build.rs).
#![no_std]
#![no_main]

#[path = "../firmware.rs"]
mod firmware;
