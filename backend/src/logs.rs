//! Task logs: one file per task try under `$UPDRAFT_HOME/logs/`, every line timestamped and
//! passed through the secret masker, readable by byte offset while the task still writes.
//!
//! All task output goes through [`TaskLog`]: it is the one place where secret values are
//! replaced by `***`, so nothing a task prints can put a registered secret on disk.

use std::borrow::Cow;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use chrono::{SecondsFormat, Utc};

/// Secrets shorter than this are not masked: masking `1` or `ab` everywhere would make every
/// log unreadable and reveal more than it hides (Airflow's rule is similar).
pub const MIN_SECRET_LEN: usize = 5;
const MASK: &str = "***";
/// A task registers a secret for masking by printing this, then the value, on a line.
pub const ADD_MASK: &str = "::add-mask::";

/// The registry of secret values to hide. Connections and variables register theirs when a
/// task reads them (the secrets issue fills it); the worker shares one per task.
#[derive(Debug, Default)]
pub struct SecretMasker {
    // Longest first, so a secret that contains another is masked whole.
    secrets: RwLock<Vec<String>>,
}

impl SecretMasker {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Registers a value; each line of a multi-line value is masked on its own (logs are
    /// written line by line).
    pub fn add(&self, secret: &str) {
        let mut secrets = self.secrets.write().unwrap_or_else(|e| e.into_inner());
        for part in std::iter::once(secret.trim()).chain(secret.lines().map(str::trim)) {
            if part.chars().count() >= MIN_SECRET_LEN && !secrets.iter().any(|s| s == part) {
                secrets.push(part.to_string());
            }
        }
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }

    pub fn mask<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let secrets = self.secrets.read().unwrap_or_else(|e| e.into_inner());
        let mut out = Cow::Borrowed(text);
        for secret in secrets.iter() {
            if out.contains(secret.as_str()) {
                out = Cow::Owned(out.replace(secret.as_str(), MASK));
            }
        }
        out
    }
}

/// Where a try's log lives, in Airflow's layout:
/// `dag_id=…/run_id=…/task_id=…/[map_index=…/]attempt=N.log`. Path separators and `..` in
/// the names cannot escape the logs folder.
pub fn log_path(
    logs_root: &Path,
    dag_id: &str,
    run_id: &str,
    task_id: &str,
    map_index: Option<u32>,
    try_number: u32,
) -> PathBuf {
    let clean = |s: &str| {
        let s: String = s
            .chars()
            .map(|c| {
                if c == '/' || c == '\\' || c == '\0' {
                    '_'
                } else {
                    c
                }
            })
            .collect();
        if s == "." || s == ".." {
            s.replace('.', "_")
        } else {
            s
        }
    };
    let mut path = logs_root
        .join(format!("dag_id={}", clean(dag_id)))
        .join(format!("run_id={}", clean(run_id)))
        .join(format!("task_id={}", clean(task_id)));
    if let Some(i) = map_index {
        path = path.join(format!("map_index={i}"));
    }
    path.join(format!("attempt={try_number}.log"))
}

/// A try's log file, open for appending.
pub struct TaskLog {
    file: std::fs::File,
    masker: Arc<SecretMasker>,
    /// Bytes of an unfinished line (a process may write half a line at a time).
    partial: Vec<u8>,
    /// Also print each (masked) line on stdout with this prefix (`dags test`).
    echo: Option<String>,
}

impl TaskLog {
    pub fn create(path: &Path, masker: Arc<SecretMasker>) -> std::io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Self {
            file,
            masker,
            partial: Vec::new(),
            echo: None,
        })
    }

    /// Also prints every line on the terminal, after `prefix` (masked like the file).
    pub fn echo_to_stdout(mut self, prefix: String) -> Self {
        self.echo = Some(prefix);
        self
    }

    /// Writes one line (without its newline), timestamped and masked.
    pub fn line(&mut self, text: &str) -> std::io::Result<()> {
        let stamp = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        let masked = self.masker.mask(text);
        let mut out = String::with_capacity(masked.len() + 32);
        out.push('[');
        out.push_str(&stamp);
        out.push_str("] ");
        out.push_str(masked.trim_end_matches('\r'));
        out.push('\n');
        if let Some(prefix) = &self.echo {
            let mut stdout = std::io::stdout().lock();
            let _ = write!(stdout, "{prefix}{out}");
        }
        // One write per line: a reader never sees half a line from us.
        self.file.write_all(out.as_bytes())
    }

    /// One line of a task's own output: written masked, unless it is `::add-mask::VALUE`,
    /// which registers VALUE instead. True when the line was written.
    pub fn output_line(&mut self, text: &str) -> std::io::Result<bool> {
        if let Some(secret) = text.strip_prefix(ADD_MASK) {
            self.masker.add(secret);
            return Ok(false);
        }
        self.line(text)?;
        Ok(true)
    }

    /// Feeds raw output (e.g. a child's stdout); complete lines are written, the rest waits.
    /// A line `::add-mask::VALUE` (GitHub Actions' syntax; `mask_secret()` in python tasks)
    /// registers VALUE with the masker and is not written.
    pub fn write_output(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.partial.extend_from_slice(bytes);
        while let Some(pos) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=pos).collect();
            let text = String::from_utf8_lossy(&line[..line.len() - 1]);
            self.output_line(text.trim_end_matches('\r'))?;
        }
        // A line without end (a binary blob) is cut at 64 KiB so memory stays bounded.
        if self.partial.len() > 64 * 1024 {
            let line = std::mem::take(&mut self.partial);
            self.line(&String::from_utf8_lossy(&line))?;
        }
        Ok(())
    }

    /// Writes what is left of an unfinished line and syncs the file to disk.
    pub fn finish(mut self) -> std::io::Result<()> {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.line(&String::from_utf8_lossy(&line))?;
        }
        self.file.sync_data()
    }
}

/// Reads up to `max` bytes from `offset`, ending at a line boundary (a reader polling a live
/// log never gets half a line). Returns the text and the offset to continue from.
pub fn read_from(path: &Path, offset: u64, max: usize) -> std::io::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    if offset >= len {
        return Ok((String::new(), offset.min(len)));
    }
    file.seek(SeekFrom::Start(offset))?;
    let mut buf = vec![0; max.min((len - offset) as usize)];
    file.read_exact(&mut buf)?;
    if let Some(end) = buf.iter().rposition(|b| *b == b'\n') {
        buf.truncate(end + 1);
    } else if (buf.len() as u64) < len - offset {
        // A single line longer than `max`: hand it out in pieces rather than never.
    } else {
        buf.clear();
    }
    let next = offset + buf.len() as u64;
    Ok((String::from_utf8_lossy(&buf).into_owned(), next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_longest_first_and_short_ones_left() {
        let m = SecretMasker::new();
        m.add("hunter2-long");
        m.add("hunter2-long-and-longer");
        m.add("abc");
        m.add("line-one-secret\nline-two-secret");
        let masked = m.mask("pw=hunter2-long-and-longer x=hunter2-long y=abc z=line-two-secret");
        assert_eq!(masked, "pw=*** x=*** y=abc z=***");
        assert!(matches!(m.mask("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn a_task_can_register_secrets_with_add_mask_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let mut log = TaskLog::create(&path, SecretMasker::new()).unwrap();
        log.write_output(b"before tok-123456\n::add-mask::tok-123456\nafter tok-123456\n")
            .unwrap();
        log.finish().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("before tok-123456"),
            "earlier lines are already written"
        );
        assert!(text.contains("after ***"), "{text}");
        assert!(!text.contains("add-mask"), "{text}");
    }

    #[test]
    fn output_is_split_into_masked_timestamped_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = log_path(
            dir.path(),
            "d",
            "manual__2024-01-01T00:00:00+00:00",
            "t",
            None,
            1,
        );
        let m = SecretMasker::new();
        m.add("s3cr3t-value");
        let mut log = TaskLog::create(&path, m).unwrap();
        // A secret split across two writes is still masked: lines are masked whole.
        log.write_output(b"connecting with s3cr").unwrap();
        log.write_output(b"3t-value\nsecond line\r\npartial")
            .unwrap();
        log.finish().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(
            lines[0].starts_with('[') && lines[0].ends_with("] connecting with ***"),
            "{text}"
        );
        assert!(lines[1].ends_with("] second line"), "{text}");
        assert!(lines[2].ends_with("] partial"), "{text}");
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(path.ends_with(
            "dag_id=d/run_id=manual__2024-01-01T00:00:00+00:00/task_id=t/attempt=1.log"
        ));
    }

    #[test]
    fn names_cannot_escape_the_logs_folder() {
        let root = Path::new("/logs");
        let path = log_path(root, "../..", "a/../../b", "..", Some(3), 2);
        assert!(path.starts_with(root));
        assert!(
            !path
                .components()
                .any(|c| c == std::path::Component::ParentDir),
            "{path:?}"
        );
        assert!(path.to_string_lossy().contains("map_index=3/attempt=2.log"));
    }

    #[test]
    fn reading_by_offset_never_splits_a_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        std::fs::write(&path, "one\ntwo\nthr").unwrap();
        let (text, next) = read_from(&path, 0, 6).unwrap();
        assert_eq!((text.as_str(), next), ("one\n", 4));
        let (text, next) = read_from(&path, next, 100).unwrap();
        assert_eq!((text.as_str(), next), ("two\n", 8));
        // The unfinished last line waits until it ends.
        let (text, next) = read_from(&path, next, 100).unwrap();
        assert_eq!((text.as_str(), next), ("", 8));
        std::fs::write(&path, "one\ntwo\nthree\n").unwrap();
        assert_eq!(
            read_from(&path, 8, 100).unwrap(),
            ("three\n".to_string(), 14)
        );
        assert_eq!(read_from(&path, 99, 100).unwrap(), (String::new(), 14));
    }
}
