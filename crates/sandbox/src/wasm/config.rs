//! Engine-wide configuration: profile, pool size, fuel, cache.

use std::path::PathBuf;
use std::time::Duration;

use wasmtime::{Enabled, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::SandboxError;

/// Most fiber stacks an engine reserves. Each store that has run guest
/// code keeps one (wasmtime caches it), and each stack with its guard page
/// is two memory maps, so this keeps an engine of a million sandboxes well
/// under Linux's default `vm.max_map_count` (65,530): past this many
/// stores, sandboxes must share stores ([`super::SandboxGroup`], as cold
/// pools and dense warm pools do).
pub const MAX_FIBER_STACKS: u32 = 8_192;

/// The least resident memory one live sandbox costs: one touched 4 KiB
/// page of its memory, its instance and its share of a store.
/// `dwcp bench density` measures about 5.1 KB in the `dense` profile;
/// this leaves room for the rest of the node.
pub const MIN_RESIDENT_BYTES: u64 = 8 << 10;

/// The address space all memory slots together may reserve: half of
/// x86-64's 128 TiB for user space.
pub const SLOT_ADDRESS_SPACE_BYTES: u64 = 64 << 40;

/// wasmtime's default guard region on each side of a `fast` slot.
const FAST_GUARD_BYTES: u64 = 32 << 20;

/// How memory slots trade address space for bounds checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// 4 GiB reservations with guard pages; no bounds checks in compiled code.
    Fast,
    /// Reservations the size of the memory limit, no guard pages; bounds
    /// checks in compiled code. For hundreds of thousands of sandboxes.
    Dense,
}

impl Profile {
    /// The profile's name in configuration and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Fast => "fast",
            Profile::Dense => "dense",
        }
    }
}

impl std::str::FromStr for Profile {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "fast" => Ok(Profile::Fast),
            "dense" => Ok(Profile::Dense),
            other => Err(format!("unknown profile `{other}`; allowed: fast, dense")),
        }
    }
}

/// Configuration of a [`WasmEngine`](super::WasmEngine).
#[derive(Clone, Debug)]
pub struct WasmConfig {
    /// Memory layout; see [`Profile`].
    pub profile: Profile,
    /// Most sandboxes alive at once on this engine (the node limit); also
    /// the number of pool slots reserved.
    pub max_live: u32,
    /// Largest memory any sandbox may have, in bytes: the slot size. Each
    /// template's memory limit must fit in it.
    pub slot_memory: u64,
    /// Sandboxes that share one wasmtime store in a warm pool
    /// ([`super::WarmPool`]): 1 gives each its own store (`fast`); more
    /// share the store's bookkeeping and fiber stack (`dense`).
    pub group: u32,
    /// Largest table any sandbox may have, in elements.
    pub slot_table_elements: u32,
    /// Bytes of each memory slot reset with `memset` (only pages actually
    /// dirtied, where the kernel supports `PAGEMAP_SCAN`) instead of being
    /// returned to the kernel; the rest is released with `madvise`.
    pub keep_resident: usize,
    /// Compile with fuel metering so that templates may set a fuel budget.
    /// Metered code runs somewhat slower.
    pub fuel: bool,
    /// Where compiled code is cached by artifact digest and engine
    /// configuration; `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
    /// Granularity of wall-clock deadlines.
    pub epoch_tick: Duration,
}

impl Default for WasmConfig {
    fn default() -> Self {
        WasmConfig::fast()
    }
}

impl WasmConfig {
    /// The `fast` profile with its defaults: 1,000 slots of up to 4 GiB.
    pub fn fast() -> WasmConfig {
        WasmConfig {
            profile: Profile::Fast,
            max_live: 1_000,
            slot_memory: 4 << 30,
            group: 1,
            slot_table_elements: 20_000,
            // A slot whose module dirtied up to 1 MiB is reset by copying
            // only those pages back and stays resident, so the next sandbox
            // in it takes no page faults; costs at most 1 MiB per warm slot.
            keep_resident: 1 << 20,
            fuel: false,
            cache_dir: None,
            epoch_tick: Duration::from_millis(1),
        }
    }

    /// The `dense` profile with its defaults: 100,000 slots of 1 MiB.
    pub fn dense() -> WasmConfig {
        WasmConfig {
            profile: Profile::Dense,
            max_live: 100_000,
            slot_memory: 1 << 20,
            // A store costs about 4 KB of its own (`dwcp bench density`):
            // shared by 256 sandboxes it is noise.
            group: 256,
            slot_table_elements: 1_000,
            // Density first: keep at most one wasm page resident per slot.
            keep_resident: 64 << 10,
            ..WasmConfig::fast()
        }
    }

    /// The defaults of `profile`.
    pub fn for_profile(profile: Profile) -> WasmConfig {
        match profile {
            Profile::Fast => WasmConfig::fast(),
            Profile::Dense => WasmConfig::dense(),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), SandboxError> {
        let bad = |field, value: String, allowed: &str| {
            Err(SandboxError::InvalidLimit {
                field,
                value,
                allowed: allowed.to_string(),
            })
        };
        if self.max_live == 0 {
            return bad("max_live", "0".into(), "at least 1");
        }
        if self.group == 0 {
            return bad("group", "0".into(), "at least 1");
        }
        if self.slot_memory == 0
            || !self.slot_memory.is_multiple_of(65536)
            || self.slot_memory > 4 << 30
        {
            return bad(
                "slot_memory",
                self.slot_memory.to_string(),
                "a multiple of 64 KiB, at most 4 GiB",
            );
        }
        if self.epoch_tick.is_zero() {
            return bad("epoch_tick", "0".into(), "a positive duration");
        }
        Ok(())
    }

    /// Address space one sandbox's memory slot reserves, in bytes.
    pub fn slot_reservation_bytes(&self) -> u64 {
        match self.profile {
            // The 4 GiB reservation and a guard region on each side
            // (wasmtime's default, 32 MiB).
            Profile::Fast => (4 << 30) + 2 * FAST_GUARD_BYTES,
            Profile::Dense => self.slot_memory,
        }
    }

    /// Refuses a `max_live` this machine cannot hold: each live sandbox
    /// needs at least [`MIN_RESIDENT_BYTES`] of memory (`memory_bytes` is
    /// the machine's), and the slots' address space must fit in
    /// [`SLOT_ADDRESS_SPACE_BYTES`]. The error names `field` (the flag or
    /// key that set the count) and the most that would fit.
    ///
    /// ```
    /// use sandbox::WasmConfig;
    /// let gib = 1u64 << 30;
    /// let dense = WasmConfig { max_live: 1_000_000, ..WasmConfig::dense() };
    /// assert!(dense.check_room("--sandboxes", 24 * gib).is_ok());
    /// let err = dense.check_room("--sandboxes", 4 * gib).unwrap_err();
    /// assert!(err.to_string().contains("--sandboxes"), "{err}");
    /// let fast = WasmConfig { max_live: 1_000_000, ..WasmConfig::fast() };
    /// assert!(fast.check_room("--sandboxes", 1 << 50).is_err(), "address space");
    /// ```
    pub fn check_room(&self, field: &'static str, memory_bytes: u64) -> Result<(), SandboxError> {
        let by_memory = memory_bytes / MIN_RESIDENT_BYTES;
        let by_space = SLOT_ADDRESS_SPACE_BYTES / self.slot_reservation_bytes().max(1);
        let most = by_memory.min(by_space);
        if u64::from(self.max_live) <= most {
            return Ok(());
        }
        let why = if by_memory <= by_space {
            format!(
                "each live sandbox needs at least {} KiB of memory and this machine has {:.1} GiB",
                MIN_RESIDENT_BYTES >> 10,
                memory_bytes as f64 / f64::from(1u32 << 30)
            )
        } else {
            format!(
                "each slot of the `{}` profile reserves {} MiB of address space, and slots may use {} TiB (use the `dense` profile for more)",
                self.profile.as_str(),
                self.slot_reservation_bytes() >> 20,
                SLOT_ADDRESS_SPACE_BYTES >> 40
            )
        };
        Err(SandboxError::InvalidLimit {
            field,
            value: self.max_live.to_string(),
            allowed: format!("at most {most} on this machine: {why}"),
        })
    }

    /// The wasmtime configuration this engine runs with.
    pub(crate) fn wasmtime_config(&self) -> wasmtime::Config {
        let mut pool = PoolingAllocationConfig::new();
        pool.total_core_instances(self.max_live)
            .total_memories(self.max_live)
            .total_tables(self.max_live)
            // wasi:http components: one per request running (each of
            // their core instances and memories counts in the totals above).
            .total_component_instances(self.max_live.min(MAX_FIBER_STACKS))
            // Guests run on fiber stacks, and a wasmtime store keeps the
            // last one it used: one per store, and a store holds at least
            // one live sandbox.
            .total_stacks(self.max_live.min(MAX_FIBER_STACKS))
            .max_memory_size(self.slot_memory as usize)
            .table_elements(self.slot_table_elements as usize)
            .linear_memory_keep_resident(self.keep_resident)
            .table_keep_resident(4096)
            .pagemap_scan(Enabled::Auto);

        let mut config = wasmtime::Config::new();
        config
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            // Copy-on-write maps a module's memory image into each slot:
            // fast for large images, but a memory map or two per instance,
            // which caps a node near 20,000 instances at Linux's default
            // `vm.max_map_count`. The dense profile copies the (small)
            // image instead, so its slots stay one map.
            .memory_init_cow(self.profile == Profile::Fast)
            .epoch_interruption(true)
            .consume_fuel(self.fuel);
        match self.profile {
            Profile::Fast => {
                config.memory_reservation(4 << 30);
            }
            Profile::Dense => {
                config
                    .memory_reservation(self.slot_memory)
                    .memory_guard_size(0)
                    .memory_reservation_for_growth(0)
                    .guard_before_linear_memory(false);
            }
        }
        config
    }
}
