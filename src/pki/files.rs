//! Small filesystem helpers: private directories, atomic writes with explicit modes.
//!
//! Modes are set at creation (not chmod'ed afterwards) so a secret is never briefly readable.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::pki::error::{Error, Result};

/// Mode for private keys.
pub(crate) const KEY_MODE: u32 = 0o600;
/// Mode for certificates and other public files.
pub(crate) const PUBLIC_MODE: u32 = 0o644;
/// Mode for directories holding keys.
pub(crate) const DIR_MODE: u32 = 0o700;

/// Creates `dir` (and parents) with mode 0700 if needed; optionally tightens an existing one.
pub(crate) fn ensure_private_dir(dir: &Path, tighten_existing: bool) -> Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(DIR_MODE);
    }
    builder
        .create(dir)
        .map_err(|e| Error::io("create directory", dir, e))?;
    // The directory may have existed with a looser mode (only fixed where we own the directory).
    if tighten_existing {
        set_mode(dir, DIR_MODE)?;
    }
    Ok(())
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io("set permissions of", path, e))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> Result<()> {
    Ok(())
}

/// A temp file next to `path`, so the final rename stays on one filesystem.
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp.{}", std::process::id()))
}

fn write_temp(tmp: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let _ = fs::remove_file(tmp); // leftover of a crashed earlier run
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = opts.open(tmp).map_err(|e| Error::io("create", tmp, e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::io("write", tmp, e))
}

/// Atomically replaces `path` with `bytes` (readers see the old or the new file, never half).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let tmp = temp_path(path);
    write_temp(&tmp, bytes, mode)?;
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io("rename into place", path, e)
    })
}

/// Atomically creates `path` with `bytes`, failing with `AlreadyExists` instead of overwriting
/// (a hard link does not clobber, unlike rename). Used for the CA, which must never be replaced.
pub(crate) fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let tmp = temp_path(path);
    write_temp(&tmp, bytes, mode)?;
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    linked.map_err(|e| Error::io("create", path, e))
}

/// Reads a whole file; `NotFound` keeps its kind so callers can report "missing".
pub(crate) fn read(path: &Path) -> std::io::Result<Vec<u8>> {
    fs::read(path)
}

/// Logs a warning when a private key file is readable by group or others.
pub(crate) fn warn_if_loose_key_mode(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = fs::metadata(path) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(
                    path = %path.display(),
                    mode = format!("{mode:o}"),
                    "private key is accessible by group/others; run chmod 600 on it"
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}
