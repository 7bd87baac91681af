//! Which files the server may touch, and opening them safely.
//!
//! Allowed: the configured directories, the MCP client's roots, or by
//! default the user's home. Never: the data directory of the embedded store
//! (an export must not overwrite the store, a load must not read its files),
//! whatever the allowed directories say.
//!
//! A check and the open that follows it are one step: the file (or, for a
//! write, its directory) is opened first and the path the open descriptor
//! really has is checked, so swapping a path for a symbolic link between a
//! check and a read cannot lead outside. On Linux every later access goes
//! through the descriptor (`/proc/self/fd/N`); elsewhere the canonical path
//! is checked before and after opening.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::RwLock;

/// A refused or unusable path, with what to do about it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PathError(pub String);

#[derive(Debug)]
pub struct PathPolicy {
    configured: Vec<PathBuf>,
    client_roots: RwLock<Vec<PathBuf>>,
    home: Option<PathBuf>,
    /// Never readable or writable, even inside an allowed directory.
    forbidden: Vec<PathBuf>,
    /// Serving remote clients (HTTP): only explicitly allowed directories,
    /// never the home directory by default; the server's disk is not theirs.
    remote: bool,
}

/// A file opened for reading after its real path was checked. Keep it alive
/// while reading through `source`.
#[derive(Debug)]
pub struct OpenedFile {
    _file: File,
    /// Where to read it (its descriptor's path on Linux) and its real path.
    pub source: dfmcp_ingest::Source,
}

/// Where an export goes: the target's directory, opened and checked.
#[derive(Debug)]
pub struct WriteTarget {
    _dir: File,
    /// The directory, as a path that reaches the opened directory.
    dir_io: PathBuf,
    name: OsString,
    /// The target's real path, for messages.
    pub path: PathBuf,
}

fn canonical_dirs(dirs: &[PathBuf]) -> Vec<PathBuf> {
    dirs.iter()
        .filter_map(|d| match std::fs::canonicalize(d) {
            Ok(c) if c.is_dir() => Some(c),
            _ => {
                tracing::warn!(dir = %d.display(), "allowed directory does not exist or is not a directory; ignored");
                None
            }
        })
        .collect()
}

/// The path an open descriptor really has, where the OS can tell.
fn descriptor_path(file: &File) -> Option<PathBuf> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = file;
        None
    }
}

/// A path through which later accesses reach the opened file itself.
fn io_path(file: &File, fallback: &Path) -> PathBuf {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let path = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
        if path.exists() {
            return path;
        }
    }
    let _ = file;
    fallback.to_path_buf()
}

fn no_follow(options: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
    }
    options
}

impl PathPolicy {
    /// `forbidden`: directories no tool may read or write (the data dir).
    pub fn new(configured: &[PathBuf], forbidden: &[PathBuf]) -> Self {
        PathPolicy {
            configured: canonical_dirs(configured),
            client_roots: RwLock::new(Vec::new()),
            home: directories::BaseDirs::new()
                .and_then(|b| std::fs::canonicalize(b.home_dir()).ok()),
            forbidden: forbidden
                .iter()
                .map(|d| std::fs::canonicalize(d).unwrap_or_else(|_| d.clone()))
                .collect(),
            remote: false,
        }
    }

    /// For remote clients: only the configured directories (none by default).
    pub fn remote(mut self) -> Self {
        self.remote = true;
        self
    }

    /// Replaces the directories the client offered (MCP roots).
    pub fn set_client_roots(&self, roots: Vec<PathBuf>) {
        let roots = canonical_dirs(&roots);
        tracing::info!(?roots, "client roots");
        *self.client_roots.write().unwrap_or_else(|p| p.into_inner()) = roots;
    }

    /// The directories in force now.
    pub fn allowed(&self) -> Vec<PathBuf> {
        let mut dirs = self.configured.clone();
        if self.remote {
            // A remote client's roots name directories on its machine.
            return dirs;
        }
        dirs.extend(
            self.client_roots
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .cloned(),
        );
        if dirs.is_empty() && !self.remote {
            dirs.extend(self.home.clone());
        }
        dirs
    }

    fn absolute(&self, raw: &str) -> Result<PathBuf, PathError> {
        // Refused before the path is even looked at: whether a file exists
        // on the server's disk is nobody else's business.
        if self.remote && self.configured.is_empty() {
            return Err(PathError(
                "this server is reached over HTTP and reads or writes no files on its own disk: upload the file with POST /v1/files (it answers with the session_id and tables), and call export_table without a path to get a download link".into(),
            ));
        }
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(PathError(
                "the path is empty; give the path of a file".into(),
            ));
        }
        if self.remote {
            return self.remote_path(raw);
        }
        let path = if let Some(rest) = raw.strip_prefix("file://") {
            url::Url::parse(&format!("file://{rest}"))
                .ok()
                .and_then(|u| u.to_file_path().ok())
                .ok_or_else(|| PathError(format!("'{raw}' is not a valid file URL")))?
        } else if raw == "~" || raw.starts_with("~/") {
            let home = self.home.clone().ok_or_else(|| {
                PathError("the home directory is unknown; give an absolute path".into())
            })?;
            home.join(raw.trim_start_matches('~').trim_start_matches('/'))
        } else {
            PathBuf::from(raw)
        };
        Ok(std::path::absolute(&path).unwrap_or(path))
    }

    /// A remote caller's path: absolute, inside an allowed directory as
    /// written — checked before anything on disk is looked at, and refused
    /// with one message whatever lies there, so the server's disk cannot be
    /// probed. (The real path is checked again once opened.)
    fn remote_path(&self, raw: &str) -> Result<PathBuf, PathError> {
        let allowed = self.allowed();
        let list = allowed
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let path = normalize(Path::new(raw));
        if !path.is_absolute() || !allowed.iter().any(|root| path.starts_with(root)) {
            return Err(PathError(format!(
                "over HTTP, paths must be absolute and inside {list}; or upload the file with POST /v1/files"
            )));
        }
        Ok(path)
    }

    /// Checks a real (canonical) path; `given` is what the caller wrote.
    fn check(&self, real: &Path, given: &Path) -> Result<(), PathError> {
        if self.forbidden.iter().any(|f| real.starts_with(f)) {
            return Err(PathError(format!(
                "{} is inside this server's data directory, which tools never read or write; choose a path elsewhere",
                given.display()
            )));
        }
        let allowed = self.allowed();
        if allowed.iter().any(|root| real.starts_with(root)) {
            return Ok(());
        }
        if self.remote {
            // Where a link leads is not a remote caller's business.
            return Err(PathError(format!(
                "{} is not a file inside the allowed directories; upload the file with POST /v1/files instead",
                given.display()
            )));
        }

        let list = if allowed.is_empty() {
            "none".to_string()
        } else {
            allowed
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let dir = real.parent().unwrap_or(real);
        let hint = format!(
            "to allow it, start the server with --allow-dir {} (or set DATAFRAME_MCP_ALLOW_DIRS), or add that folder as a root in your MCP client",
            dir.display()
        );
        // The path as written is inside, but it leads outside: say so, rather
        // than suggest allowing a directory that already is.
        let lexical = normalize(given);
        if lexical != real && allowed.iter().any(|root| lexical.starts_with(root)) {
            return Err(PathError(format!(
                "{} is a symbolic link (or goes through one) to {}, which is outside the directories this server may access ({list}); {hint}",
                given.display(),
                real.display()
            )));
        }
        Err(PathError(format!(
            "{} is outside the directories this server may access ({list}); {hint}",
            given.display()
        )))
    }

    /// Opens a file to read: it must exist and really lie inside an allowed
    /// directory (checked on the opened descriptor).
    pub fn open_read(&self, raw: &str) -> Result<OpenedFile, PathError> {
        let given = self.absolute(raw)?;
        let real = std::fs::canonicalize(&given).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound if self.remote => {
                PathError(format!("file not found: {}", given.display()))
            }
            std::io::ErrorKind::NotFound => PathError(format!(
                "file not found: {} (relative paths are resolved against {}); check the name, or call inspect_file on the directory's files",
                given.display(),
                std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default()
            )),
            std::io::ErrorKind::PermissionDenied => {
                PathError(format!("no permission to read {}", given.display()))
            }
            _ => PathError(format!("cannot open {}: {e}", given.display())),
        })?;
        self.check(&real, &given)?;
        let file = no_follow(OpenOptions::new().read(true))
            .open(&real)
            .map_err(|e| {
                PathError(format!(
                    "cannot open {}: {e} (was it replaced while being opened?)",
                    given.display()
                ))
            })?;
        if let Some(opened) = descriptor_path(&file) {
            if opened != real {
                return Err(PathError(format!(
                    "{} changed while it was being opened (it now leads to {}); nothing was read",
                    given.display(),
                    opened.display()
                )));
            }
            self.check(&opened, &given)?;
        }
        let meta = file
            .metadata()
            .map_err(|e| PathError(format!("cannot read {}: {e}", given.display())))?;
        if meta.is_dir() {
            return Err(PathError(format!(
                "{} is a directory, not a file; give the path of a file inside it",
                given.display()
            )));
        }
        let read = io_path(&file, &real);
        Ok(OpenedFile {
            _file: file,
            source: dfmcp_ingest::Source { read, shown: real },
        })
    }

    /// Opens the directory of a file to write: it must exist and really lie
    /// inside an allowed directory; the target itself must not be a
    /// directory nor inside the data directory.
    pub fn open_write(&self, raw: &str) -> Result<WriteTarget, PathError> {
        let given = self.absolute(raw)?;
        let name = given
            .file_name()
            .ok_or_else(|| PathError(format!("{} has no file name", given.display())))?
            .to_os_string();
        let parent = given.parent().unwrap_or(Path::new("/"));
        let real_parent = std::fs::canonicalize(parent).map_err(|_| {
            PathError(format!(
                "the directory {} does not exist; create it first or choose another path",
                parent.display()
            ))
        })?;
        let real = real_parent.join(&name);
        self.check(&real_parent, &given)?;
        self.check(&real, &given)?;
        let dir = no_follow(OpenOptions::new().read(true))
            .open(&real_parent)
            .map_err(|e| {
                PathError(format!(
                    "cannot open the directory {}: {e}",
                    real_parent.display()
                ))
            })?;
        if let Some(opened) = descriptor_path(&dir) {
            if opened != real_parent {
                return Err(PathError(format!(
                    "{} changed while it was being opened (it now leads to {}); nothing was written",
                    parent.display(),
                    opened.display()
                )));
            }
            self.check(&opened.join(&name), &given)?;
        }
        let dir_io = io_path(&dir, &real_parent);
        let target = WriteTarget {
            _dir: dir,
            dir_io,
            name,
            path: real,
        };
        if std::fs::symlink_metadata(target.io_path()).is_ok_and(|m| m.is_dir()) {
            return Err(PathError(format!(
                "{} is a directory; give a file path such as {}/export.csv",
                target.path.display(),
                target.path.display()
            )));
        }
        Ok(target)
    }
}

impl WriteTarget {
    /// The target, reached through the opened directory.
    fn io_path(&self) -> PathBuf {
        self.dir_io.join(&self.name)
    }

    /// Whether something already has the target's name.
    pub fn exists(&self) -> bool {
        std::fs::symlink_metadata(self.io_path()).is_ok()
    }

    /// A new temporary file beside the target (never an existing file, never
    /// through a link), with the path to write it through.
    pub fn create_temp(&self) -> std::io::Result<(File, PathBuf)> {
        let name = format!(
            ".{}.{}.tmp",
            self.name.to_string_lossy(),
            dfmcp_storage::new_uid()
        );
        let path = self.dir_io.join(name);
        let file = no_follow(OpenOptions::new().write(true).create_new(true)).open(&path)?;
        Ok((file, path))
    }

    /// Moves a finished temporary file onto the target (replacing a link
    /// there, never following it).
    pub fn replace_with(&self, temp: &Path) -> std::io::Result<()> {
        std::fs::rename(temp, self.io_path())
    }

    /// The size of the target now.
    pub fn size(&self) -> u64 {
        std::fs::metadata(self.io_path()).map_or(0, |m| m.len())
    }
}

/// `..` and `.` removed without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(policy: &PathPolicy, path: &Path) -> Result<OpenedFile, PathError> {
        policy.open_read(&path.to_string_lossy())
    }

    #[test]
    fn remote_clients_get_only_explicit_directories() {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join("a.csv"), "x\n1\n").unwrap();
        let path = home.path().join("a.csv");
        let policy = PathPolicy::new(&[], &[]).remote();
        policy.set_client_roots(vec![home.path().to_path_buf()]);
        let err = read(&policy, &path).unwrap_err().to_string();
        assert!(err.contains("POST /v1/files"), "{err}");
        // Same answer for a file that does not exist: nothing is looked at.
        let missing = read(&policy, &home.path().join("nope.csv"))
            .unwrap_err()
            .to_string();
        assert_eq!(err, missing);
        assert!(policy.open_write(&path.to_string_lossy()).is_err());
        let explicit = PathPolicy::new(&[home.path().to_path_buf()], &[]).remote();
        assert!(read(&explicit, &path).is_ok());
        // Outside the allowed directory: one answer whether or not the file
        // exists, and nothing looked at.
        let elsewhere = tempfile::tempdir().unwrap();
        std::fs::write(elsewhere.path().join("secret"), "x").unwrap();
        let exists = read(&explicit, &elsewhere.path().join("secret"))
            .unwrap_err()
            .to_string();
        let absent = read(&explicit, &elsewhere.path().join("nothing"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            exists.replace("secret", "X"),
            absent.replace("nothing", "X")
        );
        assert!(read(&explicit, Path::new("a.csv")).is_err(), "relative");
        // A link inside leading outside: not said where.
        std::os::unix::fs::symlink(elsewhere.path().join("secret"), home.path().join("link"))
            .unwrap();
        let e = read(&explicit, &home.path().join("link"))
            .unwrap_err()
            .to_string();
        assert!(!e.contains(&elsewhere.path().display().to_string()), "{e}");
    }

    #[test]
    fn reads_stay_inside() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("a.csv"), "x\n1\n").unwrap();
        std::fs::write(outside.path().join("secret.csv"), "x\n1\n").unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret.csv"),
            root.path().join("link.csv"),
        )
        .unwrap();
        let policy = PathPolicy::new(&[root.path().to_path_buf()], &[]);

        let opened = read(&policy, &root.path().join("a.csv")).unwrap();
        assert_eq!(std::fs::read(&opened.source.read).unwrap(), b"x\n1\n");
        let sneaky = root
            .path()
            .join("..")
            .join(outside.path().file_name().unwrap())
            .join("secret.csv");
        let err = read(&policy, &sneaky).unwrap_err();
        assert!(err.0.contains("--allow-dir"), "{err}");
        // Regression: a refused link suggested allowing the directory that
        // already is allowed.
        let err = read(&policy, &root.path().join("link.csv")).unwrap_err();
        assert!(err.0.contains("symbolic link"), "{err}");
        let missing = read(&policy, &root.path().join("nope.csv")).unwrap_err();
        assert!(missing.0.contains("not found"), "{missing}");
    }

    /// Regression: with the data directory under an allowed one, an export
    /// could overwrite the store's database.
    #[test]
    fn the_data_directory_is_never_reachable() {
        let home = tempfile::tempdir().unwrap();
        let data = home.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::fs::write(data.join("store.sqlite3"), "db").unwrap();
        let policy = PathPolicy::new(&[home.path().to_path_buf()], std::slice::from_ref(&data));
        let err = policy
            .open_write(&data.join("store.sqlite3").to_string_lossy())
            .unwrap_err();
        assert!(err.0.contains("data directory"), "{err}");
        assert!(read(&policy, &data.join("store.sqlite3")).is_err());
        assert!(policy.open_write(&data.to_string_lossy()).is_err());
        // A link from an allowed place into the data directory is refused too.
        std::os::unix::fs::symlink(&data, home.path().join("shortcut")).unwrap();
        assert!(
            policy
                .open_write(&home.path().join("shortcut/store.sqlite3").to_string_lossy())
                .is_err()
        );
    }

    #[test]
    fn writes_stay_inside() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let policy = PathPolicy::new(&[root.path().to_path_buf()], &[]);
        let target = policy
            .open_write(&root.path().join("out.csv").to_string_lossy())
            .unwrap();
        let (mut file, temp) = target.create_temp().unwrap();
        std::io::Write::write_all(&mut file, b"a\n").unwrap();
        target.replace_with(&temp).unwrap();
        assert_eq!(std::fs::read(root.path().join("out.csv")).unwrap(), b"a\n");
        assert!(
            policy
                .open_write(&outside.path().join("out.csv").to_string_lossy())
                .is_err()
        );
        // Writing onto a link replaces the link; the file it pointed at is
        // untouched.
        std::fs::write(outside.path().join("x.csv"), "keep").unwrap();
        std::os::unix::fs::symlink(outside.path().join("x.csv"), root.path().join("evil.csv"))
            .unwrap();
        let target = policy
            .open_write(&root.path().join("evil.csv").to_string_lossy())
            .unwrap();
        let (_, temp) = target.create_temp().unwrap();
        target.replace_with(&temp).unwrap();
        assert_eq!(
            std::fs::read(outside.path().join("x.csv")).unwrap(),
            b"keep"
        );
        assert!(
            policy
                .open_write(&root.path().join("no/such/dir.csv").to_string_lossy())
                .is_err()
        );
    }

    #[test]
    fn client_roots_extend_the_allowed_set() {
        let configured = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("a.csv"), "x\n").unwrap();
        let policy = PathPolicy::new(&[configured.path().to_path_buf()], &[]);
        assert!(read(&policy, &root.path().join("a.csv")).is_err());
        policy.set_client_roots(vec![root.path().to_path_buf()]);
        assert!(read(&policy, &root.path().join("a.csv")).is_ok());
    }

    /// Regression: swapping an allowed file for a link to an outside file
    /// while it was being loaded let some loads read the outside file. Every
    /// open either refuses or reads the allowed file.
    #[test]
    fn a_file_swapped_for_a_link_is_never_read_through_it() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.csv"), "secret\n").unwrap();
        let policy = std::sync::Arc::new(PathPolicy::new(&[root.path().to_path_buf()], &[]));
        let target = root.path().join("data.csv");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let swapper = {
            let (target, secret, stop) = (
                target.clone(),
                outside.path().join("secret.csv"),
                stop.clone(),
            );
            let staging = root.path().join("staging");
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    std::fs::write(&staging, "public\n").unwrap();
                    std::fs::rename(&staging, &target).unwrap();
                    let _ = std::fs::remove_file(&staging);
                    std::os::unix::fs::symlink(&secret, &staging).unwrap();
                    std::fs::rename(&staging, &target).unwrap();
                }
            })
        };
        for _ in 0..2000 {
            if let Ok(opened) = policy.open_read(&target.to_string_lossy())
                && let Ok(bytes) = std::fs::read(&opened.source.read)
            {
                assert_eq!(bytes, b"public\n", "read through a swapped-in link");
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        swapper.join().unwrap();
    }
}
