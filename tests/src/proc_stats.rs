//! What the kernel says about a child process's memory and descriptors,
//! for the fleet-memory and soak benches: `/proc/PID/status`,
//! `/proc/PID/smaps_rollup`, `/proc/PID/fd`. Linux only; a field the
//! kernel does not show reads as 0.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One reading of `/proc/PID/status`, in KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemStatus {
    /// Anonymous resident memory (heap, stacks): what the bounds are about.
    pub rss_anon: u64,
    /// File-backed resident pages (the binary, mmap'd Git packs, SQLite).
    pub rss_file: u64,
    /// Peak resident set (anonymous and file-backed together).
    pub vm_hwm: u64,
    pub threads: u64,
}

impl MemStatus {
    pub fn read(pid: u32) -> Option<MemStatus> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let fields = kib_fields(&text);
        let get = |k: &str| fields.get(k).copied().unwrap_or(0);
        Some(MemStatus {
            rss_anon: get("RssAnon"),
            rss_file: get("RssFile"),
            vm_hwm: get("VmHWM"),
            threads: get("Threads"),
        })
    }
}

/// `/proc/PID/smaps_rollup` as `field → KiB` (Rss, Pss, Anonymous, …).
pub fn smaps_rollup(pid: u32) -> BTreeMap<String, u64> {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .map(|text| kib_fields(&text))
        .unwrap_or_default()
}

/// Open file descriptors of the process.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| dir.count())
        .unwrap_or(0)
}

/// CPU seconds (user + system) each live thread of the process used, summed
/// by thread name with its trailing number dropped (`sqlx-sqlite-worker-3`
/// counts as `sqlx-sqlite-worker-`), and the whole process's under
/// `"(process)"`, dead threads included. Linux truncates names to 15
/// bytes; tokio's workers and its blocking threads share one name.
pub fn cpu_by_thread(pid: u32) -> BTreeMap<String, f64> {
    // USER_HZ is 100 on every Linux ABI rewind builds for.
    const TICKS: f64 = 100.0;
    // Fields after the `(comm)`: state is the first, utime the 12th.
    let ticks = |stat: &str| -> Option<(String, f64)> {
        let open = stat.find('(')?;
        let close = stat.rfind(')')?;
        let name = stat[open + 1..close].trim_end_matches(|c: char| c.is_ascii_digit());
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let utime: f64 = fields.get(11)?.parse().ok()?;
        let stime: f64 = fields.get(12)?.parse().ok()?;
        Some((name.to_string(), (utime + stime) / TICKS))
    };
    let mut by_name = BTreeMap::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            if let Some((name, secs)) = std::fs::read_to_string(task.path().join("stat"))
                .ok()
                .as_deref()
                .and_then(ticks)
            {
                *by_name.entry(name).or_insert(0.0) += secs;
            }
        }
    }
    if let Some((_, secs)) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .as_deref()
        .and_then(ticks)
    {
        by_name.insert("(process)".to_string(), secs);
    }
    by_name
}

/// `Name:   123 kB` lines (and plain counts such as `Threads:  9`).
fn kib_fields(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|line| {
            let (name, rest) = line.split_once(':')?;
            let value = rest.split_whitespace().next()?.parse().ok()?;
            Some((name.trim().to_string(), value))
        })
        .collect()
}

/// One timed reading.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Since the sampler started.
    pub at: Duration,
    pub mem: MemStatus,
    pub fds: usize,
}

/// Reads a process's [`MemStatus`] and descriptor count every `period` on
/// a thread of its own, from the moment its pid is set until stopped or
/// the process is gone.
#[derive(Debug)]
pub struct Sampler {
    pid: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    started: Instant,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    pub fn start(period: Duration) -> Sampler {
        let (pid, stop) = (
            Arc::new(AtomicU32::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let samples = Arc::new(Mutex::new(Vec::new()));
        let started = Instant::now();
        let thread = {
            let (pid, stop, samples) = (pid.clone(), stop.clone(), samples.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let p = pid.load(Ordering::Relaxed);
                    if p != 0
                        && let Some(mem) = MemStatus::read(p)
                    {
                        let sample = Sample {
                            at: started.elapsed(),
                            mem,
                            fds: open_fds(p),
                        };
                        samples.lock().expect("samples").push(sample);
                    }
                    std::thread::sleep(period);
                }
            })
        };
        Sampler {
            pid,
            stop,
            samples,
            started,
            thread: Some(thread),
        }
    }

    /// Starts watching `pid`.
    pub fn watch(&self, pid: u32) {
        self.pid.store(pid, Ordering::Relaxed);
    }

    /// Time since the sampler started, the clock of [`Sample::at`].
    pub fn now(&self) -> Duration {
        self.started.elapsed()
    }

    /// The readings so far.
    pub fn samples(&self) -> Vec<Sample> {
        self.samples.lock().expect("samples").clone()
    }

    /// The readings in `[from, to)`.
    pub fn between(&self, from: Duration, to: Duration) -> Vec<Sample> {
        self.samples()
            .into_iter()
            .filter(|s| s.at >= from && s.at < to)
            .collect()
    }

    /// The latest reading.
    pub fn last(&self) -> Option<Sample> {
        self.samples.lock().expect("samples").last().copied()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// KiB as MiB with one decimal.
pub fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = MemStatus::read(std::process::id()).expect("/proc is mounted");
        assert!(me.rss_anon > 0 && me.vm_hwm > 0 && me.threads > 0);
        assert!(smaps_rollup(std::process::id()).contains_key("Rss"));
        assert!(open_fds(std::process::id()) > 0);
        let spin = Instant::now();
        while spin.elapsed() < Duration::from_millis(50) {
            std::hint::black_box(spin.elapsed());
        }
        let cpu = cpu_by_thread(std::process::id());
        assert!(cpu["(process)"] > 0.0, "{cpu:?}");
    }
}
