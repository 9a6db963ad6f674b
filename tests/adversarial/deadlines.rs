//! Deadlines inside the kernel: a probe whose run directory is on a file
//! system that never answers (a FUSE mount whose daemon is stuck, as a hung
//! NFS server would be) waits in a *killable* wait, where no signal handler
//! of ours runs. It must still end: the deadline's second timer kills it
//! (src/bin/liveness/deadline.rs), `KILL_GRACE` after `--timeout`.

use std::os::fd::AsRawFd;
use std::process::Stdio;

use crate::common::{self, Tree};

/// A FUSE mount whose daemon never answers: the connection is never
/// initialised, so every request on it waits, killably, forever. Closing
/// the device aborts the connection; the mount is then detached.
struct StuckMount {
    dir: tempfile::TempDir,
    device: Option<std::fs::File>,
}

impl StuckMount {
    fn new() -> StuckMount {
        let dir = tempfile::tempdir().unwrap();
        let device = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/fuse")
            .unwrap();
        let target = std::ffi::CString::new(dir.path().as_os_str().as_encoded_bytes()).unwrap();
        let options = std::ffi::CString::new(format!(
            "fd={},rootmode=40000,user_id=0,group_id=0",
            device.as_raw_fd()
        ))
        .unwrap();
        // SAFETY: every pointer is a NUL-terminated string that outlives the
        // call; mount(2) reads them and keeps none.
        let r = unsafe {
            nix::libc::mount(
                c"liveness-stuck".as_ptr(),
                target.as_ptr(),
                c"fuse".as_ptr(),
                nix::libc::MS_NOSUID | nix::libc::MS_NODEV,
                options.as_ptr().cast(),
            )
        };
        assert_eq!(r, 0, "mount: {}", std::io::Error::last_os_error());
        StuckMount {
            dir,
            device: Some(device),
        }
    }
}

impl Drop for StuckMount {
    fn drop(&mut self) {
        drop(self.device.take());
        let target =
            std::ffi::CString::new(self.dir.path().as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a NUL-terminated path that outlives the call.
        unsafe { nix::libc::umount2(target.as_ptr(), nix::libc::MNT_DETACH) };
    }
}

/// A probe blocked in a killable wait ends anyway: killed (SIGKILL) by the
/// deadline's second timer, where the thread of old ended it with exit 8 —
/// the one case the timer gives up for the probe's start-up cost
/// (doc/deadlines.md). Negative control: `stat` on the mount, which has no
/// deadline, never ends.
#[test]
fn a_probe_stuck_in_the_kernel_still_ends() {
    let test = "a_probe_stuck_in_the_kernel_still_ends";
    if !common::require(
        common::is_root() && std::path::Path::new("/dev/fuse").exists(),
        test,
        "root and /dev/fuse",
    ) {
        return;
    }
    let mount = StuckMount::new();
    let rundir = mount.dir.path();

    // On another name than the probe's: two lookups of one name wait for
    // each other uninterruptibly, where even SIGKILL cannot reach.
    let mut stat = Tree::spawn(
        std::process::Command::new("stat")
            .arg(rundir.join("control"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    assert_eq!(
        stat.wait_timeout(std::time::Duration::from_secs(2)),
        None,
        "the mount answers: the test proves nothing"
    );
    drop(stat); // SIGKILL ends its killable wait

    let mut probe = Tree::spawn(
        std::process::Command::new(common::bin())
            .args(["probe", "-u", "u", "--timeout", "200", "-r"])
            .arg(rundir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let st = probe
        .wait_timeout(common::PATIENCE)
        .expect("the probe never ended");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(st.signal(), Some(nix::libc::SIGKILL), "{st:?}");
}
