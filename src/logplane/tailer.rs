//! Follows a log file for the forwarder: reads complete lines from where the
//! master last acknowledged, survives rotation (rename + new file: the old
//! file's tail is shipped first) and truncation (copytruncate), and frames
//! every line with its origin (file id, byte offset).
//!
//! A file's id is derived from its identity *and* its first line (device,
//! inode, birth time, up to 256 bytes of content), so the same file gets the
//! same id after a forwarder restart — even with its state lost — while a
//! truncated-and-rewritten file or a reused inode gets a new one.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::syslog::ShippedLine;

const HEAD_BYTES: usize = 256;
const READ_CHUNK: usize = 256 * 1024;

/// What happened to the files being followed; the forwarder persists these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TailEvent {
    /// A file got its id and is being shipped from `pos`.
    Opened {
        file_id: u64,
        dev: u64,
        inode: u64,
        pos: u64,
    },
    /// A rotated file was read to its end: it is done once acked to `size`.
    Finalized { file_id: u64, size: u64 },
    /// A previously followed file is gone before it was fully shipped.
    Lost { file_id: u64, missing_from: u64 },
}

/// A file being read.
struct Source {
    file: File,
    dev: u64,
    inode: u64,
    file_id: Option<u64>,
    /// Offset of the next unshipped line start.
    pos: u64,
    /// Discarding the rest of an over-long line.
    skipping: bool,
    /// Size last seen while draining, and since when it stayed so.
    eof_since: Option<(u64, Instant)>,
}

impl Source {
    /// Follow the file's content from its start, as a new file.
    fn restart(&mut self) {
        self.pos = 0;
        self.file_id = None;
        self.skipping = false;
        self.eof_since = None;
    }
}

/// The file's first line is no longer the one its id was derived from
/// (truncated and rewritten, copytruncate-style).
fn head_changed(src: &Source) -> io::Result<bool> {
    let Some(id) = src.file_id else {
        return Ok(false);
    };
    let meta = src.file.metadata()?;
    Ok(file_id_of(&src.file, &meta)? != Some(id))
}

/// Where to resume one known file (from the forwarder's state).
#[derive(Debug, Clone, Copy)]
pub struct Resume {
    pub file_id: u64,
    pub dev: u64,
    pub inode: u64,
    pub pos: u64,
}

pub struct Tailer {
    path: PathBuf,
    max_line: usize,
    /// How long a rotated file must stay unchanged before its unterminated
    /// last line is shipped and the file is finished.
    rotate_grace: Duration,
    current: Option<Source>,
    draining: VecDeque<Source>,
    events: Vec<TailEvent>,
    buf: Vec<u8>,
}

fn file_id_of(file: &File, meta: &std::fs::Metadata) -> io::Result<Option<u64>> {
    let mut head = vec![0u8; HEAD_BYTES];
    let n = read_full_at(file, &mut head, 0)?;
    head.truncate(n);
    let head = match memchr::memchr(b'\n', &head) {
        Some(i) => &head[..i],
        // No complete first line yet: wait unless the head is already full.
        None if n < HEAD_BYTES => return Ok(None),
        None => &head[..],
    };
    let born = meta
        .created()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let mut h = Sha256::new();
    h.update(meta.dev().to_le_bytes());
    h.update(meta.ino().to_le_bytes());
    h.update(born.to_le_bytes());
    h.update(head);
    let d = h.finalize();
    let mut id = [0u8; 8];
    id.copy_from_slice(&d[..8]);
    // Positive as a signed 64-bit integer: SQLite stores it as-is.
    Ok(Some(u64::from_le_bytes(id) & (i64::MAX as u64)))
}

fn read_full_at(file: &File, buf: &mut [u8], at: u64) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], at + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl Tailer {
    /// Starts following `path`, resuming the files in `known` (previous
    /// state): rotated ones are found again by device + inode in the same
    /// directory and finished first.
    pub fn new(path: &Path, max_line: usize, known: &[Resume]) -> io::Result<Tailer> {
        let mut t = Tailer {
            path: path.to_path_buf(),
            max_line: max_line.max(64),
            rotate_grace: Duration::from_secs(1),
            current: None,
            draining: VecDeque::new(),
            events: Vec::new(),
            buf: vec![0u8; READ_CHUNK],
        };
        let path_meta = std::fs::metadata(path).ok();
        for k in known {
            let at_path = path_meta
                .as_ref()
                .is_some_and(|m| m.dev() == k.dev && m.ino() == k.inode);
            let found = if at_path {
                Some(path.to_path_buf())
            } else {
                find_by_inode(path, k.dev, k.inode)
            };
            let source = found.and_then(|p| {
                let file = File::open(&p).ok()?;
                let meta = file.metadata().ok()?;
                // Same inode but other content (reused inode, rewritten file)?
                (file_id_of(&file, &meta).ok()?? == k.file_id).then_some(Source {
                    file,
                    dev: k.dev,
                    inode: k.inode,
                    file_id: Some(k.file_id),
                    pos: k.pos,
                    skipping: false,
                    eof_since: None,
                })
            });
            match source {
                Some(s) if at_path => t.current = Some(s),
                Some(s) => t.draining.push_back(s),
                None => t.events.push(TailEvent::Lost {
                    file_id: k.file_id,
                    missing_from: k.pos,
                }),
            }
        }
        Ok(t)
    }

    pub fn with_rotate_grace(mut self, d: Duration) -> Self {
        self.rotate_grace = d;
        self
    }

    /// Drains the events since the last call.
    pub fn take_events(&mut self) -> Vec<TailEvent> {
        std::mem::take(&mut self.events)
    }

    /// Appends framed lines to `out` until about `budget` bytes; returns the
    /// number of lines. 0 means nothing new right now.
    pub fn fill(&mut self, out: &mut Vec<u8>, budget: usize) -> io::Result<usize> {
        let mut lines = 0;
        // Rotated files first: their lines are older.
        let mut unfinished = VecDeque::new();
        while let Some(mut src) = self.draining.pop_front() {
            lines += self.read_lines(&mut src, out, budget)?;
            if out.len() >= budget {
                unfinished.push_back(src);
                unfinished.extend(self.draining.drain(..));
                self.draining = unfinished;
                return Ok(lines);
            }
            if !self.finish_if_quiet(&mut src, out)? {
                unfinished.push_back(src);
            }
        }
        self.draining = unfinished;
        self.check_path()?;
        if let Some(mut src) = self.current.take() {
            let (mark, known) = (out.len(), src.file_id.is_some());
            let r = self.read_lines(&mut src, out, budget);
            // Truncated while we read: what we just read is the new content
            // at old offsets. Take it back; it is read again from offset 0.
            let r = match r {
                Ok(_) if known && head_changed(&src)? => {
                    tracing::warn!(path = %self.path.display(), "log file truncated while reading; following its new content");
                    out.truncate(mark);
                    src.restart();
                    Ok(0)
                }
                r => r,
            };
            self.current = Some(src);
            lines += r?;
        }
        Ok(lines)
    }

    /// Notices rotation (another file at the path) and truncation.
    fn check_path(&mut self) -> io::Result<()> {
        let meta = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        match &mut self.current {
            Some(cur) if cur.dev == meta.dev() && cur.inode == meta.ino() => {
                // A shorter file was truncated; one that already grew back
                // past our position is caught by its changed first line.
                if meta.len() < cur.pos || head_changed(cur)? {
                    tracing::warn!(path = %self.path.display(), "log file truncated; following its new content");
                    cur.restart();
                }
                Ok(())
            }
            _ => {
                let file = File::open(&self.path)?;
                let new = Source {
                    dev: meta.dev(),
                    inode: meta.ino(),
                    file,
                    file_id: None,
                    pos: 0,
                    skipping: false,
                    eof_since: None,
                };
                if let Some(old) = self.current.replace(new) {
                    tracing::info!(path = %self.path.display(), "log file rotated; finishing the old one first");
                    self.draining.push_back(old);
                }
                Ok(())
            }
        }
    }

    fn read_lines(
        &mut self,
        src: &mut Source,
        out: &mut Vec<u8>,
        budget: usize,
    ) -> io::Result<usize> {
        if src.file_id.is_none() {
            let meta = src.file.metadata()?;
            match file_id_of(&src.file, &meta)? {
                Some(id) => {
                    src.file_id = Some(id);
                    self.events.push(TailEvent::Opened {
                        file_id: id,
                        dev: src.dev,
                        inode: src.inode,
                        pos: src.pos,
                    });
                }
                None => return Ok(0),
            }
        }
        let file_id = src.file_id.unwrap_or_default();
        let mut lines = 0;
        while out.len() < budget {
            let n = read_full_at(&src.file, &mut self.buf, src.pos)?;
            let data = &self.buf[..n];
            let mut consumed = 0;
            while consumed < n && out.len() < budget {
                match memchr::memchr(b'\n', &data[consumed..]) {
                    Some(i) => {
                        let end = consumed + i;
                        if src.skipping {
                            src.skipping = false;
                        } else {
                            let line = &data[consumed..end.min(consumed + self.max_line)];
                            ShippedLine {
                                file_id,
                                offset: src.pos + consumed as u64,
                                line,
                            }
                            .encode_frame(out);
                            lines += 1;
                        }
                        consumed = end + 1;
                    }
                    None => {
                        let rest = n - consumed;
                        if src.skipping {
                            consumed = n;
                        } else if rest >= self.max_line {
                            // A line longer than the cap: ship its head, skip the rest.
                            tracing::warn!(
                                offset = src.pos + consumed as u64,
                                max = self.max_line,
                                "over-long log line truncated"
                            );
                            let line = &data[consumed..consumed + self.max_line];
                            ShippedLine {
                                file_id,
                                offset: src.pos + consumed as u64,
                                line,
                            }
                            .encode_frame(out);
                            lines += 1;
                            src.skipping = true;
                            consumed = n;
                        }
                        break;
                    }
                }
            }
            src.pos += consumed as u64;
            // Read to the end of what is there (or only a partial line left).
            if n < self.buf.len() || consumed == 0 {
                break;
            }
        }
        Ok(lines)
    }

    /// A rotated file that stayed unchanged for the grace period is done:
    /// ship its unterminated last line, if any. Returns true when finished.
    fn finish_if_quiet(&mut self, src: &mut Source, out: &mut Vec<u8>) -> io::Result<bool> {
        let size = src.file.metadata()?.len();
        match src.eof_since {
            Some((seen, since)) if seen == size => {
                if since.elapsed() < self.rotate_grace {
                    return Ok(false);
                }
            }
            _ => {
                src.eof_since = Some((size, Instant::now()));
                return Ok(false);
            }
        }
        let Some(file_id) = src.file_id else {
            // Never got a complete first line: nothing was shipped from it.
            if size > 0 {
                tracing::warn!(
                    bytes = size,
                    "rotated log file without a complete line skipped"
                );
            }
            return Ok(true);
        };
        if size > src.pos && !src.skipping {
            let mut tail = vec![0u8; (size - src.pos).min(self.max_line as u64) as usize];
            let n = read_full_at(&src.file, &mut tail, src.pos)?;
            ShippedLine {
                file_id,
                offset: src.pos,
                line: &tail[..n],
            }
            .encode_frame(out);
        }
        self.events.push(TailEvent::Finalized { file_id, size });
        Ok(true)
    }
}

/// A rotated file keeps its inode; look for it next to the original path.
fn find_by_inode(path: &Path, dev: u64, inode: u64) -> Option<PathBuf> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.dev() == dev && m.ino() == inode)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syslog::{FrameDecoder, Payload, decode_payload};
    use std::io::Write;

    fn shipped(out: &[u8]) -> Vec<(u64, u64, String)> {
        let mut d = FrameDecoder::new();
        d.feed(out);
        let mut v = Vec::new();
        while let Some(f) = d.next_frame().unwrap() {
            let Ok(Payload::Enveloped(l)) = decode_payload(f) else {
                panic!("not enveloped")
            };
            v.push((
                l.file_id,
                l.offset,
                String::from_utf8(l.line.to_vec()).unwrap(),
            ));
        }
        v
    }

    fn fill(t: &mut Tailer) -> Vec<(u64, u64, String)> {
        let mut out = Vec::new();
        t.fill(&mut out, 1 << 20).unwrap();
        shipped(&out)
    }

    #[test]
    fn truncated_file_that_grew_back_past_the_position_is_read_from_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.log");
        std::fs::write(&path, "old-1\nold-2\n").unwrap();
        let mut t = Tailer::new(&path, 1024, &[]).unwrap();
        let first = fill(&mut t);
        assert_eq!(first.len(), 2);
        // copytruncate, then more new content than the old file had.
        std::fs::write(&path, "new-line-1\nnew-line-2\nnew-line-3\n").unwrap();
        let second = fill(&mut t);
        let lines: Vec<&str> = second.iter().map(|x| x.2.as_str()).collect();
        assert_eq!(lines, ["new-line-1", "new-line-2", "new-line-3"]);
        assert_eq!(second[0].1, 0);
        assert_ne!(
            second[0].0, first[0].0,
            "rewritten content gets a new file id"
        );
    }

    #[test]
    fn rotated_known_file_is_finished_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.log");
        std::fs::write(&path, "a-1\na-2\na-3\n").unwrap();
        let mut t = Tailer::new(&path, 1024, &[]).unwrap();
        let got = fill(&mut t);
        let Some(TailEvent::Opened {
            file_id,
            dev,
            inode,
            ..
        }) = t.take_events().into_iter().next()
        else {
            panic!("no Opened event")
        };
        // Acked up to the end of a-1; then the process dies, the file is
        // rotated and written to, and a new file starts.
        let resume = Resume {
            file_id,
            dev,
            inode,
            pos: got[1].1,
        };
        drop(t);
        let rotated = dir.path().join("d.log.1");
        std::fs::rename(&path, &rotated).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&rotated)
            .unwrap()
            .write_all(b"a-4\n")
            .unwrap();
        std::fs::write(&path, "b-1\n").unwrap();
        let mut t = Tailer::new(&path, 1024, &[resume]).unwrap();
        let lines: Vec<String> = fill(&mut t).into_iter().map(|x| x.2).collect();
        assert_eq!(lines, ["a-2", "a-3", "a-4", "b-1"]);
    }
}
