//! `--daemon` for long-running commands: re-run this binary detached from the
//! terminal (no stdin, own process group), logging to a file, pid in a file.

use std::path::Path;

use super::CliError;

pub fn daemonize(what: &str, log_path: &Path, pid_path: &Path) -> Result<(), CliError> {
    use std::os::unix::process::CommandExt;
    let open_log = || {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .map_err(|e| CliError::Other(format!("cannot open {}: {e}", log_path.display())))
    };
    let exe = std::env::current_exe()
        .map_err(|e| CliError::Other(format!("cannot locate this binary: {e}")))?;
    let argv: Vec<std::ffi::OsString> = std::env::args_os()
        .skip(1)
        .filter(|a| a != "--daemon")
        .collect();
    let child = std::process::Command::new(exe)
        .args(argv)
        .stdin(std::process::Stdio::null())
        .stdout(open_log()?)
        .stderr(open_log()?)
        .process_group(0)
        .spawn()
        .map_err(|e| CliError::Other(format!("cannot start the {what} in the background: {e}")))?;
    std::fs::write(pid_path, format!("{}\n", child.id()))
        .map_err(|e| CliError::Other(format!("cannot write {}: {e}", pid_path.display())))?;
    println!(
        "decnet {what} started in the background (pid {}, log {})",
        child.id(),
        log_path.display()
    );
    Ok(())
}
