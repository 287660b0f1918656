//! The process's limit on open file descriptors: every connection a
//! gateway holds is one, and many systems start processes with a soft
//! limit (often 1,024) far under the hard one.

/// Raises the soft limit on open file descriptors to the hard limit;
/// returns the limit in force afterwards (the soft one, unchanged, when it
/// cannot be raised).
pub fn raise_to_hard() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` through a valid pointer to a
    // local.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 0;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit reads one `rlimit` through a valid pointer to
        // a local.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return raised.rlim_cur;
        }
    }
    limit.rlim_cur
}

/// Lowers the soft limit on open file descriptors to `files` (at most the
/// hard limit), so that a test can run a node out of descriptors with a
/// modest number of sockets (`dwcp up --max-open-files`).
pub fn lower_to(files: u64) -> std::io::Result<()> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` through a valid pointer to a
    // local.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    limit.rlim_cur = files.min(limit.rlim_max);
    // SAFETY: setrlimit reads one `rlimit` through a valid pointer to a
    // local.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_limit_is_at_least_what_it_was() {
        assert!(super::raise_to_hard() > 0);
    }
}
