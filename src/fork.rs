//! Copy-on-write snapshots: a forked child process serialises and writes
//! the state as it was at the instant of the fork, while the writer goes
//! on applying events.
//!
//! Serialising a million open tasks takes the writer 150–200 ms; the
//! fork itself only copies page tables (a few milliseconds for a few
//! hundred MB), and the kernel copies a page only when the writer changes
//! it. This is what Redis does for `BGSAVE`, with the same price: while a
//! snapshot is written, memory can grow by the pages the writer touches
//! (at worst the state once more). `storage.snapshot_mode = "thread"`
//! serialises on the writer instead (docs/config.md).
//!
//! After a fork in a multi-threaded process the child runs only the
//! forking thread; locks other threads held stay held for ever. So the
//! child's work must only compute, allocate (glibc's malloc is reset in
//! the child by `fork` itself) and do plain file I/O: no logging, no
//! runtime, no channel. It reports through a pipe and leaves with
//! `_exit`, never running destructors or atexit handlers of the parent.

// The one module with unsafe code (Cargo.toml denies it elsewhere):
// fork, waitpid and the child's syscalls have no safe wrapper.
#![allow(unsafe_code)]

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::time::{Duration, Instant};

/// A forked child at work.
#[derive(Debug)]
pub struct Child {
    pid: libc::pid_t,
    report: File,
    waited: bool,
}

/// Runs `work` in a forked child; its `Ok(n)` (a size, for the log) or
/// error message comes back from `Child::wait`.
///
/// `work` must keep to what is safe after a fork (module doc).
pub fn spawn<F: FnOnce() -> Result<u64, String>>(work: F) -> io::Result<Child> {
    let mut fds = [0; 2];
    // SAFETY: `pipe2` fills both descriptors, each owned once below.
    let (reader, mut writer) = unsafe {
        if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            return Err(io::Error::last_os_error());
        }
        (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1]))
    };
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the child only runs `work` (which the caller keeps to
    // computation, allocation and file I/O) and `_exit`s; see module doc.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: plain syscalls in the child.
        unsafe {
            // Dies with the writer thread (a parent killed by SIGKILL
            // leaves no child holding its listening sockets or files).
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::getppid() != parent {
                libc::_exit(3);
            }
            // The parent's handlers would report a stop signal meant for
            // the child to the parent's runtime through its self-pipe.
            for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
                libc::signal(sig, libc::SIG_DFL);
            }
            // The writer comes first: on a small machine the child's
            // serialisation would otherwise take its core. Not 19: on a
            // saturated machine that starves the child for tens of
            // seconds while the journal grows (seen in the test suite).
            libc::setpriority(libc::PRIO_PROCESS, 0, 10);
        }
        drop(reader);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
        let (code, msg) = match outcome {
            Ok(Ok(n)) => (0, format!("ok {n}")),
            Ok(Err(e)) => (1, e),
            Err(_) => (2, "the snapshot child panicked".to_string()),
        };
        let _ = writer.write_all(msg.as_bytes());
        // SAFETY: leaves without running the parent's destructors.
        unsafe { libc::_exit(code) }
    }
    drop(writer);
    Ok(Child {
        pid,
        report: reader,
        waited: false,
    })
}

/// Returns the heap's free pages to the kernel, so that the next fork
/// has fewer page table entries to copy (called on the snapshot thread,
/// between snapshots).
pub fn trim_heap() {
    // SAFETY: glibc's malloc_trim takes its own locks; no pointers.
    unsafe {
        libc::malloc_trim(0);
    }
}

impl Child {
    /// Waits for the child, at most `deadline`: its `Ok(n)`, or why it
    /// failed. A child that takes longer (a hung disk, a stopped process)
    /// is killed and reaped, so that the next snapshot can start.
    pub fn wait(mut self, deadline: Duration) -> Result<u64, String> {
        let mut msg = Vec::new();
        // Ends when the child exits (its end of the pipe closes).
        let read = self.read_report(&mut msg, Instant::now() + deadline);
        if let Err(e) = &read {
            if e.kind() == io::ErrorKind::TimedOut {
                // SAFETY: signals our own, not yet reaped, child.
                unsafe { libc::kill(self.pid, libc::SIGKILL) };
                let _ = self.reap();
                return Err(format!(
                    "the snapshot child did not finish within {} s and was killed",
                    deadline.as_secs_f64()
                ));
            }
        }
        let msg = String::from_utf8_lossy(&msg).into_owned();
        let status = self
            .reap()
            .map_err(|e| format!("waiting for the snapshot child: {e}"))?;
        if let Err(e) = read {
            return Err(format!("reading the snapshot child's report: {e}"));
        }
        if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
            return msg
                .strip_prefix("ok ")
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| format!("the snapshot child reported {msg:?}"));
        }
        if libc::WIFSIGNALED(status) {
            return Err(format!(
                "the snapshot child was killed by signal {}",
                libc::WTERMSIG(status)
            ));
        }
        Err(match msg.is_empty() {
            true => format!("the snapshot child failed (status {status})"),
            false => msg,
        })
    }

    /// Reads the child's report until its end of the pipe closes or the
    /// deadline passes (`TimedOut`).
    fn read_report(&mut self, out: &mut Vec<u8>, until: Instant) -> io::Result<()> {
        let mut buf = [0u8; 512];
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            let mut pfd = libc::pollfd {
                fd: self.report.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = left.as_millis().min(i32::MAX as u128) as libc::c_int;
            // SAFETY: one valid pollfd for the pipe we own.
            let r = unsafe { libc::poll(&mut pfd, 1, ms.max(1)) };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if r == 0 {
                continue;
            }
            match self.report.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn reap(&mut self) -> io::Result<libc::c_int> {
        let mut status = 0;
        loop {
            // SAFETY: waits for our own child.
            let r = unsafe { libc::waitpid(self.pid, &mut status, 0) };
            if r == self.pid {
                self.waited = true;
                return Ok(status);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

impl Drop for Child {
    /// A child never waited for is stopped and reaped (no zombie).
    fn drop(&mut self) {
        if !self.waited {
            // SAFETY: signals and reaps our own child.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
            let _ = self.reap();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_child_sees_the_state_at_the_fork_and_reports_back() {
        let mut v = vec![1u64, 2, 3];
        let child = spawn(|| {
            // Runs on the fork's copy: a change here is not seen outside.
            v.push(4);
            Ok(v.iter().sum())
        })
        .expect("fork");
        assert_eq!(child.wait(LONG), Ok(10));
        assert_eq!(v, [1, 2, 3]);
    }

    #[test]
    fn a_failing_child_reports_its_error() {
        let child = spawn(|| Err("disk full".to_string())).expect("fork");
        assert_eq!(child.wait(LONG), Err("disk full".to_string()));
    }

    const LONG: Duration = Duration::from_secs(60);

    #[test]
    fn a_child_past_its_deadline_is_killed_and_reported() {
        let child = spawn(|| {
            std::thread::sleep(Duration::from_secs(30));
            Ok(0)
        })
        .expect("fork");
        let pid = child.pid;
        let err = child
            .wait(Duration::from_millis(200))
            .expect_err("timed out");
        assert!(err.contains("did not finish within 0.2 s"), "{err}");
        // Reaped: no such child remains.
        // SAFETY: probes a pid; signal 0 sends nothing.
        assert_eq!(unsafe { libc::kill(pid, 0) }, -1);
    }

    #[test]
    fn a_child_killed_is_reported_as_such() {
        let child = spawn(|| {
            // SAFETY: the child stops itself.
            unsafe { libc::raise(libc::SIGKILL) };
            Ok(0)
        })
        .expect("fork");
        assert_eq!(
            child.wait(LONG),
            Err("the snapshot child was killed by signal 9".to_string())
        );
    }
}
