//! The one kill rule for every child xbench starts (a worker, an external program): the child
//! leads a process group of its own, and is ended with `SIGKILL` to that group, to every process
//! descended from it (found through /proc on Linux, before anything is killed) and to the groups
//! those lead. A descendant in a group of its own (an external program started by a worker, or
//! one a program put there) therefore ends too; a daemon that left the tree (reparented to init)
//! is beyond it.

/// Kills process `pid` (the leader of its own process group), every process descended from it
/// and the process groups they lead.
pub fn kill_tree(pid: u32) {
    #[cfg(unix)]
    {
        let found = descendants(pid as i32);
        // SAFETY: kill(2) of processes this program started, and of the groups they lead; never
        // this process's own group.
        unsafe {
            let own = libc::getpgrp();
            libc::kill(-(pid as i32), libc::SIGKILL);
            for (p, group) in found {
                if group > 1 && group != own {
                    libc::kill(-group, libc::SIGKILL);
                }
                libc::kill(p, libc::SIGKILL);
            }
        }
    }
    #[cfg(not(unix))]
    let _ = pid;
}

/// Every process descended from `pid`, with its process group, read from /proc (Linux; elsewhere
/// none are found, and the worker's group is all that is killed).
#[cfg(unix)]
fn descendants(pid: i32) -> Vec<(i32, i32)> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    // (pid, parent, group) of every process.
    let all: Vec<(i32, i32, i32)> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
            // After the command name in parentheses (which may hold anything): state, parent, group.
            let mut rest = stat[stat.rfind(')')? + 1..].split_whitespace().skip(1);
            Some((p, rest.next()?.parse().ok()?, rest.next()?.parse().ok()?))
        })
        .collect();
    let mut found: Vec<(i32, i32)> = Vec::new();
    let mut parents = vec![pid];
    while let Some(parent) = parents.pop() {
        for &(p, pp, group) in &all {
            if pp == parent && !found.iter().any(|&(f, _)| f == p) {
                found.push((p, group));
                parents.push(p);
            }
        }
    }
    found
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_grandchild_in_a_group_of_its_own_is_found_and_ended() {
        // sh (its own group) starts a child in another group, which starts a grandchild.
        let mut sh = std::process::Command::new("sh");
        sh.args(["-c", "setsid sh -c 'sleep 300 & wait' & wait"]);
        std::os::unix::process::CommandExt::process_group(&mut sh, 0);
        let mut child = sh.spawn().unwrap();
        let pid = child.id() as i32;
        let mut found = Vec::new();
        for _ in 0..200 {
            found = descendants(pid);
            if found.len() >= 2 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(found.len() >= 2, "{found:?}");
        kill_tree(pid as u32);
        child.wait().unwrap();
        for (p, _) in found {
            let mut gone = false;
            for _ in 0..200 {
                let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
                if stat.is_empty() || stat[stat.rfind(')').unwrap() + 1..].trim_start().starts_with('Z') {
                    gone = true;
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            assert!(gone, "process {p} still runs");
        }
    }
}
