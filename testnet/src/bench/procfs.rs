//! What the benchmark reads from Linux's `/proc`: a process's CPU time
//! (user + system, `/proc/PID/stat`), its peak resident set size (`VmHWM`
//! in `/proc/PID/status`), CPU time per thread (`/proc/PID/task/*/stat`,
//! grouped by thread name), and which process listens on a TCP port (to find
//! the validators of a testnet the benchmark did not start).
//!
//! Every function answers `None` (or an empty result) where `/proc` is absent
//! or unreadable; the report then leaves the figure out.

use std::collections::BTreeMap;
use std::path::Path;

/// Clock ticks per second, for the tick counts of `/proc/PID/stat`.
fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// The fields after the command name of a `stat` file (the name is in
/// parentheses and may contain spaces), with the name.
fn parse_stat(text: &str) -> Option<(String, Vec<&str>)> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let name = text[open + 1..close].to_owned();
    Some((name, text[close + 1..].split_whitespace().collect()))
}

/// utime + stime of a `stat` file, in seconds. After the name, field 0 is the
/// state, so utime (field 14 of the whole line) is at 11 and stime at 12.
fn cpu_of_stat(text: &str) -> Option<(String, f64)> {
    let (name, f) = parse_stat(text)?;
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some((name, (utime + stime) as f64 / ticks_per_second()))
}

/// CPU seconds (user + system) a process has used so far.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    cpu_of_stat(&text).map(|(_, s)| s)
}

/// CPU seconds so far of each live thread of a process, summed by thread
/// name (tokio's workers share one name, for example).
pub fn thread_cpu_seconds(pid: u32) -> BTreeMap<String, f64> {
    let mut by_name = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return by_name };
    for task in tasks.flatten() {
        if let Ok(text) = std::fs::read_to_string(task.path().join("stat"))
            && let Some((name, s)) = cpu_of_stat(&text)
        {
            *by_name.entry(name).or_insert(0.0) += s;
        }
    }
    by_name
}

/// Peak resident set size (`VmHWM`) of a process, in bytes.
pub fn peak_rss_bytes(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Whether a process is still alive (and not a zombie).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|t| parse_stat(&t).and_then(|(_, f)| f.first().map(|s| *s != "Z")))
        .unwrap_or(false)
}

/// The socket inode listening on TCP `port` (IPv4 or IPv6), from
/// `/proc/net/tcp{,6}` (state 0A is LISTEN).
fn listening_inode(port: u16) -> Option<u64> {
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else { continue };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state), Some(inode)) = (f.get(1), f.get(3), f.get(9)) else { continue };
            let local_port = local.rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok());
            if *state == "0A" && local_port == Some(port) {
                return inode.parse().ok();
            }
        }
    }
    None
}

/// The process that listens on TCP `port`, if this user may see its open
/// files (the benchmark uses it to find the validators of a running testnet
/// from their RPC addresses).
pub fn pid_listening_on(port: u16) -> Option<u32> {
    let target = format!("socket:[{}]", listening_inode(port)?);
    for proc_entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = proc_entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(fds) = std::fs::read_dir(proc_entry.path().join("fd")) else { continue };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path()).is_ok_and(|l| l == Path::new(&target)) {
                return Some(pid);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_a_name_with_spaces_and_parentheses() {
        let line = "1234 (tokio (w) 1) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 8 0 100 1000 10";
        let (name, s) = cpu_of_stat(line).unwrap();
        assert_eq!(name, "tokio (w) 1");
        assert!((s - 300.0 / ticks_per_second()).abs() < 1e-9);
    }

    #[test]
    fn this_process_is_visible() {
        let me = std::process::id();
        assert!(cpu_seconds(me).is_some());
        assert!(peak_rss_bytes(me).unwrap() > 0);
        assert!(alive(me));
        assert!(!thread_cpu_seconds(me).is_empty());
    }

    #[test]
    fn finds_the_listener_of_a_port() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert_eq!(pid_listening_on(port), Some(std::process::id()));
    }
}
