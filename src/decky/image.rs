//! The decky image, built locally from the project's own `decnet` binary.
//!
//! No registry is reachable from workers, so the agent builds the image itself through the
//! Docker build API (bollard; never the docker CLI): a `FROM scratch` context holding
//! - `/decnet`: the binary (the agent's own `current_exe()`),
//! - its shared libraries and ELF interpreter at the paths `ldd` reports (none if static),
//!
//! tagged `decnet-decky:<crate version>-<first 12 hex of the binary's SHA-256>`. A rebuilt
//! binary therefore yields a new tag (and, through the decky spec hash, recreated deckies); an
//! existing tag is reused without rebuilding. The entrypoint is `/decnet`; containers pass
//! `decky base …` / `decky serve …` as the command.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::SystemTime;

use bollard::Docker;
use bollard::query_parameters::BuildImageOptionsBuilder;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

/// Image repository name.
pub const REPOSITORY: &str = "decnet-decky";
/// Path of the binary inside the image.
pub const BINARY_IN_IMAGE: &str = "/decnet";

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("decky image: cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("decky image: cannot list the shared libraries of {path} with ldd: {reason}")]
    Ldd { path: PathBuf, reason: String },
    #[error("decky image: docker build of {tag} failed: {reason}")]
    Build { tag: String, reason: String },
    #[error("decky image: docker: {0}")]
    Docker(#[from] bollard::errors::Error),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ImageError + '_ {
    move |source| ImageError::Io {
        path: path.to_owned(),
        source,
    }
}

/// `decnet-decky:<version>-<sha12>` for the binary at `binary` (hash cached per path+mtime+size).
pub fn image_tag(binary: &Path) -> Result<String, ImageError> {
    type Key = (PathBuf, Option<SystemTime>, u64);
    static CACHE: OnceLock<std::sync::Mutex<HashMap<Key, String>>> = OnceLock::new();
    let meta = std::fs::metadata(binary).map_err(io_err(binary))?;
    let key = (binary.to_owned(), meta.modified().ok(), meta.len());
    let cache = CACHE.get_or_init(Default::default);
    if let Some(tag) = cache.lock().expect("poisoned").get(&key) {
        return Ok(tag.clone());
    }
    let mut file = std::fs::File::open(binary).map_err(io_err(binary))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(io_err(binary))?;
    let hex: String = hasher
        .finalize()
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect();
    let tag = format!("{REPOSITORY}:{}-{hex}", env!("CARGO_PKG_VERSION"));
    cache.lock().expect("poisoned").insert(key, tag.clone());
    Ok(tag)
}

/// Parses `ldd` output into the absolute paths of the libraries and the ELF interpreter.
/// Static binaries ("not a dynamic executable", "statically linked") yield nothing.
pub fn parse_ldd(output: &str) -> Vec<PathBuf> {
    output
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            let path = match line.split_once("=>") {
                Some((_, rest)) => rest.split_whitespace().next()?,
                None => line.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>, ImageError> {
    let out = std::process::Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(|e| ImageError::Ldd {
            path: binary.to_owned(),
            reason: e.to_string(),
        })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        if stdout.contains("not a dynamic executable")
            || stderr.contains("not a dynamic executable")
        {
            return Ok(Vec::new());
        }
        return Err(ImageError::Ldd {
            path: binary.to_owned(),
            reason: stderr.trim().to_owned(),
        });
    }
    Ok(parse_ldd(&stdout))
}

const DOCKERFILE: &str = "FROM scratch\nCOPY rootfs/ /\nENTRYPOINT [\"/decnet\"]\n";

/// The build context (an uncompressed tar) for `binary`.
pub fn build_context(binary: &Path) -> Result<Vec<u8>, ImageError> {
    let mut tar = tar::Builder::new(Vec::new());
    tar.follow_symlinks(true);
    // Docker's tar reader rejects GNU sparse entries (type 83).
    tar.sparse(false);
    let mut header = tar::Header::new_gnu();
    header.set_size(DOCKERFILE.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    let append = |tar: &mut tar::Builder<Vec<u8>>, src: &Path, dst: &str| {
        let mut f = std::fs::File::open(src).map_err(io_err(src))?;
        tar.append_file(format!("rootfs{dst}"), &mut f)
            .map_err(io_err(src))
    };
    tar.append_data(&mut header, "Dockerfile", DOCKERFILE.as_bytes())
        .map_err(io_err(Path::new("Dockerfile")))?;
    append(&mut tar, binary, BINARY_IN_IMAGE)?;
    for lib in shared_libraries(binary)? {
        let dst = lib.to_string_lossy().into_owned();
        append(&mut tar, &lib, &dst)?;
    }
    tar.into_inner().map_err(io_err(binary))
}

/// Returns the decky image tag for `binary`, building the image first if Docker lacks it.
/// Concurrent callers wait for one build.
pub async fn ensure_image(docker: &Docker, binary: &Path) -> Result<String, ImageError> {
    static BUILD: Mutex<()> = Mutex::const_new(());
    let bin = binary.to_owned();
    let tag = tokio::task::spawn_blocking(move || image_tag(&bin))
        .await
        .expect("hashing never panics")?;
    if docker.inspect_image(&tag).await.is_ok() {
        return Ok(tag);
    }
    let _guard = BUILD.lock().await;
    if docker.inspect_image(&tag).await.is_ok() {
        return Ok(tag);
    }
    build(docker, binary, &tag).await?;
    Ok(tag)
}

/// Builds (or rebuilds) the image `tag` from `binary`.
pub async fn build(docker: &Docker, binary: &Path, tag: &str) -> Result<(), ImageError> {
    let started = std::time::Instant::now();
    let bin = binary.to_owned();
    let context = tokio::task::spawn_blocking(move || build_context(&bin))
        .await
        .expect("tar never panics")?;
    let options = BuildImageOptionsBuilder::default()
        .dockerfile("Dockerfile")
        .t(tag)
        .rm(true)
        .forcerm(true)
        .labels(&HashMap::from([(
            "decnet.io/image".to_owned(),
            "decky".to_owned(),
        )]))
        .build();
    let mut stream = docker.build_image(options, None, Some(bollard::body_full(context.into())));
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| ImageError::Build {
            tag: tag.to_owned(),
            reason: e.to_string(),
        })?;
        if let Some(detail) = info.error_detail {
            return Err(ImageError::Build {
                tag: tag.to_owned(),
                reason: detail.message.unwrap_or_else(|| "unknown error".into()),
            });
        }
    }
    docker
        .inspect_image(tag)
        .await
        .map_err(|e| ImageError::Build {
            tag: tag.to_owned(),
            reason: format!("image missing after build: {e}"),
        })?;
    tracing::info!(%tag, elapsed_ms = started.elapsed().as_millis() as u64, "built decky image");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ldd_output() {
        let out = "\tlinux-vdso.so.1 (0x00007fef15402000)\n\
                   \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007fef153d1000)\n\
                   \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007fef1413e000)\n\
                   \t/lib64/ld-linux-x86-64.so.2 (0x00007fef15404000)\n";
        assert_eq!(
            parse_ldd(out),
            vec![
                PathBuf::from("/lib/x86_64-linux-gnu/libgcc_s.so.1"),
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
            ]
        );
        assert!(parse_ldd("\tnot a dynamic executable\n").is_empty());
        assert!(parse_ldd("\tstatically linked\n").is_empty());
    }

    #[test]
    fn tag_names_version_and_hash() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bin");
        std::fs::write(&p, b"hello").unwrap();
        let tag = image_tag(&p).unwrap();
        // sha256("hello") = 2cf24dba5fb0...
        assert_eq!(
            tag,
            format!("decnet-decky:{}-2cf24dba5fb0", env!("CARGO_PKG_VERSION"))
        );
    }
}
