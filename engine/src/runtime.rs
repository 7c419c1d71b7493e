//! Pinned threads.
//!
//! The engine's threads are pinned to cores named in config, so the I/O thread and the core
//! thread never migrate or share a core. A core that does not exist is a config error at start,
//! not a silent fallback.

use serde::Deserialize;

use crate::ring::IdlePolicy;

/// Why the runtime refused to start.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// A configured core id is not on this machine.
    #[error("runtime.{role}_core = {core}: this machine has cores 0..{available}")]
    NoSuchCore {
        /// Which thread it was meant for.
        role: &'static str,
        /// The configured id.
        core: usize,
        /// How many cores exist.
        available: usize,
    },
    /// A ring capacity that is zero or not a power of two.
    #[error("runtime.{name} = {value}: ring capacity must be a power of two ≥ 2")]
    BadRingCapacity {
        /// Which ring.
        name: &'static str,
        /// The configured value.
        value: usize,
    },
    /// The OS refused a thread's scheduling class.
    #[error("cannot change the thread's scheduling class: {0}")]
    Priority(String),
    /// The OS refused to start a thread.
    #[error("cannot spawn thread {name}: {source}")]
    Spawn {
        /// Thread name.
        name: String,
        /// OS error.
        source: std::io::Error,
    },
}

/// Threads, cores and rings of one engine, from the `[runtime]` config section.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Core of the I/O thread (`None`: not pinned).
    pub io_core: Option<usize>,
    /// Core of the strategy core thread (`None`: not pinned).
    pub core_core: Option<usize>,
    /// What the core thread does when idle.
    #[serde(default)]
    pub idle: IdlePolicy,
    /// What the I/O thread does when idle; `park` blocks in epoll until a socket, a command or a
    /// gateway timer needs it.
    #[serde(default)]
    pub io_idle: IdlePolicy,
    /// With `io_idle = "park"`: how long the I/O thread keeps polling after its last piece of
    /// work before it sleeps in epoll. A tick's order comes back from the core a few
    /// microseconds after the tick; an I/O thread still spinning writes it at once, where a
    /// parked one first has to be woken (tens of microseconds on a virtual CPU).
    #[serde(default = "default_io_spin_us")]
    pub io_spin_us: u64,
    /// A file whose appearance engages the kill switch (cancel all, halt new risk), for
    /// operators without a signal at hand. SIGUSR1 does the same.
    #[serde(default)]
    pub kill_switch_file: Option<std::path::PathBuf>,
    /// Slots of the market-event ring.
    #[serde(default = "default_market_ring")]
    pub market_ring: usize,
    /// Slots of the order-event and command rings.
    #[serde(default = "default_order_ring")]
    pub order_ring: usize,
}

fn default_io_spin_us() -> u64 {
    50
}

fn default_market_ring() -> usize {
    65_536
}

fn default_order_ring() -> usize {
    4_096
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            io_core: None,
            core_core: None,
            idle: IdlePolicy::default(),
            io_idle: IdlePolicy::default(),
            io_spin_us: default_io_spin_us(),
            kill_switch_file: None,
            market_ring: default_market_ring(),
            order_ring: default_order_ring(),
        }
    }
}

impl RuntimeConfig {
    /// Checks cores exist on this machine and ring sizes are powers of two.
    ///
    /// # Errors
    /// The first problem found, as a [`RuntimeError`].
    pub fn validate(&self) -> Result<(), RuntimeError> {
        let available = core_affinity::get_core_ids().map_or(0, |c| c.len());
        for (role, core) in [("io", self.io_core), ("core", self.core_core)] {
            if let Some(core) = core
                && core >= available
            {
                return Err(RuntimeError::NoSuchCore { role, core, available });
            }
        }
        for (name, value) in [("market_ring", self.market_ring), ("order_ring", self.order_ring)] {
            if value < 2 || !value.is_power_of_two() {
                return Err(RuntimeError::BadRingCapacity { name, value });
            }
        }
        Ok(())
    }
}

/// Puts the calling thread in the kernel's idle scheduling class (`SCHED_IDLE`): it runs only
/// when nothing else on its core wants to, and waking it never preempts the running thread.
///
/// For a process that shares a machine with the engine but must not cost it latency: the
/// benchmark's venue simulator, whose wake-up on every order would otherwise be charged, by the
/// loopback TCP stack, to the engine's own write of that order.
///
/// # Errors
/// [`RuntimeError::Priority`] when the OS refuses.
pub fn set_current_thread_background() -> Result<(), RuntimeError> {
    use thread_priority::unix::{
        NormalThreadSchedulePolicy, ThreadSchedulePolicy, set_thread_priority_and_policy, thread_native_id,
    };
    set_thread_priority_and_policy(
        thread_native_id(),
        thread_priority::ThreadPriority::Min,
        ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
    )
    .map_err(|e| RuntimeError::Priority(format!("{e:?}")))
}

/// Spawns a named thread pinned to `core` (when given) running `f`.
///
/// # Errors
/// [`RuntimeError::Spawn`] when the OS refuses the thread.
pub fn spawn_pinned<T, F>(name: &str, core: Option<usize>, f: F) -> Result<std::thread::JoinHandle<T>, RuntimeError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            if let Some(id) = core {
                // Validated at start; a refusal here (e.g. a cgroup) leaves the thread unpinned.
                core_affinity::set_for_current(core_affinity::CoreId { id });
            }
            f()
        })
        .map_err(|source| RuntimeError::Spawn { name: name.to_owned(), source })
}
